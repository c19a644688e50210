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

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError:  # pragma: no cover - said in one line, as the other extras do
    from mnistsoftmax import MnistSoftmaxError

    raise MnistSoftmaxError("mnistsoftmax.sklearn needs scikit-learn: pip install 'mnistsoftmax[sklearn]'") from None

from mnistsoftmax.augment import Distortion
from mnistsoftmax.functional import softmax
from mnistsoftmax.models import MLP, LinearSoftmax
from mnistsoftmax.training import TrainSettings, train


class SoftmaxClassifier(ClassifierMixin, BaseEstimator):
    """Softmax regression (`model="linear"`) or one hidden ReLU layer (`"mlp"`), trained by SGD with
    momentum on the mean cross entropy, as `mnistsoftmax train` trains. The distortion options
    apply where the inputs are 28 x 28 images (784 features, pixel values 0-255)."""

    def __init__(
        self,
        model="mlp",
        hidden=256,
        epochs=10,
        batch_size=128,
        lr=0.05,
        momentum=0.9,
        weight_decay=0.0,
        schedule="cosine",
        dropout=0.0,
        label_smoothing=0.0,
        rotate=0.0,
        scale=0.0,
        shear=0.0,
        shift=0.0,
        elastic_alpha=0.0,
        elastic_sigma=4.0,
        hflip=False,
        random_state=None,
    ):
        self.model = model
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
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

    def _settings(self, epochs: int, schedule: str | None = None) -> TrainSettings:
        if self.model not in ("linear", "mlp"):
            raise ValueError(f"model must be 'linear' or 'mlp', not {self.model!r}")
        for name in ("dropout", "label_smoothing"):  # probabilities, as train's options say
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), not {getattr(self, name)!r}")
        distortion = Distortion(self.rotate, self.scale, self.shear, self.shift, self.elastic_alpha,
                                self.elastic_sigma, self.hflip)  # fmt: skip
        if distortion.active and self.n_features_in_ != 784:
            raise ValueError(f"distortions work on 28 x 28 images (784 features), not {self.n_features_in_} features")
        return TrainSettings(epochs=epochs, batch_size=self.batch_size, lr=self.lr, momentum=self.momentum,
                             weight_decay=self.weight_decay, schedule=schedule or self.schedule, log_every=10**9,
                             distortion=distortion if distortion.active else None, dropout=self.dropout,
                             label_smoothing=self.label_smoothing)  # fmt: skip

    def _start(self, X, classes) -> None:
        self._encoder = LabelEncoder().fit(classes)
        self.classes_ = self._encoder.classes_
        seed = self.random_state if isinstance(self.random_state, int | np.integer) else None
        self._rng = np.random.default_rng(seed)
        D, C = X.shape[1], len(self.classes_)
        if self.model == "linear":
            self.model_ = LinearSoftmax.initialize(self._rng, num_inputs=D, num_classes=C)
        else:
            self.model_ = MLP.initialize(self._rng, int(self.hidden), num_inputs=D, num_classes=C)

    def _train(self, X, y, epochs: int, schedule: str | None = None) -> None:
        # norm None: the features are the inputs as they come (scale them in a Pipeline)
        train(self.model_, X, self._encoder.transform(y), None, self._settings(epochs, schedule), self._rng)

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
        model = type(self.model_)({k: v.astype(np.float64) for k, v in self.model_.params.items()})
        Z, _ = model.forward(X)
        return Z

    def predict_proba(self, X) -> np.ndarray:
        """softmax of the logits, (N, C), columns in the order of classes_."""
        return softmax(self._logits(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row, (N,), labels as given to fit."""
        best = self._logits(X).argmax(axis=1)
        return self.classes_[best]
