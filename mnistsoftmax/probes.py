"""Probes: a fixed handful of test images of each class, looked at while a run trains, so that the
middle of the story (not only its two ends) can be drawn: the box plots of the logits and of the
softmax per true class moving from "every class near 10 %" to "one class near 100 %", and the
first-layer weights taking shape.

Shapes: P probe images (K of each of the C classes present), C = 10 outputs, D = 784 inputs.

Records, as written to the metrics file (values rounded: they are drawn, not computed with):

    {"type": "probe", "step": s, "epoch": e, "loss": mean cross entropy, "accuracy": a,
     "images": P, "classes": [the true classes present],
     "logits":  {"min": [[C outputs] per class], "q1": ..., "median": ..., "q3": ..., "max": ...},
     "softmax": {... the same five-number summaries of the probabilities}}
    {"type": "weights", "step": s, "epoch": e, "units": [K unit indices], "side": 28,
     "images": base64 of uint8 (K, 28, 28), 128 = 0, each image scaled by its largest |w|}
"""

from __future__ import annotations

import base64

import numpy as np

from mnistsoftmax.analysis import scaled_images, weight_units
from mnistsoftmax.calibration import five_numbers
from mnistsoftmax.functional import log_softmax
from mnistsoftmax.losses import DEFAULT_LOSS, margins
from mnistsoftmax.losses import get as get_loss

PER_CLASS = 20  # a score of each class: 200 images, a forward pass costing about half a training step
STATS = ("min", "q1", "median", "q3", "max")  # the five-number summary a box plot draws
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
PROBE_STREAM = 0x70726F6265  # "probe": the probe set's own generator, apart from the run's
WEIGHT_IMAGES = 16  # hidden units shown (a linear model shows its C class templates)


def choose(labels: np.ndarray, seed: int, per_class: int = PER_CLASS) -> np.ndarray:
    """Indices (C_present * K,) of K images of each class present in labels (N,), grouped by class
    in ascending order. K is per_class, or fewer when a class has fewer images (all classes get
    the same K). Drawn from a generator of the seed's own, so the run's draws stay as they were."""
    rng = np.random.default_rng([PROBE_STREAM, seed])
    classes = present(labels)
    members = [np.flatnonzero(labels == c) for c in classes]
    k = min(per_class, *(len(m) for m in members))
    return np.concatenate([np.sort(rng.choice(m, size=k, replace=False)) for m in members])


def present(labels: np.ndarray) -> np.ndarray:
    """The classes present among labels (N,) of 0 to C - 1, ascending: np.unique's answer, without
    its first call's 7 ms in a run of 1.5 s."""
    return np.flatnonzero(np.bincount(labels))


def _quantile_weights(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """np.quantile's default (linear) interpolation between sorted positions, for k values."""
    position = np.asarray(QUANTILES) * (k - 1)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, k - 1)
    return low, high, position - low


class Probe:
    """The probe set of a run: its inputs normalised once, a workspace of its size allocated once.
    record() is a forward pass and some sorting; it leaves the model untouched. Called as the
    training loop's Hooks.observe, it gives the probe record, and the weights record when asked."""

    def __init__(self, model, images: np.ndarray, labels: np.ndarray, norm, loss: str = DEFAULT_LOSS):
        self.loss = get_loss(loss)
        dtype = next(iter(model.params.values())).dtype
        self.x = norm.apply(images.reshape(len(images), -1), dtype=dtype)  # (P, D)
        self.y = labels.astype(np.intp)  # (P,), grouped by class
        self.classes = [int(c) for c in present(self.y)]
        self.k = len(self.y) // len(self.classes)
        self.ws = model.workspace(len(self.y))
        self.low, self.high, self.frac = _quantile_weights(self.k)

    def _summaries(self, values: np.ndarray, decimals: int) -> dict:
        """values (P, C) -> {stat: (C_present, C) nested lists}: per true class, per output."""
        grouped = np.sort(values.reshape(len(self.classes), self.k, -1), axis=1)  # (C_present, K, C)
        f = self.frac[None, :, None]
        q = grouped[:, self.low, :] * (1 - f) + grouped[:, self.high, :] * f  # (C_present, 5, C)
        q = np.round(q, decimals)
        return {name: q[:, i, :].tolist() for i, name in enumerate(STATS)}

    def record(self, model, step: int, epoch: int) -> dict:
        Z, _ = model.forward(self.x, self.ws)  # (P, C)
        Z = Z.astype(np.float64)
        logp = log_softmax(Z)
        return {
            "type": "probe",
            "step": step,
            "epoch": epoch,
            "loss": self.loss.forward(Z, self.y),
            "accuracy": float((logp.argmax(axis=1) == self.y).mean()),
            "images": len(self.y),
            "classes": self.classes,
            "logits": self._summaries(Z, 3),
            "softmax": self._summaries(np.exp(logp), 4),
            # the correct class's margin z_y - max other z over all probe images: the hinge stops
            # pushing it at 1, cross entropy keeps pushing
            "margin": {k: round(v, 3) for k, v in five_numbers(margins(Z, self.y)).items()},
        }

    def __call__(self, model, step: int, epoch: int, moment: str) -> list[dict]:
        """The records of one look at the run (training.Hooks.observe): the probe record at the
        start and every few steps, the weights record at the start and each epoch's end."""
        records = [self.record(model, step, epoch)] if moment in ("start", "step") else []
        return records + [weights_record(model, step, epoch)] if moment in ("start", "epoch") else records


def weights_record(model, step: int, epoch: int, count: int = WEIGHT_IMAGES) -> dict:
    """The first-layer weights as images: the class templates of a linear model, or the `count`
    hidden units the output layer listens to most (analysis.weight_units, as `plot` shows them).
    `caption` says what each image is ("class" or "unit"), `units` which."""
    units = weight_units(model, count)
    pixels = np.round(128 + 127 * scaled_images(model.first_layer()[:, units])).astype(np.uint8)  # (K, 28, 28)
    return {
        "type": "weights",
        "step": step,
        "epoch": epoch,
        "units": [int(u) for u in units],
        "caption": model.unit_caption,
        "side": 28,
        "images": base64.b64encode(pixels.tobytes()).decode("ascii"),
    }


def decode_weight_images(record: dict) -> np.ndarray:
    """A weights record's images -> (K, 28, 28) float64 in [-1, 1]."""
    pixels = np.frombuffer(base64.b64decode(record["images"]), dtype=np.uint8)
    side = record["side"]
    return (pixels.reshape(-1, side, side).astype(np.float64) - 128) / 127
