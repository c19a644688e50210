"""Nothing lost: signals and kills during training (real subprocesses), atomic writes, resuming."""

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnistsoftmax import checkpoint, fileio
from mnistsoftmax.cli import main
from tests.conftest import write_dataset

# Long enough in steps that a signal lands mid-run, short in seconds: ~40 us per step.
QUICK = ["train", "--dataset", "custom", "--model", "mlp", "--hidden", "32", "--batch-size", "8", "--log-every", "5",
         "--seed", "4", "--epochs", "1"]  # fmt: skip
TRAIN = [*QUICK[:-1], "60"]


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "data"
    write_dataset(folder, n_train=2000, n_test=100)
    return folder


def cli(*args):
    return [sys.executable, "-m", "mnistsoftmax", *map(str, args)]


def start_and_signal(args, out: Path, sig, env) -> subprocess.CompletedProcess:
    """Start `mnistsoftmax train`, wait for its first step records, send `sig`, wait for the end."""
    proc = subprocess.Popen(cli(*args, "--out", out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = list(out.parent.glob(f".{out.stem}.metrics.jsonl.*.partial"))
        if partial and partial[0].read_text().count('"type": "step"') >= 3:
            break
        if proc.poll() is not None:
            pytest.fail(f"training ended before the signal:\n{proc.stderr.read()}")
        time.sleep(0.01)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def file_size_limit(nbytes: int):
    """A preexec_fn for subprocess: files the child writes may not grow beyond nbytes, as on a
    nearly full disk (no root needed). SIGXFSZ ignored, so a write fails with EFBIG instead of
    killing the process."""

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return limit


def params_of(path):
    model, _ = checkpoint.load(path)
    return {k: v.tobytes() for k, v in model.params.items()}


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_resumable_checkpoint_and_resume_is_bit_identical(tmp_path, data_dir, sig, status):
    """SIGINT/SIGTERM: exit 128+signal, a resumable checkpoint and how to resume; resuming ends
    with weights bit-identical to a run that was never interrupted."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    reference = tmp_path / "reference.npz"
    done = subprocess.run(cli(*TRAIN, "--data-dir", data_dir, "--out", reference), capture_output=True, text=True,
                          env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr

    out = tmp_path / "run" / "model.npz"
    stopped = start_and_signal([*TRAIN, "--data-dir", data_dir], out, sig, env)
    assert stopped.returncode == status, stopped.stderr
    saved = checkpoint.interrupted_path(out)
    assert f"resume with: mnistsoftmax train --resume {saved}" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert saved.exists() and not out.exists()  # the partial run never poses as a finished one
    assert checkpoint.metrics_path(saved).exists() and not checkpoint.metrics_path(out).exists()
    _, meta, state = checkpoint.load_resumable(saved)
    assert 0 < meta["resume"]["step"] and set(state) == {"velocity.W1", "velocity.b1", "velocity.W2", "velocity.b2"}

    resumed = subprocess.run(cli("train", "--resume", saved), capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert params_of(out) == params_of(reference)
    assert not saved.exists()  # used up
    lines = checkpoint.metrics_path(out).read_text().splitlines()
    steps = [line for line in lines if '"type": "step"' in line]
    assert len(steps) == len([x for x in checkpoint.metrics_path(reference).read_text().splitlines()
                              if '"type": "step"' in x])  # fmt: skip


def test_sigkill_leaves_the_last_good_checkpoint(tmp_path, data_dir):
    """A run killed outright leaves the previous checkpoint and metrics untouched, and no new
    file that looks finished."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    out = tmp_path / "model.npz"
    first = subprocess.run(cli(*QUICK, "--data-dir", data_dir, "--out", out),
                           capture_output=True, text=True, env=env)  # fmt: skip
    assert first.returncode == 0, first.stderr
    before = out.read_bytes(), checkpoint.metrics_path(out).read_bytes()
    killed = start_and_signal([*TRAIN, "--data-dir", data_dir], out, signal.SIGKILL, env)
    assert killed.returncode == -signal.SIGKILL
    assert (out.read_bytes(), checkpoint.metrics_path(out).read_bytes()) == before
    assert not checkpoint.interrupted_path(out).exists()
    checkpoint.load(out)


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    """A write that fails midway leaves the old file as it was and no temporary file."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def failing(f):
        f.write(b"new but not fin")
        raise OSError("disk full")

    with pytest.raises(OSError):
        fileio.atomic_write(path, failing)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


def test_divergence_keeps_the_last_good_checkpoint(tmp_path, data_dir):
    """A diverging run writes no checkpoint and no metrics; the previous ones stay as they were."""
    out = tmp_path / "model.npz"
    runner = CliRunner()
    assert runner.invoke(main, [*QUICK, "--data-dir", str(data_dir), "--out", str(out)]).exit_code == 0
    before = out.read_bytes(), checkpoint.metrics_path(out).read_bytes()
    result = runner.invoke(main, [*QUICK, "--lr", "1e30", "--data-dir", str(data_dir),
                                  "--out", str(out)])  # fmt: skip
    assert result.exit_code == 1 and "lower learning rate" in result.stderr
    assert (out.read_bytes(), checkpoint.metrics_path(out).read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "model.metrics.jsonl", "model.npz"]


def test_resume_refuses_changed_settings_and_finished_checkpoints(tmp_path, data_dir):
    """--resume with other settings is a usage error; a finished checkpoint is not resumable."""
    out = tmp_path / "model.npz"
    runner = CliRunner()
    assert runner.invoke(main, [*QUICK, "--data-dir", str(data_dir), "--out", str(out)]).exit_code == 0
    result = runner.invoke(main, ["train", "--resume", str(out)])
    assert result.exit_code == 1 and "not one to resume" in result.stderr
    fake = checkpoint.interrupted_path(out)
    model, meta = checkpoint.load(out)
    velocity = {f"velocity.{k}": np.zeros_like(v) for k, v in model.params.items()}
    checkpoint.save(fake, model, {**meta, "resume": {}, "records": [], "out": str(out)}, optimizer_state=velocity)
    result = runner.invoke(main, ["train", "--resume", str(fake), "--lr", "0.5", "--epochs", "3"])
    assert result.exit_code == 2 and "drop --epochs, --lr" in result.stderr


def test_resume_with_a_damaged_state_is_refused(tmp_path, data_dir):
    """A resumable checkpoint whose saved state is incomplete gets one clear line, no traceback."""
    out = tmp_path / "model.npz"
    assert CliRunner().invoke(main, [*QUICK, "--data-dir", str(data_dir), "--out", str(out)]).exit_code == 0
    model, meta = checkpoint.load(out)
    fake = checkpoint.interrupted_path(out)
    velocity = {f"velocity.{k}": np.zeros_like(v) for k, v in model.params.items()}
    checkpoint.save(fake, model, {**meta, "resume": {"epoch": 1}, "records": [], "out": str(out)},
                    optimizer_state=velocity)  # fmt: skip
    result = CliRunner().invoke(main, ["train", "--resume", str(fake)])
    assert result.exit_code == 1 and "saved training state is incomplete" in result.stderr


@pytest.mark.parametrize(
    "limit, what", [(0, "the metrics file"), (16_000, "checkpoint")], ids=["metrics", "checkpoint"]
)
def test_a_run_that_cannot_write_leaves_nothing_new_and_names_the_file(tmp_path, data_dir, limit, what):
    """A full disk (here a file-size limit) before the metrics' first record or at the checkpoint:
    one line naming the file that could not be written, and the output folder exactly as it was
    (no partial or temporary file, the previous checkpoint and metrics untouched)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    out = tmp_path / "runs" / "model.npz"
    # No probes: the metrics file stays small enough for the limit to fall on the checkpoint.
    args = [*QUICK, "--model", "linear", "--probe-every", "0", "--data-dir", data_dir, "--out", out]
    assert subprocess.run(cli(*args), capture_output=True, env=env).returncode == 0
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}

    failed = subprocess.run(cli(*args), capture_output=True, text=True, env=env, preexec_fn=file_size_limit(limit))
    assert failed.returncode == 1, failed.stderr
    error = failed.stderr.strip().splitlines()[-1]
    target = checkpoint.metrics_path(out) if what == "the metrics file" else out
    assert error == f"Error: cannot write {what} {target}: File too large"
    assert "Traceback" not in failed.stderr
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before


KILL_BETWEEN_RENAMES = """
import os, signal, sys
from mnistsoftmax import checkpoint
def killed(self, path=None):  # the checkpoint is renamed into place; the metrics file is next
    os.kill(os.getpid(), signal.SIGKILL)
checkpoint.MetricsFile.commit = killed
from mnistsoftmax.cli import main
main(sys.argv[1:])
"""


def test_a_kill_between_the_two_renames_is_finished_by_the_next_reader(tmp_path, data_dir):
    """SIGKILL after the checkpoint's rename and before the metrics file's: the next reader
    pairs them again (the run's id in both) by renaming the dead run's partial file into place:
    the checkpoint and its metrics are one run's, never two."""
    out = tmp_path / "model.npz"
    args = [*QUICK, "--data-dir", data_dir, "--out", out]
    assert CliRunner().invoke(main, [str(a) for a in args]).exit_code == 0
    first_run = checkpoint.read_meta(out)["run"]
    killed = subprocess.run([sys.executable, "-c", KILL_BETWEEN_RENAMES, *map(str, [*args[:-4], "--seed", "5",
                             "--data-dir", data_dir, "--out", out])], capture_output=True, text=True)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    second_run = checkpoint.read_meta(out)["run"]
    assert second_run != first_run
    partials = list(tmp_path.glob(".*.partial"))
    assert len(partials) == 1  # the dead run's records, not yet in place
    records = checkpoint.read_metrics(out)
    assert records[0]["run"] == second_run and records[-1]["type"] == "test"
    assert records[-1]["accuracy"] == checkpoint.read_meta(out)["metrics"]["test_accuracy"]
    assert list(tmp_path.glob(".*.partial")) == []
