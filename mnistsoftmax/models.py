"""The classifier: fully connected layers, its depth one list of hidden widths.

    hidden = []           softmax regression (`linear`): Z = X @ W + b
    hidden = [H]          one hidden layer (`mlp`): A1 = f(X @ W1 + b1); Z = A1 @ W2 + b2
    hidden = [H1, H2...]  more of them: A_l = f(A_{l-1} @ W_l + b_l), Z = A_L @ W_{L+1} + b_{L+1}

where f is the activation (activations.py: relu, tanh, leaky-relu; relu unless named).

One class, Network, whatever the depth; no code outside this module asks which kind it holds or
what its parameters are called. Its interface:
    params            dict name -> array, the trainable parameters (W, b; or W1, b1, W2, b2, ...)
    hidden_widths     the list of hidden widths, [] for softmax regression
    kind              "linear" or "mlp" (MODELS), read off the widths
    activation        the hidden layers' activation (activations.Activation)
    weight_names      the parameters L2 weight decay applies to (weights, never biases)
    sizes             {"inputs": D, "classes": C, and "hidden": [H1, ...] for hidden layers}
    layers            the forward pass as steps ("affine", W, b) and (activation name,), for exporters
    forward(X, ws, dropout)  X (N, D) -> logits Z (N, C), cache; `dropout`, one mask (N, H_l) per
                      hidden layer (functional.dropout_mask), only in training
    backward(dZ, cache, grads, ws, beta) -> grads, dict name -> array shaped like params
                      (with beta: grads <- beta * grads + gradient, the fused SGD momentum step)
    workspace(n)      buffers for batches of up to n samples, reused by forward/backward
    first_layer()     the input layer's weights (D, K): K templates (linear) or first hidden units
    unit_caption      what a column of first_layer() is: "class" or "unit"
    unit_strength()   (K,) how loudly each first-layer column speaks to the layer above
    last_hidden_layer(X)  (its activations (N, H), its outgoing weights (H, C)), or None
    unit_pictures(units, x)  (D, K) what each of those units responds to, in pixels
    output_strength() (H,) the norm of each last-hidden unit's weights into the logits, or None
    describe()        one line for people: "mlp, 512 hidden units"
    like(params)      a model of the same activation holding other parameters

MODELS maps each kind to what it is; build() draws a new model, from_arrays() checks arrays read
from a file against the parameter shapes of the depth they spell.

With a workspace the returned logits and gradients live in reused buffers and are overwritten by
the next call; without one every call allocates. Shapes: N batch, D = 784, H_l the width of
hidden layer l, C = 10.
"""

from __future__ import annotations

import re

import numpy as np

from mnistsoftmax import activations
from mnistsoftmax.functional import (
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
    l2_penalty,
    l2_penalty_backward,
)
from mnistsoftmax.registry import (  # noqa: F401  (the kinds are described without numpy, for the options)
    DEFAULT_MODEL,
    MAX_HIDDEN_LAYERS,
    MODELS,
    Kind,
    ModelError,
    check_dropout,
    hidden_widths,
    model_kind,
)

NUM_INPUTS = 784
NUM_CLASSES = 10


def layer_names(depth: int) -> list[tuple[str, str]]:
    """(weight, bias) names of each affine layer of a net with `depth` hidden layers: W, b for
    softmax regression (as its checkpoints have always named them), else W1, b1 ... W_{depth+1}."""
    if depth == 0:
        return [("W", "b")]
    return [(f"W{i}", f"b{i}") for i in range(1, depth + 2)]


_NAME = re.compile(r"[Wb]([1-9][0-9]?)?")


def is_parameter_name(name: str) -> bool:
    """Whether a model of some depth may have a parameter of that name (a checkpoint holds no other)."""
    match = _NAME.fullmatch(name)
    return match is not None and (match.group(1) is None or int(match.group(1)) <= MAX_HIDDEN_LAYERS + 1)


def depth_of(names) -> int:
    """The number of hidden layers that parameter names spell; ModelError when they spell none."""
    names = set(names)
    for depth in range(MAX_HIDDEN_LAYERS + 1):
        if names == {n for pair in layer_names(depth) for n in pair}:
            return depth
    found = ", ".join(sorted(names)[:8]) or "none"
    raise ModelError(f"a model holds W and b, or W1, b1, W2, b2 and so on for each layer, found {found}")


class Workspace(dict):
    """Named buffers with room for `capacity` samples; `take(name, n)` is a view of the first n rows."""

    def __init__(self, capacity: int, **shapes_dtype):
        super().__init__({name: np.empty((capacity, *shape), dtype) for name, (shape, dtype) in shapes_dtype.items()})
        self.capacity = capacity

    def take(self, name: str, n: int) -> np.ndarray:
        return self[name][:n]


class Network:
    """Affine layers with the activation after each but the last; see the module docstring."""

    # A model pickled before the choice of activation (a fitted estimator, say) has no
    # activation_name of its own: it was relu, which this class default gives it back.
    activation_name = activations.DEFAULT_ACTIVATION

    def __init__(self, params: dict[str, np.ndarray], activation: str | None = None):
        self.params = params
        self.names = layer_names(depth_of(params))  # [(W, b)] per affine layer, input first
        self.activation_name = activations.get(activation).name  # a name, so that the model pickles

    @property
    def activation(self) -> activations.Activation:
        return activations.get(self.activation_name)

    def like(self, params: dict[str, np.ndarray]) -> Network:
        return Network(params, self.activation_name)

    @property
    def hidden_widths(self) -> list[int]:
        return [self.params[W].shape[1] for W, _ in self.names[:-1]]

    @property
    def kind(self) -> str:
        return "mlp" if len(self.names) > 1 else "linear"

    @property
    def weight_names(self) -> tuple[str, ...]:
        return tuple(W for W, _ in self.names)

    @property
    def layers(self) -> tuple[tuple[str, ...], ...]:
        steps: list[tuple[str, ...]] = []
        for W, b in self.names:
            steps += [("affine", W, b), (self.activation.name,)]
        return tuple(steps[:-1])

    @property
    def unit_caption(self) -> str:
        return "unit" if len(self.names) > 1 else "class"

    @property
    def sizes(self) -> dict:
        D, C = self.params[self.names[0][0]].shape[0], self.params[self.names[-1][0]].shape[1]
        widths = self.hidden_widths
        return {"inputs": D, "hidden": widths, "classes": C} if widths else {"inputs": D, "classes": C}

    def describe(self) -> str:
        return summary(self.kind, self.hidden_widths, self.activation.name)

    @staticmethod
    def parameter_shapes(inputs: int, widths: list[int], classes: int) -> dict[str, tuple[int, ...]]:
        fans = [inputs, *widths, classes]
        shapes = {}
        for (W, b), fan_in, fan_out in zip(layer_names(len(widths)), fans, fans[1:], strict=False):
            shapes[W], shapes[b] = (fan_in, fan_out), (fan_out,)
        return shapes

    @classmethod
    def initialize(cls, rng: np.random.Generator, widths: list[int], num_inputs=NUM_INPUTS, num_classes=NUM_CLASSES,
                   dtype=np.float32, activation: str | None = None):  # fmt: skip
        """Weights drawn layer by layer from `rng`, input first; biases 0.

        He initialisation (with the activation's gain) keeps each hidden layer's activations at
        unit scale; the output layer starts 10x smaller than that, so the logits start near 0 and
        the loss near ln C. Softmax regression's single layer starts tinier still (0.001): its
        inputs are the pixels.
        """
        gain = activations.get(activation).variance_gain
        shapes = cls.parameter_shapes(num_inputs, widths, num_classes)
        params = {}
        for i, (W, b) in enumerate(layer_names(len(widths))):
            fan_in = shapes[W][0]
            if not widths:
                params[W] = 0.001 * rng.standard_normal(shapes[W])
            elif i < len(widths):
                params[W] = rng.standard_normal(shapes[W]) * np.sqrt(gain / fan_in)
            else:
                params[W] = rng.standard_normal(shapes[W]) * (0.1 / np.sqrt(fan_in))
            params[b] = np.zeros(shapes[b])
        return cls({k: v.astype(dtype) for k, v in params.items()}, activation)

    def first_layer(self) -> np.ndarray:
        """The input layer's weights (D, K): one template per class, or one column per first hidden unit."""
        return self.params[self.names[0][0]]

    def unit_strength(self) -> np.ndarray:
        """(K,) how loudly each first-layer column speaks to the layer above: all alike for softmax
        regression (each template is its class's output), else the norm of the unit's outgoing
        weights. Units the layer above has learned to listen to are the ones training shaped; at
        H = 512 most units keep weights that look like their random start."""
        if len(self.names) == 1:
            return np.ones(self.first_layer().shape[1])
        return np.linalg.norm(self.params[self.names[1][0]].astype(np.float64), axis=1)

    def output_strength(self) -> np.ndarray | None:
        """(H,) for the last hidden layer: the norm of each unit's weights into the logits; None
        without hidden layers."""
        if len(self.names) == 1:
            return None
        return np.linalg.norm(self.params[self.names[-1][0]].astype(np.float64), axis=1)

    def _hidden_activations(self, X: np.ndarray, count: int | None = None) -> list[np.ndarray]:
        """The hidden layers' outputs for X (N, D), input side first: [(N, H_1), ...]; the
        first `count` of them (all without)."""
        out, a = [], X
        for W, b in self.names[:-1][:count]:
            h, _ = affine_forward(a, self.params[W], self.params[b])  # (N, H_l)
            a, _ = self.activation.forward(h, out=h)
            out.append(a)
        return out

    def last_hidden_layer(self, X: np.ndarray):
        """X (N, D) -> (the last hidden layer's outputs A (N, H), its outgoing weights (H, C)),
        or None for softmax regression."""
        if len(self.names) == 1:
            return None
        return self._hidden_activations(X)[-1], self.params[self.names[-1][0]]

    def unit_pictures(self, units, x: np.ndarray | None = None) -> np.ndarray:
        """(D, K): for each of the last hidden layer's `units`, its weights carried down to the
        pixels, W_1 g_1 W_2 ... g_{L-1} W_L[:, unit], where g_l is the slope of layer l's
        activation at input x (1, D) (every slope 1 without x). For one hidden layer that is the
        unit's own first-layer weights; deeper, it is what the unit adds up from the pixels through
        the layers below as this input sets them: exactly for relu and leaky-relu, linear where
        their on/off pattern is fixed; to first order for tanh."""
        names = self.names[:-1]
        picture = self.params[names[-1][0]][:, list(units)].astype(np.float64)  # (H_{L-1}, K)
        below = len(names) - 1  # the hidden layers under the last one; none in a one-layer net
        gates = self._hidden_activations(x, below) if x is not None and below else None
        for l in range(below - 1, -1, -1):  # noqa: E741  (the layers' letter)
            if gates is not None:
                picture *= self.activation.slope(gates[l][0])[:, None]
            picture = self.params[names[l][0]].astype(np.float64) @ picture  # (H_{l-1} or D, K)
        return picture

    def workspace(self, capacity: int) -> Workspace:
        dtype, widths = self.first_layer().dtype, self.hidden_widths
        buffers = {"Z": ((self.sizes["classes"],), dtype)}
        for l, H in enumerate(widths):  # noqa: E741
            buffers |= {f"A{l}": ((H,), dtype), f"dA{l}": ((H,), dtype), f"mask{l}": ((H,), np.bool_)}
            if not self.activation.dropout_in_place:
                buffers[f"dropped{l}"] = ((H,), dtype)
            if self.activation.scratch:
                buffers[f"scratch{l}"] = ((H,), dtype)
        return Workspace(capacity, **buffers)

    def forward(self, X: np.ndarray, ws: Workspace | None = None, dropout=None):
        """X (N, D) -> logits (N, C), cache; with `dropout`, one mask (N, H_l) per hidden layer."""
        n, p = len(X), self.params
        take = (lambda name: ws.take(name, n)) if ws is not None else (lambda name: None)
        hidden = self.names[:-1]
        if dropout is not None and len(dropout) != len(hidden):
            raise ModelError(f"{len(dropout)} dropout masks for the {len(hidden)} hidden layers of {self.describe()}")
        caches, a = [], X
        f = self.activation
        for l, (W, b) in enumerate(hidden):  # noqa: E741
            h, cache_affine = affine_forward(a, p[W], p[b], out=take(f"A{l}"))  # (N, H_l)
            scratch = {"scratch": take(f"scratch{l}")} if f.scratch else {}
            a, cache_act = f.forward(h, out=h, **scratch)  # (N, H_l), in place: h is not needed again
            cache_drop = None
            if dropout is not None:
                # In place where the backward reads only A's sign (relu's mask, A > 0, then also
                # leaves out the dropped units); elsewhere into a buffer of its own, A kept intact.
                into = a if f.dropout_in_place else take(f"dropped{l}")
                a, cache_drop = dropout_forward(a, dropout[l], out=into)  # (N, H_l)
            caches.append((cache_affine, cache_act, cache_drop))
        W, b = self.names[-1]
        Z, cache_out = affine_forward(a, p[W], p[b], out=take("Z"))  # (N, C)
        return Z, (caches, cache_out)

    def backward(self, dZ: np.ndarray, cache, grads=None, ws: Workspace | None = None, beta: float = 0.0):
        """dZ (N, C) -> {name: gradient shaped like the parameter}; the layers in reverse order of forward."""
        caches, cache_out = cache
        n, g = len(dZ), grads if grads is not None else {}
        take = (lambda name: ws.take(name, n)) if ws is not None else (lambda name: None)
        W, b = self.names[-1]
        top = len(caches) - 1  # the last hidden layer, whose output the output layer reads
        dA_top = take(f"dA{top}") if top >= 0 else None
        dA, g[W], g[b] = affine_backward(dZ, cache_out, dA_top, g.get(W), g.get(b), need_dX=top >= 0, beta=beta)
        for l in range(top, -1, -1):  # noqa: E741
            cache_affine, cache_act, cache_drop = caches[l]
            if cache_drop is not None:
                dA = dropout_backward(dA, cache_drop, out=dA)  # (N, H_l), in place
            scratch = {"scratch": take(f"scratch{l}")} if self.activation.scratch else {}
            dH = self.activation.backward(dA, cache_act, out=dA, mask=take(f"mask{l}"), **scratch)  # (N, H_l)
            W, b = self.names[l]
            dA, g[W], g[b] = affine_backward(dH, cache_affine, take(f"dA{l - 1}") if l else None, g.get(W), g.get(b),
                                             need_dX=l > 0, beta=beta)  # (N, H_{l-1})  # fmt: skip
        return g


def summary(kind: str, widths: list[int], activation: str | None = None) -> str:
    """One line for people: "linear softmax", "mlp, 512 hidden units", "mlp, 256 and 128 hidden
    units"; an activation other than the default is named: "mlp, 512 tanh hidden units"."""
    if not widths:
        return "linear softmax"
    units = "hidden units" if activation in (None, activations.DEFAULT_ACTIVATION) else f"{activation} hidden units"
    if len(widths) == 1:
        return f"{kind}, {widths[0]} {units}"
    return f"{kind}, {', '.join(map(str, widths[:-1]))} and {widths[-1]} {units}"


def build(kind: str, rng: np.random.Generator, hidden=256, inputs: int = NUM_INPUTS,
          classes: int = NUM_CLASSES, dtype=np.float32, activation: str | None = None) -> Network:  # fmt: skip
    """A freshly initialised model of the given kind (`hidden`, its widths, and `activation` are
    used by kinds with hidden layers; an int is one layer)."""
    return Network.initialize(rng, hidden_widths(kind, hidden), num_inputs=inputs, num_classes=classes, dtype=dtype,
                              activation=activation)  # fmt: skip


def build_model(kind: str, rng: np.random.Generator, hidden=256, dtype=np.float32,
                activation: str | None = None) -> Network:  # fmt: skip
    """A freshly initialised MNIST model of the given kind (784 inputs, 10 classes)."""
    return build(kind, rng, hidden, dtype=dtype, activation=activation)


def from_arrays(kind: str, arrays: dict[str, np.ndarray], inputs: int = NUM_INPUTS,
                classes: int = NUM_CLASSES, activation: str | None = None) -> Network:  # fmt: skip
    """The model of that kind and activation (the default when None) holding these arrays, checked:
    exactly a network's parameters, floating point, of consistent shapes, mapping `inputs` to
    `classes`. ModelError says what is wrong."""
    expected_kind = model_kind(kind)
    function = activations.get(activation)
    depth = depth_of(arrays)
    if expected_kind.has_hidden_layers != (depth > 0):
        raise ModelError(f"a {kind} model's parameters are not {', '.join(sorted(arrays))}")
    for name, a in arrays.items():
        if a.ndim != (2 if name.startswith("W") else 1) or a.dtype.kind != "f" or a.size == 0:
            raise ModelError(f"parameter {name} has shape {a.shape} and dtype {a.dtype}")
        if not np.isfinite(a).all():
            raise ModelError(f"parameter {name} holds values that are not finite (NaN or infinity)")
    names = layer_names(depth)
    widths = [arrays[W].shape[1] for W, _ in names[:-1]]
    D, C = arrays[names[0][0]].shape[0], arrays[names[-1][0]].shape[1]
    shapes = Network.parameter_shapes(D, widths, C)
    for name, shape in shapes.items():
        if arrays[name].shape != shape:
            found = ", ".join(f"{k} {arrays[k].shape}" for k in shapes)
            raise ModelError(f"one shape of the {kind} model does not match the next: {found}")
    if D != inputs or C != classes:
        raise ModelError(f"the model must map {inputs} inputs to {classes} classes, not {D} to {C}")
    return Network(dict(arrays), function.name)


def describe(options: dict) -> str:
    """A run's model in one line for people, from its options ("" for an unknown kind)."""
    kind = options.get("model")
    if not isinstance(kind, str) or kind not in MODELS:
        return ""
    activation = options.get("activation")
    return summary(kind, hidden_widths(kind, options.get("hidden") or []), activation if activation in
                   activations.ACTIVATIONS else None)  # fmt: skip


def first_layer_gradient(model: Network, grads: dict) -> np.ndarray:
    """From a backward pass's gradients, the first layer's weights' one (D, K), as first_layer()."""
    return grads[model.names[0][0]]


def with_dtype(model: Network, dtype) -> Network:
    """A copy of the model with its parameters in another dtype."""
    return model.like({k: v.astype(dtype) for k, v in model.params.items()})


def loss_and_grads(model: Network, X: np.ndarray, y: np.ndarray, reg: float = 0.0, dropout=None,
                   smoothing: float = 0.0, loss: str | None = None):  # fmt: skip
    """The full objective and its gradient: the mean loss (losses.LOSSES[loss], the default loss
    when None) + reg * sum(W**2) over weights.

    X (N, D), y (N,) -> (loss, grads); `dropout`, fixed masks (N, H_l), one per hidden layer;
    `smoothing`, label smoothing's e (losses.cross_entropy).
    The plain, allocating path: used by gradcheck and tests; the training loop runs the same
    functions with buffers.
    """
    from mnistsoftmax.losses import DEFAULT_LOSS, get

    objective = get(loss or DEFAULT_LOSS)
    Z, cache = model.forward(X, dropout=dropout)
    weights = [model.params[name] for name in model.weight_names]
    value = objective.forward(Z, y, smoothing) + l2_penalty(weights, reg)
    grads = model.backward(objective.backward(Z, y, smoothing), cache)
    for name in model.weight_names:
        grads[name] += l2_penalty_backward(model.params[name], reg)
    return value, grads
