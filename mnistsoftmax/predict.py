"""Prediction on a user's images: preprocess each, one forward pass, softmax, top-k.

It stands on inference.py, never on the training code, so that `predict` imports only numpy,
Pillow and the model code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnistsoftmax.functional import softmax
from mnistsoftmax.images import ImageError, preprocess
from mnistsoftmax.inference import Normalization, finite, initial_model, logits


def preprocessed(sources, stdin: bytes | None = None, save_dir: Path | None = None):
    """For each source (a path, or "-" for the bytes `stdin`): (its name, the 28x28 digit or the
    ImageError that stopped it), each digit written to save_dir as NAME.28x28.png when given (NAME
    the file's name without its extension; NAME-2, NAME-3 for later files of the same name, so
    that none overwrites another). Failing images do not stop the others."""
    taken: set[str] = set()
    for source in sources:
        name = "<stdin>" if source == "-" else str(source)
        try:
            digit = preprocess(stdin if source == "-" else source, name)
        except ImageError as exc:
            yield name, exc
            continue
        if save_dir is not None:
            _save_png(digit, save_dir / f"{_unique('stdin' if source == '-' else Path(source).stem, taken)}.28x28.png")
        yield name, digit


def predict_files(
    model,
    meta: dict,
    sources,
    top_k: int = 3,
    stdin: bytes | None = None,
    save_dir: Path | None = None,
    temperature: float | None = None,
) -> list[dict]:
    """One result per source: {file, digit, probability, top_k: [[class, p], ...]} or {file, error};
    with a temperature T the probabilities are softmax(z / T) (temperature scaling: the same
    digit, other confidences)."""
    results, inputs = [], []
    for name, digit in preprocessed(sources, stdin, save_dir):
        if isinstance(digit, ImageError):
            results.append({"file": name, "error": str(digit)})
        else:
            results.append({"file": name})
            inputs.append(digit)
    if inputs:
        norm = Normalization(**meta["normalization"])
        Z = finite(logits(model, np.stack(inputs), norm).astype(np.float64))
        probabilities = softmax(Z / temperature if temperature is not None else Z)
        ok = (r for r in results if "error" not in r)
        for r, p in zip(ok, probabilities, strict=True):
            ranked = np.argsort(-p, kind="stable")[:top_k]
            r.update(
                digit=int(ranked[0]), probability=float(p[ranked[0]]), top_k=[[int(c), float(p[c])] for c in ranked]
            )
    return results


def _unique(name: str, taken: set[str]) -> str:
    chosen, n = name, 1
    while chosen in taken:
        n += 1
        chosen = f"{name}-{n}"
    taken.add(chosen)
    return chosen


def _save_png(digit: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(digit, mode="L").save(path)


def explain_files(
    model,
    meta: dict,
    sources,
    label: int | None = None,
    stdin: bytes | None = None,
    save_dir: Path | None = None,
    temperature: float | None = None,
) -> list[dict]:
    """One result per source: {file, **explain.explain(...)} (JSON-ready, with `untrained` when the
    checkpoint's run can be redrawn) or {file, error}."""
    from mnistsoftmax.explain import explain, jsonable

    norm = Normalization(**meta["normalization"])
    untrained = initial_model(meta)
    return [
        {"file": name, "error": str(digit)}
        if isinstance(digit, ImageError)
        else {"file": name, **jsonable(explain(model, norm, digit, label, untrained, temperature))}
        for name, digit in preprocessed(sources, stdin, save_dir)
    ]


def through_training_files(
    model,
    meta: dict,
    kept,
    sources,
    label: int | None = None,
    stdin: bytes | None = None,
    save_dir: Path | None = None,
) -> list[dict]:
    """One result per source: {file, label, snapshots: [{step, predicted, probabilities, loss}, ...]}
    under each of the checkpoint's snapshots (`kept`, snapshots.Snapshots; the last is the
    checkpoint's own model), the loss -log p(label) with a label (else None), or {file, error}."""
    from mnistsoftmax.explain import through_training

    norm = Normalization(**meta["normalization"])
    models = kept.models(model)
    results = []
    for name, digit in preprocessed(sources, stdin, save_dir):
        if isinstance(digit, ImageError):
            results.append({"file": name, "error": str(digit)})
            continue
        seen = through_training(models, kept.steps, norm, digit, label)
        losses = seen["loss"].tolist() if label is not None else [None] * len(kept.steps)
        snapshots = [
            {"step": step, "predicted": int(c), "probabilities": p.tolist(), "loss": loss}
            for step, c, p, loss in zip(seen["steps"], seen["predicted"], seen["probabilities"], losses, strict=True)
        ]
        results.append({"file": name, "label": label, "snapshots": snapshots})
    return results
