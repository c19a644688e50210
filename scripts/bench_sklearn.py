"""SoftmaxClassifier against scikit-learn's MLPClassifier: the same net (784 -> 256 ReLU -> 10),
SGD with the same batch size, learning rate, momentum (classical, not Nesterov's) and number of
epochs, no L2, constant rate, float32 inputs in [0, 1], MNIST; both fitted in this process, one
after the other, `--repeats` times.

    pip install scikit-learn && python scripts/bench_sklearn.py --data-dir data/mnist
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data/mnist")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from mnistsoftmax import datasets
    from mnistsoftmax.sklearn import SoftmaxClassifier

    data = datasets.load("mnist", args.data_dir)
    X = (data.train.images.reshape(60000, -1) / np.float32(255)).astype(np.float32)
    Xt = (data.test.images.reshape(10000, -1) / np.float32(255)).astype(np.float32)
    y, yt = data.train.labels, data.test.labels
    common = {"batch_size": 128, "momentum": 0.9}
    ours = SoftmaxClassifier(model="mlp", hidden=256, epochs=args.epochs, lr=0.05, weight_decay=0.0,
                             schedule="constant", random_state=0, **common)  # fmt: skip
    theirs = MLPClassifier(hidden_layer_sizes=(256,), solver="sgd", learning_rate_init=0.05, learning_rate="constant",
                           nesterovs_momentum=False, alpha=0.0, max_iter=args.epochs, tol=0.0,
                           n_iter_no_change=args.epochs + 1, shuffle=True, random_state=0, **common)  # fmt: skip
    rows = {"mnistsoftmax SoftmaxClassifier": [], "sklearn MLPClassifier": []}
    accuracy, ceilings, bounds = {}, [], []
    for _ in range(args.repeats):
        for name, clf in (("mnistsoftmax SoftmaxClassifier", ours), ("sklearn MLPClassifier", theirs)):
            products = InputLayerProducts(X.shape[1]) if clf is theirs else contextlib.nullcontext()
            t0 = time.perf_counter()
            with warnings.catch_warnings(), products:
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(X, y)
            rows[name].append(time.perf_counter() - t0)
            accuracy[name] = clf.score(Xt, yt)
        bounds.append(rows["sklearn MLPClassifier"][-1] / products.seconds)
        # Measured in every repeat, beside the fits: this VM's speed drifts between sittings.
        ceilings.append(gemm_ceiling(X) / (60000 * args.epochs / rows["sklearn MLPClassifier"][-1]))
    print(f"MNIST, 60,000 training images, {args.epochs} epochs, batch 128, lr 0.05, momentum 0.9, "
          f"784-256-10, float32, {args.repeats} fits each")  # fmt: skip
    print(f"{'estimator':<32} {'fit s':>7} {'samples/s':>11} {'test acc':>9}")
    print("-" * 62)
    for name, seconds in rows.items():
        s = statistics.median(seconds)
        print(f"{name:<32} {s:7.1f} {60000 * args.epochs / s:11,.0f} {100 * accuracy[name]:8.2f}%")
    speedup = statistics.median(rows["sklearn MLPClassifier"]) / statistics.median(
        rows["mnistsoftmax SoftmaxClassifier"]
    )
    print(f"speed-up {speedup:.2f}x (goal >= 2.5x at equal or better accuracy)")
    print("\nceiling: what no SGD trainer of this net can skip (X @ W1 forward, X.T @ dH for dW1, the momentum "
          "update of W1; batch 128, float32, this BLAS), alone in a loop, against MLPClassifier's rate of the same "
          f"repeat: {', '.join(f'{c:.2f}x' for c in ceilings)}")  # fmt: skip
    print("bound inside the fit: MLPClassifier's fit time over its own time in the input layer's two products "
          "(X @ W1, X.T @ delta), timed in that fit; a trainer doing those products as fast and nothing else "
          f"would be this much faster: {', '.join(f'{b:.2f}x' for b in bounds)}")  # fmt: skip
    return 0


class InputLayerProducts:
    """While active, times MLPClassifier's calls of safe_sparse_dot that involve the input layer
    (an operand with D rows or columns: the forward X @ W1 and the gradient X.T @ delta), which
    any SGD trainer of the same net must compute, with the same BLAS."""

    def __init__(self, features: int):
        self.features, self.seconds = features, 0.0

    def __enter__(self):
        from sklearn.neural_network import _multilayer_perceptron as mlp

        self.module, self.original = mlp, mlp.safe_sparse_dot

        def timed(a, b, **kwargs):
            if self.features not in a.shape:
                return self.original(a, b, **kwargs)
            t0 = time.perf_counter()
            result = self.original(a, b, **kwargs)
            self.seconds += time.perf_counter() - t0
            return result

        mlp.safe_sparse_dot = timed
        return self

    def __exit__(self, *exc):
        self.module.safe_sparse_dot = self.original


def gemm_ceiling(X: np.ndarray, batch: int = 128, hidden: int = 256, seconds: float = 3.0) -> float:
    """Samples a second through the two large matrix products of a training step of 784-H-10 and
    the momentum update of W1 (the small output layer, the ReLU and the softmax left out): an
    upper bound on any implementation's speed with this BLAS, MLPClassifier's and ours alike."""
    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((X.shape[1], hidden)).astype(np.float32)
    H = np.empty((batch, hidden), np.float32)
    dW1, velocity = np.empty_like(W1), np.zeros_like(W1)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for start in range(0, len(X) - batch + 1, batch):
            x = X[start : start + batch]
            np.matmul(x, W1, out=H)
            np.matmul(x.T, H, out=dW1)
            velocity *= 0.9  # v <- momentum v + g; W <- W - lr v: two passes over W1's size
            velocity += dW1
            W1 -= 1e-9 * velocity
            done += batch
    return done / (time.perf_counter() - t0)


if __name__ == "__main__":
    sys.exit(main())
