"""mnistsoftmax: MNIST digit classifiers with a hand-written NumPy forward and backward pass.

The Python API (see mnistsoftmax.api): load(path=None) and train(**options) give a Classifier
with predict, predict_proba, logits and evaluate; datasets.load(name, data_dir=None) the data;
explore(clf, image=None, label=None) the draw page and the lab in a notebook's output cell.
They are imported on first use, so that the command line starts as quickly as before.
"""

from mnistsoftmax.errors import MnistSoftmaxError

__version__ = "0.1.0"
__all__ = ["Classifier", "MnistSoftmaxError", "datasets", "explore", "load", "train"]


def __getattr__(name: str):
    if name in ("Classifier", "load", "train"):
        from mnistsoftmax import api

        return getattr(api, name)
    if name == "explore":
        from mnistsoftmax import notebook

        return notebook.explore
    if name == "datasets":
        import importlib

        return importlib.import_module("mnistsoftmax.datasets")
    raise AttributeError(f"module 'mnistsoftmax' has no attribute {name!r}")
