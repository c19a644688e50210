"""Pure math of the classifiers: softmax, log-softmax, the softmax Jacobian, and the layers (the
losses are in losses.py).

Letters used for shapes throughout the package:
    N  samples in a batch
    D  inputs per sample (784 = 28 * 28 pixels)
    H  hidden units of the MLP
    C  classes (10)

Every layer is a pair, forward beside backward: ``*_forward(...) -> (out, cache)`` and
``*_backward(dout, cache) -> gradients``. Functions that take ``out=`` write their result into
that array (so the training loop can reuse buffers) and return it; without ``out=`` they allocate.
Nothing here draws random numbers, prints, or keeps state.
"""

from __future__ import annotations

import numpy as np

from mnistsoftmax.blas import column_sums, gemm


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits Z (N, C) -> probabilities (N, C), each row summing to 1.

    Shifting each row by its maximum leaves the result unchanged (softmax(z) = softmax(z - c))
    and keeps exp() from overflowing: the largest exponent is exp(0) = 1.
    """
    shifted = Z - Z.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise log of the softmax, (N, C) -> (N, C), by log-sum-exp.

    log softmax(z)_j = z_j - m - log(sum_k exp(z_k - m)) with m = max_k z_k; never log(softmax),
    which would be -inf wherever a probability underflows to 0.
    """
    shifted = Z - Z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def onehot(y: np.ndarray, num_classes: int, dtype=np.float64) -> np.ndarray:
    """Integer labels (N,) -> one-hot rows (N, C)."""
    Y = np.zeros((len(y), num_classes), dtype=dtype)
    Y[np.arange(len(y)), y] = 1
    return Y


def softmax_jacobian(s: np.ndarray) -> np.ndarray:
    """Jacobian of the softmax at probabilities s (C,): J[i, j] = dS_i/dz_j = S_i (delta_ij - S_j)."""
    return np.diag(s) - np.outer(s, s)


def affine_forward(X: np.ndarray, W: np.ndarray, b: np.ndarray, out: np.ndarray | None = None):
    """Z = X @ W + b: X (N, D), W (D, M), b (M,) -> Z (N, M), cache (X, W)."""
    Z = out if out is not None else np.empty((len(X), W.shape[1]), np.result_type(X, W))
    Z[...] = b  # the gemm adds X @ W to it (beta = 1): one pass less than adding b afterwards
    gemm(X, W, Z, beta=1.0)
    return Z, (X, W)


def affine_backward(dZ: np.ndarray, cache, dX=None, dW=None, db=None, need_dX: bool = True, beta: float = 0.0):
    """Gradients of Z = X @ W + b, dZ (N, M) -> dX (N, D), dW (D, M), db (M,).

    dX is skipped (None) when need_dX is False: the first layer's input is data, not a parameter.
    With beta, the parameter gradients are added to beta times what dW and db hold: the SGD
    velocity update v <- momentum * v + g done in the same pass that computes g (optim.SGD).
    """
    X, W = cache
    if beta and (dW is None or db is None):
        raise ValueError("beta needs the dW and db to accumulate into")
    dtype = np.result_type(X, dZ)
    dW = gemm(X.T, dZ, dW if dW is not None else np.empty((X.shape[1], dZ.shape[1]), dtype), beta=beta)  # (D, M)
    db = column_sums(dZ, db if db is not None else np.empty(dZ.shape[1], dtype), beta=beta)  # (M,)
    if need_dX:
        dX = gemm(dZ, W.T, dX if dX is not None else np.empty((len(dZ), W.shape[0]), np.result_type(dZ, W)))  # (N, D)
    else:
        dX = None
    return dX, dW, db


def relu_forward(H: np.ndarray, out: np.ndarray | None = None):
    """A = max(H, 0) elementwise, (N, H) -> (N, H), cache A (its sign is the mask)."""
    A = np.maximum(H, 0, out=out)
    return A, A


def relu_backward(dA: np.ndarray, cache, out: np.ndarray | None = None, mask: np.ndarray | None = None):
    """dH = dA where the unit was active (A > 0), else 0; (N, H) -> (N, H).

    At H = 0 exactly the subgradient 0 is taken, as every framework does. With buffers, `mask`
    (bool, like A) receives A > 0 and `out` (which may be dA itself) receives the result.
    """
    A = cache
    mask = np.greater(A, 0, out=mask)
    return np.multiply(dA, mask, out=out)


def tanh_forward(H: np.ndarray, out: np.ndarray | None = None, scratch: np.ndarray | None = None):
    """A = tanh(H) elementwise, (N, H) -> (N, H), cache A (the derivative is 1 - A**2); `scratch`
    is unused (the backward's)."""
    A = np.tanh(H, out=out)
    return A, A


def tanh_backward(dA: np.ndarray, cache, out: np.ndarray | None = None, mask: np.ndarray | None = None,
                  scratch: np.ndarray | None = None):  # fmt: skip
    """dH = dA * (1 - A**2), (N, H) -> (N, H); `out` may be dA itself, `scratch` (like A) receives
    1 - A**2 (`mask` is unused: the derivative is a number per unit, not on or off)."""
    A = cache
    slope = np.multiply(A, A, out=scratch)  # (N, H)
    np.subtract(1, slope, out=slope)
    return np.multiply(dA, slope, out=out)


def leaky_relu_forward(H: np.ndarray, slope: float, out: np.ndarray | None = None,
                       scratch: np.ndarray | None = None):  # fmt: skip
    """A = H where H > 0, else slope * H, for 0 < slope < 1: max(H, slope * H); (N, H) -> (N, H),
    cache A (its sign is H's, so it is the mask); `scratch` (like H) receives slope * H."""
    below = np.multiply(H, H.dtype.type(slope), out=scratch)
    A = np.maximum(H, below, out=out)
    return A, A


def leaky_relu_backward(dA: np.ndarray, cache, slope: float, out: np.ndarray | None = None,
                        mask: np.ndarray | None = None, scratch: np.ndarray | None = None):  # fmt: skip
    """dH = dA where A > 0, slope * dA elsewhere (H = 0 takes the slope, as PyTorch does);
    (N, H) -> (N, H), `mask` (bool, like A) and `out` (which may be dA) as relu_backward's,
    `scratch` (like dA) receives each unit's slope, 1 or `slope`."""
    A = cache
    mask = np.greater(A, 0, out=mask)
    gain = np.empty_like(dA) if scratch is None else scratch
    gain.fill(slope)  # in dA's dtype, as the float32 number np.where would give
    np.copyto(gain, 1, where=mask)
    return np.multiply(dA, gain, out=out)


def dropout_forward(A: np.ndarray, mask: np.ndarray, out: np.ndarray | None = None):
    """Inverted dropout with a given mask: A * mask, (N, H) -> (N, H), cache the mask.

    mask holds 0 for a dropped unit and 1 / (1 - p) for a kept one (dropout_mask draws it), so the
    expected activation is unchanged and evaluation needs no dropout and no rescaling.
    """
    return np.multiply(A, mask, out=out), mask


def dropout_backward(dout: np.ndarray, cache, out: np.ndarray | None = None) -> np.ndarray:
    """d(A * mask)/dA = mask: the gradient flows through kept units, scaled alike; (N, H) -> (N, H)."""
    return np.multiply(dout, cache, out=out)


def dropout_mask(rng: np.random.Generator, p: float, out: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Draw an inverted-dropout mask into out (N, H): each unit kept with probability 1 - p, as
    1 / (1 - p), else 0. One uniform draw per entry, in out's dtype; `keep` (bool, like out) is
    scratch."""
    rng.random(out=out, dtype=out.dtype.type)
    keep = np.greater_equal(out, p, out=keep)
    return np.multiply(keep, out.dtype.type(1.0 / (1.0 - p)), out=out)


def l2_penalty(weights: list[np.ndarray], reg: float) -> float:
    """reg * sum of squared weights: the L2 term added to the loss (biases are not included)."""
    return float(reg * sum(np.vdot(W, W) for W in weights))


def l2_penalty_backward(W: np.ndarray, reg: float) -> np.ndarray:
    """Gradient of reg * sum(W**2) with respect to W: 2 * reg * W, same shape as W."""
    return 2.0 * reg * W
