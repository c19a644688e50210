"""How quickly `serve` answers: the server time of /api/predict for a digit drawn on the page's
pad, and the time from starting `mnistsoftmax serve` to its printed URL.

    python scripts/bench_serve.py [--checkpoint PATH] [--repeats 200]

The server time is what the route reports in its Server-Timing header (body read, preprocessing,
the trained and the untrained forward pass, the JSON answer); the round trip over loopback is
shown beside it. Default checkpoint: the one `train` saved last (configs/mlp.toml: H = 512).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pad_png() -> bytes:
    """A 7 as the page's pad sends it: 280 x 280 PNG, black strokes of 18 px on white."""
    from PIL import Image, ImageDraw

    im = Image.new("RGBA", (280, 280), "white")
    ImageDraw.Draw(im).line([(80, 60), (200, 60), (150, 150), (120, 235)], fill="black", width=18, joint="curve")
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def start(checkpoint: Path) -> tuple[subprocess.Popen, str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mnistsoftmax", "serve", str(checkpoint), "--port", "0",
                             "--no-open"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    if not line.startswith("serving on"):
        sys.exit(f"serve did not start: {line!r} {proc.stderr.read()}")
    return proc, line.split()[-1], elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    from mnistsoftmax import checkpoint

    path = args.checkpoint or checkpoint.default_path()
    model, meta = checkpoint.load(path)
    body = pad_png()

    startups, server_ms, round_ms = [], [], []
    for i in range(args.starts):
        proc, url, elapsed = start(path)
        startups.append(elapsed)
        if i == 0:
            request = urllib.request.Request(url + "api/predict?label=7", data=body, method="POST",
                                             headers={"Content-Type": "image/png"})  # fmt: skip
            for k in range(args.repeats + 10):
                t0 = time.perf_counter()
                with urllib.request.urlopen(request) as r:
                    r.read()
                    timing = r.headers["Server-Timing"]
                if k >= 10:  # the first requests warm up caches (the untrained model is redrawn once)
                    round_ms.append(1000 * (time.perf_counter() - t0))
                    server_ms.append(float(timing.split("dur=")[1]))
        proc.terminate()
        proc.wait()

    kind = f"{meta['kind']}" + (f" H={model.sizes['hidden']}" if "hidden" in model.sizes else "")
    print(f"checkpoint: {path} ({kind})")
    print(f"{'measure':<46} {'median':>9} {'p90':>9}  goal")
    print("-" * 75)
    p90 = lambda xs: statistics.quantiles(xs, n=10)[-1]  # noqa: E731
    print(f"{'/api/predict, server time (Server-Timing)':<46} {statistics.median(server_ms):7.1f}ms "
          f"{p90(server_ms):7.1f}ms  < 30 ms")  # fmt: skip
    print(f"{'/api/predict, round trip over loopback':<46} {statistics.median(round_ms):7.1f}ms "
          f"{p90(round_ms):7.1f}ms")  # fmt: skip
    print(
        f"{'serve to its printed URL':<46} {statistics.median(startups):8.2f}s {max(startups):8.2f}s  < 1.5 s"
        f"  (max of {args.starts})"
    )
    print(f"{args.repeats} requests of a {len(body):,}-byte pad PNG; {args.starts} starts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
