"""Gradient checking: the hand-written backward pass against central finite differences.

In float64 a central difference (f(x + eps) - f(x - eps)) / (2 eps) with eps = 1e-5 is accurate
to about 1e-10 relative, so a correct backward agrees to well under 1e-6; in float32 the rounding
of f alone is ~1e-7 and the comparison means nothing.
"""

from __future__ import annotations

import numpy as np

from mnistsoftmax.losses import LOSSES
from mnistsoftmax.models import MODELS, build_model, loss_and_grads


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of the scalar f() with respect to each entry of x.

    Writes into x (each entry is moved by +-eps and put back), so f must read x.
    """
    grad = np.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)
    for i in range(flat_x.size):
        saved = flat_x[i]
        flat_x[i] = saved + eps
        plus = f()
        flat_x[i] = saved - eps
        minus = f()
        flat_x[i] = saved
        flat_grad[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / (||a|| + ||n||) over a whole parameter.

    Normwise rather than entry by entry: an entry of 1e-5 carries the difference quotient's
    rounding noise (~1e-11 absolute) as ~1e-6 relative error, though the gradient is right.
    """
    denominator = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return float(np.linalg.norm(analytic - numeric) / denominator) if denominator else 0.0


def check_model(
    kind: str,
    seed: int = 0,
    hidden: int = 16,
    batch_size: int = 8,
    reg: float = 1e-3,
    dropout: float = 0.0,
    smoothing: float = 0.0,
    loss: str = "cross-entropy",
) -> dict[str, float]:
    """Largest relative error of every parameter's gradient of a float64 model on a random batch,
    under the loss of that name; with dropout p, through a fixed mask drawn once (the loss is then
    a fixed function again); with label smoothing e, of the smoothed loss."""
    from mnistsoftmax.functional import dropout_mask

    rng = np.random.default_rng(seed)
    model = build_model(kind, rng, hidden, dtype=np.float64)
    # Weights larger than the initial ones, so that every term (and the L2 penalty) matters.
    for p in model.params.values():
        p += 0.05 * rng.standard_normal(p.shape)
    X = rng.standard_normal((batch_size, model.sizes["inputs"]))
    y = rng.integers(0, model.sizes["classes"], size=batch_size)
    mask = dropout_mask(rng, dropout, np.empty((batch_size, hidden))) if dropout else None
    _, grads = loss_and_grads(model, X, y, reg, mask, smoothing, loss)

    def objective():
        return loss_and_grads(model, X, y, reg, mask, smoothing, loss)[0]

    return {name: relative_error(grads[name], numerical_gradient(objective, p)) for name, p in model.params.items()}


def check_all(model: str = "all", loss: str = "all", seed: int = 0, hidden: int = 16, batch_size: int = 8,
              reg: float = 1e-3, dropout: float = 0.0, smoothing: float = 0.0):  # fmt: skip
    """check_model over the models and losses named ("all": every one) -> (kind, loss, parameter,
    relative error) for each parameter. Dropout only where a model has a hidden layer to drop,
    label smoothing only for a loss that takes it."""
    for kind in MODELS if model == "all" else [model]:
        p = dropout if MODELS[kind].has_hidden_layer else 0.0
        for name in LOSSES if loss == "all" else [loss]:
            e = smoothing if LOSSES[name].smoothable else 0.0
            errors = check_model(kind, seed, hidden, batch_size, reg=reg, dropout=p, smoothing=e, loss=name)
            for parameter, err in errors.items():
                yield kind, name, parameter, err
