"""Snapshots of a run's weights (snapshots.py): the schedule, what a run keeps and stores, resuming,
and the checks on what a file claims."""

from __future__ import annotations

import itertools
import zipfile

import numpy as np
import pytest

from mnistsoftmax import checkpoint, inference, options, runs, snapshots
from mnistsoftmax.models import build
from mnistsoftmax.training import Hooks


@pytest.mark.parametrize("total", [1, 5, 23, 24, 100, 844, 8600, 430_000])
@pytest.mark.parametrize("count", [2, 10, 24, 30])
def test_the_schedule_runs_from_step_0_to_the_last_spaced_in_log_step(total, count):
    steps = snapshots.schedule(total, count)
    assert steps[0] == 0 and steps[-1] == total
    assert all(b > a for a, b in itertools.pairwise(steps))
    if count >= total + 1:
        assert steps == tuple(range(total + 1))
        return
    assert count <= len(steps) <= count + 2
    # After the first few integers, each step is a fixed factor past the one before it.
    ratios = [b / a for a, b in itertools.pairwise(steps[1:]) if a >= 20]
    if len(ratios) >= 3:
        assert max(ratios) / min(ratios) < 1.2


def test_the_schedule_of_no_snapshots_is_empty_and_of_one_keeps_both_ends():
    """--snapshots 1 kept (1000,), which check_steps then refused as not starting at 0: the
    checkpoint's own timeline unreadable. A timeline is at least its two ends; a file claiming
    only step 0 would label the trained weights "step 0", and is refused."""
    assert snapshots.schedule(1000, 0) == ()
    assert snapshots.schedule(1000, 1) == snapshots.schedule(1000, 2) == (0, 1000)
    assert snapshots.check_steps(np.array(snapshots.schedule(1000, 1))) == [0, 1000]
    with pytest.raises(snapshots.SnapshotError, match="fewer than two steps"):
        snapshots.check_steps(np.array([0]))


def test_a_default_count_fits_the_budget_and_a_requested_one_over_it_is_refused():
    small = build("mlp", np.random.default_rng(0), [512])
    assert snapshots.count_for(None, small) == snapshots.DEFAULT_COUNT
    assert snapshots.count_for(0, small) == 0
    huge = build("mlp", np.random.default_rng(0), [8192, 8192])  # 73 M parameters: 140 MB a snapshot
    assert snapshots.count_for(None, huge) == 0
    with pytest.raises(snapshots.SnapshotError, match=r"--snapshots 24 of this net would take 3\d{3} MB.*at most 1"):
        snapshots.count_for(24, huge)


def _config(tiny_data, **more):
    return options.resolve({"dataset": "custom", "data_dir": str(tiny_data), "hidden": [16, 8], "epochs": 3,
                            "probe_every": 0, "lr": 0.05, **more})  # fmt: skip


def _stored(path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {k: archive[k] for k in archive.files if snapshots.is_member(k)}


def test_a_run_keeps_its_initial_and_final_weights_and_the_scheduled_steps(tmp_path, tiny_data):
    config = _config(tiny_data, snapshots=10)
    out = runs.execute(config, tmp_path / "run.npz", Hooks()).out
    model, meta = checkpoint.load(out)
    kept = checkpoint.load_snapshots(out, model)
    total = 3 * 5  # 540 training images in batches of 128
    assert kept.steps == list(snapshots.schedule(total, 10)) and kept.done
    assert checkpoint.snapshot_steps(out) == kept.steps
    initial = inference.initial_model(meta)
    for name, p in model.params.items():
        assert kept.arrays[name][0].dtype == np.float16
        assert kept.arrays[name][0].tobytes() == initial.params[name].astype(np.float16).tobytes()
        assert kept.arrays[name][-1].tobytes() == p.astype(np.float16).tobytes()
    assert kept.model_at(len(kept.steps) - 1, model) is model  # the last index is the checkpoint's own model
    first = kept.model_at(0, model)
    assert first.params["W1"].dtype == np.float32
    np.testing.assert_array_equal(first.params["W1"], initial.params["W1"].astype(np.float16))


def test_snapshots_off_leave_a_checkpoint_without_them(tmp_path, tiny_data):
    out = runs.execute(_config(tiny_data, snapshots=0), tmp_path / "run.npz", Hooks()).out
    model, _ = checkpoint.load(out)
    assert checkpoint.load_snapshots(out, model) is None and checkpoint.snapshot_steps(out) is None
    assert _stored(out) == {}


def test_a_resumed_run_ends_with_the_snapshots_of_one_that_never_stopped(tmp_path, tiny_data):
    config = _config(tiny_data)
    whole = runs.execute(config, tmp_path / "whole.npz", Hooks()).out
    calls = itertools.count()
    with pytest.raises(runs.Stopped) as stopped:
        runs.execute(config, tmp_path / "cut.npz", Hooks(should_stop=lambda: next(calls) == 7))  # mid epoch 2
    assert list(_stored(stopped.value.saved)[snapshots.STEPS]) == [0, 1, 2, 3, 4, 5, 6, 7]
    resumed = runs.execute(config, tmp_path / "cut.npz", Hooks(), resume=runs.load_resumable(stopped.value.saved))
    expected, got = _stored(whole), _stored(resumed.out)
    assert set(expected) == set(got) and len(expected[snapshots.STEPS]) == 16  # every step of 15, and step 0
    for name in expected:
        assert expected[name].tobytes() == got[name].tobytes(), name


def test_float16_snapshots_answer_within_a_bound_of_the_float32_weights(tmp_path, tiny_data):
    """The reduced precision the docs state: the final snapshot (float16) against the checkpoint's
    own float32 weights, on every test image, softmax probabilities apart by less than 2e-3."""
    from mnistsoftmax import datasets

    out = runs.execute(_config(tiny_data, hidden=[64]), tmp_path / "run.npz", Hooks()).out
    model, meta = checkpoint.load(out)
    kept = checkpoint.load_snapshots(out, model)
    rounded = snapshots.Snapshots(kept.planned + (10**6,), kept.steps, kept.arrays).model_at(len(kept.steps) - 1, model)
    assert rounded is not model
    test = datasets.load("custom", str(tiny_data)).test
    norm = inference.Normalization(**meta["normalization"])
    p32, p16 = (softmax(inference.logits(m, test.images, norm).astype(np.float64)) for m in (model, rounded))
    assert 0 < np.abs(p32 - p16).max() < 2e-3


def softmax(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _rewrite(path, change):
    """The checkpoint at `path` with its members changed by change(dict of arrays)."""
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    change(arrays)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.update({"snapshots/W1": a["snapshots/W1"][:, :5]}), r"snapshots of W1 are \(\d+, 5, 16\)"),
        (lambda a: a.pop("snapshots/b2"), r"the snapshots hold \['W1', 'W2', 'W3', 'b1', 'b3'\]"),
        (lambda a: a.update({"snapshots/steps": a["snapshots/steps"][::-1].copy()}), "do not increase from 0"),
        (lambda a: a.update({"snapshots/steps": np.arange(10**6)}), "claim 1,000,000 steps, more than a run keeps"),
        # one damaged snapshot is left out (test_timeline); all of them but the last is no timeline
        (
            lambda a: a["snapshots/W2"].__setitem__((slice(0, -1), 0, 0), np.inf),
            "but the last holds values that are not finite",
        ),
        (lambda a: a.update({"snapshots/W1": a["snapshots/W1"].astype(np.int8)}), "holds int8 values, not float16"),
        (lambda a: a.update({"snapshots/Wx": a["snapshots/W1"]}), "it holds 'snapshots/Wx.npy'"),
    ],
    ids=["shape", "missing", "order", "many", "infinite", "dtype", "stranger"],
)
def test_damaged_snapshots_are_refused_in_one_line_and_leave_the_model_readable(tmp_path, tiny_data, change, message):
    out = runs.execute(_config(tiny_data, snapshots=5), tmp_path / "run.npz", Hooks()).out
    _rewrite(out, change)
    if "stranger" in message or "Wx" in message:
        with pytest.raises(checkpoint.CheckpointError, match=message):
            checkpoint.load(out)
        return
    model, _ = checkpoint.load(out)  # predict never reads the snapshots
    with pytest.raises(checkpoint.CheckpointError, match=message) as refused:
        checkpoint.load_snapshots(out, model)
    assert "\n" not in str(refused.value) and str(out) in str(refused.value)


def test_a_snapshot_member_declaring_more_than_it_holds_is_refused(tmp_path, tiny_data):
    out = runs.execute(_config(tiny_data, snapshots=5), tmp_path / "run.npz", Hooks()).out
    with zipfile.ZipFile(out) as archive:
        members = {m.filename: archive.read(m) for m in archive.infolist()}
    data = members["snapshots/W1.npy"]
    members["snapshots/W1.npy"] = data[: len(data) - 10]
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    model, _ = checkpoint.load(out)
    with pytest.raises(checkpoint.CheckpointError, match="declares .* bytes of data and holds"):
        checkpoint.load_snapshots(out, model)
