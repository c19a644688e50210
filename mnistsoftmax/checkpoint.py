"""Checkpoints without pickle: one `.npz` holding the parameter arrays and a JSON metadata blob.

The metadata (model kind and sizes, data set, input normalisation, the resolved configuration,
final metrics, package version) is stored as the UTF-8 bytes of a JSON document in the uint8
array `__meta__`, so a checkpoint is a single file, written atomically, and loaded with
allow_pickle=False: nothing in it is ever unpickled or executed.
"""

from __future__ import annotations

import math
import os
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

from mnistsoftmax import __version__, jsontext
from mnistsoftmax.errors import MnistSoftmaxError
from mnistsoftmax.fileio import atomic_write, open_regular, temporary_beside
from mnistsoftmax.losses import of_run
from mnistsoftmax.models import ModelError, from_arrays, is_parameter_name
from mnistsoftmax.optim import is_state_name
from mnistsoftmax.options import OptionError, check_stored
from mnistsoftmax.registry import DEFAULT_ACTIVATION
from mnistsoftmax.snapshots import PREFIX, STEPS, SnapshotError, Snapshots, check_steps, is_member

# Format 2 is format 1 with an activation other than relu: a reader of format 1 knows no
# activation and would answer with relu, so it must refuse such a file; relu nets stay format 1,
# readable by every version.
FORMAT_VERSION = 2
FORMATS_READ = (1, 2)
META_KEY = "__meta__"
RUNS_DIR_ENV = "MNISTSOFTMAX_RUNS_DIR"


class CheckpointError(MnistSoftmaxError):
    """A checkpoint could not be read or written, or is not a valid checkpoint."""


def default_path() -> Path:
    """Where `train` saves and `eval`/`predict` look by default: $MNISTSOFTMAX_RUNS_DIR/latest.npz,
    else latest.npz in the platform's user data folder."""
    base = os.environ.get(RUNS_DIR_ENV)
    if base:
        return Path(base).expanduser() / "latest.npz"
    import platformdirs

    return platformdirs.user_data_path("mnistsoftmax") / "runs" / "latest.npz"


def metrics_path(checkpoint: Path) -> Path:
    """The JSON-lines metrics file written beside a checkpoint."""
    return checkpoint.with_name(checkpoint.stem + ".metrics.jsonl")


# A run's metrics file: a record per 50 steps and about 10 probes an epoch (5 kB each for 10 classes),
# some 5 MB for 100 epochs. Read whole (the figures and the timeline's curve need every record).
MAX_METRICS_BYTES = 256 << 20


def read_metrics(checkpoint: Path) -> list[dict]:
    """The records of the metrics file beside a checkpoint; [] when there is none."""
    settle(checkpoint)
    path = metrics_path(Path(checkpoint))
    try:
        with open_regular(path, "r") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_METRICS_BYTES:  # a sparse file may claim gigabytes on no disk at all
                raise CheckpointError(f"cannot read the metrics file {path}: {size:,} bytes, above the "
                                      f"{MAX_METRICS_BYTES:,} a run writes")  # fmt: skip
            records = [jsontext.loads(line) for line in f if line.strip()]
        return [r for r in records if isinstance(r, dict)]  # a record is an object; `null` or `5` is no record
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read the metrics file {path}: {exc}") from None


def training_loss_curve(checkpoint: Path) -> list[list]:
    """The run's mean training loss as [step, loss] pairs, from the step records of the metrics file
    beside a checkpoint ([] when there is none or it cannot be read: the timeline draws it behind
    the digit's own loss as a courtesy)."""
    try:
        records = read_metrics(checkpoint)
    except CheckpointError:
        return []
    return [[r["step"], r["loss"]] for r in records if r.get("type") == "step" and _step_loss(r)]


def label_smoothing(meta: dict) -> float:
    """The label smoothing a checkpoint's run trained with (0 for none, and for runs from before the option);
    `meta` as load() returns it, its configuration checked by check_metadata."""
    return float((meta.get("config") or {}).get("label_smoothing") or 0.0)


def _step_loss(record: dict) -> bool:
    step, loss = record.get("step"), record.get("loss")
    return isinstance(step, int) and not isinstance(step, bool) and step >= 0 and _finite(loss)


def interrupted_path(checkpoint: Path) -> Path:
    """Where an interrupted run leaves its resumable checkpoint: beside, never over, the last good one."""
    return checkpoint.with_name(checkpoint.stem + ".interrupted.npz")


def finished_path(interrupted: Path) -> Path:
    """Where a resumed run writes its checkpoint when the user names none: beside the file it resumes,
    NAME.npz for NAME.interrupted.npz (the inverse of interrupted_path), NAME.resumed.npz for a file
    named otherwise. Never the path stored inside the file: a file someone handed over must not
    choose where a checkpoint lands."""
    suffix = ".interrupted.npz"
    if interrupted.name.endswith(suffix) and len(interrupted.name) > len(suffix):
        return interrupted.with_name(interrupted.name[: -len(suffix)] + ".npz")
    return interrupted.with_name(interrupted.stem + ".resumed.npz")


PARTIAL_SUFFIX = ".partial"
STALE_SECONDS = 120  # without flock(): a partial file untouched this long is taken for a dead run's


def holds_lock(fd: int, path: Path) -> bool:
    """Whether another open file holds the lock on this file (the writer of a run in progress)."""
    try:
        import fcntl
    except ImportError:
        return time.time() - path.stat().st_mtime < STALE_SECONDS
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # no locks on this file system
        return time.time() - os.fstat(fd).st_mtime < STALE_SECONDS
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def is_being_written(path: Path) -> bool:
    """Whether a partial metrics file belongs to a run still going."""
    try:
        f = open_regular(path)
    except OSError:
        return False
    with f:
        return holds_lock(f.fileno(), Path(path))


def _first_record(path: Path) -> dict:
    """The first record of a metrics file ({} if it has none that can be read)."""
    try:
        with open_regular(path) as f:
            first = jsontext.loads(f.readline(1 << 22) or b"{}")
    except (OSError, ValueError):
        return {}
    return first if isinstance(first, dict) else {}


def settle(path: Path) -> None:
    """Finish a commit that a kill cut between its two renames.

    A run renames its checkpoint into place, then its metrics file: killed in between, it leaves
    the new checkpoint beside the old metrics file, and its own records in an unlocked partial
    file. Both carry the run's id (the checkpoint's `run`, the init record's `run`): when they
    differ, that partial file is renamed into place, as the run would have done.
    """
    path = Path(path)
    try:
        run = read_meta(path).get("run")
    except CheckpointError:
        return
    metrics = metrics_path(path)
    if run is None or _first_record(metrics).get("run") == run:
        return
    prefix = f".{metrics.name}."  # the run's partial file is named after the metrics file it becomes
    for partial in _partials_in(path.parent):
        if partial.name.startswith(prefix) and _first_record(partial).get("run") == run and \
                not is_being_written(partial):  # fmt: skip
            os.replace(partial, metrics)
            return


_PARTIALS: dict[Path, tuple[int, list[Path]]] = {}


def _partials_in(folder: Path) -> list[Path]:
    """The partial files in a folder, listed again only when the folder changes (its mtime; one
    changed within the last two seconds, maybe within its clock's tick, is listed every time):
    settling 3,000 checkpoints scanned the folder 3,000 times, 5.7 s for the first /api/runs."""
    try:
        stamp = folder.stat().st_mtime_ns
        cached = _PARTIALS.get(folder)
        if cached is not None and cached[0] == stamp and time.time_ns() - stamp > 2_000_000_000:
            return cached[1]
        found = [folder / e.name for e in os.scandir(folder) if e.name.startswith(".") and
                 e.name.endswith(PARTIAL_SUFFIX)]  # fmt: skip
    except OSError:
        return []
    _PARTIALS[folder] = (stamp, found)
    return found


def hold_lock(fd: int) -> None:
    """Take an exclusive advisory lock on an open file, held until it is closed (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # Windows: live.py falls back on the file's age
        return
    try:
        # Blocking: a reader holds its shared lock only for the instant of its test.
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:  # a file system without locks (some network mounts): the same fallback
        pass


class MetricsFile:
    """JSON lines written as training goes, into a hidden `.NAME.*.partial` file beside `path`.

    commit() flushes, fsyncs and renames it to its final name; discard() removes it. A run that
    is killed leaves only the partial file, never a metrics file that looks complete. A write that
    fails (a full disk, a file-size limit) raises CheckpointError naming the final path and
    removes the partial file: nothing of a failed run stays behind.

    While it is open the writer holds an exclusive flock() on it: live.py tells a run in progress
    from the leftover of a killed one by that lock, and follows the file as records arrive.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            fd, self._tmp = temporary_beside(self.path, PARTIAL_SUFFIX)
        except OSError as exc:
            raise self._error(exc) from None
        hold_lock(fd)
        self._file = os.fdopen(fd, "w", encoding="utf-8")

    def _error(self, exc: OSError) -> CheckpointError:
        return CheckpointError(f"cannot write the metrics file {self.path}: {exc.strerror or exc}")

    def write(self, record: dict) -> None:
        try:
            self._file.write(jsontext.dumps(record) + "\n")
            self._file.flush()  # readable while training runs (tail -f the partial file)
        except OSError as exc:
            self.discard()
            raise self._error(exc) from None

    def commit(self, path: Path | None = None) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, path or self.path)
        except OSError as exc:
            self.discard()
            raise self._error(exc) from None

    def discard(self) -> None:
        """Remove the partial file; safe to call more than once, and after commit (then it does nothing)."""
        if not self._file.closed:
            try:
                self._file.close()
            except OSError:  # the close flushes what the full disk refused: that data goes with the file
                pass
        self._tmp.unlink(missing_ok=True)


def save(path: Path, model, meta: dict, optimizer_state: dict[str, np.ndarray] | None = None,
         snapshots: Snapshots | None = None) -> None:  # fmt: skip
    """Write model parameters and metadata (JSON-serialisable dict) to `path`, atomically.

    `optimizer_state` (the optimizer's state_dict(), its arrays named as it names them:
    velocity.W1, moment1.W1, steps) makes it a resumable checkpoint; `snapshots` are stored beside
    the parameters (snapshots.py).
    """
    activation = model.activation.name
    meta = {**meta, "format": 1 if activation == DEFAULT_ACTIVATION else FORMAT_VERSION, "kind": model.kind,
            "activation": activation, "sizes": model.sizes, "version": __version__}  # fmt: skip
    blob = np.frombuffer(jsontext.dumps(meta).encode("utf-8"), dtype=np.uint8)
    stored = snapshots.to_arrays() if snapshots is not None else {}
    arrays = {**model.params, **(optimizer_state or {}), **stored, META_KEY: blob}
    try:
        atomic_write(Path(path), lambda f: np.savez(f, **arrays))
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None


def load(path: Path):
    """Read a checkpoint -> (model, meta). Raises CheckpointError naming the file and the problem."""
    model, meta, _ = _read(path)
    return model, meta


def load_snapshots(path: Path, model) -> Snapshots | None:
    """The snapshots stored in a checkpoint, checked against its model (None: it has none)."""
    path = Path(path)
    steps = _read_arrays(path, wanted=lambda name: name == STEPS).get(STEPS)
    if steps is None:
        return None
    try:
        count = len(check_steps(steps))
    except SnapshotError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    # Each member's header against the model's shapes before any data is inflated: a small file's
    # member may inflate to a gigabyte.
    shapes = {PREFIX + name: (count, *p.shape) for name, p in model.params.items()}
    arrays = _read_arrays(path, wanted=is_member, shape_of=shapes.get)
    try:
        return Snapshots.from_arrays(arrays, model)
    except SnapshotError as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def snapshot_steps(path: Path) -> list[int] | None:
    """Only the steps of a checkpoint's snapshots (None: it has none), for listings."""
    steps = _read_arrays(Path(path), wanted=lambda name: name == STEPS).get(STEPS)
    if steps is None:
        return None
    try:
        return check_steps(steps)
    except SnapshotError as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def load_resumable(path: Path):
    """Read a checkpoint saved by an interrupted run -> (model, meta, optimizer state); the state is
    checked by the optimizer that takes it back (optim.Optimizer.load_state_dict)."""
    model, meta, state = _read(path)
    if "resume" not in meta or not state:
        raise CheckpointError(
            f"{path} is a finished checkpoint, not one to resume: only a run stopped by Ctrl-C or "
            f"SIGTERM leaves one (NAME.interrupted.npz)"
        )
    return model, meta, state


def read_meta(path: Path) -> dict:
    """Only the metadata of a checkpoint (the arrays stay on disk), for listings: read as load()
    reads it and checked by the same schema (check_metadata); the arrays are not, so load() the
    checkpoint before using its model."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is not a regular file, so not a checkpoint")
    arrays = _read_arrays(path, wanted=lambda name: name == META_KEY)
    if META_KEY not in arrays:
        raise CheckpointError(f"{path} is an .npz file but not a mnistsoftmax checkpoint: it has no metadata")
    meta = _parse_meta(path, arrays[META_KEY])
    check_metadata(path, meta)
    return meta


def _read(path: Path):
    path = Path(path)
    if not path.exists():
        if path == default_path():
            raise CheckpointError(f"no checkpoint at {path}: train one first with `mnistsoftmax train` (or pass "
                                  f"the path of one)")  # fmt: skip
        others = sorted(p.name for p in path.parent.glob("*.npz")) if path.parent.is_dir() else []
        hint = f"; that folder holds {', '.join(others[:5])}" if others else ""
        raise CheckpointError(f"no checkpoint at {path}: no such file{hint}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not path.is_file():  # a FIFO or a device would block the read or never end it
        raise CheckpointError(f"{path} is not a regular file, so not a checkpoint")
    arrays = _read_arrays(path, wanted=lambda name: not is_member(name))
    if META_KEY not in arrays:
        raise CheckpointError(f"{path} is an .npz file but not a mnistsoftmax checkpoint: it has no metadata")
    meta = _parse_meta(path, arrays.pop(META_KEY))
    state = {k: arrays.pop(k) for k in list(arrays) if not is_parameter_name(k)}
    try:
        # Checkpoints from before the choice of activation name none: theirs is relu, the default.
        model = from_arrays(meta.get("kind"), arrays, activation=meta.get("activation"))
    except ModelError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    check_metadata(path, meta)
    _check_meta(path, meta, model)
    meta["activation"] = model.activation.name  # said by every checkpoint read, of every format
    return model, meta, state


MAX_ARRAY_BYTES = 1 << 30  # all arrays together, as the zip declares them: an mlp of 10,000 units is 31 MB
MAX_META_BYTES = 64 << 20  # the metadata: a stopped run's records (probes of 40 epochs) are a few MB


def _kind_of(name: str) -> tuple[str, tuple[int, ...]]:
    """What a member of that name must hold: (dtype kinds, allowed numbers of dimensions)."""
    if name == META_KEY:
        return "u1", (1,)
    if name == STEPS:
        return "i8", (1,)
    if is_member(name):  # a parameter's snapshots, stacked
        return "h", (2, 3)
    if is_parameter_name(name):
        return "f", (1, 2)
    if "." in name:  # an optimizer's slot, shaped like its parameter
        return "f", (1, 2)
    return "i8", (0,)  # an optimizer's counter


def _read_arrays(path: Path, wanted=lambda name: True, shape_of=None) -> dict[str, np.ndarray]:
    """The archive's arrays whose names are `wanted`, each checked by its NPY header before its
    data is read: a member of ours by name, an NPY file of version 1 or 2, of the dtype its name
    takes (float32 or float64 parameters and optimizer slots, float16 or float32 snapshots, int64
    counters and steps, uint8 metadata), its
    declared shape's bytes equal to the bytes it holds; all together within MAX_ARRAY_BYTES (a
    small compressed file may declare gigabytes); with `shape_of` (name -> the shape the reader
    expects, or None for any), a member of another shape is refused by its header, before its data
    is inflated. Every failure, an allocation's included, is a CheckpointError with the reason."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":  # np.load would take it for a pickle and suggest loading it "unsafely"
                raise CheckpointError(f"{path} is not a mnistsoftmax checkpoint: not an .npz archive")
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            names = [m.filename.removesuffix(".npy") for m in members]
            ours = (
                n == META_KEY
                or is_parameter_name(n)
                or is_state_name(n, is_parameter_name)
                or (is_member(n) and (n == STEPS or is_parameter_name(n.split("/", 1)[1])))
                for n in names
            )
            stranger = next((m.filename for m, mine in zip(members, ours, strict=True) if not mine), None)
            if stranger is not None or len(set(names)) != len(names):
                what = repr(stranger[:60]) if stranger is not None else "a member twice"
                raise CheckpointError(f"{path} is not a mnistsoftmax checkpoint: it holds {what}")
            declared = sum(m.file_size for m in members)
            if declared > MAX_ARRAY_BYTES:
                raise CheckpointError(f"{path}: its arrays declare {declared:,} bytes, above the limit of "
                                      f"{MAX_ARRAY_BYTES:,} for a checkpoint")  # fmt: skip
            return {name: _member(path, archive, m, name, shape_of(name) if shape_of else None)
                    for m, name in zip(members, names, strict=True) if wanted(name)}  # fmt: skip
    except CheckpointError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError,
            MemoryError, OverflowError) as exc:  # fmt: skip
        reason = f"{type(exc).__name__}: {exc}" if isinstance(exc, MemoryError | OverflowError) else str(exc)
        # zipfile quotes what it read (a damaged header's "file name" may be kilobytes of the file).
        reason = reason if len(reason) <= 200 else reason[:200] + "…"
        raise CheckpointError(f"{path} is not a readable mnistsoftmax checkpoint: {reason or type(exc).__name__}") \
            from None  # fmt: skip


def _member(path: Path, archive: zipfile.ZipFile, member: zipfile.ZipInfo, name: str,
            expected: tuple | None = None) -> np.ndarray:  # fmt: skip
    def refuse(reason: str) -> CheckpointError:
        return CheckpointError(f"{path} is not a mnistsoftmax checkpoint: its member {name[:40]!r} {reason}")

    if not member.filename.endswith(".npy"):
        raise refuse("is not an NPY file")
    kinds, dimensions = _kind_of(name)
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise refuse(f"is NPY version {version}, not 1 or 2")
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        try:
            shape, fortran, dtype = reader(f, max_header_size=1024)
        except Exception as exc:  # noqa: BLE001 - numpy parses the header with tokenize and ast: any error
            raise refuse(f"has an NPY header that cannot be read ({type(exc).__name__})") from None
        if dtype.hasobject:
            raise refuse("holds object arrays, which are never loaded")
        allowed = {"f": ("f4", "f8"), "h": ("f2", "f4"), "u1": ("u1",), "i8": ("i8",)}[kinds]
        if dtype.str[1:] not in allowed:
            raise refuse(f"holds {dtype} values, not {' or '.join(np.dtype(a).name for a in allowed)}")
        if len(shape) not in dimensions or any(not isinstance(n, int) or n < 0 for n in shape):
            raise refuse(f"has the shape {shape}")
        if expected is not None and shape != expected:  # a snapshot's stack, by its header
            raise CheckpointError(f"{path}: the snapshots of {name.split('/', 1)[-1]} are {shape}, not {expected}")
        size = math.prod(shape) * dtype.itemsize
        held = member.file_size - f.tell()
        if size != held or (name == META_KEY and size > MAX_META_BYTES):
            raise refuse(f"declares {size:,} bytes of data and holds {held:,}" if size != held
                         else f"holds {size:,} bytes of metadata, above the limit of {MAX_META_BYTES:,}")  # fmt: skip
        data = bytearray(f.read(size))
    if len(data) != size:
        raise refuse("ends before its data does")
    array = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def _parse_meta(path: Path, blob: np.ndarray) -> dict:
    try:
        text = blob.tobytes().decode("utf-8")
        meta = jsontext.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the checkpoint's metadata is not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: the checkpoint's metadata is not a JSON object")
    if meta.get("format") not in FORMATS_READ or isinstance(meta.get("format"), bool):
        raise CheckpointError(
            f"{path}: checkpoint format {jsontext.dumps(meta.get('format'))[:20]} is not supported by mnistsoftmax "
            f"{__version__} (it reads formats {FORMATS_READ[0]} to {FORMATS_READ[-1]}); retrain, or use the version "
            "that wrote it"
        )
    return meta


TEMPERATURES = (1e-3, 1e3)  # the temperature solver's bracket (calibration.fit_temperature)


def check_metadata(path: Path, meta: dict) -> None:
    """The metadata's own schema, checked where a checkpoint is read, so that nothing downstream
    sees an unchecked value: the normalisation (finite, std > 0, and its float32 scale and shift
    finite), the temperature (a number in the solver's bracket), the metrics (accuracies in
    [0, 1], losses finite and >= 0), the names (strings)."""

    def refuse(what: str) -> CheckpointError:
        return CheckpointError(f"{path}: the checkpoint's {what}")

    norm = meta.get("normalization")
    if not (isinstance(norm, dict) and all(_finite(norm.get(k)) for k in ("mean", "std")) and norm["std"] > 0):
        raise refuse("input normalisation is not valid (mean, std > 0)")
    with np.errstate(over="ignore", divide="ignore"):
        scale, shift = np.float32(1.0 / (255.0 * norm["std"])), np.float32(norm["mean"] / norm["std"])
    if not (np.isfinite(scale) and np.isfinite(shift)):
        raise refuse(f"normalisation (mean {norm['mean']:.3g}, std {norm['std']:.3g}) overflows float32")
    temperature = meta.get("temperature")
    if temperature is not None and not (_finite(temperature) and TEMPERATURES[0] <= temperature <= TEMPERATURES[1]):
        raise refuse(f"temperature {str(temperature)[:20]} is not a number from {TEMPERATURES[0]} to {TEMPERATURES[1]}")
    metrics = meta.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict):
            raise refuse("metrics are not an object")
        for key, value in metrics.items():
            if value is None or key == "final_epoch":
                continue
            bounded = key.endswith("accuracy")
            if not _finite(value) or value < 0 or (bounded and value > 1):
                wanted = "in [0, 1]" if bounded else "a loss"
                # JSON-quoted: a key of the file's is any string, a newline's included.
                raise refuse(f"metric {jsontext.dumps(key)[:30]} = {jsontext.dumps(value)[:20]} is not {wanted}")
    for key in ("activation", "dataset", "kind", "run", "version"):
        if key in meta and not (isinstance(meta[key], str) and len(meta[key]) <= 200):
            raise refuse(f"{key} must be a short string, not {jsontext.dumps(meta[key])[:40]}")
    names = meta.get("class_names")
    short = isinstance(names, list) and all(isinstance(n, str) and len(n) <= 200 for n in names)
    if names is not None and not short:
        raise refuse("class_names must be a list of short strings, one per output")
    if meta.get("config") is not None:  # by the options' schema, wherever metadata is read (listings too)
        try:
            meta["config"] = check_stored(meta["config"])
        except OptionError as exc:
            raise refuse(f"stored configuration is not valid: {exc}") from None


def _check_meta(path: Path, meta: dict, model) -> None:
    """The metadata checked against the arrays and the options' schema (check_metadata has checked
    it by itself), so that a hand-edited or foreign file is refused here in one line rather than
    deep in a command."""
    names = meta.get("class_names")
    classes = model.sizes["classes"]
    if names is not None and len(names) != classes:
        raise CheckpointError(f"{path}: class_names must be a list of {classes} strings, one per output")
    config = meta.get("config")  # checked by check_metadata's schema already
    if config is None:
        return
    if config.get("model", model.kind) != model.kind:
        raise CheckpointError(f"{path}: its configuration says model {config['model']!r}, its arrays are {model.kind}")
    widths = model.hidden_widths
    if widths and config.get("hidden", widths) != widths:
        raise CheckpointError(f"{path}: its configuration says hidden {config['hidden']}, its arrays have {widths}")
    activation = model.activation.name
    if widths and config.get("activation", activation) != activation:
        raise CheckpointError(f"{path}: its configuration says activation {config['activation']}, its model "
                              f"{activation}")  # fmt: skip


def _finite(x) -> bool:
    """A JSON number that a float holds, finite (an integer of 400 digits is not)."""
    if not isinstance(x, int | float) or isinstance(x, bool):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def summary(model, meta: dict) -> dict:
    """What a page shows of a checkpoint beside its picker: the model, the loss it was trained on
    and what its outputs are, the fitted temperature, the stored reliability diagram, the data set,
    the test accuracy, the class names (the served page's list and the exported page's alike)."""
    config = meta.get("config") or {}
    return {
        "model": meta["kind"],
        "hidden": model.sizes.get("hidden"),
        "activation": model.activation.name,
        "description": model.describe(),
        "loss": of_run(config).name,
        "outputs": of_run(config).outputs,  # probabilities, or scores
        "temperature": meta.get("temperature"),
        "reliability": _reliability(meta.get("reliability")),  # the test set's, at the end of training
        "dataset": meta.get("dataset"),
        "accuracy": (meta.get("metrics") or {}).get("test_accuracy"),
        "epochs": config.get("epochs"),
        "seed": config.get("seed"),
        "lr": config.get("lr"),
        "weight_decay": config.get("weight_decay"),
        "label_smoothing": config.get("label_smoothing"),
        "batch_size": config.get("batch_size"),
        "normalization": meta["normalization"],  # x = (pixel / 255 - mean) / std
        "class_names": meta.get("class_names") or [str(i) for i in range(10)],
    }


def _reliability(record) -> dict | None:
    """A stored reliability diagram as the page draws it, or None when it is not one (another
    version's file, or a hand's)."""
    if not isinstance(record, dict):
        return None
    parts = [record] + ([record["calibrated"]] if isinstance(record.get("calibrated"), dict) else [])
    for part in parts:
        if not isinstance(part.get("ece"), int | float):
            return None
        for key in ("count", "confidence", "accuracy"):
            values = part.get(key)
            numbers = isinstance(values, list) and all(v is None or isinstance(v, int | float) for v in values)
            if not numbers or len(values) != record.get("bins"):
                return None
    return record
