"""How quickly the draw page answers a move of the timeline's slider, in Chromium: served by
`serve`, and exported as one file (`export --format html`) computing in the browser.

    python scripts/bench_timeline.py [--checkpoint PATH] [--moves 40] [--width 1280]

Uploads a digit and chooses its label, then sets the slider to a random snapshot `moves` times as a
hand does (an input event). Each move is timed in the page, from the event to the last view drawn
(body[data-answers] counts the answer, body[data-busy] goes back to false): the request or the
in-browser computation, and every view redrawn. The goal: under 100 ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_serve import pad_png, start  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]

# In the page: one move of the slider, timed from the input event to the answer drawn.
MOVE = """async (index) => {
  const slider = document.querySelector("[data-testid=timeline]");
  const before = Number(document.body.dataset.answers || 0);
  const done = () => Number(document.body.dataset.answers || 0) > before && document.body.dataset.busy === "false";
  const t0 = performance.now();
  slider.value = String(index);
  slider.dispatchEvent(new Event("input", { bubbles: true }));
  await new Promise((resolve) => {
    if (done()) { resolve(); return; }
    const watch = new MutationObserver(() => { if (done()) { watch.disconnect(); resolve(); } });
    watch.observe(document.body, { attributes: true });
  });
  return performance.now() - t0;
}"""


def timed_moves(page, image: Path, moves: int) -> list[float]:
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_test_id("upload").set_input_files(str(image))
    page.wait_for_selector("body[data-busy=false][data-answers='1']", timeout=60_000)
    page.get_by_test_id("label").select_option("7")
    page.wait_for_selector("body[data-busy=false][data-answers='2']", timeout=60_000)
    last = int(page.get_by_test_id("timeline").get_attribute("max"))
    order = [(7 * k + 3) % (last + 1) for k in range(moves + 1)]  # every snapshot, in a scattered order
    return [page.evaluate(MOVE, index) for index in order]  # the first: the exported file decodes its snapshots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--moves", type=int, default=40)
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from mnistsoftmax import checkpoint

    path = args.checkpoint or checkpoint.default_path()
    model, _ = checkpoint.load(path)
    steps = checkpoint.snapshot_steps(path)
    if steps is None:
        sys.exit(f"{path} has no snapshots: train one with snapshots (the default) first")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        image = Path(tmp) / "seven.png"
        image.write_bytes(pad_png())
        html = Path(tmp) / "page.html"
        subprocess.run([sys.executable, "-m", "mnistsoftmax", "export", str(path), "--format", "html", "-o",
                        str(html)], check=True, capture_output=True, cwd=ROOT)  # fmt: skip
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        proc, url, _ = start(path)
        try:
            for name, address in (("served (serve)", url), ("exported file", html.as_uri())):
                page = browser.new_page(viewport={"width": args.width, "height": 900})
                page.goto(address)
                rows.append((name, timed_moves(page, image, args.moves)))
                page.close()
        finally:
            proc.terminate()
            proc.wait()
            browser.close()
    print(f"checkpoint: {path} ({model.describe()}, {len(steps)} snapshots); viewport {args.width} px; "
          f"{args.moves} moves of the slider on each page")  # fmt: skip
    print(f"{'page':<18} {'first move':>11} {'median':>9} {'p90':>9} {'max':>9}  goal (after the first)")
    print("-" * 80)
    for name, (first, *times) in rows:
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"{name:<18} {first:9.1f}ms {statistics.median(times):7.1f}ms {p90:7.1f}ms {max(times):7.1f}ms  < 100 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
