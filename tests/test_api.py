"""The Python API: its documented examples run as doctests, and each function's errors."""

import doctest

import numpy as np
import pytest
from PIL import Image

import mnistsoftmax
from mnistsoftmax import MnistSoftmaxError, api
from tests.conftest import write_dataset


def test_the_documented_examples_run(tmp_path):
    """Every example in mnistsoftmax.api's docstring gives the output shown."""
    data_dir = tmp_path / "data"
    write_dataset(data_dir)
    failed, attempted = doctest.testmod(api, extraglobs={"data_dir": data_dir, "out": tmp_path / "model.npz"},
                                        raise_on_error=False, verbose=False)  # fmt: skip
    assert attempted >= 10 and failed == 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    write_dataset(root / "data")
    clf, records = mnistsoftmax.train(dataset="custom", data_dir=root / "data", epochs=2, hidden=16,
                                      out=root / "m.npz")  # fmt: skip
    return clf, records, root


def test_train_returns_the_classifier_and_the_records(trained):
    clf, records, root = trained
    assert [r["type"] for r in records][0] == "init" and records[-1]["type"] == "test"
    assert clf.model.kind == "mlp" and clf.model.hidden_widths == [16]
    assert "Classifier(mlp, inputs=784, hidden=[16], classes=10" in repr(clf)
    assert (root / "m.npz").exists() and (root / "m.metrics.jsonl").exists()


def test_images_as_arrays_of_both_shapes_or_as_files(trained, tmp_path):
    """(N, 28, 28), (N, 784), one (28, 28) image, and image files give the same answers."""
    clf, _, root = trained
    images = mnistsoftmax.datasets.load("custom", root / "data").test.images[:4]
    square, flat = clf.predict_proba(images), clf.predict_proba(images.reshape(4, -1))
    np.testing.assert_array_equal(square, flat)
    np.testing.assert_array_equal(clf.predict(images[0]), clf.predict(images[:1]))
    files = []
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        files.append(tmp_path / f"{i}.png")
    assert clf.predict(files).shape == (4,)
    assert clf.predict(str(files[0])).shape == (1,)


@pytest.mark.parametrize(
    "images, message",
    [(np.zeros((2, 28, 28), np.float32), "uint8"), (np.zeros((2, 27, 27), np.uint8), "shape"),
     (np.zeros(784, np.uint8), "shape")],
)  # fmt: skip
def test_bad_images_are_refused(trained, images, message):
    clf, _, _ = trained
    with pytest.raises(MnistSoftmaxError, match=message):
        clf.predict(images)


def test_bad_options_are_refused_as_the_command_line_does(tmp_path):
    with pytest.raises(MnistSoftmaxError, match="unknown option 'colour'"):
        mnistsoftmax.train(colour="red")
    with pytest.raises(MnistSoftmaxError, match="epochs=0"):
        mnistsoftmax.train(epochs=0)


def test_load_without_a_checkpoint_says_how_to_make_one():
    with pytest.raises(MnistSoftmaxError, match="train one first"):
        mnistsoftmax.load()


def test_the_command_line_does_not_import_the_api():
    """`import mnistsoftmax` stays as light as before: the API comes on first use."""
    import subprocess
    import sys

    code = "import mnistsoftmax, sys; print('mnistsoftmax.api' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_train_writes_a_checkpoint_only_when_asked(tiny_data, tmp_path, monkeypatch):
    """mnistsoftmax.train(...) without out= leaves latest.npz (the user's trained model) as it was
    and writes nothing; with out= it writes there. A shipped config is taken by name."""
    from mnistsoftmax import checkpoint

    monkeypatch.setenv(checkpoint.RUNS_DIR_ENV, str(tmp_path / "runs"))
    latest = checkpoint.default_path()
    latest.parent.mkdir(parents=True)
    latest.write_bytes(b"the user's model")
    clf, records = mnistsoftmax.train(config="linear", dataset="custom", data_dir=tiny_data, epochs=1)
    assert latest.read_bytes() == b"the user's model" and sorted(p.name for p in latest.parent.iterdir()) == [
        "latest.npz"
    ]
    assert records[-1]["type"] == "test" and clf.model.kind == "linear"
    out = tmp_path / "mine.npz"
    mnistsoftmax.train(config="linear", dataset="custom", data_dir=tiny_data, epochs=1, out=out)
    assert out.exists() and checkpoint.metrics_path(out).exists()
    assert checkpoint.snapshot_steps(out)[0] == 0  # api.train keeps the timeline's snapshots as train does
