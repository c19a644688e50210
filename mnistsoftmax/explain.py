"""Every number between one 28x28 input and its loss, as the seed article teaches them: what the
page of `serve` shows and `predict --explain` prints, from one function.

    z                  logits, (C,)                      the model's own forward pass
    z - max z          the shift that keeps exp() from overflowing (softmax is unchanged by it)
    e^(z - max z)      and their sum
    softmax            e^(z - max z) / sum               probabilities, summing to 1
    log-softmax        (z - max z) - ln(sum)             log-probabilities, by log-sum-exp
    with a label y:    loss = -log-softmax[y]            negative log-likelihood = cross entropy
                                                         against the one-hot target
                       gradient = softmax - onehot(y)    dLoss/dz, for every class

C = 10 classes, H units of an mlp's last hidden layer.
"""

from __future__ import annotations

import numpy as np

from mnistsoftmax.analysis import scaled_images, top_units
from mnistsoftmax.functional import onehot, softmax
from mnistsoftmax.inference import Normalization, finite, logits
from mnistsoftmax.losses import nll


def softmax_steps(z: np.ndarray, label: int | None = None) -> dict:
    """The chain from logits z (C,) to probabilities, log-probabilities and, with a label, the
    loss and its gradient, every intermediate kept, float64."""
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max()
    exp = np.exp(shifted)
    total = float(exp.sum())
    steps = {
        "logits": z,
        "max_logit": float(z.max()),
        "shifted": shifted,
        "exp_shifted": exp,
        "exp_sum": total,
        "probabilities": exp / total,
        "log_softmax": shifted - np.log(total),
        "digit": int(z.argmax()),
    }
    if label is not None:
        steps["label"] = int(label)
        steps["loss"] = float(nll(z[None], np.array([label]))[0])
        steps["gradient"] = steps["probabilities"] - onehot(np.array([label]), len(z))[0]
    return steps


HIDDEN_SHOWN = 8  # the units an answer shows of the last hidden layer


def hidden_units(model, x: np.ndarray, toward_class: int, count: int = HIDDEN_SHOWN) -> dict | None:
    """For a model with hidden layers and one normalised input x (1, D): how many of the last hidden
    layer's H units fire (`fires` says what that is under its `activation`), and the `count`
    units that push class `toward_class` most, by activation * outgoing weight, each with the
    picture of what it responds to (model.unit_pictures: its own first-layer weights in a
    one-layer net, its weights carried down to the pixels through the layers below as x sets them
    in a deeper one; each (28, 28), scaled to [-1, 1]). `layer` is that layer's number, 1 the
    input side's, of `hidden_layers`. None without hidden layers."""
    hidden = model.last_hidden_layer(x)
    if hidden is None:
        return None
    activations, outgoing = hidden  # (1, H), (H, C)
    a = activations[0].astype(np.float64)
    toward = outgoing[:, toward_class].astype(np.float64)
    push = a * toward  # (H,) each unit's share of z[toward_class] minus the output bias
    units = top_units(push, count)
    weights = scaled_images(model.unit_pictures(units, x))  # (K, 28, 28)
    depth = len(model.hidden_widths)
    return {
        "layer": depth,
        "hidden_layers": depth,
        "activation": model.activation.name,
        "fires": model.activation.info.fires,
        "active": int(np.count_nonzero(model.activation.fires(a))),
        "total": int(len(a)),
        "units": [
            {
                "unit": int(j),
                "activation": float(a[j]),
                "weight": float(toward[j]),
                "push": float(push[j]),
                "weights": w,
            }
            for j, w in zip(units, weights, strict=True)
        ],  # fmt: skip
    }


def explain(model, norm: Normalization, image: np.ndarray, label: int | None = None, untrained=None,
            temperature: float | None = None, lr: float | None = None) -> dict:  # fmt: skip
    """One 28x28 uint8 image (MNIST's form) through a model -> softmax_steps of its logits, plus, for a model with
    a hidden layer, `hidden` (see hidden_units), plus, given the run's initial model, `untrained`:
    the same steps through it, plus `lab` (lab.py: curves, Jacobian, and with a label the hinge and
    one SGD step at `lr`). The logits come from inference.logits, exactly as `predict` computes them."""
    from mnistsoftmax import lab

    pixels = np.asarray(image, dtype=np.uint8).reshape(1, -1)
    result = softmax_steps(finite(logits(model, pixels, norm))[0], label)
    dtype = model.first_layer().dtype
    x = norm.apply(pixels, dtype=dtype)
    hidden = hidden_units(model, x, result["digit"])
    if hidden is not None:
        result["hidden"] = hidden
    if untrained is not None:
        result["untrained"] = softmax_steps(logits(untrained, pixels, norm)[0], label)
    if temperature is not None:  # temperature scaling: softmax(z / T), the same argmax
        result["temperature"] = float(temperature)
        result["calibrated"] = softmax_steps(result["logits"] / temperature, label)["probabilities"]
    result["lab"] = lab.lab(model, x, result, result.get("untrained"), lr if lr is not None else lab.DEFAULT_LR)
    return result


def through_training(models: list, steps: list[int], norm: Normalization, image: np.ndarray,
                     label: int | None = None) -> dict:  # fmt: skip
    """One 28x28 uint8 image under each snapshot's weights (models, taken at `steps`, S of them):
    {"steps" (S,), "logits" (S, C), "probabilities" (S, C), "predicted" (S,), and with a label
    "loss" (S,), its -log p(label)}, float64, each row as explain()'s softmax_steps computes it."""
    pixels = np.asarray(image, dtype=np.uint8).reshape(1, -1)
    Z = np.concatenate([finite(logits(m, pixels, norm)).astype(np.float64) for m in models])  # (S, C)
    result = {"steps": [int(s) for s in steps], "logits": Z, "probabilities": softmax(Z), "predicted": Z.argmax(axis=1)}
    if label is not None:
        result["loss"] = nll(Z, np.full(len(Z), label))
    return result


def jsonable(value):
    """explain()'s result with arrays as (nested) lists of floats, for JSON."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def format_table(steps: dict, class_names: list[str]) -> str:
    """The worked table z -> e^(z - max z) -> softmax -> log-softmax (-> gradient) for a terminal."""
    has_label = "label" in steps
    head = f"{'class':<14}{'z':>9}{'z - max':>10}{'e^(z-max)':>12}{'softmax':>10}{'log-softmax':>13}"
    lines = [head + (f"{'softmax-onehot':>16}" if has_label else "")]
    for c in range(len(steps["logits"])):
        name = str(c) if class_names[c] == str(c) else f"{c} {class_names[c]}"
        mark = "<" if c == steps["digit"] else " "
        line = (
            f"{name[:12]:<12}{mark} {steps['logits'][c]:9.4f}{steps['shifted'][c]:10.4f}"
            f"{steps['exp_shifted'][c]:12.4g}{steps['probabilities'][c]:10.4g}{steps['log_softmax'][c]:13.4f}"
        )
        if has_label:
            line += f"{steps['gradient'][c]:16.4g}"
        lines.append(line)
    lines.append(f"sum of e^(z - max z) = {steps['exp_sum']:.6f}  (max z = {steps['max_logit']:.4f}); "
                 f"softmax = e^(z - max z) / sum; log-softmax = (z - max z) - ln(sum)")  # fmt: skip
    lines.append("< marks the predicted class; a log-softmax of -0.0000 is a probability just below 1 "
                 "(its log rounds to zero from below)")  # fmt: skip
    if has_label:
        y = steps["label"]
        lines.append(
            f"label {y}: loss = -log p({y}) = {steps['loss']:.4g}  (cross entropy against the one-hot target; "
            f"ln 10 = 2.3026 is the loss of a uniform guess)"
        )
    return "\n".join(lines)
