"""Probes (a fixed set of test images looked at while training) and following a run's metrics
file from another process while it is written."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnistsoftmax import checkpoint, live, probes
from mnistsoftmax.cli import main
from mnistsoftmax.functional import log_softmax
from mnistsoftmax.inference import Normalization
from mnistsoftmax.models import build_model
from mnistsoftmax.training import Hooks, Interrupted, TrainSettings, default_observe_every, train
from tests.conftest import synthetic_digits, write_dataset

ROOT = Path(__file__).parents[1]


def test_probe_set_is_k_of_each_class_from_the_seed():
    labels = np.random.default_rng(5).integers(0, 10, size=2000)
    chosen = probes.choose(labels, seed=3)
    assert len(chosen) == 10 * probes.PER_CLASS and len(set(chosen.tolist())) == len(chosen)
    assert labels[chosen].tolist() == sorted(labels[chosen].tolist())  # grouped by class, ascending
    assert np.bincount(labels[chosen]).tolist() == [probes.PER_CLASS] * 10
    assert np.array_equal(chosen, probes.choose(labels, seed=3))
    assert not np.array_equal(chosen, probes.choose(labels, seed=4))
    # A class with fewer images sets K for every class; an absent class is left out.
    few = np.array([0] * 50 + [1] * 7 + [3] * 40)
    assert np.bincount(few[probes.choose(few, seed=0)]).tolist() == [7, 7, 0, 7]


def test_probe_record_is_the_quantiles_of_each_true_class():
    """Every number of a probe record against np.quantile and the cross entropy, computed here."""
    rng = np.random.default_rng(0)
    images, labels = synthetic_digits(400, rng)
    chosen = probes.choose(labels, seed=0, per_class=8)
    model = build_model("mlp", rng, hidden=16)
    norm = Normalization.of(images)
    record = probes.Probe(model, images[chosen], labels[chosen], norm).record(model, step=7, epoch=2)

    x = norm.apply(images[chosen].reshape(len(chosen), -1))
    Z, _ = model.forward(x)
    Z = Z.astype(np.float64)
    y = labels[chosen].astype(int)
    logp = log_softmax(Z)
    assert record["step"] == 7 and record["epoch"] == 2 and record["images"] == len(y)
    assert record["classes"] == list(range(10))
    assert record["loss"] == pytest.approx(-logp[np.arange(len(y)), y].mean(), rel=1e-12)
    assert record["accuracy"] == pytest.approx((Z.argmax(1) == y).mean())
    for view, values, decimals in (("logits", Z, 3), ("softmax", np.exp(logp), 4)):
        for c in range(10):
            expected = np.quantile(values[y == c], probes.QUANTILES, axis=0)  # (5, C)
            for i, stat in enumerate(probes.STATS):
                assert np.allclose(record[view][stat][c], expected[i], atol=0.6 * 10**-decimals), (view, stat, c)
    json.dumps(record)  # plain JSON


def test_weights_record_holds_the_weights_as_images():
    model = build_model("mlp", np.random.default_rng(1), hidden=40)
    model.params["W2"][7] *= 50  # unit 7 now speaks loudest to the outputs
    record = probes.weights_record(model, step=0, epoch=1)
    assert record["units"][0] == 7 and len(record["units"]) == probes.WEIGHT_IMAGES
    images = probes.decode_weight_images(record)
    W = model.params["W1"][:, 7].astype(np.float64)
    assert np.allclose(images[0].ravel(), W / np.abs(W).max(), atol=0.5 / 127 + 1e-9)
    linear = probes.weights_record(build_model("linear", np.random.default_rng(1)), 0, 1)
    assert linear["units"] == list(range(10))


def small_run(probe_every, stop_before=None, resume=None, model=None):
    rng = np.random.default_rng(0)
    images, labels = synthetic_digits(600, rng)
    test_images, test_labels = synthetic_digits(200, rng)
    model = model or build_model("mlp", np.random.default_rng(1), hidden=32)
    norm = Normalization.of(images)
    chosen = probes.choose(test_labels, seed=0)
    probe = probes.Probe(model, test_images[chosen], test_labels[chosen], norm)
    settings = TrainSettings(epochs=3, batch_size=64, lr=0.05, momentum=0.9, probe_every=probe_every, log_every=5)
    seen = {"batches": 0}

    def should_stop():
        seen["batches"] += 1
        return stop_before is not None and seen["batches"] > stop_before

    hooks = Hooks(should_stop=should_stop, observe=probe)
    try:
        train(model, images, labels, norm, settings, np.random.default_rng(2), hooks=hooks, resume=resume)
    except Interrupted as exc:
        return model, hooks.records, exc.state
    return model, hooks.records, None


def test_probes_cadence_and_the_first_before_any_step():
    """10 steps an epoch, probe every 4: steps 0, 4, 8, ..., 28 and the last (30); the first
    before any step, at a loss near ln 10; weights at the start and after each epoch. The weights
    are those of a run without probes, bit for bit."""
    model, records, _ = small_run(probe_every=4)
    kinds = [r["type"] for r in records]
    assert kinds[:3] == ["probe", "weights", "step"]
    first = records[0]
    assert first["step"] == 0 and abs(first["loss"] - math.log(10)) < 0.1 and 0.0 <= first["accuracy"] <= 0.3
    assert all(abs(p - 0.1) < 0.05 for p in first["softmax"]["median"][0])  # every class near 10 %
    probe_steps = [r["step"] for r in records if r["type"] == "probe"]
    assert probe_steps == [0, 4, 8, 12, 16, 20, 24, 28, 30]
    assert [(r["step"], r["epoch"]) for r in records if r["type"] == "weights"] == [(0, 1), (10, 1), (20, 2), (30, 3)]
    last = [r for r in records if r["type"] == "probe"][-1]
    assert last["loss"] < 0.5 * first["loss"]
    # Each probe comes after the step record of its step: the records stay in order of steps.
    steps_in_order = [r["step"] for r in records if r["type"] in ("probe", "step")]
    assert steps_in_order == sorted(steps_in_order)

    plain, plain_records, _ = small_run(probe_every=0)
    assert not any(r["type"] in ("probe", "weights") for r in plain_records)
    for name, p in model.params.items():
        assert p.tobytes() == plain.params[name].tobytes(), name


def test_default_cadence_is_about_twenty_an_epoch():
    assert default_observe_every(422) == 42 and default_observe_every(10) == 1 and default_observe_every(3) == 1
    model, records, _ = small_run(probe_every=None)  # 10 steps an epoch: every step
    assert [r["step"] for r in records if r["type"] == "probe"] == list(range(31))


@pytest.mark.parametrize("stop_before", [4, 10, 17])
def test_probes_resume_where_they_stopped(stop_before):
    """Interrupted and resumed, the run's probes are those of the uninterrupted run, none twice."""
    _, straight, _ = small_run(probe_every=4)
    model, first, state = small_run(probe_every=4, stop_before=stop_before)
    _, second, _ = small_run(probe_every=4, resume=state, model=model)

    def without_time(records):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in records]

    assert without_time(first + second) == without_time(straight)


def cli_env(**extra):
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}


def test_a_run_in_progress_is_followed_from_another_process(tmp_path):
    """`train` in another process: live.in_progress finds its partial metrics file while it runs,
    follow() reads records before the run ends and stops when it does, and what it read is the
    finished metrics file, record for record. The folder never holds a metrics file under the
    final name before the end."""
    data = tmp_path / "data"
    write_dataset(data, n_train=20000, n_test=500)
    runs = tmp_path / "runs"
    out = runs / "watched.npz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistsoftmax", "train", "--dataset", "custom", "--data-dir", str(data), "--epochs", "6",
         "--hidden", "256", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not live.in_progress(runs) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.02)
        found = live.in_progress(runs)
        assert list(found) == ["watched"] and found["watched"].name.endswith(".partial")
        assert live.runs_in(runs)["watched"].status == "running"
        assert not checkpoint.metrics_path(out).exists()
        followed, alive_at = [], []
        for record in live.follow(found["watched"], poll=0.05):
            followed.append(record)
            alive_at.append(proc.poll() is None)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        proc.kill()
    assert alive_at[0] and alive_at.count(True) > 10  # read while the run was going
    assert followed[0]["type"] == "init" and followed[-1]["type"] == "test"
    assert followed == checkpoint.read_metrics(out)
    assert live.in_progress(runs) == {} and live.runs_in(runs)["watched"].status == "finished"


def test_a_killed_runs_partial_file_is_not_in_progress(tmp_path):
    """A run killed outright leaves its partial file; nobody holds its lock, so it is no run in
    progress, and a follower of it ends."""
    data = tmp_path / "data"
    write_dataset(data, n_train=20000, n_test=500)
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistsoftmax", "train", "--dataset", "custom", "--data-dir", str(data),
         "--epochs", "50", "--out", str(runs / "doomed.npz")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env(),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not live.in_progress(runs) and time.monotonic() < deadline:
        time.sleep(0.02)
    partial = live.in_progress(runs)["doomed"]
    with live.Follower(partial) as follower:  # killed after its first records, not before
        while not follower.read() and time.monotonic() < deadline:
            time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=20)
    assert partial.exists() and live.in_progress(runs) == {} and "doomed" not in live.runs_in(runs)
    records = list(live.follow(partial, poll=0.01))
    assert records and records[0]["type"] == "init"


def test_follower_returns_whole_lines_only(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n{"b"')
    with live.Follower(path) as follower:
        assert follower.read() == [{"a": 1}] and not follower.writing()
        with open(path, "a") as f:
            f.write(": 2}\n")
        assert follower.read() == [{"b": 2}] and follower.read() == []


def test_probe_every_option(tmp_path, tiny_data):
    """--probe-every on the command line and in the metrics file; 0 writes no probes."""
    runner = CliRunner()
    base = ["train", "--dataset", "custom", "--data-dir", str(tiny_data), "--epochs", "1", "--hidden", "16"]
    assert runner.invoke(main, [*base, "--probe-every", "2", "--out", str(tmp_path / "a.npz")]).exit_code == 0
    records = checkpoint.read_metrics(tmp_path / "a.npz")
    assert [r["step"] for r in records if r["type"] == "probe"] == [0, 2, 4, 5]  # 540 images, batches of 128
    init = records[0]
    assert init["config"]["probe_every"] == 2 and init["steps_per_epoch"] == 5 and init["dataset"] == "custom"
    assert runner.invoke(main, [*base, "--probe-every", "0", "--out", str(tmp_path / "b.npz")]).exit_code == 0
    assert not any(r["type"] in ("probe", "weights") for r in checkpoint.read_metrics(tmp_path / "b.npz"))
    result = runner.invoke(main, [*base, "--probe-every", "-1"])
    assert result.exit_code == 2 and "--probe-every" in result.stderr
