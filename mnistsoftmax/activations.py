"""The hidden layers' activations, one entry each: what the model, gradcheck, the checkpoint, the
exporters, the scripts and the page read of one (registry.ACTIVATIONS names them and says what
they are, without numpy; the page's engine, static/local.js, has the twin of each entry).

An entry holds
    forward(H, out) -> (A, cache)        H (N, H) -> A (N, H), functional.py's pair for it
    backward(dA, cache, out, mask) -> dH (N, H) -> (N, H), beside its forward in functional.py
    slope(A) -> (N, H)                   dA/dH at each unit, read off A: the local linear map that
                                         unit pictures carry weights down through
    variance_gain                        He's initialisation: W ~ N(0, variance_gain / fan_in)
    onnx(helper, x, out) -> node         the ONNX operator that computes it
    dropout_in_place                     whether dropout may scale A where it lies: true when the
                                         backward reads A only through its sign
    scratch                              whether forward and backward take `scratch=`, a float
                                         buffer like H (the training loop's workspace holds one
                                         per layer, so that nothing is allocated per step)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from mnistsoftmax.functional import (
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    tanh_backward,
    tanh_forward,
)
from mnistsoftmax.registry import ACTIVATIONS as INFO  # the names and help, without numpy
from mnistsoftmax.registry import DEFAULT_ACTIVATION, LEAKY_SLOPE, ActivationInfo, activation_info


@dataclass(frozen=True)
class Activation:
    """One activation; see the module docstring."""

    info: ActivationInfo
    forward: Callable
    backward: Callable
    slope: Callable
    variance_gain: float
    onnx: Callable
    dropout_in_place: bool
    scratch: bool = False

    @property
    def name(self) -> str:
        return self.info.name

    def fires(self, A: np.ndarray) -> np.ndarray:
        """Which units fire: output above 0, under every activation here (info.fires says it in words)."""
        return A > 0


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(
        INFO["relu"],
        relu_forward,
        relu_backward,
        slope=lambda A: (A > 0).astype(np.float64),
        variance_gain=2.0,  # He et al.: half the units are off, so twice the variance keeps the scale
        onnx=lambda helper, x, out: helper.make_node("Relu", [x], [out]),
        dropout_in_place=True,  # a dropped unit is 0, so A > 0 leaves it out of the backward as well
    ),
    "tanh": Activation(
        INFO["tanh"],
        tanh_forward,
        tanh_backward,
        slope=lambda A: 1.0 - np.square(A, dtype=np.float64),
        variance_gain=25.0 / 9.0,  # (5/3)**2, the gain PyTorch's calculate_gain gives tanh
        onnx=lambda helper, x, out: helper.make_node("Tanh", [x], [out]),
        dropout_in_place=False,  # its backward reads 1 - A**2: A scaled by 1 / (1 - p) would be wrong
        scratch=True,  # 1 - A**2
    ),
    "leaky-relu": Activation(
        INFO["leaky-relu"],
        partial(leaky_relu_forward, slope=LEAKY_SLOPE),
        partial(leaky_relu_backward, slope=LEAKY_SLOPE),
        slope=lambda A: np.where(A > 0, 1.0, LEAKY_SLOPE),
        variance_gain=2.0 / (1.0 + LEAKY_SLOPE**2),
        onnx=lambda helper, x, out: helper.make_node("LeakyRelu", [x], [out], alpha=LEAKY_SLOPE),
        dropout_in_place=True,  # scaling by 1 / (1 - p) > 0 or 0 keeps A's sign, all the backward reads
        scratch=True,  # slope * H, and each unit's slope
    ),
}


def get(name: str | None) -> Activation:
    """The activation of that name (the default for None: a checkpoint that names none was trained
    before there was a choice); ModelError for an unknown one."""
    return ACTIVATIONS[activation_info(name if name is not None else DEFAULT_ACTIVATION).name]
