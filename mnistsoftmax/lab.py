"""The articles' further steps, for one digit and one model: what the page's lab views draw and
`predict --explain` prints where it fits a terminal. Shapes: C = 10 classes, D = 784 inputs, K
first-layer columns shown.

    curves        the ten classes' points on e^(z - max z), log p and -log p (Tam's Figures 5, 6, 8),
                  the untrained net's point on -log p beside the trained one's
    jacobian      dS_i/dz_j = S_i (delta_ij - S_j), (C, C) (Bendersky); with a label, J^T dL/dS
                  where dL/dS = -onehot(y) / S_y: the chain rule, which collapses to S - onehot(y)
    hinge         max(0, z_k - z_y + 1) per class (the label's own term 0), their sum, the classes
                  that violate the margin, beside cross entropy's loss and gradient
    weights       the gradient of this digit's cross entropy with respect to the first layer's
                  weights, as images: a linear model's ten (p_c - y_c) x templates, an mlp's
                  units whose gradient is largest
    step          one SGD step on this digit alone at a learning rate: the loss before and after,
                  and the new probabilities (on new arrays: the model itself is untouched)
"""

from __future__ import annotations

import numpy as np

from mnistsoftmax.analysis import scaled_images, top_units
from mnistsoftmax.functional import softmax_jacobian
from mnistsoftmax.losses import LOSSES, MARGIN, hinge_per_sample
from mnistsoftmax.models import first_layer_gradient

GRADIENT_IMAGES = 12  # hidden units shown (a linear model shows its C templates)
DEFAULT_LR = 0.001  # about one digit's share of a training step (lr 0.05 over a batch of 128 is 0.0004 each)


def curves(steps: dict, untrained: dict | None = None) -> dict:
    """Each class's point (x, y) on the three curves, from softmax_steps' numbers."""
    p, logp = steps["probabilities"], steps["log_softmax"]
    points = {
        "exp": np.stack([steps["shifted"], steps["exp_shifted"]], axis=1),  # (C, 2)
        "log": np.stack([p, logp], axis=1),
        "nll": np.stack([p, -logp], axis=1),
    }
    if untrained is not None and "label" in steps:
        y = steps["label"]
        points["untrained_nll"] = np.array([untrained["probabilities"][y], -untrained["log_softmax"][y]])
    return points


def jacobian(steps: dict) -> dict:
    """The softmax Jacobian at this digit, and with a label the chain rule through it."""
    S = np.asarray(steps["probabilities"], dtype=np.float64)
    J = softmax_jacobian(S)  # (C, C): J[i, j] = dS_i / dz_j
    result = {"matrix": J}
    if "label" in steps:
        y = steps["label"]
        dL_dS = np.zeros_like(S)
        dL_dS[y] = -1.0 / S[y] if S[y] > 0 else -np.inf  # L = -log S_y
        with np.errstate(invalid="ignore"):
            result["chain"] = J.T @ dL_dS  # = S - onehot(y): the Jacobian collapses
    return result


def hinge(steps: dict) -> dict:
    """The multiclass hinge's terms for this digit's scores and label."""
    z, y = np.asarray(steps["logits"], dtype=np.float64), steps["label"]
    terms = np.maximum(0.0, z - z[y] + MARGIN)
    terms[y] = 0.0
    return {"terms": terms, "loss": float(hinge_per_sample(z[None], np.array([y]))[0]),
            "violating": [int(k) for k in np.flatnonzero(terms > 0)], "margin": MARGIN}  # fmt: skip


def training_step(model, x: np.ndarray, label: int, lr: float = DEFAULT_LR) -> dict:
    """The gradient of this digit's cross entropy with respect to every parameter, the first
    layer's as images, and one SGD step at `lr` on new arrays (the model itself is untouched), in
    the model's own dtype: the loss before is the page's to float32 rounding."""
    x = np.asarray(x, dtype=model.first_layer().dtype).reshape(1, -1)
    y = np.array([label])
    loss = LOSSES["cross-entropy"]
    Z, cache = model.forward(x)
    before = loss.forward(Z.astype(np.float64), y)
    grads = model.backward(loss.backward(Z, y), cache)
    first = first_layer_gradient(model, grads)  # (D, K)
    norms = np.sqrt(np.einsum("dk,dk->k", first, first, dtype=np.float64))  # (K,) one pass, no (D, K) temporary
    shown = top_units(norms, GRADIENT_IMAGES)
    images = scaled_images(first[:, shown])
    for name, p in model.params.items():  # the gradient arrays become the stepped parameters, p - lr g
        g = grads[name]
        g *= -lr
        g += p
    stepped = model.like(grads)
    z_after = stepped.forward(x)[0][0].astype(np.float64)
    after = np.exp(z_after - z_after.max())
    return {
        "lr": float(lr),
        "loss_before": before,
        "loss_after": loss.forward(z_after[None], y),
        "probabilities_after": after / after.sum(),
        "gradient": {"caption": model.unit_caption, "units": [int(u) for u in shown],
                     "norms": norms[shown], "images": images},
    }  # fmt: skip


def lab(model, x: np.ndarray, steps: dict, untrained: dict | None = None, lr: float = DEFAULT_LR) -> dict:
    """Every lab view's numbers for one normalised input x (1, D) whose softmax_steps are `steps`."""
    result = {"curves": curves(steps, untrained), "jacobian": jacobian(steps)}
    if "label" in steps:
        result["hinge"] = hinge(steps)
        result["step"] = training_step(model, x, steps["label"], lr)
    return result
