"""How quickly `serve` answers: the server time of /api/predict for a digit drawn on the page's pad
(without the timeline, as programs ask; with it, asked by name), one at a time and 16 at a time,
over connections kept alive (as browsers keep theirs) and over a new connection each; whether the
event loop stays free while three 49-megapixel 16-bit PNGs are decoded (GET /api/checkpoints'
latency, the server's peak memory); and the time from starting `mnistsoftmax serve` to its
printed URL.

    python scripts/bench_serve.py [--checkpoint PATH] [--repeats 200]

The server time is what the route reports in its Server-Timing header (body read, preprocessing,
the trained and the untrained forward pass, the JSON answer); the round trip over loopback is
shown beside it. Default checkpoint: the one `train` saved last (the docs' figures: configs/mlp-512.toml, H = 512).
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


def small_png() -> bytes:
    """The pad's 7 as a 28 x 28 grey PNG: a digit already at MNIST's size."""
    from PIL import Image

    im = Image.open(io.BytesIO(pad_png())).convert("L").resize((28, 28), Image.Resampling.BOX)
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def start(checkpoint: Path, env: dict | None = None, files: int | None = None, stderr=subprocess.PIPE):
    """`serve CHECKPOINT` in a process: (process, URL, seconds to its printed URL). With `files`
    the open-file limit is that (soft and hard), as many machines set it."""
    import resource

    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))) if files else None
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mnistsoftmax", "serve", str(checkpoint), "--port", "0",
                             "--no-open"], stdout=subprocess.PIPE, stderr=stderr, text=True,
                            env=env, preexec_fn=limit)  # fmt: skip
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    if not line.startswith("serving on"):
        sys.exit(f"serve did not start: {line!r} {proc.stderr.read()}")
    return proc, line.split()[-1], elapsed


def post(url: str, body: bytes) -> tuple[float, float]:
    """(round trip seconds, server milliseconds) of one prediction."""
    request = urllib.request.Request(url + "api/predict?label=7", data=body, method="POST",
                                     headers={"Content-Type": "image/png"})  # fmt: skip
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as r:
        r.read()
        timing = r.headers["Server-Timing"]
    return time.perf_counter() - t0, float(timing.split("dur=")[1])


def concurrent(url: str, body: bytes, count: int, at_once: int) -> tuple[float, list[float], int]:
    """count predictions, at_once in flight: (requests a second, latencies, answered)."""
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.perf_counter()
    with ThreadPoolExecutor(at_once) as pool:
        results = list(pool.map(lambda _: post(url, body)[0], range(count)))
    return count / (time.perf_counter() - t0), results, len(results)


def kept_alive(url: str, body: bytes, count: int, clients: int, query: str = "?label=7") -> tuple[float, list[float]]:
    """count predictions over `clients` connections each kept alive, as a browser keeps its own:
    (requests a second, latencies)."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    where = urlsplit(url)

    def client(n: int) -> list[float]:
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=120)
        latencies = []
        for _ in range(n):
            t0 = time.perf_counter()
            connection.request("POST", "/api/predict" + query, body, {"Content-Type": "image/png"})
            response = connection.getresponse()
            response.read()
            if response.status != 200 or response.will_close:
                raise RuntimeError(f"status {response.status}, will close: {response.will_close}")
            latencies.append(time.perf_counter() - t0)
        connection.close()
        return latencies

    client(5)  # warm up
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [x for part in pool.map(client, [count // clients] * clients) for x in part]
    return len(latencies) / (time.perf_counter() - t0), latencies


def page_model(url: str) -> tuple[float, float, int]:
    """GET /api/model, the page's engine's document: (seconds the first time, seconds again, bytes)."""
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url + "api/model", timeout=120) as r:
            size = len(r.read())
        times.append(time.perf_counter() - t0)
    return times[0], times[1], size


def crowded_runs_folder(checkpoint: Path, count: int, repeats: int) -> float:
    """Requests a second (28x28 PNG, 1 client kept alive) with `count` checkpoints in the runs
    folder (hard links of one): each answer must not list the whole folder again."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-runs-") as folder:
        for i in range(count):
            os.link(checkpoint, Path(folder) / f"run{i:05d}.npz")
        proc, url, _ = start(checkpoint, env={"MNISTSOFTMAX_RUNS_DIR": folder})
        try:
            rate, _ = kept_alive(url, small_png(), repeats, 1, query="")
        finally:
            proc.terminate()
            proc.wait()
    return rate


def idle_connections(checkpoint: Path, count: int = 1100, files: int = 1024) -> tuple[float, float, int, int]:
    """`count` connections that send nothing or half a request's headers, against a server whose
    open-file limit is `files`: (seconds to open them, seconds of a GET /api/checkpoints then, the
    server's open descriptors, the EMFILE errors in its log)."""
    import socket
    import tempfile

    with tempfile.TemporaryFile("w+") as log:
        proc, url, _ = start(checkpoint, files=files, stderr=log)
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        sockets = []
        try:
            t0 = time.perf_counter()
            for i in range(count):
                s = socket.create_connection((host, int(port)), timeout=60)
                if i % 2:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: " + host.encode())
                sockets.append(s)
            opened = time.perf_counter() - t0
            t0 = time.perf_counter()
            with urllib.request.urlopen(url + "api/checkpoints", timeout=60) as r:
                r.read()
            answered = time.perf_counter() - t0
            descriptors = len(os.listdir(f"/proc/{proc.pid}/fd"))
        finally:
            for s in sockets:
                s.close()
            proc.terminate()
            proc.wait()
        log.seek(0)
        errors = log.read().count("Errno 24")
    return opened, answered, descriptors, errors


def big_pngs(url: str, pid: int, count: int = 3) -> tuple[float, float, list[int]]:
    """count 7000 x 7000 16-bit PNGs posted at once while GET /api/checkpoints is timed: (its
    slowest answer in s, the server's peak memory in MB, the PNGs' statuses)."""
    import threading
    import urllib.error

    import numpy as np
    from PIL import Image

    pixels = np.full((7000, 7000), 65535, np.uint16)  # white paper, a dark bar: a ~100 kB file
    pixels[2000:5000, 3000:3600] = 0
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", compress_level=9)
    png16 = out.getvalue()
    statuses: list[int] = []

    def send():
        request = urllib.request.Request(url + "api/predict", data=png16, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=300) as r:
                statuses.append(r.status)
        except urllib.error.HTTPError as exc:
            statuses.append(exc.code)

    threads = [threading.Thread(target=send) for _ in range(count)]
    for t in threads:
        t.start()
    slowest = 0.0
    while any(t.is_alive() for t in threads):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url + "api/checkpoints", timeout=60) as r:
            r.read()
        slowest = max(slowest, time.perf_counter() - t0)
        time.sleep(0.05)
    peak = next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmHWM"))
    return slowest, peak / 1024, statuses


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
            for k in range(args.repeats + 10):
                seconds, ms = post(url, body)
                if k >= 10:  # the first requests warm up caches (the untrained model is redrawn once)
                    round_ms.append(1000 * seconds)
                    server_ms.append(ms)
            kept_one_rate, kept_one_lat = kept_alive(url, body, args.repeats, 1)
            kept_many_rate, kept_many_lat = kept_alive(url, body, args.repeats, 16)
            small = small_png()
            small_one_rate, small_one_lat = kept_alive(url, small, args.repeats, 1, query="")
            small_many_rate, small_many_lat = kept_alive(url, small, args.repeats, 16, query="")
            timeline_rate, timeline_lat = kept_alive(url, small, args.repeats, 1, query="?timeline=true")
            model_first, model_again, model_bytes = page_model(url)
            one_rate, one_lat, _ = concurrent(url, body, args.repeats, 1)
            many_rate, many_lat, answered = concurrent(url, body, args.repeats, 16)
            slowest, peak_mb, statuses = big_pngs(url, proc.pid)
        proc.terminate()
        proc.wait()
    few_rate = crowded_runs_folder(path, 30, args.repeats)
    many_rate = crowded_runs_folder(path, 3000, args.repeats)
    opened, waited, descriptors, emfile = idle_connections(path)

    kind = model.describe()
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
    p99 = lambda xs: statistics.quantiles(xs, n=100)[-1]  # noqa: E731
    print(f"{'28x28 PNG, 1 client kept alive':<46} {small_one_rate:7.0f}/s  p99 {1000 * p99(small_one_lat):5.1f}ms"
          f"  >= 500/s, p99 <= 10 ms")  # fmt: skip
    print(f"{'28x28 PNG, 16 clients kept alive':<46} {small_many_rate:7.0f}/s  p99 {1000 * p99(small_many_lat):5.1f}ms"
          f"  >= 1 client's")  # fmt: skip
    print(f"{'28x28 PNG with its timeline, 1 client':<46} {timeline_rate:7.0f}/s  p99 {1000 * p99(timeline_lat):5.1f}ms"
          f"  (asked with timeline=true)")  # fmt: skip
    print(f"{'GET /api/model, first and again':<46} {model_first:8.2f}s {model_again:8.3f}s  "
          f"{model_bytes / 2**20:.1f} MB: the page's weights, once per checkpoint")  # fmt: skip
    print(f"{'pad PNG with a label, 1 client kept alive':<46} {kept_one_rate:7.0f}/s  "
          f"p99 {1000 * p99(kept_one_lat):5.1f}ms")  # fmt: skip
    print(f"{'pad PNG with a label, 16 clients kept alive':<46} {kept_many_rate:7.0f}/s  "
          f"p99 {1000 * p99(kept_many_lat):5.1f}ms  >= 1 client's")  # fmt: skip
    print(
        f"{'/api/predict one at a time, a new connection each':<46} {one_rate:7.0f}/s  p99 {1000 * p99(one_lat):5.0f}ms"
    )
    print(f"{'/api/predict 16 at a time, a new connection each':<46} {many_rate:7.0f}/s  "
          f"p99 {1000 * p99(many_lat):5.0f}ms  >= one at a time, p99 < 400 ms; "
          f"answered {answered}/{args.repeats}")  # fmt: skip
    print(f"{'GET /api/checkpoints during 3 x 49 MP 16-bit PNGs':<46} {slowest:8.2f}s {'':>9}  < 0.3 s (slowest)")
    print(f"{'serve peak memory (VmHWM) by then':<46} {peak_mb:7.0f}MB {'':>9}  < 1 GB; PNGs answered {statuses}")
    print(f"{'28x28 PNG, 1 client, 30 files in the runs folder':<46} {few_rate:7.0f}/s")
    print(f"{'28x28 PNG, 1 client, 3,000 files in the runs folder':<46} {many_rate:7.0f}/s  {'':>9}  "
          f"within 20 % of 30 files")  # fmt: skip
    print(
        f"{'GET /api/checkpoints beside 1,100 idle connections':<46} {waited:8.3f}s {'':>9}  answered; "
        f"open-file limit 1,024: {descriptors} open, {emfile} EMFILE errors logged ({opened:.1f} s to open them)"
    )
    print(f"{args.repeats} requests of a {len(body):,}-byte pad PNG; {args.starts} starts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
