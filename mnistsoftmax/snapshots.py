"""Snapshots of a run's weights at fixed steps, for the timeline: the user's digit under the
weights of step 0 (every class near 10 %, loss near ln 10), of the steps where the loss falls
fastest, and of the end.

The schedule depends only on the run's length and the count asked for: step 0, then steps spaced
evenly in log(step) up to the last one (dense early, where the loss falls fastest, sparse late).
A resumed run computes the same schedule and goes on taking the snapshots the interrupted one had
not reached, so it ends with the same snapshots as a run that never stopped.

Stored in the checkpoint beside the parameters, one array per parameter stacked over the
snapshots, in float16 (half the bytes; each snapshot's forward pass then differs from the float32
weights' by what float16's 11-bit mantissa loses, bounded by a test), under the member names
`snapshots/steps` (int64, (S,)) and `snapshots/NAME` ((S, *NAME's shape)). A 784-512-10 net's 24
snapshots are 18.6 MB. The last snapshot is the final weights rounded to float16: the views show
the checkpoint's own float32 weights at the last index (Snapshots.model_at).
"""

from __future__ import annotations

import numpy as np

from mnistsoftmax.errors import MnistSoftmaxError
from mnistsoftmax.registry import DEFAULT_SNAPSHOTS as DEFAULT_COUNT
from mnistsoftmax.registry import MAX_SNAPSHOTS as MAX_COUNT

BUDGET_BYTES = 256 << 20  # a default count is lowered to fit: a checkpoint must stay readable (1 GB of arrays)
PREFIX = "snapshots/"
STEPS = PREFIX + "steps"
STORED = np.dtype(np.float16)
MAX_WEIGHT = float(np.finfo(np.float16).max)  # what a run's float16 snapshots can hold; beyond it, a forged file


class SnapshotError(MnistSoftmaxError):
    """Snapshots that do not belong to the model or the run they are stored with."""


def is_member(name: str) -> bool:
    """Whether a checkpoint member of this name is part of the snapshots."""
    return name.startswith(PREFIX)


def schedule(total_steps: int, count: int) -> tuple[int, ...]:
    """About `count` steps from 0 to total_steps (both included), spaced evenly in log(step) after
    step 0; every step when count exceeds the run's length. () when count is 0; a count of 1 keeps
    the two ends (a timeline needs where it starts and where it ends)."""
    if count <= 0:
        return ()
    if count >= total_steps + 1:
        return tuple(range(total_steps + 1))
    if count == 1:
        return (0, total_steps)
    # Rounding merges the first points of a log spacing: ask for more until `count` remain distinct.
    for n in range(count - 1, total_steps + 1):
        spaced = np.geomspace(1, total_steps, n) if n > 1 else [total_steps]
        steps = sorted({0, *np.round(spaced).astype(int).tolist()})
        if len(steps) >= count:
            return tuple(steps)
    return tuple(range(total_steps + 1))


def snapshot_bytes(model) -> int:
    """The bytes one snapshot of this model takes in the checkpoint."""
    return sum(p.size for p in model.params.values()) * STORED.itemsize


def count_for(requested: int | None, model) -> int:
    """The count a run keeps: `requested`, or for None DEFAULT_COUNT lowered to fit BUDGET_BYTES
    (0 for a net too large to keep two). Raises SnapshotError for a requested count over budget."""
    size = snapshot_bytes(model)
    fits = BUDGET_BYTES // size
    if requested is None:
        return min(DEFAULT_COUNT, fits) if fits >= 2 else 0
    if requested > fits:
        raise SnapshotError(
            f"--snapshots {requested} of this net would take {requested * size / 2**20:.0f} MB, above the "
            f"{BUDGET_BYTES >> 20} MB a checkpoint keeps for them: ask for at most {fits}, or 0 for none"
        )
    return requested


def check_steps(steps: np.ndarray | None) -> list[int]:
    """A checkpoint's snapshot steps, checked: 2 to MAX_COUNT + 2 of them (what schedule() gives),
    increasing from 0 (the last is the trained weights', never step 0). Raises SnapshotError."""
    if steps is None or steps.ndim != 1 or len(steps) < 2:
        raise SnapshotError("the snapshots have fewer than two steps (step 0 and the last)")
    if len(steps) > MAX_COUNT + 2:
        raise SnapshotError(f"the snapshots claim {len(steps):,} steps, more than a run keeps ({MAX_COUNT + 2})")
    steps = [int(s) for s in steps]
    if steps[0] != 0 or any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise SnapshotError(f"the snapshots' steps {steps[:6]} do not increase from 0")
    return steps


class Snapshots:
    """The snapshots of one run: `planned` steps (the schedule), `steps` taken so far, and per
    parameter the list of its copies. take() is called after every step and keeps the scheduled ones."""

    def __init__(self, planned: tuple[int, ...], steps=(), arrays: dict[str, list[np.ndarray]] | None = None):
        self.planned = tuple(planned)
        self.steps = list(steps)
        self.dropped: list[int] = []  # steps whose snapshot was damaged and left out (from_arrays)
        self.arrays = arrays or {}
        if tuple(self.steps) != self.planned[: len(self.steps)]:
            # Where they part, not their first steps: those are alike more often than not.
            i = next((i for i, (a, b) in enumerate(zip(self.steps, self.planned, strict=False)) if a != b),
                     min(len(self.steps), len(self.planned)))  # fmt: skip
            stored = self.steps[i] if i < len(self.steps) else "none"
            planned = self.planned[i] if i < len(self.planned) else "none (the schedule has ended)"
            raise SnapshotError(f"the snapshots stored leave the run's schedule at snapshot {i}: step {stored}, "
                                f"where the schedule has {planned}")  # fmt: skip

    @property
    def done(self) -> bool:
        return len(self.steps) == len(self.planned)

    def take(self, model, step: int) -> None:
        """Keep a copy of the parameters if `step` is the next one scheduled."""
        if self.done or step != self.planned[len(self.steps)]:
            return
        for name, p in model.params.items():
            copy = p.astype(STORED)
            if not np.isfinite(copy).all():  # beyond float16's range: this one is kept in float32
                copy = p.astype(np.float32)
            self.arrays.setdefault(name, []).append(copy)
        self.steps.append(step)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The checkpoint members ({} with none taken): steps (S,) int64, each parameter (S, ...)."""
        if not self.steps:
            return {}
        stacked = {PREFIX + name: np.stack(copies) for name, copies in self.arrays.items()}
        return {STEPS: np.array(self.steps, np.int64), **stacked}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], model) -> Snapshots:
        """Snapshots read from a checkpoint's members, checked against its model: the same
        parameters, each (S, *shape) and finite, the steps increasing from 0. Their schedule is
        the steps themselves (a resumed run checks them against its own: runs._snapshots)."""
        steps = check_steps(arrays.get(STEPS))
        names = {name[len(PREFIX) :] for name in arrays if name != STEPS}
        if names != set(model.params):
            raise SnapshotError(f"the snapshots hold {sorted(names)}, the model {sorted(model.params)}")
        # Damage stays in the snapshot it is in: a snapshot holding a value that is not finite, or
        # beyond what float16 holds (no run stored it), is left out, the others kept. The last is
        # never left out: its weights are the checkpoint's own (model_at).
        bad, worst = np.zeros(len(steps), bool), {}
        for name, p in model.params.items():
            stack = arrays[PREFIX + name]
            if stack.shape != (len(steps), *p.shape):
                raise SnapshotError(f"the snapshots of {name} are {stack.shape}, not {(len(steps), *p.shape)}")
            flat = np.abs(stack.reshape(len(steps), -1))
            damaged = ~np.isfinite(flat).all(axis=1) | (flat > MAX_WEIGHT).any(axis=1)  # NaN compares False
            if damaged.any():
                finite = flat[np.isfinite(flat)]
                worst[name] = float(finite.max()) if finite.size else float("nan")
            bad |= damaged
        bad[-1] = False
        kept = [i for i in range(len(steps)) if not bad[i]]
        dropped = [steps[i] for i in range(len(steps)) if bad[i]]
        if len(kept) < 2:
            where = ", ".join(f"{name} holds {value:.3g}" for name, value in worst.items())
            raise SnapshotError(f"every snapshot but the last holds values that are not finite or beyond the "
                                f"{MAX_WEIGHT:g} float16 holds ({where}): no run stored them")  # fmt: skip
        per_name = {name: [arrays[PREFIX + name][i] for i in kept] for name in model.params}
        kept_steps = [steps[i] for i in kept]
        snaps = cls(kept_steps, kept_steps, per_name)
        snaps.dropped = dropped
        return snaps

    def models(self, final) -> list:
        """Every snapshot's model, in order (model_at for each index)."""
        return [self.model_at(i, final) for i in range(len(self.steps))]

    def model_at(self, index: int, final):
        """The model of snapshot `index` (float32); the last is `final` itself, the checkpoint's
        own weights, so that the timeline's end shows exactly what the trained model answers."""
        if not 0 <= index < len(self.steps):
            raise IndexError(index)
        if index == len(self.steps) - 1 and self.done:
            return final
        params = {name: copies[index].astype(final.params[name].dtype) for name, copies in self.arrays.items()}
        return final.like(params)
