"""The two classifiers: softmax regression (`linear`) and a one-hidden-layer ReLU net (`mlp`).

Both expose the same interface, so the training loop, checkpoints and the CLI never ask which
one they hold:
    params            dict name -> array, the trainable parameters
    weight_names      the parameters L2 weight decay applies to (weights, never biases)
    forward(X, ws, dropout)  X (N, D) -> logits Z (N, C), cache; `dropout`, a mask for the
                      hidden layer (functional.dropout_mask), only in training and only for mlp
    backward(dZ, cache, grads, ws, beta) -> grads, dict name -> array shaped like params
                      (with beta: grads <- beta * grads + gradient, the SGD momentum step)
    workspace(n)      buffers for batches of up to n samples, reused by forward/backward

With a workspace the returned logits and gradients live in reused buffers and are overwritten by
the next call; without one every call allocates. Shapes: N batch, D = 784, H hidden, C = 10.
"""

from __future__ import annotations

import numpy as np

from mnistsoftmax import MnistSoftmaxError
from mnistsoftmax.functional import (
    affine_backward,
    affine_forward,
    cross_entropy,
    cross_entropy_backward,
    dropout_backward,
    dropout_forward,
    l2_penalty,
    l2_penalty_backward,
    relu_backward,
    relu_forward,
)

NUM_INPUTS = 784
NUM_CLASSES = 10


class Workspace(dict):
    """Named buffers with room for `capacity` samples; `take(name, n)` is a view of the first n rows."""

    def __init__(self, capacity: int, **shapes_dtype):
        super().__init__({name: np.empty((capacity, *shape), dtype) for name, (shape, dtype) in shapes_dtype.items()})
        self.capacity = capacity

    def take(self, name: str, n: int) -> np.ndarray:
        return self[name][:n]


class LinearSoftmax:
    """Softmax regression: Z = X @ W + b, W (D, C), b (C,)."""

    kind = "linear"
    weight_names = ("W",)

    def __init__(self, params: dict[str, np.ndarray]):
        self.params = params

    @classmethod
    def initialize(cls, rng: np.random.Generator, num_inputs=NUM_INPUTS, num_classes=NUM_CLASSES, dtype=np.float32):
        # Tiny weights: logits start near 0, every class near 1/C, the loss near ln C.
        W = (0.001 * rng.standard_normal((num_inputs, num_classes))).astype(dtype)
        return cls({"W": W, "b": np.zeros(num_classes, dtype)})

    @property
    def sizes(self) -> dict[str, int]:
        D, C = self.params["W"].shape
        return {"inputs": D, "classes": C}

    def workspace(self, capacity: int) -> Workspace:
        C, dtype = self.sizes["classes"], self.params["W"].dtype
        return Workspace(capacity, Z=((C,), dtype))

    def forward(self, X: np.ndarray, ws: Workspace | None = None, dropout: np.ndarray | None = None):
        """X (N, D) -> logits (N, C), cache."""
        if dropout is not None:
            raise MnistSoftmaxError("dropout applies to the hidden layer: it needs the mlp model")
        out = ws.take("Z", len(X)) if ws is not None else None
        return affine_forward(X, self.params["W"], self.params["b"], out=out)

    def backward(self, dZ: np.ndarray, cache, grads=None, ws: Workspace | None = None, beta: float = 0.0):
        """dZ (N, C) -> {"W": (D, C), "b": (C,)}."""
        g = grads if grads is not None else {}
        _, g["W"], g["b"] = affine_backward(dZ, cache, dW=g.get("W"), db=g.get("b"), need_dX=False, beta=beta)
        return g


class MLP:
    """One hidden ReLU layer: A = relu(X @ W1 + b1) (N, H); Z = A @ W2 + b2 (N, C)."""

    kind = "mlp"
    weight_names = ("W1", "W2")

    def __init__(self, params: dict[str, np.ndarray]):
        self.params = params

    @classmethod
    def initialize(
        cls, rng: np.random.Generator, hidden: int, num_inputs=NUM_INPUTS, num_classes=NUM_CLASSES, dtype=np.float32
    ):
        # He initialisation keeps the hidden activations at unit scale through the ReLU; the output
        # layer starts 10x smaller than that so the logits start near 0 and the loss near ln C.
        W1 = rng.standard_normal((num_inputs, hidden)) * np.sqrt(2.0 / num_inputs)
        W2 = rng.standard_normal((hidden, num_classes)) * (0.1 / np.sqrt(hidden))
        params = {"W1": W1, "b1": np.zeros(hidden), "W2": W2, "b2": np.zeros(num_classes)}
        return cls({k: v.astype(dtype) for k, v in params.items()})

    @property
    def sizes(self) -> dict[str, int]:
        D, H = self.params["W1"].shape
        return {"inputs": D, "hidden": H, "classes": self.params["W2"].shape[1]}

    def workspace(self, capacity: int) -> Workspace:
        s, dtype = self.sizes, self.params["W1"].dtype
        H, C = s["hidden"], s["classes"]
        return Workspace(capacity, A=((H,), dtype), Z=((C,), dtype), dA=((H,), dtype), mask=((H,), np.bool_))

    def forward(self, X: np.ndarray, ws: Workspace | None = None, dropout: np.ndarray | None = None):
        """X (N, D) -> logits (N, C), cache; with a dropout mask (N, H), the hidden layer dropped."""
        n, p = len(X), self.params
        take = (lambda name: ws.take(name, n)) if ws is not None else (lambda name: None)
        H, cache1 = affine_forward(X, p["W1"], p["b1"], out=take("A"))  # (N, H)
        A, cache_relu = relu_forward(H, out=H)  # (N, H), in place: H is not needed again
        cache_drop = None
        if dropout is not None:
            # In place too; relu_backward's mask, A > 0, then also leaves out the dropped units.
            A, cache_drop = dropout_forward(A, dropout, out=A)  # (N, H)
        Z, cache2 = affine_forward(A, p["W2"], p["b2"], out=take("Z"))  # (N, C)
        return Z, (cache1, cache_relu, cache_drop, cache2)

    def backward(self, dZ: np.ndarray, cache, grads=None, ws: Workspace | None = None, beta: float = 0.0):
        """dZ (N, C) -> {"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)}; reverse order of forward."""
        cache1, cache_relu, cache_drop, cache2 = cache
        n, g = len(dZ), grads if grads is not None else {}
        take = (lambda name: ws.take(name, n)) if ws is not None else (lambda name: None)
        dA, g["W2"], g["b2"] = affine_backward(dZ, cache2, take("dA"), g.get("W2"), g.get("b2"), beta=beta)  # (N, H)
        if cache_drop is not None:
            dA = dropout_backward(dA, cache_drop, out=dA)  # (N, H), in place
        dH = relu_backward(dA, cache_relu, out=dA, mask=take("mask"))  # (N, H), in place of dA
        _, g["W1"], g["b1"] = affine_backward(dH, cache1, None, g.get("W1"), g.get("b1"), need_dX=False, beta=beta)
        return g


MODELS = {"linear": LinearSoftmax, "mlp": MLP}


def build_model(kind: str, rng: np.random.Generator, hidden: int = 256, dtype=np.float32):
    """A freshly initialised model of the given kind."""
    if kind == "linear":
        return LinearSoftmax.initialize(rng, dtype=dtype)
    if kind == "mlp":
        return MLP.initialize(rng, hidden, dtype=dtype)
    raise MnistSoftmaxError(f"unknown model kind {kind!r}: expected one of {', '.join(MODELS)}")


def loss_and_grads(
    model, X: np.ndarray, y: np.ndarray, reg: float = 0.0, dropout: np.ndarray | None = None, smoothing: float = 0.0
):
    """The full objective and its gradient: mean cross entropy + reg * sum(W**2) over weights.

    X (N, D), y (N,) -> (loss, grads); `dropout`, a fixed mask (N, H) for an mlp's hidden layer;
    `smoothing`, label smoothing's e (functional.cross_entropy).
    The plain, allocating path: used by gradcheck and tests; the training loop runs the same
    functions with buffers.
    """
    Z, cache = model.forward(X, dropout=dropout)
    weights = [model.params[name] for name in model.weight_names]
    loss = cross_entropy(Z, y, smoothing) + l2_penalty(weights, reg)
    grads = model.backward(cross_entropy_backward(Z, y, smoothing), cache)
    for name in model.weight_names:
        grads[name] += l2_penalty_backward(model.params[name], reg)
    return loss, grads
