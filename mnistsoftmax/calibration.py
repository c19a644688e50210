"""What the probabilities are worth: the margins a loss leaves, and calibration (Guo et al., 2017,
"On Calibration of Modern Neural Networks") with its one-number fix, a temperature.

Shapes: N samples, C classes; Z (N, C) logits (or a hinge model's scores), y (N,) labels.

    margins        z_y - max_{j != y} z_j per sample (losses.margins), and their five numbers
    nll            mean -log softmax(Z / T)[y]
    brier          mean over samples of sum_c (p_c - onehot_c)^2
    ece            expected calibration error: the top probability's 15 equal-width bins,
                   sum over bins of |B| / N * |accuracy(B) - mean confidence(B)|
    temperature    the T > 0 minimising the NLL of softmax(Z / T) on held-out data; it rescales
                   every logit alike, so no prediction changes
"""

from __future__ import annotations

import numpy as np

from mnistsoftmax.functional import log_softmax, onehot
from mnistsoftmax.losses import margins, nll

ECE_BINS = 15
STATS = ("min", "q1", "median", "q3", "max")


def five_numbers(values: np.ndarray) -> dict[str, float]:
    """min, quartiles (numpy's linear interpolation), median and max of values (N,)."""
    q = np.quantile(np.asarray(values, dtype=np.float64), (0.0, 0.25, 0.5, 0.75, 1.0))
    return {name: float(v) for name, v in zip(STATS, q, strict=True)}


def brier(probabilities: np.ndarray, y: np.ndarray) -> float:
    """Mean over samples of the squared distance between the probabilities and the one-hot target."""
    return float(((probabilities - onehot(y, probabilities.shape[1])) ** 2).sum(axis=1).mean())


def _bin_sums(probabilities: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, ...]:
    """Per equal-width bin of the top probability (a confidence of exactly 1 falls in the last):
    its count, and its sums of confidence and of right answers, (bins,) each."""
    confidence = probabilities.max(axis=1)
    right = (probabilities.argmax(axis=1) == y).astype(np.float64)
    which = np.minimum((confidence * bins).astype(np.intp), bins - 1)
    counts = np.bincount(which, minlength=bins).astype(np.float64)
    return counts, np.bincount(which, confidence, bins), np.bincount(which, right, bins)


def expected_calibration_error(probabilities: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over `bins` equal-width bins of the top probability: the gap between how sure the model
    was and how often it was right, sum over bins of |B| / N * |accuracy(B) - confidence(B)|."""
    _, confident, right = _bin_sums(probabilities, y, bins)
    return float(np.abs(right - confident).sum() / len(y))


def reliability(probabilities: np.ndarray, y: np.ndarray, bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """The reliability diagram's numbers: per bin of the top probability, its count, mean
    confidence and accuracy (NaN for an empty bin), (bins,) each."""
    counts, confident, right = _bin_sums(probabilities, y, bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"count": counts, "confidence": confident / counts, "accuracy": right / counts,
                "edges": np.linspace(0, 1, bins + 1)}  # fmt: skip


def reliability_record(Z: np.ndarray, y: np.ndarray, temperature: float | None = None) -> dict:
    """The reliability diagram of logits Z on labels y as plain lists (stored in a checkpoint, drawn
    by the page): per bin count, confidence and accuracy (None for an empty bin), the ECE, and the
    same after softmax(z / T) when a temperature is given."""

    def lists(p):
        r = reliability(p, y)
        plain = {k: [None if np.isnan(v) else float(v) for v in r[k]] for k in ("confidence", "accuracy")}
        return {"count": [int(c) for c in r["count"]], "ece": expected_calibration_error(p, y), **plain}

    Z = np.asarray(Z, dtype=np.float64)
    record = {"bins": ECE_BINS, **lists(softmax_at(Z))}
    if temperature is not None:
        record["calibrated"] = lists(softmax_at(Z, temperature))
    return record


def softmax_at(Z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(Z / T), (N, C) -> (N, C), by log-sum-exp."""
    return np.exp(log_softmax(np.asarray(Z, dtype=np.float64) / temperature))


def report(Z: np.ndarray, y: np.ndarray, temperature: float | None = None) -> dict:
    """margin (five numbers), nll, brier and ece of logits Z on labels y; with a temperature, also
    nll_calibrated and ece_calibrated (and the temperature itself)."""
    Z = np.asarray(Z, dtype=np.float64)
    p = softmax_at(Z)
    result = {"margin": five_numbers(margins(Z, y)), "nll": float(nll(Z, y).mean()), "brier": brier(p, y),
              "ece": expected_calibration_error(p, y)}  # fmt: skip
    if temperature is not None:
        calibrated = softmax_at(Z, temperature)
        result.update(temperature=float(temperature), nll_calibrated=float(nll(Z / temperature, y).mean()),
                      ece_calibrated=expected_calibration_error(calibrated, y))  # fmt: skip
    return result


def assess(model, norm, images: np.ndarray, labels: np.ndarray, temperature: float | None = None) -> dict:
    """report() of a model on a labelled set of uint8 images."""
    from mnistsoftmax.inference import logits

    return report(logits(model, images, norm).astype(np.float64), labels.astype(np.intp), temperature)


def fit_temperature(Z: np.ndarray, y: np.ndarray, iterations: int = 50) -> float:
    """The T > 0 minimising the mean NLL of softmax(Z / T) on (Z, y).

    In beta = 1 / T the NLL f(beta) = mean(logsumexp(beta z) - beta z_y) is convex: f'(beta) =
    mean(E_p[z] - z_y) and f''(beta) = mean(Var_p[z]) >= 0 under p = softmax(beta z). Newton's
    method on beta, kept inside a bracket [lo, hi] that always holds the minimum (bisection when a
    Newton step would leave it), to |f'| < 1e-12 or `iterations` steps.
    """
    Z = np.asarray(Z, dtype=np.float64)
    rows = np.arange(len(y))
    true = Z[rows, y]

    def derivatives(beta: float) -> tuple[float, float]:
        p = np.exp(log_softmax(beta * Z))
        mean = (p * Z).sum(axis=1)
        variance = (p * Z**2).sum(axis=1) - mean**2
        return float((mean - true).mean()), float(np.maximum(variance, 0).mean())

    lo, hi = 1e-3, 1e3  # T from 1000 down to 0.001
    if derivatives(hi)[0] <= 0:  # still falling at the widest bracket (a separable set): the sharpest
        return 1 / hi
    if derivatives(lo)[0] >= 0:
        return 1 / lo
    beta = 1.0
    for _ in range(iterations):
        slope, curvature = derivatives(beta)
        if abs(slope) < 1e-12:
            break
        lo, hi = (beta, hi) if slope < 0 else (lo, beta)
        step = beta - slope / curvature if curvature > 0 else np.inf
        beta = step if lo < step < hi else 0.5 * (lo + hi)
    return float(1 / beta)
