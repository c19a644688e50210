"""The runs of the runs folder as the API shows them: the list (running, stopped, finished, and a
failed start of this server's), and one run's metrics records as Server-Sent Events, the ones
so far first, then each as the run writes it. Runs started with `mnistsoftmax train` in the
folder are seen exactly like the server's own: through their files (live.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mnistsoftmax import checkpoint, jsontext, live, options
from mnistsoftmax.fileio import open_regular
from mnistsoftmax.models import describe
from mnistsoftmax.web.catalog import FileCache
from mnistsoftmax.web.trainer import Trainer

POLL_SECONDS = 0.25  # how often a followed file is read: a few refreshes a second at most
HEARTBEAT_SECONDS = 15  # a comment line now and then, so that idle proxies keep the stream open
WAIT_FOR_WORKER_SECONDS = 1.0  # the worker writes its last lines and exits just after its files


def _toml_keys(config: dict) -> dict:
    """Parameter names (batch_size) -> the config files' keys (batch-size); paths as text."""
    return {k.replace("_", "-"): (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
            for k, v in config.items()}  # fmt: skip


def _meta_or_error(path: Path) -> dict | str:
    """A checkpoint's metadata, or why it cannot be read (one line, without the folder)."""
    try:
        checkpoint.settle(path)  # a run killed between its two renames: its metrics file into place
        return checkpoint.read_meta(path)
    except checkpoint.CheckpointError as exc:
        return str(exc).replace(str(path), path.name)[:300]


class RunList:
    """What GET /api/runs answers. Checkpoint metadata is read again only when a file changes."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self._meta = FileCache()

    def _read_meta(self, path: Path) -> dict | str | None:
        return self._meta.get(path, _meta_or_error)

    def _running_config(self, partial: Path) -> dict:
        """A run in progress states its configuration in its first record."""
        try:
            with open_regular(partial) as f:
                first = jsontext.loads(f.readline(1 << 20) or b"{}")
        except (OSError, ValueError):
            return {}
        config = first.get("config") if isinstance(first, dict) else None
        try:  # the file is anyone's: its configuration is shown only as the options' schema takes it
            return options.check_stored(config) if config is not None else {}
        except options.OptionError:
            return {}

    def runs(self) -> list[dict]:
        job = self.trainer.job
        listed = []
        for run in live.runs_in(self.trainer.runs_dir).values():
            entry = {"id": run.name, "status": run.status, "accuracy": None, "modified": run.modified}
            if run.status == "running":
                config = self._running_config(run.metrics)
            else:
                meta = self._read_meta(run.checkpoint)
                if meta is None:
                    continue  # gone since the folder was listed
                if isinstance(meta, str):  # listed with the reason, never taken for a finished run
                    listed.append({**entry, "status": "unreadable", "error": meta, "options": {}, "description": ""})
                    continue
                config = meta.get("config") or {}
                entry["accuracy"] = (meta.get("metrics") or {}).get("test_accuracy")
            entry["options"] = _toml_keys(config)
            entry["description"] = describe(config)
            listed.append(entry)
        if job is not None and job.name not in {e["id"] for e in listed}:
            # Starting (loading its data) or failed: only the server knows of it.
            status = "running" if job.running else job.status
            listed.append({"id": job.name, "status": status, "accuracy": None, "modified": job.started,
                           "options": _toml_keys(job.options), "description": describe(job.options)})  # fmt: skip
        for entry in listed:
            mine = job is not None and job.name == entry["id"]
            entry["from_page"] = mine
            if mine and job.status == "failed":
                entry.update(status="failed", error=job.error)
        return sorted(listed, key=lambda e: -e["modified"])

    def find(self, name: str) -> dict | None:
        return next((e for e in self.runs() if e["id"] == name), None)


def _event(number: int, record: dict) -> str:
    return f"id: {number}\ndata: {jsontext.dumps(record)}\n\n"


async def events(run_list: RunList, name: str, skip: int = 0):
    """The SSE stream of one run: each record as an event numbered from 0 (records up to `skip`
    left out, for a reconnecting EventSource's Last-Event-ID), ending after the `test` record,
    or with {"type": "stopped"} or {"type": "error", "error": ...} for a run that did not finish."""
    trainer = run_list.trainer
    runs_dir = trainer.runs_dir
    number = 0
    last: dict | None = None
    path = await _metrics_to_follow(trainer, name)
    if path is not None:
        try:
            follower = live.Follower(path)
        except OSError:  # finished and renamed in between: read the final file
            follower = live.Follower(_final_metrics(runs_dir, name))
        with follower:
            quiet_since = time.monotonic()
            while True:
                going = follower.writing()
                for record in follower.read():
                    if number >= skip:
                        yield _event(number, record)
                    number += 1
                    last = record
                    quiet_since = time.monotonic()
                if not going or trainer.closing:
                    break
                if time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                    yield ": still training\n\n"
                    quiet_since = time.monotonic()
                await asyncio.sleep(POLL_SECONDS)
    if last is not None and last.get("type") == "test":
        return
    yield _event(number, await _ending(trainer, name))


async def _metrics_to_follow(trainer: Trainer, name: str) -> Path | None:
    """The file holding the run's records: its partial file while it runs (waiting for it while
    the server's worker loads its data), else its final metrics file; None if there is none."""
    while True:
        found = live.runs_in(trainer.runs_dir).get(name)
        job = trainer.job if trainer.job is not None and trainer.job.name == name else None
        if found is not None and found.status == "running":
            return found.metrics
        if job is not None and job.running and not trainer.closing:
            await asyncio.sleep(POLL_SECONDS)  # not writing yet, or between two files
            continue
        if found is not None and found.metrics.exists():
            return found.metrics
        return None


def _final_metrics(runs_dir: Path, name: str) -> Path:
    found = live.runs_in(runs_dir).get(name)
    return found.metrics if found is not None else checkpoint.metrics_path(runs_dir / f"{name}.npz")


async def _ending(trainer: Trainer, name: str) -> dict:
    job = trainer.job if trainer.job is not None and trainer.job.name == name else None
    if job is not None:
        deadline = time.monotonic() + WAIT_FOR_WORKER_SECONDS
        while job.running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    found = live.runs_in(trainer.runs_dir).get(name)
    if job is not None and job.status == "failed":
        return {"type": "error", "error": job.error}
    if found is not None and found.status == "stopped":
        return {"type": "stopped", "resume": name}
    return {"type": "error", "error": "the run ended without finishing (killed, or it failed)"}
