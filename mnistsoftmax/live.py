"""The runs folder seen from outside the runs: which runs it holds (finished, stopped, in
progress) and their metrics records as they are written, from any process.

A run in progress writes its records into a hidden partial file beside its checkpoint,
`.NAME.metrics.jsonl.XXXXXXXX.partial`, one line per record, flushed as each is made, under an
exclusive flock() held until the run ends (checkpoint.MetricsFile). A reader opens that file
once and keeps reading from where it stopped: the rename to NAME.metrics.jsonl (or
NAME.interrupted.metrics.jsonl) at the end does not disturb an open file, and the released lock
says that nothing more will come. A partial file nobody holds the lock of is a killed run's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mnistsoftmax import checkpoint, jsontext
from mnistsoftmax.fileio import open_regular

_PARTIAL = re.compile(r"^\.(?P<name>.+)\.metrics\.jsonl\.[^.]+\.partial$")


def in_progress(folder: Path) -> dict[str, Path]:
    """The runs going on in a folder: checkpoint name (NAME of NAME.npz) -> its partial metrics
    file. Of two runs writing toward the same checkpoint, the newest."""
    found: dict[str, tuple[float, Path]] = {}
    for path in Path(folder).glob(".*.metrics.jsonl.*.partial"):
        match = _PARTIAL.match(path.name)
        if match is None or not checkpoint.is_being_written(path):
            continue
        try:
            mtime = path.stat().st_mtime
        except OSError:  # finished between the listing and now
            continue
        name = match["name"]
        if name not in found or mtime > found[name][0]:
            found[name] = (mtime, path)
    return {name: path for name, (_, path) in found.items()}


class Follower:
    """Reads a metrics file as it grows: read() returns the records completed since the last
    call; writing() says whether its writer is still at work. Whole lines only: a record being
    written is returned once its newline has arrived."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = open_regular(self.path)  # kept open across calls, closed by close()
        self._pending = b""

    def read(self) -> list[dict]:
        self._pending += self._file.read()
        *lines, self._pending = self._pending.split(b"\n")
        records = []
        for line in lines:
            if line.strip():
                try:
                    record = jsontext.loads(line)
                except ValueError:  # not a record: a file that is not ours
                    continue
                if isinstance(record, dict):  # a record is an object; `null` or `5` is no record
                    records.append(record)
        return records

    def writing(self) -> bool:
        return checkpoint.holds_lock(self._file.fileno(), self.path)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def follow(path: Path, poll: float = 0.2, stop: Callable[[], bool] | None = None) -> Iterator[dict]:
    """Every record of a metrics file, the ones written so far first, then each as it comes,
    until its writer is done (or stop() says so)."""
    with Follower(path) as follower:
        while True:
            # The lock first: once it is free, everything has been written, and the read after it sees all.
            going = follower.writing()
            yield from follower.read()
            if not going or (stop and stop()):
                return
            time.sleep(poll)


@dataclass
class RunFiles:
    """One run of a runs folder, by the name of its checkpoint."""

    name: str
    status: str  # "running", "stopped" (resumable) or "finished"
    metrics: Path  # the file its records are in (partial while running)
    checkpoint: Path | None  # NAME.npz, or NAME.interrupted.npz when stopped; None while running
    modified: float

    @property
    def resumable(self) -> Path | None:
        return self.checkpoint if self.status == "stopped" else None


def runs_in(folder: Path) -> dict[str, RunFiles]:
    """The runs a folder holds, by name, each in its latest state: in progress if a run is
    writing toward NAME.npz; else stopped if NAME.interrupted.npz is there (newer than any
    NAME.npz); else finished."""
    folder = Path(folder)
    runs: dict[str, RunFiles] = {}
    if not folder.is_dir():
        return runs
    for path in folder.glob("*.npz"):
        try:
            modified = path.stat().st_mtime
        except OSError:
            continue
        if path.name.endswith(".interrupted.npz"):
            name, status = path.name.removesuffix(".interrupted.npz"), "stopped"
        else:
            name, status = path.stem, "finished"
        if name in runs and runs[name].modified >= modified:
            continue
        runs[name] = RunFiles(name, status, checkpoint.metrics_path(path), path, modified)
    for name, partial in in_progress(folder).items():
        runs[name] = RunFiles(name, "running", partial, None, time.time())
    return runs
