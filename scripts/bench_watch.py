"""Training watched live: the speed of a run started from the command line, from the page
(`serve`'s worker, with the training view open in Chromium following it, or a plain SSE client
with --no-browser), and from the command line with probes switched off.

    python scripts/bench_watch.py [--data-dir data/mnist] [--config configs/mlp-512.toml] [--epochs 3] [--repeats 3]

Each row is the median over its repeats (the rows alternate, so that drifts of the machine's speed
hit all of them alike) of the training seconds per epoch, as the epoch records give them
(the loop, the validation pass and the probes), and of the whole run from start to checkpoint.
Goals: the page within 10 % of the command line; probes on costing under 5 %.

    python scripts/bench_watch.py --probes-only --config fast --epochs 2 --repeats 4   # the probes alone
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM = os.environ.get("MNISTSOFTMAX_CHROMIUM", "/usr/bin/chromium")


def epoch_seconds(checkpoint: Path) -> list[float]:
    """The seconds of each epoch, from the metrics file beside a run's checkpoint."""
    from mnistsoftmax.checkpoint import read_metrics

    return [r["seconds"] for r in read_metrics(checkpoint) if r["type"] == "epoch"]


def cli_run(runs: Path, flags: list[str], name: str) -> tuple[list[float], float]:
    out = runs / f"{name}.npz"
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "mnistsoftmax", "train", *flags, "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    wall = time.perf_counter() - t0
    return epoch_seconds(out), wall


class Server:
    def __init__(self, runs: Path):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MNISTSOFTMAX_RUNS_DIR": str(runs)}
        self.proc = subprocess.Popen([sys.executable, "-m", "mnistsoftmax", "serve", "--port", "0", "--no-open"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
        line = self.proc.stdout.readline()
        if not line.startswith("serving on"):
            sys.exit(f"serve did not start: {line!r} {self.proc.stderr.read()}")
        self.url = line.split()[-1]
        self.runs = runs

    def close(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.communicate(timeout=60)


def page_run(server: Server, options: dict, browser) -> tuple[list[float], float]:
    """A run started through POST /api/runs and followed to its end, by the training view in
    Chromium (browser) or by reading the event stream here."""
    t0 = time.perf_counter()
    if browser is not None:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url + "train")
        page.wait_for_selector("body[data-ready=true]", state="attached")
        # The page's own fetch, so that it watches the run it started, as after a click on start.
        run_id = page.evaluate("""async (options) => {
            const r = await fetch('/api/runs', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                 body: JSON.stringify(options)});
            return (await r.json()).id; }""", options)  # fmt: skip
        t0 = time.perf_counter()
        page.reload()  # shows the run going on, from its first record
        # Polled twice a second: Playwright's default, every animation frame, would keep Chromium
        # drawing 60 frames a second, a load no user's tab puts on the machine.
        page.wait_for_function("document.querySelector('[data-testid=run-accuracy]').dataset.value !== undefined",
                               polling=500, timeout=600_000)  # fmt: skip
        wall = time.perf_counter() - t0
        page.close()
    else:
        request = urllib.request.Request(server.url + "api/runs", data=json.dumps(options).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")  # fmt: skip
        with urllib.request.urlopen(request) as r:
            run_id = json.loads(r.read())["id"]
        with urllib.request.urlopen(f"{server.url}api/runs/{run_id}/events", timeout=600) as stream:
            for line in stream:
                if line.startswith(b"data: ") and json.loads(line[6:])["type"] in ("test", "error", "stopped"):
                    break
        wall = time.perf_counter() - t0
    out = server.runs / f"{run_id}.npz"
    deadline = time.monotonic() + 30
    while not out.with_name(f"{run_id}.metrics.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return epoch_seconds(out), wall


def probe_share(data_dir: str, config: dict, repeats: int) -> dict:
    """Probes on against off, a run of the config's epochs each, alternating, in this process (no
    start-up or data loading in the figures): the loop's seconds, and the seconds spent inside the
    probes."""
    from mnistsoftmax import datasets, probes, runs, training

    data = datasets.load(config.get("dataset", "mnist"), data_dir)
    spent = [0.0]
    on, off, inside = [], [], []
    for r in range(2 * repeats):
        for every in (None, 0) if r % 2 else (0, None):
            run = training.prepare_run(data.train.images, data.train.labels, config["model"], config["hidden"],
                                       config["val_split"], config["seed"])  # fmt: skip
            chosen = probes.choose(data.test.labels, config["seed"])
            probe = probes.Probe(run.model, data.test.images[chosen], data.test.labels[chosen], run.norm)

            def timed_probe(*args, probe=probe):
                t0 = time.perf_counter()
                records = probe(*args)
                spent[0] += time.perf_counter() - t0
                return records

            settings = runs.settings_of({**config, "probe_every": every})
            # each record serialised, as the metrics file does
            hooks = training.Hooks(on_record=json.dumps, observe=timed_probe)
            spent[0] = 0.0
            t0 = time.perf_counter()
            training.train(run.model, run.images, run.labels, run.norm, settings, run.rng, run.validation, hooks)
            (on if every is None else off).append(time.perf_counter() - t0)
            if every is None:
                inside.append(spent[0])
    ratios = [a / b for a, b in zip(on, off, strict=True)]
    return {"on": statistics.median(on), "off": statistics.median(off), "ratio": statistics.median(ratios),
            "inside": statistics.median(i / t for i, t in zip(inside, on, strict=True))}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="data/mnist")
    parser.add_argument("--config", default="configs/mlp-512.toml")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true", help="follow the page's runs with an SSE client")
    parser.add_argument("--probes-only", action="store_true", help="only the probes' share, in this process")
    args = parser.parse_args()
    from mnistsoftmax.config import resolve

    config = resolve(args.config)
    config["epochs"] = args.epochs
    data_dir = str(Path(args.data_dir).resolve())
    if args.probes_only:
        return print_probe_share(data_dir, config, args)
    flags = ["--config", args.config, "--epochs", str(args.epochs), "--data-dir", data_dir]
    options = {k.replace("_", "-"): v for k, v in config.items()
               if k in ("model", "hidden", "epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule",
                        "val_split", "seed")}  # fmt: skip
    options["data-dir"] = data_dir

    browser = playwright = None
    if not args.no_browser:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
    rows = {"command line": [], "page": [], "command line, probes off": []}
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        server = Server(runs)
        off = [*flags, "--probe-every", "0"]
        try:
            for r in range(args.repeats):
                jobs = [
                    ("command line", lambda r=r: cli_run(runs, flags, f"cli{r}")),
                    ("page", lambda: page_run(server, options, browser)),
                    ("command line, probes off", lambda r=r: cli_run(runs, off, f"off{r}")),
                ]
                for name, job in jobs[r % 3 :] + jobs[: r % 3]:  # each row first, second and last in turn
                    rows[name].append(job())
                print(f"repeat {r + 1}: " + ", ".join(f"{k} {statistics.median(v[-1][0]):.2f} s/epoch"
                                                     for k, v in rows.items()), file=sys.stderr)  # fmt: skip
        finally:
            server.close()
            if browser is not None:
                browser.close()
                playwright.stop()
    base = [statistics.median(e) for e, _ in rows["command line"]]
    print(f"\n{args.config}, {args.epochs} epochs on {data_dir}, {args.repeats} repeats "
          f"({'training view in Chromium' if browser else 'SSE client'} for the page)\n")  # fmt: skip
    print(f"{'run':<28}{'s / epoch':>10}{'whole run s':>13}{'vs command line':>17}")
    for name, results in rows.items():
        per_epoch = [statistics.median(e) for e, _ in results]
        # Paired: each repeat's row against the command line's run of the same repeat (the machine's
        # speed drifts by more than the differences measured).
        ratio = statistics.median(p / b for p, b in zip(per_epoch, base, strict=True))
        wall = statistics.median(w for _, w in results)
        print(f"{name:<28}{statistics.median(per_epoch):>10.2f}{wall:>13.1f}{ratio - 1:>+16.1%}")
    return print_probe_share(data_dir, config, args)


def print_probe_share(data_dir: str, config: dict, args) -> int:
    share = probe_share(data_dir, config, args.repeats)
    print(f"\n{args.config}: probes at the default cadence, {args.epochs} epochs in this process, on/off "
          f"alternating x{2 * args.repeats} (goal: under 5 %):")  # fmt: skip
    print(
        f"  run with probes {share['on']:.3f} s, without {share['off']:.3f} s: "
        f"paired ratio {share['ratio']:.3f} ({100 * (share['ratio'] - 1):+.1f} %)"
    )
    print(
        f"  time inside the probes (forward pass, summaries, weight images): {100 * share['inside']:.1f} % "
        f"of the run with probes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
