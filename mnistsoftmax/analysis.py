"""The numbers behind the figures of `mnistsoftmax plot`, as plain NumPy: tested here, only drawn
by plots.py. Shapes: N test images, C = 10 classes, K images shown."""

from __future__ import annotations

import math

import numpy as np

from mnistsoftmax.functional import log_softmax, softmax
from mnistsoftmax.inference import Normalization, logits
from mnistsoftmax.losses import nll


def outputs(model, images: np.ndarray, norm: Normalization) -> dict[str, np.ndarray]:
    """The three views of a model's answer to each image, float64, each (N, C):
    raw logits, softmax probabilities, and log-softmax (log-probabilities)."""
    Z = logits(model, images, norm).astype(np.float64)
    return {"logits": Z, "softmax": softmax(Z), "log_softmax": log_softmax(Z)}


def columns_for_digit(values: np.ndarray, labels: np.ndarray, digit: int) -> list[np.ndarray]:
    """For the images of one true class: the C columns of values (N, C), one array per output,
    as box plots want them."""
    rows = values[labels == digit]
    return [rows[:, c] for c in range(values.shape[1])]


def per_sample_loss(model, images: np.ndarray, labels: np.ndarray, norm: Normalization) -> np.ndarray:
    """Cross entropy (the negative log-likelihood) of each image under the model, (N,)."""
    Z = logits(model, images, norm).astype(np.float64)
    return nll(Z, labels.astype(np.intp))


def confusion(predicted: np.ndarray, labels: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """(C, C) counts: rows the true class, columns the predicted one."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels.astype(np.intp), predicted.astype(np.intp)), 1)
    return matrix


def confident_mistakes(probabilities: np.ndarray, labels: np.ndarray, k: int = 16) -> np.ndarray:
    """Indices of the k misclassified images the model was surest of, surest first, (<= k,)."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:k]]


def scaled_images(columns: np.ndarray) -> np.ndarray:
    """Columns (D=784, K) -> (K, 28, 28) float64 images, each scaled to [-1, 1] by its own largest
    absolute value, so that positive and negative evidence read alike."""
    images = columns.T.reshape(-1, 28, 28).astype(np.float64)
    scale = np.abs(images).max(axis=(1, 2), keepdims=True)
    return images / np.where(scale > 0, scale, 1.0)


def first_layer_images(model, count: int = 64) -> np.ndarray:
    """The first layer's columns as 28x28 images scaled to [-1, 1], (K, 28, 28): a linear model's
    ten class templates, or an mlp's first `count` hidden units."""
    return scaled_images(model.first_layer()[:, :count])


def top_units(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` largest scores (H,), largest first; equal scores by unit index.

    The one selection of units to show: `plot` and the probes rank by the model's unit_strength,
    the page by one input's push towards its predicted class."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:count]


def weight_units(model, count: int) -> np.ndarray:
    """The first-layer columns worth showing, (<= count,): those that speak loudest to the outputs
    (every class template of a linear model, in class order)."""
    return top_units(model.unit_strength(), count)


def hidden_unit_images(trained, untrained, count: int = 16) -> dict[str, np.ndarray]:
    """The `count` first-layer columns that speak loudest to the outputs, ranked: units (K,)
    their indices; weights (K, 28, 28) their weights; added (K, 28, 28) what training added to
    them (W - W at initialisation). Images scaled to [-1, 1] each."""
    units = weight_units(trained, count)
    W = trained.first_layer().astype(np.float64)
    added = W[:, units] - untrained.first_layer().astype(np.float64)[:, units]
    return {"units": units, "weights": scaled_images(W[:, units]), "added": scaled_images(added)}


def last_layer_units(model, count: int = 16) -> dict | None:
    """For a net of two or more hidden layers, the `count` units of the last one that speak loudest
    to the logits, ranked: units (K,) and pictures (K, 28, 28), each unit's weights carried down to
    the pixels with every unit below taken as on (models.Network.unit_pictures without an input),
    scaled to [-1, 1]. None for a shallower net, whose last hidden layer is its first (weights.png)."""
    if len(model.hidden_widths) < 2:
        return None
    units = top_units(model.output_strength(), count)
    return {"units": units, "pictures": scaled_images(model.unit_pictures(units))}


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.nan


def training_curves(records: list[dict]) -> dict[str, np.ndarray]:
    """The metrics file's records -> arrays for the training-curve figure (empty where absent)."""
    steps = [r for r in records if r.get("type") == "step"]
    epochs = [r for r in records if r.get("type") == "epoch"]

    def column(rows, key):  # a value that is not a number (a hand's, another version's) is NaN
        return np.array([_number(r.get(key)) for r in rows], dtype=np.float64)

    return {
        "step": column(steps, "step"),
        "step_loss": column(steps, "loss"),
        "step_count": np.array([_number(r.get("steps", 1)) for r in steps], dtype=np.float64),  # 1, or a window's steps
        "epoch": column(epochs, "epoch"),
        "epoch_step": column(epochs, "step"),
        "train_loss": column(epochs, "train_loss"),
        "val_loss": column(epochs, "val_loss"),
        "train_accuracy": column(epochs, "train_accuracy"),
        "val_accuracy": column(epochs, "val_accuracy"),
        "initial_loss": column([r for r in records if r.get("type") == "init"], "loss"),
    }


FIVE = ("min", "q1", "median", "q3", "max")


def _finite(x) -> bool:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:  # an integer of 400 digits
        return False


def _summaries(value, rows: int, columns: int) -> bool:
    """Five-number summaries as probes write them: each of FIVE a list of `rows` lists of `columns` finite numbers."""
    return isinstance(value, dict) and all(
        isinstance(value.get(k), list) and len(value[k]) == rows
        and all(isinstance(row, list) and len(row) == columns and all(map(_finite, row)) for row in value[k])
        for k in FIVE
    )  # fmt: skip


def probe_records(records: list[dict], num_classes: int) -> list[dict]:
    """The metrics file's probe records that are whole (probes.Probe's schema): a step, a finite loss
    and accuracy, the true classes present (distinct, each one of the num_classes), their logits'
    and softmax's five-number summaries, and the margin's if there is one. A file is anyone's: a
    record missing any of it is left out rather than breaking a figure."""
    kept = []
    for r in records:
        if r.get("type") != "probe":
            continue
        step, classes = r.get("step"), r.get("classes")
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= 10**12:
            continue
        if not (_finite(r.get("loss")) and _finite(r.get("accuracy"))):
            continue
        if not (
            isinstance(classes, list)
            and classes
            and len(set(map(repr, classes))) == len(classes)
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < num_classes for c in classes)
        ):
            continue  # fmt: skip
        if not all(_summaries(r.get(k), len(classes), num_classes) for k in ("logits", "softmax")):
            continue
        margin = r.get("margin")
        if margin is not None and not (isinstance(margin, dict) and all(_finite(margin.get(k)) for k in FIVE)):
            continue
        kept.append(r)
    return kept


def probe_moments(records: list[dict], num_classes: int, count: int = 5) -> list[dict]:
    """Up to `count` whole probe records of a run (probe_records, of the first one's classes) to
    show its learning at a glance: the first (before any step), the last, and between them the
    ones nearest to steps spaced evenly on a log scale, since most of the change happens early."""
    probes = sorted(probe_records(records, num_classes), key=lambda r: r["step"])
    probes = [r for r in probes if r["classes"] == probes[0]["classes"]]
    if len(probes) <= count:
        return probes
    steps = np.array([max(r["step"], 1) for r in probes], dtype=np.float64)
    targets = np.geomspace(steps[1], steps[-1], count - 1)
    chosen = {0, len(probes) - 1}
    for t in targets:
        nearest = np.argsort(np.abs(np.log(steps) - np.log(t)), kind="stable")
        chosen.add(int(next(i for i in nearest if int(i) not in chosen or len(chosen) >= count)))
        if len(chosen) >= count:
            break
    return [probes[i] for i in sorted(chosen)]
