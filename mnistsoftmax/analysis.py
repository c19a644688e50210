"""The numbers behind the figures of `mnistsoftmax plot`, as plain NumPy: tested here, only drawn
by plots.py. Shapes: N test images, C = 10 classes, K images shown."""

from __future__ import annotations

import math

import numpy as np

from mnistsoftmax.functional import log_softmax, per_sample_cross_entropy, softmax
from mnistsoftmax.training import Normalization, logits


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
    """Cross entropy of each image under the model, (N,)."""
    Z = logits(model, images, norm).astype(np.float64)
    return per_sample_cross_entropy(Z, labels.astype(np.intp))


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
    """The first weight matrix's columns as 28x28 images scaled to [-1, 1], (K, 28, 28): for
    `linear` the ten class templates, for `mlp` the first `count` hidden units."""
    W = model.params["W"] if model.kind == "linear" else model.params["W1"][:, :count]
    return scaled_images(W)


def top_units(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` largest scores (H,), largest first; equal scores by unit index.

    The one selection of hidden units to show: `plot` ranks by outgoing_strength, the page by
    one input's push towards its predicted class."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:count]


def outgoing_strength(model) -> np.ndarray:
    """How loudly each hidden unit of an mlp speaks to the outputs: ||W2[j]||, (H,).

    Units the output layer has learned to listen to are the ones training shaped; at H = 512
    most units keep weights that look like their random start, so showing units 0-31 shows noise.
    """
    return np.linalg.norm(model.params["W2"].astype(np.float64), axis=1)


def hidden_unit_images(trained, untrained, count: int = 16) -> dict[str, np.ndarray]:
    """The `count` hidden units of an mlp with the strongest outgoing weights, ranked:
    units (K,) their indices, strongest first; weights (K, 28, 28) their first-layer weights;
    added (K, 28, 28) what training added to them, W1 - W1 at initialisation. Images scaled to
    [-1, 1] each."""
    units = top_units(outgoing_strength(trained), count)
    W1 = trained.params["W1"].astype(np.float64)
    added = W1[:, units] - untrained.params["W1"].astype(np.float64)[:, units]
    return {"units": units, "weights": scaled_images(W1[:, units]), "added": scaled_images(added)}


def training_curves(records: list[dict]) -> dict[str, np.ndarray]:
    """The metrics file's records -> arrays for the training-curve figure (empty where absent)."""
    steps = [r for r in records if r.get("type") == "step"]
    epochs = [r for r in records if r.get("type") == "epoch"]

    def column(rows, key):
        return np.array([r.get(key, math.nan) for r in rows], dtype=np.float64)

    return {
        "step": column(steps, "step"),
        "step_loss": column(steps, "loss"),
        "epoch": column(epochs, "epoch"),
        "epoch_step": column(epochs, "step"),
        "train_loss": column(epochs, "train_loss"),
        "val_loss": column(epochs, "val_loss"),
        "train_accuracy": column(epochs, "train_accuracy"),
        "val_accuracy": column(epochs, "val_accuracy"),
        "initial_loss": np.array([r["loss"] for r in records if r.get("type") == "init"], dtype=np.float64),
    }


def probe_moments(records: list[dict], count: int = 5) -> list[dict]:
    """Up to `count` probe records of a run to show its learning at a glance: the first (before
    any step), the last, and between them the ones nearest to steps spaced evenly on a log scale,
    since most of the change happens early."""
    probes = sorted((r for r in records if r.get("type") == "probe"), key=lambda r: r["step"])
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
