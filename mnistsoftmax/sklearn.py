"""A scikit-learn estimator around the same hand-written forward and backward pass: any number of
features and classes, labels of any type, float32 inside (scikit-learn, the `sklearn` extra).

>>> from sklearn.datasets import load_digits
>>> from sklearn.model_selection import train_test_split
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from mnistsoftmax.sklearn import SoftmaxClassifier
>>> X, y = load_digits(return_X_y=True)  # 8 x 8 images: 64 features
>>> X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
>>> clf = make_pipeline(StandardScaler(), SoftmaxClassifier(hidden=64, epochs=10, random_state=0))
>>> clf.fit(X_train, y_train).score(X_test, y_test) > 0.95
True
"""

from __future__ import annotations

import sys

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError:  # pragma: no cover - said in one line, as the other extras do
    from mnistsoftmax.errors import MnistSoftmaxError

    raise MnistSoftmaxError("mnistsoftmax.sklearn needs scikit-learn: pip install 'mnistsoftmax[sklearn]'") from None

from mnistsoftmax import options
from mnistsoftmax.augment import Distortion
from mnistsoftmax.functional import softmax
from mnistsoftmax.models import build, with_dtype
from mnistsoftmax.options import DEFAULTS as D
from mnistsoftmax.training import Hooks, TrainSettings, train

# The training options an estimator takes (options.ESTIMATOR): its parameters, checked at fit by
# the same schema as train's flags; seed is scikit-learn's random_state here.
PARAMETERS = tuple(o.name for o in options.TRAIN_OPTIONS if options.ESTIMATOR in o.surfaces)


class SoftmaxClassifier(ClassifierMixin, BaseEstimator):
    """Softmax regression (`model="linear"`) or hidden layers (`"mlp"`, `hidden=(512, 256)` for two,
    `activation="relu"`, `"tanh"` or `"leaky-relu"`), trained by SGD with momentum (or Adam) on
    the mean loss, as `mnistsoftmax train` trains: the parameters are train's options, with its
    defaults and its checks (options.py). The distortion options apply where the inputs are 28 x
    28 images (784 features, pixel values 0-255). `verbose=True` prints one line per epoch to
    stderr (its loss and accuracy), as `train` does."""

    def __init__(
        self,
        model=D["model"],
        hidden=D["hidden"],
        activation=D["activation"],
        loss=D["loss"],
        epochs=D["epochs"],
        batch_size=D["batch_size"],
        lr=D["lr"],
        optimizer=D["optimizer"],
        momentum=D["momentum"],
        nesterov=D["nesterov"],
        weight_decay=D["weight_decay"],
        schedule=D["schedule"],
        dropout=D["dropout"],
        label_smoothing=D["label_smoothing"],
        rotate=D["rotate"],
        scale=D["scale"],
        shear=D["shear"],
        shift=D["shift"],
        elastic_alpha=D["elastic_alpha"],
        elastic_sigma=D["elastic_sigma"],
        hflip=D["hflip"],
        random_state=None,
        verbose=False,
    ):
        self.model = model
        self.hidden = hidden
        self.activation = activation
        self.loss = loss
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.schedule = schedule
        self.dropout = dropout
        self.label_smoothing = label_smoothing
        self.rotate = rotate
        self.scale = scale
        self.shear = shear
        self.shift = shift
        self.elastic_alpha = elastic_alpha
        self.elastic_sigma = elastic_sigma
        self.hflip = hflip
        self.random_state = random_state
        self.verbose = verbose

    def _checked(self) -> dict:
        """The parameters, checked as train's options are (nan and inf refused): ValueError."""
        values = {}
        for name in PARAMETERS:
            value = getattr(self, name)
            try:
                values[name] = options.BY_NAME[name].check(value)
            except options.OptionError as exc:
                raise ValueError(f"{name}={value!r}: {exc}") from None
        try:
            options.check_combination(values)
        except options.OptionError as exc:
            raise ValueError(str(exc)) from None
        return values

    def _settings(self, epochs: int, schedule: str | None = None) -> TrainSettings:
        p = self._checked()
        distortion = Distortion.from_config(p)
        if distortion.active and self.n_features_in_ != 784:
            raise ValueError(f"distortions work on 28 x 28 images (784 features), not {self.n_features_in_} features")
        return TrainSettings.of(p, epochs=epochs, schedule=schedule or p["schedule"], log_every=10**9,
                                distortion=distortion if distortion.active else None)  # fmt: skip

    def _start(self, X, classes) -> None:
        self._encoder = LabelEncoder().fit(classes)
        self.classes_ = self._encoder.classes_
        seed = self.random_state if isinstance(self.random_state, int | np.integer) else None
        self._rng = np.random.default_rng(seed)
        p = self._checked()
        self.model_ = build(p["model"], self._rng, p["hidden"], inputs=X.shape[1], classes=len(self.classes_),
                            activation=p["activation"])  # fmt: skip

    def _train(self, X, y, epochs: int, schedule: str | None = None) -> None:
        # norm None: the features are the inputs as they come (scale them in a Pipeline)
        hooks = Hooks(log=lambda line: print(line, file=sys.stderr, flush=True)) if self.verbose else None
        train(self.model_, X, self._encoder.transform(y), None, self._settings(epochs, schedule), self._rng,
              hooks=hooks)  # fmt: skip

    def fit(self, X, y):
        """Train from scratch for `epochs` passes over (X (N, D), y (N,))."""
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self._start(X, np.unique(y))
        self._train(X, y, self.epochs)
        return self

    def partial_fit(self, X, y, classes=None):
        """One pass over (X, y) at the constant rate `lr` (a schedule needs to know where training
        ends); the first call needs `classes`, all the labels there will be."""
        first = not hasattr(self, "model_")
        X, y = validate_data(self, X, y, dtype=np.float32, reset=first)
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError("the first call to partial_fit needs classes: every label there will be")
            self._start(X, np.unique(classes))
        unknown = np.setdiff1d(y, self.classes_)
        if len(unknown):
            raise ValueError(f"labels {unknown.tolist()} are not among the classes {self.classes_.tolist()}")
        self._train(X, y, 1, schedule="constant")
        return self

    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        # float64 copies: each row's answer the same whatever else is in the batch (scikit-learn checks it)
        Z, _ = with_dtype(self.model_, np.float64).forward(X)
        return Z

    def predict_proba(self, X) -> np.ndarray:
        """softmax of the logits, (N, C), columns in the order of classes_."""
        return softmax(self._logits(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row, (N,), labels as given to fit."""
        best = self._logits(X).argmax(axis=1)
        return self.classes_[best]
