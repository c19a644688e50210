"""mnistsoftmax: MNIST digit classifiers with a hand-written NumPy forward and backward pass."""

__version__ = "0.1.0"


class MnistSoftmaxError(Exception):
    """Base of every error the library raises on bad input; the CLI turns it into one line."""
