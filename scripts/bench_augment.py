"""What distortions cost: a plain epoch against one with affine + elastic distortions (mlp H=800 or
--hidden, batch 128, MNIST), the distortions alone in NumPy against scipy.ndimage on the same work,
and optionally the whole configs/mlp-augmented.toml run.

    python scripts/bench_augment.py --data-dir data/mnist [--repeats 3] [--hidden 512] [--whole-run]

The goal: the distortions at most 0.25x the plain epoch they feed (a ratio of 1.25x). The second
table splits a batch's distortion into its parts: the normal draws (2 x 10 x 10 per image, which
the distortions' definition fixes), the rest of the positions (two small products), the sampling.

Each epoch measurement runs in a fresh process, plain and augmented alternating; an epoch's time
is the median of epochs 2-3 of a run; the ratio is the median of the adjacent pairs' ratios.
scipy is used only here (pip install scipy); without it that row is left out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AFFINE_AND_ELASTIC = {"rotate": 15.0, "scale": 0.1, "shift": 2.0, "elastic_alpha": 34.0, "elastic_sigma": 4.0}


def epoch_worker(data_dir: str, augmented: bool, dropout: float, hidden: int) -> None:
    from mnistsoftmax import datasets, training
    from mnistsoftmax.augment import Distortion

    data = datasets.load("mnist", data_dir)
    run = training.prepare_run(data.train.images, data.train.labels, "mlp", hidden, 0.0, 0)
    settings = training.TrainSettings(
        epochs=3, batch_size=128, lr=0.05, momentum=0.9, weight_decay=5e-5, schedule="cosine",
        distortion=Distortion(**AFFINE_AND_ELASTIC) if augmented else None, dropout=dropout,
    )  # fmt: skip
    records = training.train(run.model, run.images, run.labels, run.norm, settings, run.rng)
    print(json.dumps(statistics.median(r["seconds"] for r in records[1:])))


def epoch_seconds(data_dir: str, augmented: bool, dropout: float = 0.0, hidden: int = 800) -> float:
    worker = [sys.executable, __file__, "--worker", data_dir, str(int(augmented)), str(dropout), str(hidden)]
    out = subprocess.run(worker, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def distortion_only(data_dir: str, repeats: int = 200) -> dict[str, float]:
    """ms per batch of 128 for the same sampling positions: our bilinear sampler, and
    scipy.ndimage.map_coordinates(order=1, mode="grid-constant": paper beyond the edges,
    interpolated as ours) on the batch as one 3-D array."""
    from mnistsoftmax import datasets
    from mnistsoftmax.augment import PAD, Distorter, Distortion, bilinear

    images = datasets.load("mnist", data_dir, splits=("test",)).test.images[:128].reshape(128, -1)
    d = Distorter(Distortion(**AFFINE_AND_ELASTIC), 128)
    out = np.empty((128, 784), np.float32)
    timings = {}
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(repeats):
        d(images, rng, out)
    timings["numpy: whole distortion (draws, positions, sampling)"] = 1000 * (time.perf_counter() - t0) / repeats
    t0 = time.perf_counter()
    for _ in range(repeats):
        d.positions_for(128, rng)
    timings["numpy: draws and positions only"] = 1000 * (time.perf_counter() - t0) / repeats
    draws = np.empty((2, 128, d.k, d.k), np.float32)
    t0 = time.perf_counter()
    for _ in range(repeats):
        rng.standard_normal(draws.shape, dtype=np.float32, out=draws)
    timings[f"numpy: the normal draws alone ({2 * d.k * d.k} an image)"] = 1000 * (time.perf_counter() - t0) / repeats
    rows, cols = (p.copy() for p in d.positions_for(128, rng))  # (S, N, S), padded coordinates
    d(images, np.random.default_rng(0), out)  # fills d.padded
    by_row = out.reshape(128, 28, 28).transpose(1, 0, 2)
    t0 = time.perf_counter()
    for _ in range(repeats):
        bilinear(d.padded, rows.copy(), cols.copy(), by_row, d)
    timings["numpy: bilinear sampling only (and 2 copies)"] = 1000 * (time.perf_counter() - t0) / repeats
    try:
        from scipy import ndimage
    except ImportError:
        return timings
    image_rows = rows.transpose(1, 0, 2).reshape(128, -1) - PAD  # (N, P), unpadded coordinates
    image_cols = cols.transpose(1, 0, 2).reshape(128, -1) - PAD
    batch = np.broadcast_to(np.arange(128, dtype=np.float32)[:, None], image_rows.shape)
    coords = np.stack([batch, image_rows, image_cols])  # (3, N, P)
    square = images.reshape(128, 28, 28).astype(np.float32)
    bilinear(d.padded, rows.copy(), cols.copy(), by_row, d)
    reference = ndimage.map_coordinates(square, coords, order=1, mode="grid-constant", cval=0.0)
    assert np.allclose(reference, out, atol=1e-3), "scipy and numpy sample differently"
    t0 = time.perf_counter()
    for _ in range(repeats):
        ndimage.map_coordinates(square, coords, order=1, mode="grid-constant", cval=0.0, output=out)
    timings["scipy.ndimage.map_coordinates, same positions"] = 1000 * (time.perf_counter() - t0) / repeats
    return timings


def whole_run(data_dir: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "mnistsoftmax", "train", "--config", "configs/mlp-augmented.toml",
                          "--data-dir", data_dir, "--out", "/tmp/mnistsoftmax-bench-augmented.npz"],
                         capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    return time.perf_counter() - t0, out.stdout.splitlines()[0]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        epoch_worker(sys.argv[2], sys.argv[3] == "1", float(sys.argv[4]), int(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data/mnist")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=800, help="the hidden layer's width")
    parser.add_argument("--whole-run", action="store_true")
    args = parser.parse_args()

    plain, augmented, dropped = [], [], []
    for _ in range(args.repeats):
        plain.append(epoch_seconds(args.data_dir, False, hidden=args.hidden))
        augmented.append(epoch_seconds(args.data_dir, True, hidden=args.hidden))
        dropped.append(epoch_seconds(args.data_dir, True, 0.2, args.hidden))
    ratios = [a / p for a, p in zip(augmented, plain, strict=True)]
    print(f"mlp H={args.hidden}, batch 128, MNIST (60,000 images), an epoch's seconds: median of epochs 2-3, "
          "then of repeats")  # fmt: skip
    print(f"{'epoch':<44} {'seconds':>8} {'ratio':>7}  runs")
    print("-" * 80)
    print(f"{'plain':<44} {statistics.median(plain):8.2f} {'1.00x':>7}  {', '.join(f'{x:.2f}' for x in plain)}")
    print(f"{'affine + elastic distortions':<44} {statistics.median(augmented):8.2f} "
          f"{statistics.median(ratios):6.2f}x  {', '.join(f'{x:.2f}' for x in augmented)}  (goal 1.25x)")  # fmt: skip
    ratio_d = statistics.median(d / p for d, p in zip(dropped, plain, strict=True))
    print(f"{'affine + elastic distortions, dropout 0.2':<44} {statistics.median(dropped):8.2f} {ratio_d:6.2f}x  "
          f"{', '.join(f'{x:.2f}' for x in dropped)}")  # fmt: skip
    print()
    print(f"{'distortions alone, a batch of 128':<52} {'ms':>6}")
    print("-" * 60)
    for name, ms in distortion_only(args.data_dir).items():
        print(f"{name:<52} {ms:6.2f}")
    if args.whole_run:
        seconds, line = whole_run(args.data_dir)
        print(f"\nwhole configs/mlp-augmented.toml run (40 epochs, with loading and the test): {seconds:.0f} s; {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
