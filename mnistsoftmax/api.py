"""The Python API: a trained classifier from a checkpoint or from training, for notebooks and
scripts. Exported from the package itself: `mnistsoftmax.load`, `mnistsoftmax.train`,
`mnistsoftmax.Classifier`, and `mnistsoftmax.datasets.load` for the data.

Images are uint8 arrays (N, 28, 28) or (N, 784) in MNIST's form (light ink on black), or a list
of image files, which then go through `predict`'s preprocessing. Shapes: N images, C classes.

    >>> import numpy as np
    >>> import mnistsoftmax
    >>> clf, records = mnistsoftmax.train(dataset="custom", data_dir=data_dir, epochs=2, hidden=32, out=out)
    >>> records[0]["type"], round(records[0]["loss"], 1)  # before training: every class near 10 %
    ('init', 2.3)
    >>> data = mnistsoftmax.datasets.load("custom", data_dir)
    >>> images, labels = data.test.images, data.test.labels
    >>> clf.predict(images[:5]).tolist() == labels[:5].tolist()
    True
    >>> p = clf.predict_proba(images[:3])
    >>> p.shape, bool(np.allclose(p.sum(axis=1), 1.0))
    ((3, 10), True)
    >>> again = mnistsoftmax.load(out)  # the checkpoint train saved
    >>> bool(np.array_equal(again.logits(images), clf.logits(images)))
    True
    >>> report = again.evaluate(images, labels)
    >>> sorted(report), report["accuracy"] > 0.9
    (['accuracy', 'confusion', 'loss', 'per_class'], True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnistsoftmax.errors import MnistSoftmaxError, quoted


class Classifier:
    """A trained model with its input normalisation; see the module's examples. `path`: the
    checkpoint it came from, where its snapshots are read (None when that file is gone)."""

    def __init__(self, model, meta: dict, path: str | Path | None = None):
        from mnistsoftmax.inference import Normalization

        self.model, self.meta = model, meta
        self.path = None if path is None else Path(path)
        self.norm = Normalization(**meta["normalization"])
        self.class_names = list(meta.get("class_names") or [str(i) for i in range(10)])
        self._timeline = None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.model.sizes.items())
        return f"Classifier({self.model.kind}, {sizes}, dataset={self.meta.get('dataset')!r})"

    def _repr_html_(self) -> str:
        """Jupyter's rich display: the model, its data and scores, the first layer's weights."""
        from mnistsoftmax.notebook import classifier_html

        return classifier_html(self)

    def timeline(self):
        """(snapshots.Snapshots or None, the run's mean training loss as [step, loss] pairs): the
        weights the run kept along the way, read from the checkpoint once."""
        if self._timeline is None:
            from mnistsoftmax import checkpoint

            kept = checkpoint.load_snapshots(self.path, self.model) if self.path is not None else None
            self._timeline = (kept, checkpoint.training_loss_curve(self.path) if kept else [])
        return self._timeline

    def _pixels(self, images) -> np.ndarray:
        """uint8 (N, 28, 28) / (N, 784), or image files -> uint8 (N, 784)."""
        if isinstance(images, str | Path) or (isinstance(images, list | tuple) and images
                                               and isinstance(images[0], str | Path)):  # fmt: skip
            from mnistsoftmax.images import preprocess

            files = [images] if isinstance(images, str | Path) else images
            return np.stack([preprocess(f) for f in files]).reshape(len(files), -1)
        a = np.asarray(images)
        if a.dtype != np.uint8:
            raise MnistSoftmaxError(f"images must be uint8 pixels 0-255 (MNIST's form), not {a.dtype}")
        if a.ndim == 2 and a.shape == (28, 28):
            a = a[None]
        if not (a.ndim == 3 and a.shape[1:] == (28, 28)) and not (a.ndim == 2 and a.shape[1] == 784):
            raise MnistSoftmaxError(f"images must have the shape (N, 28, 28) or (N, 784), not {a.shape}")
        return a.reshape(len(a), -1)

    def logits(self, images) -> np.ndarray:
        """The raw outputs z, float64 (N, C)."""
        from mnistsoftmax.inference import logits

        return logits(self.model, self._pixels(images), self.norm).astype(np.float64)

    def predict_proba(self, images) -> np.ndarray:
        """softmax(z): each row the probabilities of the C classes, (N, C)."""
        from mnistsoftmax.functional import softmax

        return softmax(self.logits(images))

    def predict(self, images) -> np.ndarray:
        """The most probable class of each image, (N,) int."""
        return self.logits(images).argmax(axis=1)

    def evaluate(self, images, labels) -> dict:
        """The mean loss the model was trained with (cross entropy), accuracy, per-class accuracy and
        the confusion matrix (as lists)."""
        from mnistsoftmax.inference import evaluate
        from mnistsoftmax.losses import of_run

        labels = np.asarray(labels)
        pixels = self._pixels(images)
        if labels.shape != (len(pixels),):
            raise MnistSoftmaxError(f"labels must have the shape ({len(pixels)},), not {labels.shape}")
        loss = of_run(self.meta.get("config")).name
        return evaluate(self.model, pixels, labels, self.norm, len(self.class_names), loss=loss).as_dict()


def load(path: str | Path | None = None) -> Classifier:
    """The classifier in a checkpoint; by default the one `train` saved last."""
    from mnistsoftmax import checkpoint

    path = Path(path) if path is not None else checkpoint.default_path()
    return Classifier(*checkpoint.load(path), path=path)


def train(config: str | Path | None = None, progress: bool = False, out: str | Path | None = None, **options):
    """Train as `mnistsoftmax train` does, with its options (as keyword arguments, `data_dir` for
    `--data-dir`) and defaults, under a `config` file's values (a path or a shipped config's name,
    `"mlp"`) as on the command line. Returns the classifier and the metrics records. Writes a
    checkpoint and its metrics file only when asked, at `out`: never over the one `train` saved
    last. No progress bars unless `progress`."""
    import tempfile

    from mnistsoftmax import config as config_files
    from mnistsoftmax import options as schema
    from mnistsoftmax import runs
    from mnistsoftmax.training import Hooks

    values = config_files.load(config) if config is not None else {}
    for key, value in options.items():
        name = key.replace("-", "_")
        if name not in schema.BY_NAME:
            raise MnistSoftmaxError(
                f"train() got an unknown option {quoted(key)}; the options are those of `mnistsoftmax train`: "
                f"{', '.join(schema.BY_NAME)}"
            )
        try:
            values[name] = schema.BY_NAME[name].check(value)
        except schema.OptionError as exc:
            raise MnistSoftmaxError(f"train({str(key)[:40]}={quoted(value)}): {exc}") from None
    settings = schema.resolve(values)
    if settings["data_dir"] is not None:
        settings["data_dir"] = str(Path(settings["data_dir"]).resolve())
    progress_bar = None
    if progress:
        from tqdm.auto import tqdm

        def progress_bar(**kwargs):
            return tqdm(leave=False, unit="batch", **kwargs)

    hooks = Hooks(progress=progress_bar)
    if out is not None:
        return load(runs.execute(settings, Path(out), hooks).out), hooks.records
    with tempfile.TemporaryDirectory(prefix="mnistsoftmax-") as scratch:  # the run's files, then gone
        classifier = load(runs.execute(settings, Path(scratch) / "model.npz", hooks).out)
        classifier.timeline()  # read while the file is there: mnistsoftmax.explore shows it
        classifier.path = None
        return classifier, hooks.records
