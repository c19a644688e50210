"""The training loop: reproducibility, learning, normalisation, evaluation, divergence."""

import json
import math

import numpy as np
import pytest

from mnistsoftmax.inference import Normalization, evaluate, logits
from mnistsoftmax.models import build_model
from mnistsoftmax.optim import OPTIMIZERS
from mnistsoftmax.training import DivergenceError, Hooks, TrainSettings, split_validation, train
from tests.conftest import synthetic_digits
from tests.nets import NET_IDS, NETS

# Every optimizer of the registry, and SGD with Nesterov's momentum.
OPTIMIZER_SETTINGS = [{"optimizer": name} for name in OPTIMIZERS] + [{"optimizer": "sgd", "nesterov": True}]


def run(kind="mlp", seed=0, epochs=2, lr=0.05, n=500, hidden=32, optimizer=None, activation=None, **kw):
    rng = np.random.default_rng(seed)
    images, labels = synthetic_digits(n, np.random.default_rng(100))
    model = build_model(kind, rng, hidden=hidden, activation=activation)
    norm = Normalization.of(images)
    settings = TrainSettings(
        epochs=epochs,
        batch_size=64,
        lr=lr,
        momentum=0.9,
        weight_decay=1e-4,
        schedule="cosine",
        log_every=3,
        **(optimizer or {}),
    )
    hooks = Hooks()
    records = train(model, images, labels, norm, settings, rng, hooks=hooks, **kw)
    return model, records, hooks, (images, labels, norm)


@pytest.mark.parametrize(("kind", "widths", "activation"), NETS, ids=NET_IDS)
def test_same_seed_gives_bit_identical_weights(kind, widths, activation):
    """Two runs with one seed end with exactly the same bytes; another seed differs."""
    a, _, _, _ = run(kind, seed=7, hidden=widths, activation=activation)
    b, _, _, _ = run(kind, seed=7, hidden=widths, activation=activation)
    c, _, _, _ = run(kind, seed=8, hidden=widths, activation=activation)
    for name in a.params:
        assert a.params[name].tobytes() == b.params[name].tobytes()
    assert any(a.params[k].tobytes() != c.params[k].tobytes() for k in a.params)


@pytest.mark.parametrize(("kind", "widths", "activation"), NETS, ids=NET_IDS)
def test_numpy_fallback_trains_the_same_model(kind, widths, activation, monkeypatch):
    """Without the BLAS library (another numpy build) training runs the numpy path to the same weights."""
    from mnistsoftmax import blas

    if blas.LIBRARY is None:
        pytest.skip("numpy's BLAS is not reachable here: every run is the fallback")
    fast, fast_records, _, _ = run(kind, seed=3, hidden=widths, activation=activation)
    monkeypatch.setattr(blas, "LIBRARY", None)
    slow, slow_records, _, _ = run(kind, seed=3, hidden=widths, activation=activation)
    for name in fast.params:
        np.testing.assert_allclose(slow.params[name], fast.params[name], rtol=1e-3, atol=1e-5)
    assert slow_records[-1]["train_loss"] == pytest.approx(fast_records[-1]["train_loss"], rel=1e-4)


def test_training_learns_and_reports():
    """On learnable data the loss falls from ~2.3 and accuracy rises; records come per epoch and step."""
    model, records, hooks, (images, labels, norm) = run(epochs=3)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    steps = [r for r in hooks.records if r["type"] == "step"]
    # each of the first log_every steps, then one record per log_every steps (8 batches per epoch)
    assert [r["step"] for r in steps] == [1, 2, 3, *range(6, 25, 3)]
    assert [r["steps"] for r in steps] == [1, 1, 1] + [3] * 7
    # the records' windows tile the run: each step's loss is in exactly one record (a window that
    # also held the first steps made the curve jump up where the windows began)
    assert np.cumsum([r["steps"] for r in steps]).tolist() == [r["step"] for r in steps]
    assert steps[0]["loss"] > records[-1]["train_loss"]
    assert evaluate(model, images, labels, norm).accuracy > 0.95
    assert all(p.dtype == np.float32 for p in model.params.values())


def test_label_smoothing_trains_a_less_confident_net():
    """e = 0.1: the loss still starts near ln 10 and the net learns, but its softmax on the training
    images stays further from 1 than the plain run's; e = 0 is the plain run bit for bit."""
    from mnistsoftmax.functional import softmax

    def trained(**smoothing):
        rng = np.random.default_rng(0)
        images, labels = synthetic_digits(500, np.random.default_rng(100))
        model = build_model("mlp", rng, hidden=32)
        norm = Normalization.of(images)
        settings = TrainSettings(epochs=4, batch_size=64, lr=0.05, momentum=0.9, schedule="cosine",
                                 log_every=3, **smoothing)  # fmt: skip
        hooks = Hooks()
        train(model, images, labels, norm, settings, rng, hooks=hooks)
        confidence = softmax(logits(model, images, norm)).max(axis=1).mean()
        return model, hooks.records[0]["loss"], evaluate(model, images, labels, norm).accuracy, confidence

    plain, _, plain_accuracy, plain_confidence = trained()
    zero, _, _, _ = trained(label_smoothing=0.0)
    smoothed, first_loss, accuracy, confidence = trained(label_smoothing=0.1)
    assert first_loss == pytest.approx(math.log(10), abs=0.15)
    assert accuracy > 0.95 and plain_accuracy > 0.95
    assert confidence < plain_confidence - 0.02
    assert all(plain.params[k].tobytes() == zero.params[k].tobytes() for k in plain.params)
    assert any(plain.params[k].tobytes() != smoothed.params[k].tobytes() for k in plain.params)


def test_validation_metrics_in_records():
    """With a validation set, every epoch reports its loss and accuracy."""
    images, labels = synthetic_digits(100, np.random.default_rng(1))
    _, records, _, _ = run(epochs=1, validation=(images, labels))
    assert 0 <= records[0]["val_accuracy"] <= 1 and records[0]["val_loss"] > 0


def test_divergence_stops_with_advice():
    """A far too large learning rate ends in a clear error suggesting a lower rate."""
    with pytest.raises(DivergenceError, match="lower learning rate"):
        run("linear", lr=1e30, epochs=3)


def test_normalization():
    """mean/std are of pixel/255; applying them standardises the data."""
    images = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    norm = Normalization.of(images)
    assert norm.mean == pytest.approx(0.5) and norm.std == pytest.approx(0.5)
    np.testing.assert_allclose(norm.apply(images), [[-1, 1], [1, -1]])
    assert Normalization.of(np.zeros((2, 4), np.uint8)).std == 1.0  # blank data does not divide by 0


def test_evaluate_confusion_and_per_class():
    """Confusion rows are true classes; accuracy and per-class accuracy follow from it."""

    class Fixed:  # a model whose logits are one-hot predictions given by the first pixel
        params = {"W": np.zeros((1, 1), np.float64)}
        sizes = {"classes": 10}

        def workspace(self, n):
            return None

        def forward(self, X, ws=None):
            return np.eye(10)[X[:, 0].astype(int)] * 10, None

    images = np.array([[0], [1], [1], [2]], dtype=np.uint8)
    labels = np.array([0, 1, 2, 2])
    result = evaluate(Fixed(), images, labels, Normalization(0.0, 1 / 255))
    assert result.accuracy == 0.75
    assert result.confusion[2, 1] == 1 and result.confusion[2, 2] == 1 and result.confusion.sum() == 4
    np.testing.assert_allclose(result.per_class[:3], [1.0, 1.0, 0.5])
    assert np.isnan(result.per_class[5])
    assert result.as_dict()["per_class"][5] is None


def test_logits_in_batches_equal_one_batch():
    """Evaluation in chunks gives the same logits as one forward pass."""
    model, _, _, (images, _, norm) = run(epochs=1)
    np.testing.assert_allclose(logits(model, images, norm, batch_size=37), logits(model, images, norm), atol=1e-5)


def test_split_validation():
    """The held-out slice is the requested fraction, disjoint from the rest, and seeded."""
    train_idx, val_idx = split_validation(100, 0.2, np.random.default_rng(0))
    assert len(val_idx) == 20 and len(train_idx) == 80
    assert not set(train_idx) & set(val_idx)
    again = split_validation(100, 0.2, np.random.default_rng(0))
    assert np.array_equal(again[1], val_idx)


@pytest.mark.parametrize("optimizer", OPTIMIZER_SETTINGS, ids=lambda o: "-".join(map(str, o.values())))
@pytest.mark.parametrize("stop_at", [1, 7, 8, 13])  # mid-epoch, last batch, epoch boundary, later
def test_interrupt_and_resume_is_bit_identical(stop_at, optimizer):
    """A run stopped before batch `stop_at` and resumed from its state (through JSON and copies,
    as a checkpoint carries it) ends with the same bytes, for every optimizer."""
    from mnistsoftmax.training import Interrupted

    uninterrupted, _, _, _ = run("mlp", seed=3, epochs=3, lr=0.01, optimizer=optimizer)

    rng = np.random.default_rng(3)
    images, labels = synthetic_digits(500, np.random.default_rng(100))
    model = build_model("mlp", rng, hidden=32)
    norm = Normalization.of(images)
    settings = TrainSettings(epochs=3, batch_size=64, lr=0.01, momentum=0.9, weight_decay=1e-4,
                             schedule="cosine", log_every=3, **optimizer)  # fmt: skip
    calls = iter(range(10**6))
    hooks = Hooks(should_stop=lambda: next(calls) == stop_at)
    with pytest.raises(Interrupted) as stopped:
        train(model, images, labels, norm, settings, rng, hooks=hooks)
    state = stopped.value.state
    assert state.step == stop_at
    # Resume in a fresh generator and a copy of the parameters, as a new process would.
    resumed = build_model("mlp", np.random.default_rng(0), hidden=32)
    for name, p in model.params.items():
        resumed.params[name][...] = p
    saved = {k: v.copy() for k, v in state.optimizer_state.items()}
    later = train(resumed, images, labels, norm, settings, np.random.default_rng(999),
                  resume=type(state).from_meta(json.loads(json.dumps(state.to_meta())), saved))  # fmt: skip
    assert later[-1]["epoch"] == 3
    for name in uninterrupted.params:
        assert resumed.params[name].tobytes() == uninterrupted.params[name].tobytes(), name


def test_resumed_epoch_counts_the_seconds_before_the_interruption():
    """The record of the epoch that was interrupted adds the time spent on it before the stop;
    a state saved without that time (mnistsoftmax 0.1.0) still resumes."""
    from mnistsoftmax.training import Interrupted

    rng = np.random.default_rng(3)
    images, labels = synthetic_digits(500, np.random.default_rng(100))
    model = build_model("linear", rng)
    norm = Normalization.of(images)
    settings = TrainSettings(epochs=2, batch_size=64, lr=0.05, momentum=0.9, weight_decay=0.0,
                             schedule="cosine", log_every=3)  # fmt: skip
    calls = iter(range(10**6))
    with pytest.raises(Interrupted) as stopped:
        train(model, images, labels, norm, settings, rng, hooks=Hooks(should_stop=lambda: next(calls) == 3))
    meta = json.loads(json.dumps(stopped.value.state.to_meta()))
    assert meta["seconds"] > 0
    meta["seconds"] = 1000.0  # as if the first three batches had taken that long
    state = type(stopped.value.state).from_meta(meta, stopped.value.state.optimizer_state)
    first, second = train(model, images, labels, norm, settings, np.random.default_rng(0), resume=state)
    assert first["epoch"] == 1 and 1000.0 < first["seconds"] < 1010.0
    assert second["seconds"] < 10.0
    old = {k: v for k, v in meta.items() if k != "seconds"}
    assert type(stopped.value.state).from_meta(old, state.optimizer_state).seconds == 0.0


@pytest.mark.parametrize("optimizer", OPTIMIZER_SETTINGS, ids=lambda o: "-".join(map(str, o.values())))
def test_a_run_stopped_and_resumed_through_its_file_is_bit_identical(tmp_path, tiny_data, optimizer):
    """Through NAME.interrupted.npz, as `train --resume` goes: the optimizer's whole state (Adam's
    moments and its step count too) is saved under its own names and taken back; a two-layer net
    ends with the bytes of a run that never stopped."""
    import itertools

    from mnistsoftmax import checkpoint, options, runs, training

    config = options.resolve({"dataset": "custom", "data_dir": str(tiny_data), "hidden": [16, 8], "epochs": 2,
                              "probe_every": 0, "lr": 0.01, **optimizer})  # fmt: skip
    whole = runs.execute(config, tmp_path / "whole.npz", Hooks()).out
    calls = itertools.count()
    with pytest.raises(runs.Stopped) as stopped:
        runs.execute(config, tmp_path / "cut.npz", Hooks(should_stop=lambda: next(calls) == 7))  # mid epoch 2
    _, _, state = checkpoint.load_resumable(stopped.value.saved)
    assert set(state) == set(training.optimizer_of(runs.settings_of(config), checkpoint.load(whole)[0]).state)
    assert ("steps" in state) == (config["optimizer"] == "adam")
    resumed = runs.execute(config, tmp_path / "cut.npz", Hooks(), resume=runs.load_resumable(stopped.value.saved))
    for name, value in checkpoint.load(whole)[0].params.items():
        assert checkpoint.load(resumed.out)[0].params[name].tobytes() == value.tobytes(), name


def test_a_smoothed_run_says_what_its_training_loss_is():
    """Label smoothing's loss stops above 0: the log says so once, with the floor H(q) computed from
    e and C (e = 0.05, C = 10: q = 0.955 on the label, 0.005 elsewhere, H(q) = 0.282), and every
    epoch's line names its training loss as the smoothed one; a plain run's line does not."""
    from mnistsoftmax.runs import smoothing_note, temperature_note
    from mnistsoftmax.training import format_epoch

    q = np.array([0.955] + [0.005] * 9)
    floor = -(q * np.log(q)).sum()
    assert f"{floor:.2f}" == "0.28"
    note = smoothing_note(0.05, 10)
    assert "p = 0.955 on the label" in note and "stops near 0.28" in note and "plain cross entropy" in note
    record = {"epoch": 2, "train_loss": 0.3169, "train_accuracy": 0.9984, "seconds": 0.6}
    assert format_epoch(record, 6, 0.05).startswith("epoch 2/6  train loss (smoothed, e = 0.05) 0.3169")
    assert format_epoch(record, 6).startswith("epoch 2/6  train loss 0.3169 acc 99.84%")
    assert "label smoothing" in temperature_note(0.55, 0.05) and "less sure" in temperature_note(0.55, 0.0)
    assert "label smoothing" not in temperature_note(0.55, 0.0) and "surer" in temperature_note(1.3, 0.0)


@pytest.mark.parametrize("shape", [(50, 28, 28), (3, 5), (7, 3, 3), (1, 2)])
def test_the_normalisation_counts_every_pixel_as_one_histogram_would(shape):
    """Normalization.of counts the pixels two at a time (their uint16 pairs), leaves the blank
    pairs out and folds the pairs' table: the mean and standard deviation are those of the plain
    256-bin histogram, bit for bit, for even and odd numbers of pixels, for a strided view, and for
    images mostly blank (as digits are) or all blank but one pixel."""
    from mnistsoftmax.inference import Normalization

    rng = np.random.default_rng(sum(shape))
    images = rng.integers(0, 256, size=shape).astype(np.uint8)
    mostly_blank = np.where(rng.random(shape) < 0.2, images, 0).astype(np.uint8)
    one_pixel = np.zeros(shape, np.uint8)
    one_pixel.reshape(-1)[-1] = 7  # the odd pixel out, when there is one
    for pixels in (images, images[..., ::2], mostly_blank, one_pixel):
        counts = np.bincount(pixels.reshape(-1), minlength=256).astype(np.float64)
        values = np.arange(256) / 255.0
        mean = float(counts @ values / counts.sum())
        std = float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum()))
        got = Normalization.of(pixels)
        assert (got.mean, got.std) == (mean, std if std > 0 else 1.0)
