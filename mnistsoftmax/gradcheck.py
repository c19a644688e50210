"""Gradient checking: the hand-written backward pass against central finite differences.

In float64 a central difference (f(x + eps) - f(x - eps)) / (2 eps) with eps = 1e-5 is accurate
to about 1e-10 relative, so a correct backward agrees to well under 1e-6; in float32 the rounding
of f alone is ~1e-7 and the comparison means nothing.
"""

from __future__ import annotations

import numpy as np

from mnistsoftmax.activations import ACTIVATIONS, DEFAULT_ACTIVATION
from mnistsoftmax.losses import DEFAULT_LOSS, LOSSES
from mnistsoftmax.models import MODELS, build_model, hidden_widths, loss_and_grads


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
    hidden=16,
    batch_size: int = 8,
    reg: float = 1e-3,
    dropout: float = 0.0,
    smoothing: float = 0.0,
    loss: str = DEFAULT_LOSS,
    activation: str | None = None,
) -> dict[str, float]:
    """Largest relative error of every parameter's gradient of a float64 model on a random batch,
    under the loss of that name; with dropout p, through a fixed mask drawn once (the loss is then
    a fixed function again); with label smoothing e, of the smoothed loss. `hidden`: the widths
    of the mlp's hidden layers (an int is one), `activation` theirs (relu when None)."""
    from mnistsoftmax.functional import dropout_mask

    rng = np.random.default_rng(seed)
    model = build_model(kind, rng, hidden, dtype=np.float64, activation=activation)
    # Weights larger than the initial ones, so that every term (and the L2 penalty) matters.
    for p in model.params.values():
        p += 0.05 * rng.standard_normal(p.shape)
    X = rng.standard_normal((batch_size, model.sizes["inputs"]))
    y = rng.integers(0, model.sizes["classes"], size=batch_size)
    widths = model.hidden_widths
    mask = [dropout_mask(rng, dropout, np.empty((batch_size, H))) for H in widths] if dropout and widths else None
    _, grads = loss_and_grads(model, X, y, reg, mask, smoothing, loss)

    def objective():
        return loss_and_grads(model, X, y, reg, mask, smoothing, loss)[0]

    return {name: relative_error(grads[name], numerical_gradient(objective, p)) for name, p in model.params.items()}


def depths(model: str = "all", hidden=(16, 8)) -> list[tuple[str, list[int]]]:
    """(kind, widths) of every net check_all checks: each kind named ("all": every one), a kind with
    hidden layers at each depth up to `hidden`'s ([16], then [16, 8])."""
    widths = [hidden] if isinstance(hidden, int) else list(hidden)
    nets = []
    for kind in MODELS if model == "all" else [model]:
        full = hidden_widths(kind, widths)
        nets += [(kind, full[:depth]) for depth in range(1, len(full) + 1)] if full else [(kind, [])]
    return nets


def nets(model: str = "all", hidden=(16, 8), activation: str = "all") -> list[tuple[str, list[int], str]]:
    """(kind, widths, activation) of every net check_all checks: depths(model, hidden), a net with
    hidden layers under each activation named ("all": every one); a net without them has no
    activation to vary and takes the default."""
    names = list(ACTIVATIONS) if activation == "all" else [activation]
    return [(kind, widths, name) for kind, widths in depths(model, hidden)
            for name in (names if widths else [DEFAULT_ACTIVATION])]  # fmt: skip


def net_label(kind: str, widths: list[int], activation: str) -> str:
    """A net in a few words: "linear", "mlp 16,8 relu"."""
    return " ".join([kind, ",".join(map(str, widths)), activation if widths else ""]).strip()


def check_all(model: str = "all", loss: str = "all", seed: int = 0, hidden=(16, 8), batch_size: int = 8,
              reg: float = 1e-3, dropout: float = 0.0, smoothing: float = 0.0, activation: str = "all"):  # fmt: skip
    """check_model over the nets of nets(model, hidden, activation) and the losses named ("all":
    every one) -> (net, loss, parameter, relative error) for each parameter, the net as
    net_label() writes it. Dropout only where a net has hidden layers to drop, label smoothing only
    for a loss that takes it."""
    for kind, widths, function in nets(model, hidden, activation):
        p = dropout if widths else 0.0
        for name in LOSSES if loss == "all" else [loss]:
            e = smoothing if LOSSES[name].smoothable else 0.0
            errors = check_model(kind, seed, widths, batch_size, reg=reg, dropout=p, smoothing=e, loss=name,
                                 activation=function)  # fmt: skip
            for parameter, err in errors.items():
                yield net_label(kind, widths, function), name, parameter, err
