"""The training runs a server starts: `mnistsoftmax train` itself, in a worker process.

The worker is the command line's own code path (the same loop, files, checkpoint and metrics,
and the same Ctrl-C handling): options arrive as the keys of the TOML config files, become
`train`'s flags, and are parsed by `train`'s own click parameters before the worker starts, so a
bad value is refused with the message the command line gives. One worker at a time.

The worker runs in a session of its own: a Ctrl-C typed at the server's terminal reaches only
the server, which passes one SIGINT on (a second would make `train` give up without saving).
Stopping a run, or the server, is that SIGINT: the worker saves NAME.interrupted.npz.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from mnistsoftmax import MnistSoftmaxError, checkpoint, live

PAGE_KEYS_EXCLUDED = ("config", "out", "resume")  # the server chooses where runs go and what they resume


class OptionsError(MnistSoftmaxError):
    """Options that `train` would refuse; the message is the command line's."""


class Busy(MnistSoftmaxError):
    """A run is going already."""


def train_command() -> click.Command:
    from mnistsoftmax.cli import train

    return train


def option_keys() -> dict[str, click.Option]:
    """TOML key -> train's option, for the options a request may set."""
    from mnistsoftmax.config import option_keys as config_keys

    return config_keys(train_command(), skip=PAGE_KEYS_EXCLUDED)


def describe_options() -> list[dict]:
    """train's options as a form wants them: key, default, kind, choices, range, help."""
    described = []
    for key, p in option_keys().items():
        t = p.type
        kind = ("bool" if p.is_flag else "choice" if isinstance(t, click.Choice)
                else "int" if isinstance(t, click.IntRange) or t is click.INT
                else "float" if isinstance(t, click.FloatRange) or t is click.FLOAT else "text")  # fmt: skip
        # click marks "no default" with a sentinel object of its own: None here
        default = p.default if isinstance(p.default, str | int | float | bool) and not p.multiple else None
        entry = {"key": key, "kind": kind, "default": default, "help": p.help}
        if kind == "choice":
            entry["choices"] = list(t.choices)
        if isinstance(t, click.IntRange | click.FloatRange):
            entry.update(min=t.min, max=t.max)
        described.append(entry)
    return described


def to_argv(options: dict) -> list[str]:
    """{TOML key: value} -> train's flags; raises OptionsError for an unknown key or a value no
    flag can carry. Values click would refuse are left for parse() to refuse in click's words."""
    if not isinstance(options, dict):
        raise OptionsError("the options must be a JSON object whose keys are those of the config files")
    known = option_keys()
    argv = []
    for key, value in options.items():
        param = known.get(key)
        if param is None:
            reason = ("is chosen by the server" if key in PAGE_KEYS_EXCLUDED
                      else "is not an option of train")  # fmt: skip
            raise OptionsError(f"unknown key {key!r}: it {reason}; the keys are: {', '.join(known)}")
        if value is None:
            continue
        flag = param.opts[0]
        if param.is_flag:
            if not isinstance(value, bool):
                raise OptionsError(f"{key} = {value!r} should be true or false")
            argv.append(flag if value else param.secondary_opts[0])
            continue
        values = value if param.multiple and isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, dict | list):
                raise OptionsError(f"{key} = {v!r} should be a number or a string")
            argv += [flag, str(v).lower() if isinstance(v, bool) else str(v)]
    return argv


def parse(argv: list[str]) -> dict:
    """train's parameters for these flags, checked by click as the command line checks them."""
    from mnistsoftmax import runs

    command = train_command()
    try:
        with command.make_context("train", list(argv)) as ctx:
            config = {k: v for k, v in ctx.params.items() if k not in PAGE_KEYS_EXCLUDED}
    except click.ClickException as exc:
        raise OptionsError(exc.format_message()) from None
    runs.check_config(config)
    return config


@dataclass
class Job:
    """One worker: `mnistsoftmax train ARGV --out RUNS/NAME.npz`."""

    name: str
    argv: list[str]
    options: dict  # the parameters it runs with (resumed runs: those of the checkpoint)
    out: Path
    process: subprocess.Popen
    started: float = field(default_factory=time.time)
    output: collections.deque = field(default_factory=lambda: collections.deque(maxlen=40))
    stopping: bool = False

    def _drain(self) -> None:
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def status(self) -> str:
        code = self.process.poll()
        if code is None:
            return "running"
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
        return errors[-1] if errors else f"the training worker ended with exit status {self.process.returncode}"

    def stop(self) -> None:
        """The Ctrl-C path, once: the worker saves NAME.interrupted.npz at the end of its batch."""
        if self.running and not self.stopping:
            self.stopping = True
            self.process.send_signal(signal.SIGINT)


class Trainer:
    """The runs a server starts in `runs_dir`, one at a time."""

    def __init__(self, runs_dir: Path):
        self.runs_dir = Path(runs_dir)
        self.job: Job | None = None
        self._lock = threading.Lock()
        self.closing = False

    def _new_name(self) -> str:
        stamp = time.strftime("run-%Y%m%d-%H%M%S")
        name, n = stamp, 1
        while any(self.runs_dir.glob(f"{name}.*")) or any(self.runs_dir.glob(f".{name}.*")):
            n += 1
            name = f"{stamp}-{n}"
        return name

    def start(self, options: dict) -> Job:
        """A new run with these options ({TOML key: value})."""
        argv = to_argv(options)
        config = parse(argv)
        with self._lock:
            self._refuse_if_busy()
            name = self._new_name()
            out = self.runs_dir / f"{name}.npz"
            self.job = self._spawn(name, argv, config, out)
            return self.job

    def resume(self, name: str) -> Job:
        """Go on with a stopped run of the runs folder."""
        if not isinstance(name, str):
            raise OptionsError(f"resume must be the id of a stopped run, not {name!r}")
        found = live.runs_in(self.runs_dir).get(name)
        if found is None or found.status != "stopped":
            state = "no run" if found is None else f"the run is {found.status}, not stopped:"
            raise OptionsError(f"{state} {name!r} cannot be resumed; the stopped runs are in /api/runs")
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
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mnistsoftmax", "train", *argv, "--out", str(out)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", checkpoint.RUNS_DIR_ENV: str(self.runs_dir)}
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            encoding="utf-8", errors="replace", env=env, start_new_session=True,
        )  # fmt: skip
        job = Job(name, argv, config, out, process)
        threading.Thread(target=job._drain, daemon=True, name=f"worker output {name}").start()
        return job

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
