"""Start-up of `mnistsoftmax predict one.png`, wall time from the shell, and what it imports.

    python scripts/bench_predict.py [--checkpoint PATH] [--runs 20]

Without --checkpoint it saves an untrained mlp (H = 512, the size of the docs' figures) in a temporary
folder: start-up does not depend on what the weights are. Target: under 0.5 s, with pooch, tqdm
and matplotlib off the import path.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mnistsoftmax import checkpoint
from mnistsoftmax.models import build_model

HEAVY = ("pooch", "tqdm", "matplotlib", "requests", "torch")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    exe = shutil.which("mnistsoftmax") or str(Path(sys.executable).with_name("mnistsoftmax"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = args.checkpoint
        if ckpt is None:
            ckpt = tmp / "mlp.npz"
            model = build_model("mlp", np.random.default_rng(0), hidden=512)
            checkpoint.save(ckpt, model, {"normalization": {"mean": 0.1307, "std": 0.3081}})
        image = tmp / "one.png"
        im = Image.new("L", (300, 300), 255)
        ImageDraw.Draw(im).line([(80, 70), (220, 70), (140, 250)], fill=0, width=20)
        im.save(image)
        command = [exe, "predict", str(image), "--checkpoint", str(ckpt)]
        subprocess.run(command, check=True, capture_output=True)  # warm the file cache
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - started)
        trace = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "mnistsoftmax", *command[1:]], capture_output=True, text=True
        ).stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in trace.splitlines() if "|" in line}
    heavy = [m for m in HEAVY if m in imported]
    print(f"{'command':<40} {'runs':>5} {'median s':>9} {'min s':>7} {'max s':>7}  heavy imports")
    print(f"{'mnistsoftmax predict one.png':<40} {args.runs:>5} {statistics.median(times):>9.3f} "
          f"{min(times):>7.3f} {max(times):>7.3f}  {', '.join(heavy) or 'none'}")  # fmt: skip
    return 0 if statistics.median(times) < 0.5 and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
