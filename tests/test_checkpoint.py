"""Checkpoints: exact round trip, no pickle, clear errors on anything that is not one."""

import json
import pickle

import numpy as np
import pytest

from mnistsoftmax import checkpoint
from mnistsoftmax.checkpoint import CheckpointError
from mnistsoftmax.models import build_model
from tests.nets import NET_IDS, NETS


@pytest.mark.parametrize(("kind", "widths", "activation"), NETS, ids=NET_IDS)
def test_round_trip_gives_identical_logits(tmp_path, kind, widths, activation):
    """Saved and loaded model computes bit-identical logits under its activation; metadata survives.
    A relu net is format 1, which every version reads; another activation is format 2, which a
    reader that knows no activation refuses rather than answering with relu."""
    rng = np.random.default_rng(0)
    model = build_model(kind, rng, hidden=widths, activation=activation)
    path = tmp_path / "m.npz"
    checkpoint.save(path, model, {"dataset": "mnist", "normalization": {"mean": 0.1, "std": 0.3}})
    loaded, meta = checkpoint.load(path)
    X = rng.standard_normal((5, 784)).astype(np.float32)
    assert loaded.forward(X)[0].tobytes() == model.forward(X)[0].tobytes()
    assert loaded.activation.name == meta["activation"] == activation
    assert meta["kind"] == kind and meta["dataset"] == "mnist" and meta["format"] == (1 if activation == "relu" else 2)
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_an_activation_the_arrays_cannot_take_is_refused(tmp_path):
    """An unknown activation, or a configuration that names another than the file's, is one line."""
    model = build_model("mlp", np.random.default_rng(0), hidden=[4], activation="tanh")
    norm = {"normalization": {"mean": 0.1, "std": 0.3}}
    path = tmp_path / "m.npz"
    checkpoint.save(path, model, {**norm, "activation": "sigmoid"})
    meta_blob = np.load(path)["__meta__"]
    assert b'"activation": "tanh"' in meta_blob.tobytes()  # the model's own, whatever the caller said
    arrays = dict(np.load(path))
    meta = json.loads(arrays.pop("__meta__").tobytes())
    for hostile, message in [({"activation": "sigmoid"}, "unknown activation 'sigmoid'"),
                             ({"activation": ["relu"]}, "unknown activation"),
                             ({"config": {"model": "mlp", "hidden": [4], "activation": "relu"}},
                              "configuration says activation relu, its model tanh")]:  # fmt: skip
        blob = np.frombuffer(json.dumps({**meta, **hostile}).encode(), np.uint8)
        np.savez(path, **arrays, __meta__=blob)
        with pytest.raises(checkpoint.CheckpointError, match=message):
            checkpoint.load(path)


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
        (lambda p: save_arrays(p, W=np.zeros((784, 10)), __meta__=meta_blob()), "holds W and b, or W1, b1"),
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


def test_missing_checkpoint_says_how_to_make_one(tmp_path, monkeypatch):
    """The default checkpoint missing points to `mnistsoftmax train`; another path missing says no
    such file (a model may well exist) and names the checkpoints beside it."""
    monkeypatch.setenv(checkpoint.RUNS_DIR_ENV, str(tmp_path))
    with pytest.raises(CheckpointError, match="mnistsoftmax train"):
        checkpoint.load(checkpoint.default_path())
    checkpoint.save(tmp_path / "mine.npz", build_model("linear", np.random.default_rng(0)), {})
    with pytest.raises(CheckpointError, match="no such file; that folder holds mine.npz") as caught:
        checkpoint.load(tmp_path / "nope.npz")
    assert "train one first" not in str(caught.value)


def mlp_file(path, hidden=8, **meta):
    """An mlp checkpoint of `hidden` units whose metadata is given (valid where not said)."""
    rng = np.random.default_rng(0)
    model = build_model("mlp", rng, hidden=hidden)
    base = {"dataset": "mnist", "normalization": {"mean": 0.1, "std": 0.3}, "class_names": [str(i) for i in range(10)],
            "config": {"model": "mlp", "hidden": hidden, "seed": 0}}  # fmt: skip
    checkpoint.save(path, model, {**base, **meta})
    return path


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"config": {"model": "mlp", "hidden": 8, "seed": -1}}, "seed = -1"),
        ({"config": {"model": "mlp", "hidden": 8, "seed": "x"}}, "seed = 'x'"),
        ({"config": {"model": "mlp", "hidden": 300, "seed": 0}}, r"hidden \[300\], its arrays have \[8\]"),
        ({"config": {"model": "linear", "hidden": 8, "seed": 0}}, "says model 'linear'"),
        ({"config": {"model": "mlp", "hidden": 8, "seed": 0, "lr": float("nan")}}, "lr = None"),  # NaN: null
        ({"config": {"model": "mlp", "hidden": 8, "seed": 0, "dropout": 0.5, "epochs": True}}, "epochs = True"),
        ({"class_names": ["0", "1"]}, "class_names must be a list of 10 strings"),
        ({"class_names": [0] * 10}, "class_names must be a list of short strings"),
        ({"normalization": {"mean": 0.1, "std": float("inf")}}, "normalisation"),
        ({"dataset": ["mnist"]}, "dataset must be a short string"),
    ],
)
def test_hostile_metadata_is_refused_in_one_line(tmp_path, meta, message):
    """Metadata is checked against the options' schema and the arrays before anything is built
    from it: a hand-edited file is refused by the reader, not deep in a command."""
    path = mlp_file(tmp_path / "bad.npz", **meta)
    with pytest.raises(CheckpointError, match=message) as caught:
        checkpoint.load(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_metadata_nested_deep_is_refused(tmp_path):
    """Metadata nested 100,000 deep is refused as not ours (no RecursionError escapes)."""
    deep = "[" * 100_000 + "]" * 100_000
    blob = np.frombuffer(deep.encode(), dtype=np.uint8)
    path = save_arrays(tmp_path / "deep.npz", W=np.zeros((784, 10), np.float32), b=np.zeros(10, np.float32),
                       __meta__=blob)  # fmt: skip
    with pytest.raises(CheckpointError, match="nested more than 64 levels deep"):
        checkpoint.load(path)


def test_hostile_checkpoints_give_one_line_in_eval_and_predict(tmp_path):
    """eval and predict --explain of such a file: exit 1, one line, no traceback."""
    from click.testing import CliRunner

    from mnistsoftmax.cli import main

    path = mlp_file(tmp_path / "bad.npz", config={"model": "mlp", "hidden": 300, "seed": 0})
    for args in (["eval", str(path)], ["predict", "x.png", "--checkpoint", str(path), "--explain"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.stderr.strip().count("\n") == 0 and "its arrays have [8]" in result.stderr


def test_older_configurations_without_new_options_still_load(tmp_path):
    """A configuration from before loss, probes or dropout existed loads; its model is the same."""
    path = mlp_file(tmp_path / "old.npz", config={"model": "mlp", "hidden": 8, "seed": 3, "epochs": 2, "lr": 0.05,
                                                  "unknown_future_key": [1, 2]})  # fmt: skip
    _, meta = checkpoint.load(path)
    assert meta["config"]["seed"] == 3 and "loss" not in meta["config"]
