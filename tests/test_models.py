"""Both models: gradients of every parameter, the untrained loss, buffers, learning a tiny batch."""

import math

import numpy as np
import pytest

from mnistsoftmax.gradcheck import check_model
from mnistsoftmax.losses import cross_entropy
from mnistsoftmax.models import MLP, LinearSoftmax, build_model, loss_and_grads
from mnistsoftmax.optim import SGD


@pytest.mark.parametrize("kind", ["linear", "mlp"])
@pytest.mark.parametrize("reg", [0.0, 1e-2])
def test_every_gradient_matches_finite_differences(kind, reg):
    """Hand-written backward (with the L2 term) agrees with float64 central differences to < 1e-6."""
    errors = check_model(kind, seed=1, hidden=12, batch_size=6, reg=reg)
    assert set(errors) == ({"W", "b"} if kind == "linear" else {"W1", "b1", "W2", "b2"})
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_label_smoothing_gradients_match_finite_differences(kind, monkeypatch):
    """The smoothed loss's gradients (with dropout through a fixed mask for the mlp) agree to < 1e-6;
    a backward that ignores the smoothing is caught."""
    import dataclasses

    from mnistsoftmax import losses

    dropout = 0.5 if kind == "mlp" else 0.0
    errors = check_model(kind, seed=2, hidden=12, batch_size=6, reg=1e-3, dropout=dropout, smoothing=0.2)
    assert max(errors.values()) < 1e-6, errors
    entry = losses.LOSSES["cross-entropy"]
    unsmoothed = dataclasses.replace(entry, backward=lambda Z, y, smoothing: entry.backward(Z, y))
    monkeypatch.setitem(losses.LOSSES, "cross-entropy", unsmoothed)
    wrong = check_model(kind, seed=2, hidden=12, batch_size=6, reg=1e-3, dropout=dropout, smoothing=0.2)
    assert max(wrong.values()) > 1e-3


def test_gradcheck_catches_a_wrong_backward(monkeypatch):
    """The check can fail: a backward that forgets the ReLU mask is reported."""
    from mnistsoftmax import models

    monkeypatch.setattr(models, "relu_backward", lambda dA, cache, out=None, mask=None: dA.copy())
    assert check_model("mlp", seed=1, hidden=12, batch_size=6)["W1"] > 1e-3


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_untrained_loss_is_ln10(kind):
    """Initialisation gives every class ~10 %: the loss on standardised inputs is ln 10 within 0.1."""
    rng = np.random.default_rng(0)
    model = build_model(kind, rng, hidden=256)
    X = rng.standard_normal((2000, 784)).astype(np.float32)
    y = rng.integers(0, 10, 2000)
    Z, _ = model.forward(X)
    assert Z.dtype == np.float32
    assert abs(cross_entropy(Z.astype(np.float64), y) - math.log(10)) < 0.1


def allocating_pass(kind: str, seed: int, n: int, hidden: int):
    """A model, a batch X (n, 784) with an output gradient dZ (n, 10), and the allocating path's
    logits, cache and parameter gradients for them."""
    rng = np.random.default_rng(seed)
    model = build_model(kind, rng, hidden=hidden)
    X = rng.standard_normal((n, 784)).astype(np.float32)
    dZ = rng.standard_normal((n, 10)).astype(np.float32)
    Z, cache = model.forward(X)
    grads = {k: v.copy() for k, v in model.backward(dZ, cache).items()}
    return model, X, dZ, Z, cache, grads


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_workspace_path_equals_allocating_path(kind):
    """Forward/backward through reused buffers give the same numbers as the allocating path."""
    model, X, dZ, Z, _, expected = allocating_pass(kind, seed=4, n=20, hidden=32)
    ws = model.workspace(32)
    grads = {k: np.full_like(v, np.nan) for k, v in model.params.items()}
    Z_ws, cache_ws = model.forward(X, ws)
    np.testing.assert_array_equal(Z_ws, Z)
    model.backward(dZ, cache_ws, grads, ws)
    for name in expected:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_backward_with_beta_accumulates_into_the_buffers(kind):
    """backward(..., beta) leaves beta * old + gradient: the momentum step the training loop relies on."""
    model, _, dZ, _, cache, gradient = allocating_pass(kind, seed=6, n=12, hidden=16)
    rng = np.random.default_rng(7)
    old = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in model.params.items()}
    velocity = {k: v.copy() for k, v in old.items()}
    model.backward(dZ, cache, velocity, model.workspace(12), beta=0.9)
    for name in old:
        np.testing.assert_allclose(velocity[name], 0.9 * old[name] + gradient[name], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="beta needs"):
        model.backward(dZ, cache, beta=0.9)


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_overfits_a_tiny_batch(kind):
    """Plain gradient descent drives the loss of 20 random samples from ~2.3 to near 0."""
    rng = np.random.default_rng(5)
    model = build_model(kind, rng, hidden=64, dtype=np.float64)
    X, y = rng.standard_normal((20, 784)), rng.integers(0, 10, 20)
    opt = SGD(model.params, momentum=0.9)
    first, _ = loss_and_grads(model, X, y)
    for _ in range(200):
        loss, grads = loss_and_grads(model, X, y)
        opt.step(grads, lr=0.05)
    assert first == pytest.approx(math.log(10), abs=0.1)
    assert loss < 0.01
    assert np.array_equal(model.forward(X)[0].argmax(axis=1), y)


def test_sizes_and_kinds():
    """Each model reports its kind and sizes, which checkpoints store."""
    rng = np.random.default_rng(0)
    assert build_model("linear", rng).sizes == {"inputs": 784, "classes": 10}
    assert isinstance(build_model("linear", rng), LinearSoftmax)
    mlp = build_model("mlp", rng, hidden=7)
    assert isinstance(mlp, MLP) and mlp.sizes == {"inputs": 784, "hidden": 7, "classes": 10}
    assert mlp.weight_names == ("W1", "W2")
