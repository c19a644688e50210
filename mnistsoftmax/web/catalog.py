"""The checkpoints a page may choose among: the finished ones in the runs folder and the one given
on the command line. Requests name them; only names from this list resolve to files, so a request
never chooses a path."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mnistsoftmax import checkpoint
from mnistsoftmax.inference import Normalization, initial_model


@dataclass
class Loaded:
    name: str
    path: Path
    model: object
    meta: dict
    norm: Normalization
    untrained: object | None  # the run's initial model, redrawn from its seed

    def summary(self) -> dict:
        return {"name": self.name, **checkpoint.summary(self.model, self.meta)}


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
    return Loaded(path.stem, path, model, meta, Normalization(**meta["normalization"]), initial_model(meta))


class Catalog:
    """Names -> checkpoints. A file is read again only when its size or modification time changes;
    files that are not readable checkpoints are left out of the list."""

    def __init__(self, runs_dir: Path, given: Path | None = None):
        self.runs_dir = Path(runs_dir)
        self.given = Path(given).resolve() if given is not None else None
        self._cache = FileCache()

    def _paths(self) -> list[tuple[str, Path]]:
        found = []
        if self.runs_dir.is_dir():
            files = [p for p in self.runs_dir.glob("*.npz") if not p.name.endswith(".interrupted.npz") and p.is_file()]
            # latest.npz, where train saves by default, first; then the newest
            found = sorted(files, key=lambda p: (p.stem != "latest", -p.stat().st_mtime_ns, p.name))
        named: dict[str, Path] = {}
        if self.given is not None:
            named[self.given.stem] = self.given
        for p in found:
            p = p.resolve()
            if p == self.given:
                continue
            named.setdefault(p.stem if p.stem not in named else f"runs/{p.stem}", p)
        return list(named.items())

    def _load(self, name: str, path: Path) -> Loaded | None:
        loaded = self._cache.get(path, _read)
        if loaded is not None:
            loaded.name = name  # the same file may be listed under another name now
        return loaded

    def entries(self) -> list[Loaded]:
        loaded = (self._load(name, path) for name, path in self._paths())
        return [entry for entry in loaded if entry is not None]

    def get(self, name: str | None) -> Loaded | None:
        """The checkpoint of that name (the first of the list when None), or None."""
        for entry_name, path in self._paths():
            if name is None or entry_name == name:
                loaded = self._load(entry_name, path)
                if loaded is not None or name is not None:
                    return loaded
        return None
