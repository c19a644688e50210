"""The training losses, as a registry: each loss a name with its forward, its backward and its fused
training form side by side (as scikit-learn's neural_network/_base.py keeps LOSS_FUNCTIONS).
The training loop, evaluation, probes and gradcheck pick a loss by name from LOSSES.

Shapes: N samples, C classes; Z (N, C) logits, y (N,) integer labels.

    per_sample(Z, y, smoothing) -> (N,)         each sample's loss, float64
    backward(Z, y, smoothing) -> (N, C)         gradient of the *mean* loss with respect to Z
    inplace(Z, y, rows, smoothing) -> (loss, correct)
                                                the loop's fused form: the mean loss, and Z
                                                overwritten with its gradient, no (N, C) temporary

The negative log-likelihood of the labels, -log softmax(Z)[y], is computed in one place: nll().
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mnistsoftmax import registry
from mnistsoftmax.functional import log_softmax, onehot, softmax


def nll(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Negative log-likelihood of each label, -log softmax(Z)[n, y_n]: (N, C), (N,) -> (N,).

    By log-sum-exp (functional.log_softmax), never log(softmax + eps): exact where a probability
    underflows to 0."""
    return -log_softmax(Z)[np.arange(len(y)), y]


def smoothed_targets(y: np.ndarray, num_classes: int, smoothing: float, dtype=np.float64) -> np.ndarray:
    """Label smoothing's targets (N, C): (1 - e) onehot(y) + e / C, each row summing to 1.

    The net is asked for probability 1 - e + e / C on the true class rather than 1, which its
    logits can only approach by growing without bound (Szegedy et al., 2016).
    """
    return (1 - smoothing) * onehot(y, num_classes, dtype) + smoothing / num_classes


# Cross entropy ---------------------------------------------------------------------------------


def cross_entropy_per_sample(Z: np.ndarray, y: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """Cross entropy of each sample against the one-hot target (the NLL), (N, C), (N,) -> (N,).

    With label smoothing e the target is smoothed_targets(y): the loss of a sample is
    -(1 - e) log S_y - (e / C) sum_c log S_c. A net that cannot tell the classes apart (S = 1/C
    everywhere) has the same loss, ln C, with or without it.
    """
    if not smoothing:
        return nll(Z, y)
    logp = log_softmax(Z)
    return -(1 - smoothing) * logp[np.arange(len(y)), y] - smoothing * logp.mean(axis=-1)


def cross_entropy(Z: np.ndarray, y: np.ndarray, smoothing: float = 0.0) -> float:
    """Mean cross entropy of integer labels y (N,) under logits Z (N, C); see cross_entropy_per_sample."""
    return float(cross_entropy_per_sample(Z, y, smoothing).mean())


def cross_entropy_backward(Z: np.ndarray, y: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """Gradient of the *mean* cross entropy with respect to the logits: (N, C) -> (N, C).

    dL/dZ = (softmax(Z) - onehot(y)) / N, and with label smoothing (softmax(Z) - targets) / N:
    the loss is a weighted sum of -log S_c over the targets T, each term's gradient S - onehot(c),
    and the weights sum to 1. With S = softmax(z) and L = -log S_y, the chain rule
    through the softmax Jacobian dS_i/dz_j = S_i (delta_ij - S_j) gives
    dL/dz_j = -(1/S_y) S_y (delta_yj - S_j) = S_j - delta_yj: the Jacobian collapses, so the
    fused form needs neither the Jacobian nor a division by a probability that may be 0.
    The 1/N is there because the loss is the mean over the batch.
    """
    return (softmax(Z) - smoothed_targets(y, Z.shape[-1], smoothing, Z.dtype)) / len(y)


def inplace_softmax_cross_entropy(
    Z: np.ndarray, y: np.ndarray, rows: np.ndarray, smoothing: float = 0.0
) -> tuple[float, int]:
    """Mean cross entropy of logits Z (N, C); overwrites Z with its gradient (softmax - onehot)/N
    (with label smoothing, (softmax - targets)/N and the smoothed loss: see cross_entropy).

    The training loop's fused form of cross_entropy + cross_entropy_backward without temporaries
    of size (N, C). ``rows`` is np.arange(N) (passed in so it is not rebuilt per batch). Returns
    the loss and how many rows have their largest logit at the true class: the shift by the row
    maximum needs the argmax anyway, and the running accuracy comes with it.
    """
    n, c = Z.shape
    predicted = Z.argmax(axis=1)  # (N,)
    correct = int(np.count_nonzero(predicted == y))
    Z -= Z[rows, predicted][:, None]  # shift: the largest logit of each row becomes 0
    true_logit = Z[rows, y]  # (N,) shifted logit of the true class
    ones = np.ones((c, 1), Z.dtype)
    # -log S_c = log(sum) - z_c: the smoothed loss also needs each row's mean shifted logit.
    mean_logit = float((Z @ ones).sum()) / c if smoothing else 0.0
    np.exp(Z, out=Z)
    sums = Z @ ones  # (N, 1) row sums; a matmul: 5x quicker than sum(axis=1) here
    # With smoothing 0 every smoothing term is an exact no-op: the plain loss and gradient, bit for bit.
    loss = float(np.log(sums).sum() - (1 - smoothing) * true_logit.sum() - smoothing * mean_logit) / n
    Z /= sums  # softmax
    Z[rows, y] -= 1 - smoothing
    if smoothing:
        Z -= smoothing / c  # the targets' uniform part
    Z *= 1.0 / n  # gradient of the mean loss
    return loss, correct


# The multiclass hinge (Weston-Watkins, as cs231n) ------------------------------------------------

MARGIN = 1.0  # Delta: how far the true class's score must stand above every other's


def hinge_per_sample(Z: np.ndarray, y: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """sum over j != y of max(0, z_j - z_y + Delta), (N, C), (N,) -> (N,).

    Zero once the true class's score beats every other by Delta: the loss is then satisfied and
    pushes no further, unlike cross entropy, whose -log p_y only approaches 0 as z_y - z_j grows
    without bound. (No label smoothing: its targets are probabilities, which hinge scores are not.)
    """
    rows = np.arange(len(y))
    terms = np.maximum(0.0, Z - Z[rows, y][:, None] + MARGIN)  # (N, C)
    terms[rows, y] = 0.0  # the true class's own term is Delta, not a violation
    return terms.sum(axis=1)


def hinge_backward(Z: np.ndarray, y: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """Gradient of the *mean* hinge loss with respect to the scores: (N, C) -> (N, C).

    Each violated term max(0, z_j - z_y + Delta) > 0 adds +1 to dz_j and -1 to dz_y; a satisfied
    one adds nothing (at exactly 0 the subgradient 0 is taken). Divided by N: the mean.
    """
    rows = np.arange(len(y))
    violated = (Z - Z[rows, y][:, None] + MARGIN > 0).astype(Z.dtype)  # (N, C)
    violated[rows, y] = 0
    violated[rows, y] = -violated.sum(axis=1)
    return violated / len(y)


def inplace_hinge(Z: np.ndarray, y: np.ndarray, rows: np.ndarray, smoothing: float = 0.0) -> tuple[float, int]:
    """Mean hinge loss of scores Z (N, C); overwrites Z with its gradient (hinge_backward). The
    training loop's fused form: no (N, C) temporary but Z itself. Returns the loss and how many
    rows have their largest score at the true class."""
    n = len(Z)
    correct = int(np.count_nonzero(Z.argmax(axis=1) == y))
    Z -= Z[rows, y][:, None]  # z_j - z_y, then + Delta: the plain forms' order, so the kinks agree
    Z += Z.dtype.type(MARGIN)
    Z[rows, y] = 0
    np.maximum(Z, 0, out=Z)
    loss = float(Z.sum(dtype=np.float64)) / n
    np.greater(Z, 0, out=Z, casting="unsafe")  # 1 where violated
    Z[rows, y] = -Z.sum(axis=1)
    Z *= 1.0 / n
    return loss, correct


def margins(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The correct class's margin z_y - max_{j != y} z_j of each sample, (N, C), (N,) -> (N,):
    positive when it is right, Delta or more when the hinge is satisfied."""
    rows = np.arange(len(y))
    others = Z.astype(np.float64, copy=True)
    others[rows, y] = -np.inf
    return Z[rows, y] - others.max(axis=1)


# The registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loss:
    """One loss: its forward per sample, its backward and its fused training form (module docstring);
    its name, help, whether it takes label smoothing and what softmax of its logits is come from
    registry.LOSSES."""

    info: registry.LossInfo
    per_sample: Callable[..., np.ndarray]
    backward: Callable[..., np.ndarray]
    inplace: Callable[..., tuple[float, int]]

    name = property(lambda self: self.info.name)
    help = property(lambda self: self.info.help)
    smoothable = property(lambda self: self.info.smoothable)
    outputs = property(lambda self: self.info.outputs)

    def forward(self, Z: np.ndarray, y: np.ndarray, smoothing: float = 0.0) -> float:
        """The mean loss over the batch."""
        return float(self.per_sample(Z, y, smoothing).mean())


_IMPLEMENTATIONS = {
    "cross-entropy": (cross_entropy_per_sample, cross_entropy_backward, inplace_softmax_cross_entropy),
    "hinge": (hinge_per_sample, hinge_backward, inplace_hinge),
}
LOSSES: dict[str, Loss] = {name: Loss(info, *_IMPLEMENTATIONS[name]) for name, info in registry.LOSSES.items()}
DEFAULT_LOSS = registry.DEFAULT_LOSS


def of_run(config: dict | None) -> Loss:
    """The loss a run trained on, from its configuration (runs from before the choice: the default)."""
    return get((config or {}).get("loss") or DEFAULT_LOSS)


def get(name: str) -> Loss:
    """The loss of that name; ValueError naming the known ones."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSSES)}") from None
