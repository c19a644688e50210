"""Every model at every depth under every activation (gradcheck.nets): gradients of every parameter,
the untrained loss, buffers, learning a tiny batch; checkpoints of the code before the depth list."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from mnistsoftmax.activations import ACTIVATIONS
from mnistsoftmax.gradcheck import check_model, depths, nets
from mnistsoftmax.losses import LOSSES, cross_entropy
from mnistsoftmax.models import MODELS, Network, build_model, layer_names, loss_and_grads
from mnistsoftmax.optim import SGD
from tests.nets import NET_IDS, NETS


@pytest.mark.parametrize(("kind", "widths", "activation"), NETS, ids=NET_IDS)
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("reg", [0.0, 1e-2])
def test_every_gradient_matches_finite_differences(kind, widths, activation, loss, reg):
    """Hand-written backward (with the L2 term) agrees with float64 central differences to < 1e-6,
    for every parameter of every depth under every loss."""
    errors = check_model(kind, seed=1, hidden=widths, batch_size=6, reg=reg, loss=loss, activation=activation)
    assert set(errors) == {n for pair in layer_names(len(widths)) for n in pair}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize(("kind", "widths", "activation"), NETS, ids=NET_IDS)
def test_label_smoothing_gradients_match_finite_differences(kind, widths, activation, monkeypatch):
    """The smoothed loss's gradients (with dropout through fixed masks where there are hidden
    layers) agree to < 1e-6; a backward that ignores the smoothing is caught."""
    import dataclasses

    from mnistsoftmax import losses

    dropout = 0.5 if widths else 0.0
    errors = check_model(kind, seed=2, hidden=widths, batch_size=6, reg=1e-3, dropout=dropout, smoothing=0.2,
                         activation=activation)  # fmt: skip
    assert max(errors.values()) < 1e-6, errors
    entry = losses.LOSSES["cross-entropy"]
    unsmoothed = dataclasses.replace(entry, backward=lambda Z, y, smoothing: entry.backward(Z, y))
    monkeypatch.setitem(losses.LOSSES, "cross-entropy", unsmoothed)
    wrong = check_model(kind, seed=2, hidden=widths, batch_size=6, reg=1e-3, dropout=dropout, smoothing=0.2)
    assert max(wrong.values()) > 1e-3


@pytest.mark.parametrize("widths", [[6], [6, 5]])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_gradcheck_catches_a_wrong_backward(monkeypatch, widths, activation):
    """The check can fail: a backward that forgets the activation's derivative is reported, at each
    depth, under each activation."""
    entry = ACTIVATIONS[activation]
    monkeypatch.setitem(ACTIVATIONS, activation, dataclasses.replace(entry, backward=lambda dA, cache, out=None,
                                                                      mask=None, **_: dA.copy()))  # fmt: skip
    assert check_model("mlp", seed=1, hidden=widths, batch_size=6, activation=activation)["W1"] > 1e-3


def test_dropout_in_place_where_the_backward_reads_more_than_a_sign_is_caught(monkeypatch):
    """tanh's backward reads 1 - A**2, so dropout must not scale A where it lies: the gradient check
    through dropout masks catches an entry that says it may (relative error far above 1e-6)."""
    entry = ACTIVATIONS["tanh"]
    monkeypatch.setitem(ACTIVATIONS, "tanh", dataclasses.replace(entry, dropout_in_place=True))
    errors = check_model("mlp", seed=2, hidden=[6], batch_size=6, dropout=0.5, activation="tanh")
    assert errors["W1"] > 1e-2, errors


@pytest.mark.parametrize(("kind", "widths", "activation"), nets("all", (256, 128)))
def test_untrained_loss_is_ln10(kind, widths, activation):
    """Initialisation gives every class ~10 %: the loss on standardised inputs is ln 10 within 0.1,
    under every activation (each has its gain)."""
    rng = np.random.default_rng(0)
    model = build_model(kind, rng, hidden=widths, activation=activation)
    X = rng.standard_normal((2000, 784)).astype(np.float32)
    y = rng.integers(0, 10, 2000)
    Z, _ = model.forward(X)
    assert Z.dtype == np.float32
    assert abs(cross_entropy(Z.astype(np.float64), y) - math.log(10)) < 0.1


def allocating_pass(kind: str, seed: int, n: int, hidden, activation=None, dropout=None):
    """A model, a batch X (n, 784) with an output gradient dZ (n, 10), and the allocating path's
    logits, cache and parameter gradients for them (through the `dropout` masks, if given)."""
    rng = np.random.default_rng(seed)
    model = build_model(kind, rng, hidden=hidden, activation=activation)
    X = rng.standard_normal((n, 784)).astype(np.float32)
    dZ = rng.standard_normal((n, 10)).astype(np.float32)
    Z, cache = model.forward(X, dropout=dropout)
    grads = {k: v.copy() for k, v in model.backward(dZ, cache).items()}
    return model, X, dZ, Z, cache, grads


@pytest.mark.parametrize(("kind", "widths", "activation"), NETS, ids=NET_IDS)
@pytest.mark.parametrize("with_dropout", [False, True], ids=["plain", "dropout"])
def test_workspace_path_equals_allocating_path(kind, widths, activation, with_dropout):
    """Forward/backward through reused buffers give the same numbers as the allocating path, with
    dropout too (acting in place only where the activation's backward allows it)."""
    from mnistsoftmax.functional import dropout_mask

    rng = np.random.default_rng(5)
    masks = [dropout_mask(rng, 0.5, np.empty((20, H), np.float32)) for H in widths] if with_dropout else None
    model, X, dZ, Z, _, expected = allocating_pass(kind, seed=4, n=20, hidden=widths, activation=activation,
                                                   dropout=masks)  # fmt: skip
    ws = model.workspace(32)
    grads = {k: np.full_like(v, np.nan) for k, v in model.params.items()}
    Z_ws, cache_ws = model.forward(X, ws, dropout=masks)
    np.testing.assert_array_equal(Z_ws, Z)
    model.backward(dZ, cache_ws, grads, ws)
    for name in expected:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("kind", "widths", "activation"), NETS, ids=NET_IDS)
def test_backward_with_beta_accumulates_into_the_buffers(kind, widths, activation):
    """backward(..., beta) leaves beta * old + gradient: the momentum step the training loop relies on."""
    model, _, dZ, _, cache, gradient = allocating_pass(kind, seed=6, n=12, hidden=widths, activation=activation)
    rng = np.random.default_rng(7)
    old = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in model.params.items()}
    velocity = {k: v.copy() for k, v in old.items()}
    model.backward(dZ, cache, velocity, model.workspace(12), beta=0.9)
    for name in old:
        np.testing.assert_allclose(velocity[name], 0.9 * old[name] + gradient[name], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="beta needs"):
        model.backward(dZ, cache, beta=0.9)


@pytest.mark.parametrize(("kind", "widths"), depths("all", (64, 32)))
def test_overfits_a_tiny_batch(kind, widths):
    """Plain gradient descent drives the loss of 20 random samples from ~2.3 to near 0."""
    rng = np.random.default_rng(5)
    model = build_model(kind, rng, hidden=widths, dtype=np.float64)
    X, y = rng.standard_normal((20, 784)), rng.integers(0, 10, 20)
    opt = SGD(model.params, momentum=0.9)
    first, _ = loss_and_grads(model, X, y)
    for _ in range(200):
        loss, grads = loss_and_grads(model, X, y)
        opt.add_gradients(grads)
        opt.step(lr=0.05)
    assert first == pytest.approx(math.log(10), abs=0.1)
    assert loss < 0.01
    assert np.array_equal(model.forward(X)[0].argmax(axis=1), y)


def test_sizes_and_kinds():
    """Each model reports its kind, widths and sizes, which checkpoints store; one class for every depth."""
    rng = np.random.default_rng(0)
    linear = build_model("linear", rng)
    assert linear.sizes == {"inputs": 784, "classes": 10} and linear.kind == "linear" and linear.hidden_widths == []
    mlp = build_model("mlp", rng, hidden=7)
    assert mlp.sizes == {"inputs": 784, "hidden": [7], "classes": 10} and mlp.weight_names == ("W1", "W2")
    deep = build_model("mlp", rng, hidden=[9, 5])
    assert type(deep) is type(mlp) is type(linear) is Network
    assert deep.sizes == {"inputs": 784, "hidden": [9, 5], "classes": 10} and deep.kind == "mlp"
    assert deep.weight_names == ("W1", "W2", "W3") and deep.describe() == "mlp, 9 and 5 hidden units"
    assert [layer[0] for layer in deep.layers] == ["affine", "relu", "affine", "relu", "affine"]
    assert set(MODELS) == {"linear", "mlp"}


LEGACY = Path(__file__).parent / "data" / "legacy"


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_checkpoints_of_the_code_before_load_and_predict_as_they_did(kind):
    """linear.npz and mlp.npz were written by the code before a model became its list of widths
    (tests/data/legacy/README.md); they load with their arrays bit for bit, and give the logits that
    code gave. Those logits were computed on another CPU, whose BLAS kernels round float32 products
    otherwise: equal to float32 rounding, not bit for bit (that is a promise of one machine)."""
    from mnistsoftmax import api

    clf = api.load(LEGACY / f"{kind}.npz")
    stored = np.load(LEGACY / f"{kind}.npz")
    expected = np.load(LEGACY / "expected.npz")
    assert clf.model.kind == kind
    for name, value in clf.model.params.items():
        assert value.tobytes() == stored[name].tobytes(), name
    logits = clf.logits(expected["pixels"])
    np.testing.assert_allclose(logits, expected[kind], rtol=1e-5, atol=1e-5)
    assert np.array_equal(logits.argmax(axis=1), expected[kind].argmax(axis=1))


def test_an_interrupted_run_of_the_code_before_resumes_to_its_weights(tmp_path, tiny_data):
    """stopped.interrupted.npz, an mlp run the code before stopped at its third step (its SGD
    velocity saved as velocity.W1 ...), resumes to the weights that code's uninterrupted run ended
    with. That run was computed on another CPU: equal to float32 rounding over its steps, not bit
    for bit (a resumed run against an uninterrupted one on the same machine is, in test_training)."""
    import shutil

    from click.testing import CliRunner

    from mnistsoftmax import checkpoint
    from mnistsoftmax.cli import main

    saved = tmp_path / "stopped.interrupted.npz"
    shutil.copy(LEGACY / "stopped.interrupted.npz", saved)
    out = tmp_path / "done.npz"
    result = CliRunner().invoke(
        main, ["train", "--resume", str(saved), "--data-dir", str(tiny_data), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    model, _ = checkpoint.load(out)
    expected = np.load(LEGACY / "expected.npz")
    stopped = np.load(LEGACY / "stopped.interrupted.npz")
    for name, value in model.params.items():
        np.testing.assert_allclose(value, expected[f"resumed_{name}"], rtol=1e-4, atol=1e-5, err_msg=name)
        # the steps after the stop moved every parameter 100 times that tolerance
        assert np.abs(value - stopped[name]).max() > 1e-3, name


def test_unit_pictures_are_what_the_units_add_up_from_the_pixels():
    """For a net of two hidden layers, a last-layer unit that an input turns on is, near that input,
    exactly picture . x + constant (a ReLU net is linear where its on/off pattern stays): the
    picture matches the unit's finite-difference gradient with respect to the pixels. For one
    hidden layer the picture is the unit's own first-layer weights."""
    from mnistsoftmax.gradcheck import numerical_gradient

    rng = np.random.default_rng(4)
    deep = build_model("mlp", rng, hidden=[20, 12], dtype=np.float64)
    x = rng.standard_normal((1, 784))
    on = np.flatnonzero(deep.last_hidden_layer(x)[0][0] > 0)
    units = on[:3]
    pictures = deep.unit_pictures(units, x)  # (784, 3)
    for k, unit in enumerate(units):
        gradient = numerical_gradient(lambda unit=unit: deep.last_hidden_layer(x)[0][0, unit], x)[0]
        np.testing.assert_allclose(pictures[:, k], gradient, rtol=1e-6, atol=1e-8)
    assert not np.allclose(deep.unit_pictures(units), pictures)  # without x, every unit below counts
    shallow = build_model("mlp", rng, hidden=[20], dtype=np.float64)
    np.testing.assert_array_equal(shallow.unit_pictures([3, 1], x), shallow.params["W1"][:, [3, 1]])


def test_a_model_pickled_before_the_choice_of_activation_reads_as_relu():
    """A Network pickled by an earlier version (a fitted estimator) has no activation_name: it was
    a relu net, and answers as one; a tanh net's name survives a pickle's round trip."""
    import pickle

    relu = build_model("mlp", np.random.default_rng(0), hidden=[5])
    old = Network.__new__(Network)
    old.__dict__.update({k: v for k, v in relu.__dict__.items() if k != "activation_name"})
    X = np.random.default_rng(1).standard_normal((3, 784)).astype(np.float32)
    assert old.activation.name == "relu" and old.forward(X)[0].tobytes() == relu.forward(X)[0].tobytes()
    tanh = build_model("mlp", np.random.default_rng(0), hidden=[5], activation="tanh")
    assert pickle.loads(pickle.dumps(tanh)).activation.name == "tanh"
