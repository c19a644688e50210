"""Minibatch SGD with momentum and L2 weight decay, and learning-rate schedules.

Conventions (the same as torch.optim.SGD, so the benchmark can compare like with like):
    g <- g + 2 * reg * W                 weights only: the gradient of the loss term reg * sum(W**2)
    v <- momentum * v + g                velocity, starting at 0 (momentum 0: v is g)
    W <- W - lr * v
"""

from __future__ import annotations

import math

import numpy as np

from mnistsoftmax.blas import axpy
from mnistsoftmax.names import SCHEDULES


class SGD:
    """SGD over a dict of parameters, updated in place, with no allocation per step.

    The training loop never hands a gradient over: it passes `velocity` to the model's backward
    with beta = `momentum`, whose gemms compute v <- momentum * v + g in the pass that computes g,
    and then calls `update(lr)`. `step(grads, lr)` does both for a gradient computed elsewhere.
    """

    def __init__(
        self,
        params: dict[str, np.ndarray],
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        decay_names: tuple[str, ...] = (),
    ):
        self.params = params
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.decay_names = frozenset(decay_names)
        self.velocity = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self, grads: dict[str, np.ndarray], lr: float) -> None:
        """v <- momentum * v + g for every parameter, then update(lr). `grads` is only read."""
        for name, v in self.velocity.items():
            if self.momentum:
                v *= self.momentum
                v += grads[name]
            else:
                np.copyto(v, grads[name])  # not 0 * v + g: the old v may hold inf
        self.update(lr)

    def update(self, lr: float) -> None:
        """v <- v + 2 * reg * W (weights only), then W <- W - lr * v: two passes over each parameter."""
        for name, p in self.params.items():
            v = self.velocity[name]
            if self.weight_decay and name in self.decay_names:
                axpy(2.0 * self.weight_decay, p, v)
            axpy(-lr, v, p)


def learning_rate(schedule: str, base_lr: float, step: int, total_steps: int) -> float:
    """Learning rate at `step` (0-based) of `total_steps`.

    constant: base_lr throughout. cosine: from base_lr down to 0 along half a cosine, a smooth
    decay that needs no tuning of milestones. step: base_lr, divided by 10 after 50 % and again
    after 75 % of the steps.
    """
    if schedule == "constant":
        return base_lr
    if schedule == "cosine":
        return 0.5 * base_lr * (1.0 + math.cos(math.pi * step / total_steps))
    if schedule == "step":
        return base_lr * (0.1 ** ((step >= total_steps // 2) + (step >= (3 * total_steps) // 4)))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}: expected one of {', '.join(SCHEDULES)}")
