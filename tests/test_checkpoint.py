"""Checkpoints: exact round trip, no pickle, clear errors on anything that is not one."""

import json
import pickle

import numpy as np
import pytest

from mnistsoftmax import checkpoint
from mnistsoftmax.checkpoint import CheckpointError
from mnistsoftmax.models import build_model


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_round_trip_gives_identical_logits(tmp_path, kind):
    """Saved and loaded model computes bit-identical logits; metadata survives."""
    rng = np.random.default_rng(0)
    model = build_model(kind, rng, hidden=16)
    path = tmp_path / "m.npz"
    checkpoint.save(path, model, {"dataset": "mnist", "normalization": {"mean": 0.1, "std": 0.3}})
    loaded, meta = checkpoint.load(path)
    X = rng.standard_normal((5, 784)).astype(np.float32)
    assert loaded.forward(X)[0].tobytes() == model.forward(X)[0].tobytes()
    assert meta["kind"] == kind and meta["dataset"] == "mnist" and meta["format"] == checkpoint.FORMAT_VERSION
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def save_arrays(path, **arrays):
    np.savez(path, **arrays)
    return path


def meta_blob(**meta):
    return np.frombuffer(json.dumps({"format": 1, "kind": "linear", **meta}).encode(), dtype=np.uint8)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"\x00garbage" * 10) and p, "not an .npz archive"),
        (lambda p: p.write_bytes(pickle.dumps({"W": 1})) and p, "not an .npz archive"),
        (lambda p: save_arrays(p, W=np.array([object()], dtype=object)), "object arrays, which are never loaded"),
        (lambda p: save_arrays(p, W=np.zeros((784, 10))), "no metadata"),
        (
            lambda p: save_arrays(p, W=np.zeros((784, 10)), b=np.zeros(10), __meta__=np.frombuffer(b"{x", np.uint8)),
            "not valid JSON",
        ),
        (
            lambda p: save_arrays(p, W=np.zeros((784, 10)), b=np.zeros(10), __meta__=meta_blob(format=99)),
            "format 99 is not supported",
        ),
        (
            lambda p: save_arrays(p, W=np.zeros((784, 10)), b=np.zeros(10), __meta__=meta_blob(kind="cnn")),
            "unknown model kind",
        ),
        (lambda p: save_arrays(p, W=np.zeros((784, 9)), b=np.zeros(10), __meta__=meta_blob()), "does not match"),
        (lambda p: save_arrays(p, W=np.zeros((10, 10)), b=np.zeros(10), __meta__=meta_blob()), "784 inputs"),
        (lambda p: save_arrays(p, W=np.zeros((784, 10)), __meta__=meta_blob()), "holds W, b"),
        (lambda p: save_arrays(p, W=np.zeros((784, 10)), b=np.zeros(10), __meta__=meta_blob()), "normalisation"),
        (
            lambda p: save_arrays(
                p, W=np.zeros((784, 10)), b=np.zeros(10), __meta__=meta_blob(normalization={"mean": 0.1, "std": 0})
            ),
            "normalisation",
        ),
    ],
    ids=[
        "random-bytes",
        "pickle",
        "object-array",
        "no-meta",
        "bad-json",
        "newer-format",
        "kind",
        "shapes",
        "inputs",
        "missing-array",
        "no-normalisation",
        "zero-std",
    ],
)
def test_invalid_files_are_refused(tmp_path, make, message):
    """Anything that is not a valid checkpoint gets a CheckpointError naming the problem; nothing is unpickled."""
    path = make(tmp_path / "bad.npz")
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(path)


def test_missing_checkpoint_says_how_to_make_one(tmp_path):
    """A missing checkpoint points to `mnistsoftmax train`."""
    with pytest.raises(CheckpointError, match="mnistsoftmax train"):
        checkpoint.load(tmp_path / "nope.npz")
