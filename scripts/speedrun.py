"""Time to accuracy: each shipped speed config, as whole `mnistsoftmax train` processes, over 5 seeds.

    python scripts/speedrun.py --data-dir data/mnist            # seeds 10-14; PyTorch beside if installed
    python scripts/speedrun.py --data-dir data/mnist --configs fast --seeds 10,11
    python scripts/speedrun.py --data-dir data/mnist --torch-seeds 2   # PyTorch on seeds 10 and 11 only

A row times `mnistsoftmax train --config NAME --seed S` from launch to exit (the checkpoint
written; the data already on disk), one process after another, and reads the test accuracy the
checkpoint records (what `eval` gives). A target is met when the mean test accuracy over the seeds
reaches it. With PyTorch installed, the same net and recipe runs in PyTorch
(scripts/torch_reference.py, CPU, the same threads, its state dict saved), timed the same way.
The second table follows one more run of each config (the first seed) through its phases.

The configs were chosen on the validation split or on seeds 0-2 of the test set, which this
script leaves out: its seeds are 10-14.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"fast": 98.0, "mlp": 98.4, "fast-augmented": 99.0, "mlp-augmented": 99.3}  # % test accuracy
GOALS = {"fast": 1.0, "mlp": 6.0, "fast-augmented": 10.0, "mlp-augmented": 30.0}  # seconds, whole process

# The train command in a process of its own, its phases stamped on the wall clock as it goes: the
# functions runs.execute calls are wrapped, nothing else changes.
PHASES = r"""
import json, sys, time
stamps = {"python": time.time()}
from mnistsoftmax import checkpoint, datasets, inference, runs, training
from mnistsoftmax.cli import main

def timed(module, name, phase):
    inner = getattr(module, name)
    def wrapper(*args, **kwargs):
        started = time.time()
        try:
            return inner(*args, **kwargs)
        finally:
            stamps.setdefault(phase, []).append((started, time.time()))
    setattr(module, name, wrapper)

timed(datasets, "load", "data")
timed(training, "train", "training")
timed(checkpoint, "save", "writing")
timed(runs, "_reliability", "evaluation")
timed(runs, "_temperature", "evaluation")
timed(inference, "logits", "evaluation")
timed(inference, "score", "evaluation")
out = sys.argv.pop(1)
try:
    main(sys.argv[1:], prog_name="mnistsoftmax")
except SystemExit as exit:
    stamps["exit"] = time.time()
    with open(out, "w") as f:
        json.dump(stamps, f)
    raise
"""


def whole_process(command: list[str], env: dict | None = None) -> tuple[float, str]:
    """Wall seconds from launch to exit, and the output; a failed run stops the script."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def run_ours(name: str, seed: int, data_dir: str, out: Path) -> tuple[float, float]:
    """(wall seconds, test accuracy in %) of one `mnistsoftmax train` process."""
    from mnistsoftmax import checkpoint

    command = [str(Path(sys.executable).parent / "mnistsoftmax"), "train", "--config", name, "--seed", str(seed),
               "--data-dir", data_dir, "--out", str(out)]  # fmt: skip
    seconds, _ = whole_process(command)
    return seconds, 100 * checkpoint.load(out)[1]["metrics"]["test_accuracy"]


def run_torch(name: str, seed: int, data_dir: str, out: Path, threads: int) -> tuple[float, float, float]:
    """(wall seconds, test accuracy in %, training seconds) of the same recipe in PyTorch."""
    from mnistsoftmax.augment import Distortion
    from mnistsoftmax.config import resolve

    command = [sys.executable, str(ROOT / "scripts" / "torch_reference.py"), "--config", name, "--seed", str(seed),
               "--data-dir", data_dir, "--threads", str(threads), "--out", str(out)]  # fmt: skip
    # PyTorch's OpenMP threads spin after each operation by default and then hold both cores while
    # the distortions' NumPy code runs between its products: a fast-augmented run took 135 s so
    # against 53 s with passive waiting, which costs it about a fifth of its training time where
    # nothing runs between (fast: 2.75 s against 3.42 s). Each recipe gets the faster setting.
    env = dict(os.environ)
    if Distortion.from_config(resolve(name)).active:
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    seconds, output = whole_process(command, env)
    found = re.search(r"test accuracy ([\d.]+)%  training ([\d.]+)s", output)
    return seconds, float(found[1]), float(found[2])


def covered(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by (start, end) intervals, nested ones counted once (_temperature calls logits)."""
    total, reached = 0.0, float("-inf")
    for start, end in sorted(intervals):
        total += max(0.0, end - max(start, reached))
        reached = max(reached, end)
    return total


def phases(name: str, seed: int, data_dir: str, out: Path) -> dict[str, float]:
    """Seconds of one run's phases: start-up (interpreter, imports, options), data, training,
    evaluation, writing, and the rest (the loss before training, the split, the metrics file)."""
    stamps_file = out.with_suffix(".json")
    launched = time.time()
    subprocess.run([sys.executable, "-c", PHASES, str(stamps_file), "train", "--config", name, "--seed", str(seed),
                    "--data-dir", data_dir, "--out", str(out)], check=True, capture_output=True, cwd=ROOT)  # fmt: skip
    stamps = json.loads(stamps_file.read_text())
    spent = {phase: covered(stamps.get(phase, [])) for phase in ("data", "training", "evaluation", "writing")}
    # Evaluation after training only: the loss before it is "other", the validation split's each
    # epoch is training's.
    trained = stamps["training"][-1][1]
    spent["evaluation"] = covered([(start, end) for start, end in stamps.get("evaluation", []) if start >= trained])
    spent["start-up"] = stamps["data"][0][0] - launched
    spent["whole"] = stamps["exit"] - launched
    spent["other"] = spent["whole"] - sum(spent[p] for p in ("start-up", "data", "training", "evaluation", "writing"))
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data/mnist")
    parser.add_argument("--configs", default=",".join(TARGETS), help="comma-separated shipped config names")
    parser.add_argument("--seeds", default="10,11,12,13,14")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch's threads (numpy's BLAS uses the machine's)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--torch-seeds", type=int, default=None, help="PyTorch on the first N seeds only (default all)")
    args = parser.parse_args()
    names, seeds = args.configs.split(","), [int(s) for s in args.seeds.split(",")]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        sys.exit(f"no target for {unknown}: expected names among {', '.join(TARGETS)}")
    if args.torch_seeds is not None and not 1 <= args.torch_seeds <= len(seeds):
        sys.exit(f"--torch-seeds must be from 1 to {len(seeds)}, not {args.torch_seeds}")
    try:
        import torch

        torch_version = None if args.no_torch else torch.__version__
    except ImportError:
        torch_version = None
    on = "" if not torch_version or args.torch_seeds is None else f" on the first {args.torch_seeds} seeds"
    print(f"# {len(seeds)} seeds ({args.seeds}), {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"PyTorch {torch_version or 'not run'}{on}; {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    header = "| config | target | goal | median s | worst s | mean % | min % | max % | met |"
    if torch_version:
        header += " torch median s | torch train s | torch mean % | torch / ours |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    breakdown = {}
    with tempfile.TemporaryDirectory(prefix="speedrun-") as scratch:
        for name in names:
            ours = [run_ours(name, seed, args.data_dir, Path(scratch) / f"{name}-{seed}.npz") for seed in seeds]
            seconds, accuracy = [s for s, _ in ours], [a for _, a in ours]
            mean = statistics.mean(accuracy)
            row = (f"| {name} | {TARGETS[name]:.1f} % | {GOALS[name]:.0f} s | {statistics.median(seconds):.2f} | "
                   f"{max(seconds):.2f} | {mean:.2f} | {min(accuracy):.2f} | {max(accuracy):.2f} | "
                   f"{'yes' if round(mean, 2) >= TARGETS[name] else 'no'} |")  # fmt: skip
            if torch_version:
                theirs = [run_torch(name, seed, args.data_dir, Path(scratch) / f"{name}-{seed}.pt", args.threads)
                          for seed in seeds[: args.torch_seeds]]  # fmt: skip
                t_median = statistics.median(s for s, _, _ in theirs)
                row += (f" {t_median:.2f} | {statistics.median(t for _, _, t in theirs):.2f} | "
                        f"{statistics.mean(a for _, a, _ in theirs):.2f} | "
                        f"{t_median / statistics.median(seconds):.2f}x |")  # fmt: skip
            print(row, flush=True)
            each = (f"{s} {a:.2f} % {t:.2f} s" for s, (t, a) in zip(seeds, ours, strict=True))
            print(f"#   {name} per seed: " + ", ".join(each), flush=True)
            breakdown[name] = phases(name, seeds[0], args.data_dir, Path(scratch) / f"{name}-phases.npz")
    columns = ("start-up", "data", "training", "evaluation", "writing", "other", "whole")
    print(f"\nWhere the seconds go (one more run of each config, seed {seeds[0]}): start-up is the interpreter, "
          "the imports and the options up to the data's loading; other is the loss before training, the "
          "split and the metrics file.")  # fmt: skip
    print("| config | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for name, spent in breakdown.items():
        print(f"| {name} | " + " | ".join(f"{spent[c]:.2f}" for c in columns) + " |")


if __name__ == "__main__":
    main()
