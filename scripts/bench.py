"""Training speed of mnistsoftmax against PyTorch on the CPU, same work, same threads.

    python scripts/bench.py --data-dir data/mnist [--epochs 4] [--threads 2] [--repeats 3]

Each row trains the same architecture from the same initial weights, with the same minibatch
order and SGD settings, in float32, on all 60,000 MNIST training images: once with mnistsoftmax,
once with PyTorch (when installed: `pip install torch==2.13.0`). Every measurement runs in a
fresh process, so that its peak resident memory is its own. On a shared machine the speed of a
process drifts by several per cent from minute to minute, so each row runs `--repeats` times,
mnistsoftmax and PyTorch alternating, and reports medians; the ratio is the median of the ratios
of adjacent pairs, with their lowest and highest beside it.

Columns: training samples/s (median over the epochs after the first, then over the repeats), the
ratio mnistsoftmax / PyTorch and its range over the repeats, GFLOP/s achieved (multiply-adds of
the forward and backward matmuls, counted as 2) and its fraction of the machine's float32 matmul
peak (measured here with a large numpy matmul), test accuracy of both after the same epochs,
peak resident memory of each process. A last line gives the time from the `mnistsoftmax train`
command to its first training batch.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (model, hidden widths as --hidden writes them, batch size)
ROWS = [("linear", "", 128), ("linear", "", 512), ("mlp", "256", 128), ("mlp", "256", 512), ("mlp", "1024", 128),
        ("mlp", "1024", 512), ("mlp", "1024,512", 128), ("mlp", "800,800", 128)]  # fmt: skip
SETTINGS = {"lr": 0.05, "momentum": 0.9, "weight_decay": 2e-4, "schedule": "cosine", "seed": 0, "val_split": 0.0}


def widths(kind: str, hidden: str) -> list[int]:
    return [int(h) for h in hidden.split(",")] if kind != "linear" and hidden else []


def flops_per_sample(kind: str, hidden: str, D: int = 784, C: int = 10) -> int:
    """Multiply-adds x 2 of one sample's forward and backward matmuls.

    Each layer of fan-in f and fan-out g: X W forward and X^T dZ for dW, 2fg; dZ W^T for dX, fg
    more, except in the first layer, whose input is data. linear: 2 * 2DC; one hidden layer:
    2 * (2DH + 3HC).
    """
    fans = [D, *widths(kind, hidden), C]
    products = [f * g for f, g in zip(fans, fans[1:], strict=False)]
    return 2 * (2 * sum(products) + sum(products[1:]))


def matmul_peak(threads: int) -> float:
    """GFLOP/s of a large float32 numpy matmul (best of 5): the machine's practical peak."""
    import numpy as np

    n = 4096
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, a, out=out)
    best = min(_timed(lambda: np.matmul(a, a, out=out)) for _ in range(5))
    return 2 * n**3 / best / 1e9


def _timed(f) -> float:
    started = time.perf_counter()
    f()
    return time.perf_counter() - started


def worker(framework: str, kind: str, hidden: str, batch: int, epochs: int, data_dir: str, threads: int) -> dict:
    """Train one row in this process; return samples/s, test accuracy and peak memory."""
    from mnistsoftmax import datasets
    from mnistsoftmax.config import resolve

    data = datasets.load("mnist", data_dir, progressbar=False)
    config = {**resolve(), **SETTINGS, "model": kind, "hidden": widths(kind, hidden) or [1], "batch_size": batch,
              "epochs": epochs}  # fmt: skip
    n = len(data.train.labels)
    if framework == "numpy":
        from mnistsoftmax.inference import evaluate
        from mnistsoftmax.runs import settings_of
        from mnistsoftmax.training import prepare_run, train

        run = prepare_run(data.train.images, data.train.labels, kind, config["hidden"], 0.0, config["seed"])
        records = train(run.model, run.images, run.labels, run.norm, settings_of(config), run.rng)
        seconds = [r["seconds"] for r in records]
        accuracy = evaluate(run.model, data.test.images, data.test.labels, run.norm).accuracy
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from torch_reference import train_torch

        _, seconds, accuracy = train_torch(config, data, threads)
    return {"samples_per_s": n / statistics.median(seconds[1:] or seconds), "accuracy": accuracy, "peak_mb": peak_mb()}


def peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    from the parent across fork and exec, so a child would inherit the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(framework, kind, hidden, batch, args) -> dict | None:
    command = [sys.executable, __file__, "--worker", framework, kind, str(hidden), str(batch),
               "--epochs", str(args.epochs), "--data-dir", args.data_dir, "--threads", str(args.threads)]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, env=thread_env(args.threads))
    if proc.returncode != 0:
        print(f"{framework} {kind} {hidden} {batch} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.splitlines()[-1])


def median_row(results: list[dict]) -> dict:
    """Median of each measurement over the repeats of one row."""
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def thread_env(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


def time_to_first_batch(data_dir: str) -> float:
    """Seconds from starting `mnistsoftmax train` (cached data) to its first step record."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.npz"
        command = [str(Path(sys.executable).with_name("mnistsoftmax")), "train", "--model", "mlp",
                   "--data-dir", data_dir, "--epochs", "1", "--log-every", "1", "--out", str(out)]  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                # Records go to the hidden partial metrics file while the run goes on.
                partial = list(Path(tmp).glob(".run.metrics.jsonl.*.partial"))
                if partial and '"type": "step"' in partial[0].read_text():
                    return time.perf_counter() - started
                if proc.poll() is not None:
                    raise RuntimeError("train ended before its first step")
                time.sleep(0.002)
        finally:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data/mnist")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each row, numpy and torch alternating")
    parser.add_argument("--no-augment", action="store_true", help="leave out the distortion rows (bench_augment.py)")
    parser.add_argument("--rows", nargs="*", help="only these rows, by their name: linear, 'mlp H=1024,512'")
    parser.add_argument("--worker", nargs=4, metavar=("FRAMEWORK", "MODEL", "HIDDEN", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        framework, kind, hidden, batch = args.worker
        print(json.dumps(worker(framework, kind, hidden, int(batch), args.epochs, args.data_dir, args.threads)))
        return 0

    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    import numpy as np

    peak = matmul_peak(args.threads)
    print(f"machine: {os.cpu_count()} cores, numpy {np.__version__}, threads {args.threads}, "
          f"float32 matmul peak {peak:.0f} GFLOP/s (numpy, 4096x4096)")  # fmt: skip
    from mnistsoftmax import blas

    print(f"numpy's BLAS called directly: {Path(blas.LIBRARY.path).name}" if blas.LIBRARY else
          "numpy's BLAS not found: the numpy fallback runs (slower)")  # fmt: skip
    if have_torch:
        print(f"pytorch {torch.__version__}")
    print(f"{args.epochs} epochs on 60,000 images; samples/s is the median over epochs 2-{args.epochs}, "
          f"then over {args.repeats} repeats\n")  # fmt: skip
    header = (
        f"{'model':<16} {'batch':>5} {'numpy samples/s':>16} {'torch samples/s':>16} {'ratio':>6} {'range':>10} "
        f"{'GFLOP/s':>8} {'of peak':>7} {'acc numpy':>9} {'acc torch':>9} {'MB numpy':>8} {'MB torch':>8}"
    )
    print(header)
    print("-" * len(header))
    nan = {"samples_per_s": float("nan"), "accuracy": float("nan"), "peak_mb": float("nan")}
    for kind, hidden, batch in ROWS:
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(run_worker("numpy", kind, hidden, batch, args))
            theirs.append(run_worker("torch", kind, hidden, batch, args) if have_torch else nan)
        if None in ours or None in theirs:
            continue
        ratios = [a["samples_per_s"] / b["samples_per_s"] for a, b in zip(ours, theirs, strict=True)]
        o, t = median_row(ours), median_row(theirs)
        name = kind if kind == "linear" else f"mlp H={hidden}"
        if args.rows and name not in args.rows:
            continue
        gflops = o["samples_per_s"] * flops_per_sample(kind, hidden) / 1e9
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
        print(f"{name:<16} {batch:>5} {o['samples_per_s']:>16,.0f} {t['samples_per_s']:>16,.0f} "
              f"{statistics.median(ratios):>5.2f}x {spread:>10} {gflops:>8.1f} {gflops / peak:>7.0%} "
              f"{100 * o['accuracy']:>8.2f}% {100 * t['accuracy']:>8.2f}% {o['peak_mb']:>8.0f} "
              f"{t['peak_mb']:>8.0f}")  # fmt: skip
    firsts = [time_to_first_batch(args.data_dir) for _ in range(3)]
    print(f"\nfrom `mnistsoftmax train` to its first training batch (cached MNIST, median of 3): "
          f"{statistics.median(firsts):.2f} s")  # fmt: skip
    if not args.no_augment:  # the rows of distortions: a plain epoch against an augmented one, the whole run
        print()
        subprocess.run([sys.executable, str(Path(__file__).with_name("bench_augment.py")), "--data-dir", args.data_dir,
                        "--repeats", str(args.repeats), "--whole-run"], check=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
