"""Learning-rate schedules, as a registry: each a name, its help and its rate at a step. Pure
Python (no numpy), so the options read the names and help without loading the maths."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    name: str
    help: str
    rate: Callable[[float, int, int], float]  # (base_lr, step, total_steps) -> lr


def _cosine(base_lr: float, step: int, total_steps: int) -> float:
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * step / total_steps))


def _step(base_lr: float, step: int, total_steps: int) -> float:
    return base_lr * (0.1 ** ((step >= total_steps // 2) + (step >= (3 * total_steps) // 4)))


WARMUP = 0.1  # the share of the steps warmup-cosine spends rising to the base rate


def _warmup_cosine(base_lr: float, step: int, total_steps: int) -> float:
    """Linear from base_lr / 10 to base_lr over the first WARMUP of the steps, then _cosine over the rest:
    a high rate early is safe once the weights have left their random start."""
    warm = max(1, round(WARMUP * total_steps))
    if step < warm:
        return base_lr * (0.1 + 0.9 * step / warm)
    return _cosine(base_lr, step - warm, max(1, total_steps - warm))


SCHEDULES: dict[str, Schedule] = {
    "constant": Schedule("constant", "the same rate throughout", lambda base_lr, step, total: base_lr),
    "cosine": Schedule("cosine", "down to 0 along half a cosine, a smooth decay with no milestones to tune",
                       _cosine),
    "step": Schedule("step", "divided by 10 after 50 % and again after 75 % of the steps", _step),
    "warmup-cosine": Schedule("warmup-cosine", "rising linearly from a tenth of the rate over the first 10 % of "
                              "the steps, then cosine to 0", _warmup_cosine),
}  # fmt: skip


def learning_rate(schedule: str, base_lr: float, step: int, total_steps: int) -> float:
    """Learning rate at `step` (0-based) of `total_steps` under the schedule of that name."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}: expected one of {', '.join(SCHEDULES)}")
    return SCHEDULES[schedule].rate(base_lr, step, total_steps)
