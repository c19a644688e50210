"""The two classifiers: softmax regression (`linear`) and a one-hidden-layer ReLU net (`mlp`).

Both expose the same interface, and no code outside this module asks which one it holds or what
its parameters are called:
    params            dict name -> array, the trainable parameters
    weight_names      the parameters L2 weight decay applies to (weights, never biases)
    sizes             {"inputs": D, "classes": C, and "hidden": H for a hidden layer}
    layers            the forward pass as steps ("affine", W, b) and ("relu",), for exporters
    forward(X, ws, dropout)  X (N, D) -> logits Z (N, C), cache; `dropout`, a mask (N, H) for the
                      hidden layer (functional.dropout_mask), only in training, only with one
    backward(dZ, cache, grads, ws, beta) -> grads, dict name -> array shaped like params
                      (with beta: grads <- beta * grads + gradient, the SGD momentum step)
    workspace(n)      buffers for batches of up to n samples, reused by forward/backward
    dropout_width     H, the width of the layer dropout applies to, or None
    first_layer()     the input layer's weights (D, K): K templates (linear) or hidden units
    unit_caption      what a column of first_layer() is: "class" or "unit"
    unit_strength()   (K,) how loudly each column speaks to the outputs (the views rank by it)
    hidden(X)         (activations (N, H), outgoing weights (H, C)) of the hidden layer, or None
    describe()        one line for people: "mlp, 512 hidden units"

MODELS maps each kind to its class; build() draws a new model, from_arrays() checks arrays read
from a file against the kind's parameter shapes.

With a workspace the returned logits and gradients live in reused buffers and are overwritten by
the next call; without one every call allocates. Shapes: N batch, D = 784, H hidden, C = 10.
"""

from __future__ import annotations

import numpy as np

from mnistsoftmax import MnistSoftmaxError
from mnistsoftmax.functional import (
    affine_backward,
    affine_forward,
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
    layers = (("affine", "W", "b"),)
    has_hidden_layer = False
    dropout_width = None
    unit_caption = "class"

    def __init__(self, params: dict[str, np.ndarray]):
        self.params = params

    @staticmethod
    def parameter_shapes(sizes: dict[str, int]) -> dict[str, tuple[int, ...]]:
        D, C = sizes["inputs"], sizes["classes"]
        return {"W": (D, C), "b": (C,)}

    @classmethod
    def sizes_of(cls, params: dict[str, np.ndarray]) -> dict[str, int]:
        D, C = params["W"].shape
        return {"inputs": D, "classes": C}

    def first_layer(self) -> np.ndarray:
        """W (D, C): one template per class."""
        return self.params["W"]

    def unit_strength(self) -> np.ndarray:
        """(C,) all alike: every template is the class's own output."""
        return np.ones(self.params["W"].shape[1])

    def hidden(self, X: np.ndarray):
        return None

    def describe(self) -> str:
        return self.summary(self.sizes)

    @staticmethod
    def summary(options: dict) -> str:
        """One line for people, from a run's options or a model's sizes."""
        return "linear softmax"

    @classmethod
    def initialize(cls, rng: np.random.Generator, num_inputs=NUM_INPUTS, num_classes=NUM_CLASSES, dtype=np.float32):
        # Tiny weights: logits start near 0, every class near 1/C, the loss near ln C.
        W = (0.001 * rng.standard_normal((num_inputs, num_classes))).astype(dtype)
        return cls({"W": W, "b": np.zeros(num_classes, dtype)})

    @property
    def sizes(self) -> dict[str, int]:
        return self.sizes_of(self.params)

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
    layers = (("affine", "W1", "b1"), ("relu",), ("affine", "W2", "b2"))
    has_hidden_layer = True
    unit_caption = "unit"

    def __init__(self, params: dict[str, np.ndarray]):
        self.params = params

    @staticmethod
    def parameter_shapes(sizes: dict[str, int]) -> dict[str, tuple[int, ...]]:
        D, H, C = sizes["inputs"], sizes["hidden"], sizes["classes"]
        return {"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)}

    @classmethod
    def sizes_of(cls, params: dict[str, np.ndarray]) -> dict[str, int]:
        (D, H), C = params["W1"].shape, params["W2"].shape[-1]
        return {"inputs": D, "hidden": H, "classes": C}

    @property
    def dropout_width(self) -> int:
        return self.params["W1"].shape[1]

    def first_layer(self) -> np.ndarray:
        """W1 (D, H): each column a hidden unit's weights on the pixels."""
        return self.params["W1"]

    def unit_strength(self) -> np.ndarray:
        """||W2[j]|| (H,): how loudly each hidden unit speaks to the outputs.

        Units the output layer has learned to listen to are the ones training shaped; at H = 512
        most units keep weights that look like their random start, so showing units 0-31 shows noise.
        """
        return np.linalg.norm(self.params["W2"].astype(np.float64), axis=1)

    def hidden(self, X: np.ndarray):
        """X (N, D) -> (the ReLU's outputs A (N, H), the outgoing weights W2 (H, C))."""
        H, _ = affine_forward(X, self.params["W1"], self.params["b1"])  # (N, H)
        A, _ = relu_forward(H, out=H)
        return A, self.params["W2"]

    def describe(self) -> str:
        return self.summary(self.sizes)

    @staticmethod
    def summary(options: dict) -> str:
        """One line for people, from a run's options or a model's sizes."""
        return f"mlp, {options.get('hidden')} hidden units"

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
        return self.sizes_of(self.params)

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


class ModelError(MnistSoftmaxError):
    """Arrays that are not the parameters of a model of the kind they claim."""


def model_class(kind: str):
    try:
        return MODELS[kind]
    except (KeyError, TypeError):
        raise ModelError(f"unknown model kind {kind!r} (expected one of {', '.join(MODELS)})") from None


def build(kind: str, rng: np.random.Generator, hidden: int = 256, inputs: int = NUM_INPUTS,
          classes: int = NUM_CLASSES, dtype=np.float32):  # fmt: skip
    """A freshly initialised model of the given kind (`hidden` is used by kinds with a hidden layer)."""
    cls = model_class(kind)
    if cls.has_hidden_layer:
        return cls.initialize(rng, hidden, num_inputs=inputs, num_classes=classes, dtype=dtype)
    return cls.initialize(rng, num_inputs=inputs, num_classes=classes, dtype=dtype)


def build_model(kind: str, rng: np.random.Generator, hidden: int = 256, dtype=np.float32):
    """A freshly initialised MNIST model of the given kind (784 inputs, 10 classes)."""
    return build(kind, rng, hidden, dtype=dtype)


def from_arrays(kind: str, arrays: dict[str, np.ndarray], inputs: int = NUM_INPUTS, classes: int = NUM_CLASSES):
    """The model of that kind holding these arrays, checked: exactly its parameters, floating
    point, of consistent shapes, mapping `inputs` to `classes`. ModelError says what is wrong."""
    cls = model_class(kind)
    expected = cls.parameter_shapes({"inputs": 1, "hidden": 1, "classes": 1})
    if set(arrays) != set(expected):
        raise ModelError(f"a {kind} model holds {', '.join(expected)}, found {', '.join(sorted(arrays)) or 'none'}")
    for name, shape in expected.items():
        a = arrays[name]
        if a.ndim != len(shape) or a.dtype.kind != "f" or a.size == 0:
            raise ModelError(f"parameter {name} has shape {a.shape} and dtype {a.dtype}")
        if not np.isfinite(a).all():
            raise ModelError(f"parameter {name} holds values that are not finite (NaN or infinity)")
    sizes = cls.sizes_of(arrays)
    shapes = cls.parameter_shapes(sizes)
    for name, shape in shapes.items():
        if arrays[name].shape != shape:
            found = ", ".join(f"{k} {arrays[k].shape}" for k in shapes)
            raise ModelError(f"one shape of the {kind} model does not match the next: {found}")
    if sizes["inputs"] != inputs or sizes["classes"] != classes:
        raise ModelError(f"the model must map {inputs} inputs to {classes} classes, not "
                         f"{sizes['inputs']} to {sizes['classes']}")  # fmt: skip
    return cls(dict(arrays))


def describe(options: dict) -> str:
    """A run's model in one line for people, from its options ("" for an unknown kind)."""
    cls = MODELS.get(options.get("model")) if isinstance(options.get("model"), str) else None
    return cls.summary(options) if cls is not None else ""


def first_layer_gradient(model, grads: dict) -> np.ndarray:
    """From a backward pass's gradients, the first layer's weights' one (D, K), as first_layer()."""
    return grads[model.layers[0][1]]


def parameter_names() -> set[str]:
    """The names any model's parameters may have (a checkpoint holds no other arrays)."""
    sizes = {"inputs": 1, "hidden": 1, "classes": 1}
    return {name for cls in MODELS.values() for name in cls.parameter_shapes(sizes)}


def with_dtype(model, dtype):
    """A copy of the model with its parameters in another dtype."""
    return type(model)({k: v.astype(dtype) for k, v in model.params.items()})


def loss_and_grads(model, X: np.ndarray, y: np.ndarray, reg: float = 0.0, dropout: np.ndarray | None = None,
                   smoothing: float = 0.0, loss: str = "cross-entropy"):  # fmt: skip
    """The full objective and its gradient: the mean loss (losses.LOSSES[loss]) + reg * sum(W**2)
    over weights.

    X (N, D), y (N,) -> (loss, grads); `dropout`, a fixed mask (N, H) for the hidden layer;
    `smoothing`, label smoothing's e (losses.cross_entropy).
    The plain, allocating path: used by gradcheck and tests; the training loop runs the same
    functions with buffers.
    """
    from mnistsoftmax.losses import get

    objective = get(loss)
    Z, cache = model.forward(X, dropout=dropout)
    weights = [model.params[name] for name in model.weight_names]
    value = objective.forward(Z, y, smoothing) + l2_penalty(weights, reg)
    grads = model.backward(objective.backward(Z, y, smoothing), cache)
    for name in model.weight_names:
        grads[name] += l2_penalty_backward(model.params[name], reg)
    return value, grads
