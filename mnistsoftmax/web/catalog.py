"""The checkpoints a page may choose among: the finished ones in the runs folder and the one given
on the command line. Requests name them; only names from this list resolve to files, so a request
never chooses a path."""

from __future__ import annotations

import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mnistsoftmax import checkpoint
from mnistsoftmax.inference import Normalization, initial_model


@dataclass
class Timeline:
    """What the timeline draws from: each snapshot's model (the last the checkpoint's own), their
    steps, and the run's mean training loss as [step, loss] pairs from its metrics file."""

    models: list
    steps: list[int]
    train_loss: list[list[float]]
    smoothing: float = 0.0  # the run's label smoothing: its training loss is the smoothed one, above 0
    note: str | None = None  # snapshots left out as damaged, said beside the timeline
    kept: object = None  # the snapshots as stored (snapshots.Snapshots), for the page's engine


@dataclass
class Loaded:
    name: str
    path: Path
    model: object
    meta: dict
    norm: Normalization
    untrained: object | None  # the run's initial model, redrawn from its seed
    snapshot_steps: list[int] | None  # read with the checkpoint; the weights only when first asked for
    snapshots_note: str | None  # why there are none, for the page to say
    stamp: str = ""  # the file's modification time and size: a page's copy of its weights is this one's
    _timeline: Timeline | None = field(default=None, repr=False)
    _failure: Exception | None = field(default=None, repr=False)  # why the snapshots could not be read
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> dict:
        return {
            "name": self.name,
            **checkpoint.summary(self.model, self.meta),
            "snapshots": self.snapshot_steps,
            "snapshots_note": self.snapshots_note,
            "stamp": self.stamp,
        }

    def document(self) -> bytes:
        """export.page_model's document for this checkpoint, as JSON: what the served page computes
        its answers from (Catalog.document keeps the last few). A checkpoint whose snapshots cannot
        be read gives the document without them, and says why."""
        from mnistsoftmax import export, jsontext

        try:
            timeline, note = self.timeline(), self.snapshots_note
        except checkpoint.CheckpointError as exc:
            timeline, note = None, f"its snapshots cannot be read: {exc}"
        kept = timeline.kept if timeline is not None else None
        note = timeline.note if timeline is not None else note
        document = export.page_model(self.model, self.meta, self.name, kept,
                                     timeline.train_loss if timeline is not None else (),
                                     untrained=self.untrained, note=note)  # fmt: skip
        return jsontext.dumps(document).encode("utf-8")

    def timeline(self) -> Timeline | None:
        """The snapshots' models, read on first use (None without snapshots). Raises
        checkpoint.CheckpointError when they cannot be read."""
        if self.snapshot_steps is None:
            return None
        with self._lock:
            if self._failure is not None:  # remembered: a damaged file is not read again on every answer
                raise self._failure
            if self._timeline is None:
                try:
                    kept = checkpoint.load_snapshots(self.path, self.model)
                    if kept is None:
                        raise checkpoint.CheckpointError(f"{self.path}: its snapshots are gone")
                except checkpoint.CheckpointError as exc:
                    self._failure = exc
                    raise
                curve = checkpoint.training_loss_curve(self.path)
                smoothing = checkpoint.label_smoothing(self.meta)
                note = (f"the snapshots of steps {', '.join(map(str, kept.dropped[:8]))} are damaged and left out"
                        if kept.dropped else None)  # fmt: skip
                self._timeline = Timeline(kept.models(self.model), kept.steps, curve, smoothing, note, kept)
            return self._timeline


NO_SNAPSHOTS = "this checkpoint kept no snapshots (trained with --snapshots 0, or by a version before they existed)"


class FileCache:
    """Values computed from files, computed again only when a file's size or modification time
    changes (so that listing a folder often reads each file once)."""

    def __init__(self):
        self._entries: dict[Path, tuple[tuple[int, int], object]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path, compute: Callable[[Path], object]):
        """compute(path), or its value from before if the file is unchanged; None if it is gone."""
        try:
            st = path.stat()
        except OSError:
            return None
        key = (st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._entries.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        if compute is None:
            return None
        value = compute(path)  # outside the lock: one slow file never holds up the readers of others
        with self._lock:
            self._entries[path] = (key, value)
        return value


def _read(path: Path) -> Loaded | None:
    """A checkpoint ready to answer (None: not a readable checkpoint); named after its file until
    the catalog names it."""
    try:
        model, meta = checkpoint.load(path)
    except checkpoint.CheckpointError:
        return None
    try:
        steps = checkpoint.snapshot_steps(path)
        note = None if steps is not None else NO_SNAPSHOTS
    except checkpoint.CheckpointError as exc:
        steps, note = None, f"its snapshots cannot be read: {exc}"  # the model still answers
    try:
        st = path.stat()
    except OSError:
        return None
    return Loaded(path.stem, path, model, meta, Normalization(**meta["normalization"]), initial_model(meta), steps,
                  note, f"{st.st_mtime_ns}-{st.st_size}")  # fmt: skip


DOCUMENTS_KEPT = 4  # the page's documents kept encoded, the last asked for (a 256-unit run's is 14 MB)


class Catalog:
    """Names -> checkpoints. A file is read again only when its size or modification time changes;
    files that are not readable checkpoints are left out of the list."""

    def __init__(self, runs_dir: Path, given: Path | None = None):
        self._documents: OrderedDict[tuple, bytes] = OrderedDict()  # (path, stamp, name) -> document
        self._documents_lock = threading.Lock()
        self.runs_dir = Path(runs_dir)
        self.given = Path(given).resolve() if given is not None else None
        self._cache = FileCache()
        self._listed: tuple[int, list[Path]] | None = None  # (the folder's mtime, its checkpoints)
        self._named: tuple[list[Path], list[tuple[str, Path]]] | None = None  # (a listing, its names)

    def _listing(self) -> list[Path]:
        """The folder's checkpoints, latest.npz (where train saves by default) first, then the newest.
        Listed again only when the folder changes (a file added, removed or renamed into place, as
        every checkpoint is written): a predict must not glob and stat 3,000 files. A file that
        vanishes between the listing and its stat is left out."""
        try:
            stamp = self.runs_dir.stat().st_mtime_ns
        except OSError:
            return []
        if self._listed is not None and self._listed[0] == stamp:
            return self._listed[1]
        stamped = []
        for p in self.runs_dir.glob("*.npz"):
            if p.name.endswith(".interrupted.npz"):
                continue
            try:
                st = p.stat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                stamped.append((p.stem != "latest", -st.st_mtime_ns, p.name, p))
        found = [entry[-1].resolve() for entry in sorted(stamped)]
        # A folder changed within the last two seconds may change again within its clock's tick,
        # unseen by its mtime: listed again until it has been still that long.
        if time.time_ns() - stamp > 2_000_000_000:
            self._listed = (stamp, found)
        return found

    def _paths(self) -> list[tuple[str, Path]]:
        found = self._listing()
        if self._named is not None and self._named[0] is found:  # the same listing: the same names
            return self._named[1]
        named: dict[str, Path] = {}
        if self.given is not None:
            named[self.given.stem] = self.given
        for p in found:
            if p == self.given:
                continue
            named.setdefault(p.stem if p.stem not in named else f"runs/{p.stem}", p)
        self._named = (found, list(named.items()))
        return self._named[1]

    def _load(self, name: str, path: Path) -> Loaded | None:
        loaded = self._cache.get(path, _read)
        if loaded is not None:
            loaded.name = name  # the same file may be listed under another name now
        return loaded

    def entries(self) -> list[Loaded]:
        loaded = (self._load(name, path) for name, path in self._paths())
        return [entry for entry in loaded if entry is not None]

    def document(self, entry: Loaded) -> bytes:
        """entry.document(), kept for the DOCUMENTS_KEPT last checkpoints asked for: a page's
        reload costs no second encoding, and a client walking 3,000 files holds no more than those."""
        key = (entry.path, entry.stamp, entry.name)
        with self._documents_lock:
            if key in self._documents:
                self._documents.move_to_end(key)
                return self._documents[key]
        encoded = entry.document()
        with self._documents_lock:
            self._documents[key] = encoded
            while len(self._documents) > DOCUMENTS_KEPT:
                self._documents.popitem(last=False)
        return encoded

    def ready(self, name: str | None) -> bool:
        """Whether get(name) would answer from memory, reading no checkpoint (only stat calls)."""
        for entry_name, path in self._paths():
            if name is None or entry_name == name:
                return self._cache.get(path, None) is not None
        return False

    def get(self, name: str | None) -> Loaded | None:
        """The checkpoint of that name (the first of the list when None), or None."""
        for entry_name, path in self._paths():
            if name is None or entry_name == name:
                loaded = self._load(entry_name, path)
                if loaded is not None or name is not None:
                    return loaded
        return None
