"""Optimizers apart from the backward, and learning-rate schedules, each a registry by name.

The backward produces gradients; an optimizer from OPTIMIZERS updates the parameters and owns its
state (as torch.optim does: `step()` reads the gradients, `state_dict()` holds the rest). The
conventions are torch.optim's, so the benchmark compares like with like; g is a parameter's
gradient, and weight decay (weights only) adds the gradient of reg * sum(W**2):

    g <- g + 2 * reg * W
    sgd        v <- momentum * v + g            (v starts at 0; momentum 0: v is g)
               W <- W - lr * v                  nesterov: W <- W - lr * (g + momentum * v)
    adam       m <- b1 m + (1 - b1) g;  s <- b2 s + (1 - b2) g^2          (t steps so far)
               W <- W - lr / (1 - b1^t) * m / (sqrt(s / (1 - b2^t)) + eps)

Every optimizer has the same interface:
    gradients, beta   where the backward writes the gradient, and the beta it writes it with
                      (models.Network.backward: gradients <- beta * gradients + g)
    step(lr)          update the parameters from what the backward left in `gradients`
    state_dict()      the state, {name: array}, every name its own; load_state_dict() takes it back

Plain SGD's fused path: its `gradients` are the velocity and its beta the momentum, so the gemm
that computes g computes v <- momentum * v + g in the same pass, and step() is two axpy per
parameter. Nothing else in the package knows: the loop calls backward, then step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mnistsoftmax import registry
from mnistsoftmax.blas import axpy
from mnistsoftmax.errors import MnistSoftmaxError
from mnistsoftmax.schedules import SCHEDULES, learning_rate  # noqa: F401  (read through optim by the loop)

# A saved state is taken back only within these bounds: a run whose velocity or moments reached 1e10
# diverged long before it was saved, and a float32 value near 3e38 overflows at the first update.
MAX_STATE_VALUE = 1e10
MAX_COUNTER = 10**12  # more steps than any run takes (10,000 epochs of 65,536 batches is 6.6e8)


class OptimizerStateError(MnistSoftmaxError):
    """A saved optimizer state that is not this optimizer's for these parameters."""


class Optimizer:
    """What every optimizer shares: the parameters, weight decay, and its state's checks."""

    slots: tuple[str, ...] = ()  # the per-parameter state arrays, each named SLOT.PARAMETER
    counters: tuple[str, ...] = ()  # the state's integers, each a 0-d int64 array
    nonnegative: tuple[str, ...] = ()  # slots that are means of squares

    def __init__(self, params: dict[str, np.ndarray], weight_decay: float = 0.0, decay_names: tuple[str, ...] = ()):
        self.params = params
        self.weight_decay = weight_decay
        self.decay_names = frozenset(decay_names)
        self.state = {f"{slot}.{name}": np.zeros_like(p) for slot in self.slots for name, p in params.items()}
        self.state |= {counter: np.zeros((), np.int64) for counter in self.counters}

    def _decay(self, name: str, p: np.ndarray, g: np.ndarray) -> None:
        if self.weight_decay and name in self.decay_names:
            axpy(2.0 * self.weight_decay, p, g)

    def add_gradients(self, grads: dict[str, np.ndarray]) -> None:
        """For a gradient computed elsewhere: gradients <- beta * gradients + g, as the backward
        writes it (then step(lr)). `grads` is only read."""
        for name, buf in self.gradients.items():
            if self.beta:
                buf *= self.beta
                buf += grads[name]
            else:
                np.copyto(buf, grads[name])  # not 0 * buf + g: the old buf may hold inf

    def state_dict(self) -> dict[str, np.ndarray]:
        """The optimizer's state: its arrays themselves (save them before the next step)."""
        return self.state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Take a saved state back, checked: exactly this optimizer's names, shapes and dtypes."""
        if set(state) != set(self.state):
            missing = sorted(set(self.state) - set(state)) or sorted(set(state) - set(self.state))
            raise OptimizerStateError(f"the saved optimizer state is not {self.name}'s for this model "
                                      f"({missing[0]!r} differs)")  # fmt: skip
        for key, mine in self.state.items():
            saved = np.asarray(state[key])
            if saved.shape != mine.shape or saved.dtype != mine.dtype:
                raise OptimizerStateError(f"the saved optimizer state {key} has shape {saved.shape} and dtype "
                                          f"{saved.dtype}, not {mine.shape} and {mine.dtype}")  # fmt: skip
            if saved.dtype.kind == "f" and not np.isfinite(saved).all():
                raise OptimizerStateError(f"the saved optimizer state {key} holds values that are not finite")
            if saved.dtype.kind == "f" and saved.size and np.abs(saved).max() > MAX_STATE_VALUE:
                raise OptimizerStateError(f"the saved optimizer state {key} holds {np.abs(saved).max():.3g}: no run "
                                          f"that trained leaves a value beyond {MAX_STATE_VALUE:g}")  # fmt: skip
            if key in self.counters and not 0 <= int(saved) <= MAX_COUNTER:
                raise OptimizerStateError(f"the saved optimizer state {key} is {int(saved)}, not a count of steps")
            if key.partition(".")[0] in self.nonnegative and saved.size and saved.min() < 0:
                raise OptimizerStateError(f"the saved optimizer state {key} holds negative values, where it is a "
                                          "mean of squares")  # fmt: skip
        for key, mine in self.state.items():
            mine[...] = state[key]


class SGD(Optimizer):
    """SGD with momentum (Nesterov's optionally), updated in place with no allocation per step."""

    name = "sgd"
    slots = ("velocity",)

    def __init__(self, params, momentum: float = 0.0, weight_decay: float = 0.0, decay_names=(), nesterov=False):
        super().__init__(params, weight_decay, decay_names)
        self.momentum, self.nesterov = momentum, nesterov
        self.velocity = {name: self.state[f"velocity.{name}"] for name in params}
        if nesterov:  # needs g apart from v
            self.gradients, self.beta = {name: np.zeros_like(p) for name, p in params.items()}, 0.0
        else:  # the fused path: the backward computes v <- momentum * v + g
            self.gradients, self.beta = self.velocity, momentum

    def step(self, lr: float) -> None:
        for name, p in self.params.items():
            v = self.velocity[name]
            if not self.nesterov:  # v already holds momentum * v + g
                self._decay(name, p, v)
                axpy(-lr, v, p)
                continue
            g = self.gradients[name]
            self._decay(name, p, g)
            v *= self.momentum
            v += g
            axpy(self.momentum, v, g)  # g + momentum * v: the step looks ahead along v
            axpy(-lr, g, p)


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) with torch.optim.Adam's defaults: b1 0.9, b2 0.999, eps 1e-8."""

    name = "adam"
    slots = ("moment1", "moment2")
    counters = ("steps",)
    nonnegative = ("moment2",)
    betas = (0.9, 0.999)
    eps = 1e-8

    def __init__(self, params, momentum: float = 0.0, weight_decay: float = 0.0, decay_names=(), nesterov=False):
        super().__init__(params, weight_decay, decay_names)
        self.gradients, self.beta = {name: np.zeros_like(p) for name, p in params.items()}, 0.0
        self.scratch = {name: np.zeros_like(p) for name, p in params.items()}

    def step(self, lr: float) -> None:
        b1, b2 = self.betas
        self.state["steps"] += 1
        t = int(self.state["steps"])
        correction1, correction2 = 1.0 - b1**t, 1.0 - b2**t
        for name, p in self.params.items():
            g, m, s, tmp = self.gradients[name], self.state[f"moment1.{name}"], self.state[f"moment2.{name}"], \
                self.scratch[name]  # fmt: skip
            self._decay(name, p, g)
            m *= b1
            axpy(1.0 - b1, g, m)
            s *= b2
            axpy(1.0 - b2, np.multiply(g, g, out=tmp), s)
            np.sqrt(s, out=tmp)
            tmp *= 1.0 / math.sqrt(correction2)
            tmp += self.eps
            np.divide(m, tmp, out=tmp)
            axpy(-lr / correction1, tmp, p)


@dataclass(frozen=True)
class OptimizerEntry:
    """An optimizer: its class, with its name and help from registry.OPTIMIZERS."""

    info: registry.Described
    build: type[Optimizer]

    name = property(lambda self: self.info.name)
    help = property(lambda self: self.info.help)


_CLASSES = {"sgd": SGD, "adam": Adam}
OPTIMIZERS: dict[str, OptimizerEntry] = {name: OptimizerEntry(info, _CLASSES[name])
                                         for name, info in registry.OPTIMIZERS.items()}  # fmt: skip
DEFAULT_OPTIMIZER = registry.DEFAULT_OPTIMIZER


def build(name: str, params: dict[str, np.ndarray], momentum: float = 0.0, weight_decay: float = 0.0,
          decay_names: tuple[str, ...] = (), nesterov: bool = False) -> Optimizer:  # fmt: skip
    """The optimizer of that name over these parameters; ValueError naming the known ones."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name].build(params, momentum, weight_decay, decay_names, nesterov)


def is_state_name(name: str, is_parameter: Callable[[str], bool]) -> bool:
    """Whether some optimizer's state may hold an array of that name (SLOT.PARAMETER, or a counter):
    a checkpoint holds no other."""
    slot, _, parameter = name.partition(".")
    if parameter:
        return any(slot in e.build.slots for e in OPTIMIZERS.values()) and is_parameter(parameter)
    return any(name in e.build.counters for e in OPTIMIZERS.values())
