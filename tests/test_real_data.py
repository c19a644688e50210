"""Real data: Debian's Fashion-MNIST (package dataset-fashion-mnist), used read-only in place."""

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnistsoftmax.cli import main

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def fashion_dir():
    if not DEBIAN_FASHION.is_dir():
        if os.environ.get("MNISTSOFTMAX_REQUIRE_REAL_DATA"):  # CI installs it: missing there is a failure
            pytest.fail(f"{DEBIAN_FASHION} is missing: apt-get install dataset-fashion-mnist")
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    return DEBIAN_FASHION


def test_linear_one_epoch_on_fashion_mnist(fashion_dir, tmp_path):
    """One epoch of softmax regression on the genuine Fashion-MNIST reaches >= 80 % test accuracy,
    reading Debian's recompressed files by their content hash and writing nothing there."""
    before = sorted((p.name, p.stat().st_mtime_ns) for p in fashion_dir.iterdir())
    out = tmp_path / "fashion.npz"
    result = CliRunner().invoke(main, [
        "train", "--config", "configs/linear.toml", "--epochs", "1", "--dataset", "fashion-mnist",
        "--data-dir", str(fashion_dir), "--out", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    accuracy = float(result.stdout.split("test accuracy ")[1].split("%")[0])
    assert accuracy >= 80.0
    assert "fashion-mnist: 54000 training, 6000 validation, 10000 test images" in result.stderr
    assert sorted((p.name, p.stat().st_mtime_ns) for p in fashion_dir.iterdir()) == before


def test_download_of_the_real_fashion_mnist_from_a_local_mirror(fashion_dir, http_server):
    """The genuine Fashion-MNIST, served by a local mirror (Debian's recompressed files), is
    downloaded into the cache and verified against the real registry's hashes."""
    from mnistsoftmax import datasets

    data = datasets.load("fashion-mnist", mirror=http_server(fashion_dir), progressbar=False)
    assert len(data.train.labels) == 60000 and len(data.test.labels) == 10000
    cached = sorted(p.name for p in datasets.default_cache_dir("fashion-mnist").iterdir())
    assert cached == sorted(f"{f.name}.gz" for f in datasets.DATASETS["fashion-mnist"].files.values())
