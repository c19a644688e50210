"""The training runs a server starts: `mnistsoftmax train` itself, in a worker process.

The worker is the command line's own code path (the same loop, files, checkpoint and metrics,
and the same Ctrl-C handling): options arrive as the keys of the TOML config files, are checked
by the options' schema (options.py, the same checks as every door's) before the worker starts,
and become `train`'s flags. One worker at a time.

The worker runs in a session of its own: a Ctrl-C typed at the server's terminal reaches only
the server, which passes one SIGINT on (a second would make `train` give up without saving).
Stopping a run, or the server, is that SIGINT: the worker saves NAME.interrupted.npz.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mnistsoftmax import checkpoint, live, options
from mnistsoftmax.errors import MnistSoftmaxError, quoted

LOG_TAIL = 16384  # bytes of the worker's log read for its last lines


class OptionsError(MnistSoftmaxError):
    """Options that `train` would refuse; the message names the key and what it takes."""


class Busy(MnistSoftmaxError):
    """A run is going already."""


def page_options() -> dict[str, options.Option]:
    """Config key -> option, for the options a request may set (the server chooses where runs go,
    what they resume, and where their data comes from)."""
    return {o.key: o for o in options.TRAIN_OPTIONS if options.PAGE in o.surfaces}


def server_data(folders=()) -> dict[str, tuple[str, str | None]]:
    """The data sets a server's page may train on, by name -> (data set, folder or None for the
    cache): MNIST and Fashion-MNIST in the cache, then each folder named on `serve`'s command line,
    named by its path as given there (`data/mnist`; the run gets it absolute) and identified by its
    content (datasets.identify)."""
    from mnistsoftmax import datasets

    found: dict[str, tuple[str, str | None]] = {}
    for folder in folders:
        absolute = Path(folder).resolve()
        if all(path != str(absolute) for _, path in found.values()):
            found[str(Path(folder))] = (datasets.identify(absolute), str(absolute))
    for name, info in datasets.DATASETS.items():
        if info.verified:  # the registered sets the cache can fetch and check; "custom" needs a folder
            found[name] = (name, None)
    return found


def describe_options(data: dict | None = None) -> list[dict]:
    """The options a form shows, in the schema's order and groups: key, kind, default, help,
    group, and choices or range; the data set's choices are the server's (`data`, first the default)."""
    described = [o.describe() for o in page_options().values()]
    for entry in described:
        if entry["key"] == "dataset" and data:
            entry.update(
                choices=list(data),
                default=next(iter(data)),
                help="The data set to train on: those this server knows (serve --data-dir adds folders).",
            )
    return described


def check_options(document, data: dict | None = None) -> dict:
    """{config key: value} from a request -> {parameter name: checked value}; OptionsError for an
    unknown key or a value the option does not take. A number may come as text (a form's field).
    With the server's `data` (server_data), `dataset` names one of them, the first by default; its
    folder comes from the server, never from the request."""
    if not isinstance(document, dict):
        raise OptionsError("the options must be a JSON object whose keys are those of the config files")
    known = page_options()
    values = {}
    for key, value in document.items():
        option = known.get(key)
        if option is None:
            reason = ("is chosen by the server" if key in ("config", "out", "resume", "data-dir", "mirror", "source")
                      else "is not an option of train")  # fmt: skip
            raise OptionsError(f"unknown key {quoted(str(key))}: it {reason}; the keys are: {', '.join(known)}")
        if value is None:
            continue
        if key == "dataset" and data:
            values.update(_data_set(value, data))
        else:
            values[option.name] = _parse(option, value)
    if data and "dataset" not in values:
        values.update(_data_set(next(iter(data)), data))
    try:
        options.check_combination(values)
    except options.OptionError as exc:
        raise OptionsError(str(exc)) from None
    return values


def _data_set(name, data: dict) -> dict:
    if not isinstance(name, str) or name not in data:
        raise OptionsError(f"Invalid value for '--dataset': {quoted(name)} is not one of the data sets this "
                           f"server knows: {', '.join(map(repr, data))}")  # fmt: skip
    dataset, folder = data[name]
    return {"dataset": dataset, "data_dir": folder} if folder is not None else {"dataset": dataset}


def _parse(option: options.Option, value):
    """A request's value, read as the command line reads the same flag (and refused in its words)."""
    if option.kind == "bool":
        if not isinstance(value, bool):
            raise OptionsError(f"{option.key} = {quoted(value)} should be true or false")
        return value
    if option.kind == "ints" and isinstance(value, list | tuple):  # [512, 256], as a config file writes it
        try:
            return option.check(value)
        except options.OptionError as exc:
            raise OptionsError(f"Invalid value for '--{option.key}': {exc}.") from None
    items = value if option.multiple and isinstance(value, list) else [value]
    parsed = []
    for v in items:
        if isinstance(v, dict | list):
            raise OptionsError(f"{option.key} = {quoted(v)} should be a number or a string")
        try:
            parsed.append(option.parse(str(v).lower() if isinstance(v, bool) else str(v)))
        except options.OptionError as exc:
            raise OptionsError(f"Invalid value for '--{option.key}': {exc}.") from None
    return parsed if option.multiple else parsed[0]


def to_argv(values: dict) -> list[str]:
    """Checked option values -> train's flags (repr of a float reads back as the same float)."""
    argv = []
    for name, value in values.items():
        option = options.BY_NAME[name]
        if option.kind == "bool":
            argv.append(f"--{option.key}" if value else f"--no-{option.key}")
            continue
        for v in value if option.multiple else [value]:
            argv += [f"--{option.key}", repr(v) if isinstance(v, float) else option.format(v)]
    return argv


@dataclass
class Job:
    """One worker: `mnistsoftmax train ARGV --out RUNS/NAME.npz`."""

    name: str
    argv: list[str]
    options: dict  # the parameters it runs with (resumed runs: those of the checkpoint)
    out: Path
    process: subprocess.Popen
    log: Path  # the worker's stdout and stderr: a file, not a pipe, so that it outlives the server
    started: float = field(default_factory=time.time)
    stopping: bool = False
    last_lines: list[str] | None = None  # the log's last lines, kept once the worker ended and the log is removed

    @property
    def output(self) -> list[str]:
        """The last lines the worker wrote."""
        return self._read_log()

    def _read_log(self) -> list[str]:
        """The log's last lines; once the worker has ended, read one last time and the log removed."""
        if self.last_lines is not None:
            return self.last_lines
        ended = self.process.poll() is not None  # then read one last time, and the log removed
        try:
            with open(self.log, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - LOG_TAIL))
                lines = f.read().decode("utf-8", errors="replace").splitlines()[-40:]
        except OSError:
            lines = []
        if ended:
            self.last_lines = lines
            self.log.unlink(missing_ok=True)
        return lines

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def status(self) -> str:
        code = self.process.poll()
        if code is None:
            return "running"
        self._read_log()  # the ended worker's log is read once and removed
        if code == 0:
            return "finished"
        if self.stopping and checkpoint.interrupted_path(self.out).exists():
            return "stopped"
        return "failed"

    @property
    def error(self) -> str | None:
        if self.status != "failed":
            return None
        errors = [line.removeprefix("Error: ") for line in self.output if line.startswith("Error: ")]
        if not errors:
            return f"the training worker ended with exit status {self.process.returncode}"
        if "could not download" in errors[-1] and self.options.get("data_dir") is None:
            return errors[-1] + (" — offline? `make data` writes MNIST into data/mnist; start "
                                 "`mnistsoftmax serve --data-dir data/mnist` and choose it here")  # fmt: skip
        return errors[-1]

    def stop(self) -> None:
        """The Ctrl-C path, once: the worker saves NAME.interrupted.npz at the end of its batch."""
        if self.running and not self.stopping:
            self.stopping = True
            self.process.send_signal(signal.SIGINT)


class Trainer:
    """The runs a server starts in `runs_dir`, one at a time."""

    def __init__(self, runs_dir: Path, data_dirs=()):
        self.runs_dir = Path(runs_dir)
        self.data = server_data(data_dirs)  # the data sets the page may train on, by name
        self.job: Job | None = None
        self._lock = threading.Lock()
        self.closing = False
        self._remove_stale_logs()

    def _remove_stale_logs(self) -> None:
        """The logs that workers of earlier servers left (a worker killed outright, or a server
        that ended before reading its worker's last lines): only the server that started a worker
        reads its log, so none of them will be read again. A run still going keeps its own."""
        if not self.runs_dir.is_dir():
            return
        going = set(live.in_progress(self.runs_dir))
        for log in self.runs_dir.glob(".run-*.log"):
            if log.name.removeprefix(".").removesuffix(".log") not in going:
                log.unlink(missing_ok=True)

    def _new_name(self) -> str:
        stamp = time.strftime("run-%Y%m%d-%H%M%S")
        name, n = stamp, 1
        while any(self.runs_dir.glob(f"{name}.*")) or any(self.runs_dir.glob(f".{name}.*")):
            n += 1
            name = f"{stamp}-{n}"
        return name

    def start(self, document: dict) -> Job:
        """A new run with these options ({TOML key: value})."""
        values = check_options(document, self.data)
        argv, config = to_argv(values), options.resolve(values)
        with self._lock:
            self._refuse_if_busy()
            name = self._new_name()
            out = self.runs_dir / f"{name}.npz"
            self.job = self._spawn(name, argv, config, out)
            return self.job

    def resume(self, name: str) -> Job:
        """Go on with a stopped run of the runs folder."""
        if not isinstance(name, str):
            raise OptionsError(f"resume must be the id of a stopped run, not {quoted(name)}")
        found = live.runs_in(self.runs_dir).get(name)
        if found is None or found.status != "stopped":
            state = "no run" if found is None else f"the run is {found.status}, not stopped:"
            raise OptionsError(f"{state} {quoted(name)} cannot be resumed; the stopped runs are in /api/runs")
        config = checkpoint.read_meta(found.checkpoint).get("config") or {}
        with self._lock:
            self._refuse_if_busy()
            out = self.runs_dir / f"{name}.npz"
            self.job = self._spawn(name, ["--resume", str(found.checkpoint)], config, out)
            return self.job

    def _refuse_if_busy(self) -> None:
        if self.closing:
            raise Busy("the server is shutting down")
        if self.job is not None and self.job.running:
            raise Busy(f"run {self.job.name!r} is still going: one run at a time; stop it first")

    def _spawn(self, name: str, argv: list[str], config: dict, out: Path) -> Job:
        """The worker, in a session of its own (a terminal's hang-up or Ctrl-C does not reach it)
        writing to a log file (a pipe would break with the server): it finishes, or saves its
        interrupted checkpoint, whatever happens to the server."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mnistsoftmax", "train", *argv, "--out", str(out)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", checkpoint.RUNS_DIR_ENV: str(self.runs_dir)}
        log = self.runs_dir / f".{name}.log"
        with open(log, "ab") as output:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )  # fmt: skip
        return Job(name, argv, config, out, process, log)

    def stop(self, name: str) -> Job:
        job = self.job
        if job is None or job.name != name or not job.running:
            raise Busy(f"run {name!r} is not a run this server is going on with; stop it where it was started")
        job.stop()
        return job

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop the worker (saving its interrupted checkpoint) and wait for it."""
        self.closing = True
        job = self.job
        if job is not None and job.running:
            job.stop()
            try:
                job.process.wait(timeout)
            except subprocess.TimeoutExpired:
                job.process.kill()
