"""The documentation's screenshots of the draw page, taken in Chromium from a served checkpoint.

    python scripts/screenshots.py [--checkpoint PATH] [--out docs] [--phone]

Draws a 3 on the pad with the mouse and picks the label 3, then writes (and the lesson's second step
for a picked 7 as lesson.png at 1280 px and lesson-phone.png at 390 px):
    serve.png      the page's top at 1280 px: the timeline's bar, the digit, the prediction, the
                   timeline's chart, the preprocessing, the table, untrained beside trained, the
                   batch's box plots
    timeline.png   the bar and the timeline's chart with the slider at an early snapshot (the
                   digit half learnt), and the prediction beside
    lab.png        the lab's views from the curves to one SGD step at 960 px
With --phone, the same page at 390 px as phone-*.png (to look at, not for the docs).
With --notebook, instead: docs/how-to/notebook.ipynb executed by nbclient in a scratch folder (the
MNIST of $MNISTSOFTMAX_DATA_DIR or data/), saved as HTML by nbconvert, and its first explorer at
1280 px as notebook.png; prints the size of each output cell.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_serve import start  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]
THREE = [[(95, 70), (150, 55), (190, 80), (175, 130), (135, 145)], [(135, 145), (190, 170), (185, 225), (130, 245),
                                                                     (90, 230)]]  # fmt: skip


def settle(page, before: int) -> None:
    page.wait_for_function(f"Number(document.body.dataset.answers || 0) > {before} && "
                           "document.body.dataset.busy === 'false'")  # fmt: skip


def answers(page) -> int:
    return int(page.evaluate("Number(document.body.dataset.answers || 0)"))


def drawn(page, width: int):
    """The page at `width` px with a 3 drawn and the label 3 chosen."""
    page.set_viewport_size({"width": width, "height": 1000})
    page.wait_for_selector("body[data-ready=true]")
    box = page.get_by_test_id("pad").bounding_box()
    scale = box["width"] / 280
    for stroke in THREE:
        before = answers(page)
        page.mouse.move(box["x"] + stroke[0][0] * scale, box["y"] + stroke[0][1] * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale, steps=8)
        page.mouse.up()
        settle(page, before)
    before = answers(page)
    page.get_by_test_id("label").select_option("3")
    settle(page, before)


def at_snapshot(page, index: int) -> None:
    before = answers(page)
    page.get_by_test_id("timeline").fill(str(index))
    settle(page, before)


def region(page, first: str, last: str, pad: int = 8) -> dict:
    """The clip from the top of element `first` to the bottom of `last`, the page's full width."""
    top = page.locator(first).bounding_box()["y"]
    bottom = page.locator(last).bounding_box()
    width = page.viewport_size["width"]
    return {"x": 0, "y": max(0, top - pad), "width": width, "height": bottom["y"] + bottom["height"] - top + 2 * pad}


def notebook(out: Path) -> None:
    """notebook.png: the tutorial's first explorer, in the notebook as nbconvert writes it."""
    import os
    import tempfile

    import nbclient
    import nbconvert
    import nbformat
    from playwright.sync_api import sync_playwright

    tutorial = nbformat.read(ROOT / "docs" / "how-to" / "notebook.ipynb", as_version=4)
    with tempfile.TemporaryDirectory(prefix="notebook-") as folder:
        os.environ.setdefault("MNISTSOFTMAX_DATA_DIR", str(ROOT / "data"))
        os.environ["MNISTSOFTMAX_RUNS_DIR"] = folder
        nbclient.NotebookClient(tutorial, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": folder}}).execute()  # fmt: skip
        for number, cell in enumerate(c for c in tutorial.cells if c.cell_type == "code"):
            sizes = [len(o.get("data", {}).get("text/html", o.get("text", ""))) for o in cell.outputs]
            print(f"code cell {number + 1}: outputs of {', '.join(f'{n / 1e6:.2f} MB' for n in sizes) or 'nothing'}")
        page_file = Path(folder) / "notebook.html"
        page_file.write_text(nbconvert.HTMLExporter().from_notebook_node(tutorial)[0], encoding="utf-8")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            # nbconvert's template asks a CDN for MathJax and require.js; nothing leaves the machine.
            local = ("file:", "blob:", "data:", "about:")
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(local) else r.abort())
            page.goto(page_file.as_uri())
            first = page.frame_locator("iframe.mnistsoftmax-explorer").first
            first.locator("body[data-ready=true][data-busy=false]").wait_for(timeout=60_000)
            frame = page.locator("iframe.mnistsoftmax-explorer").first
            frame.scroll_into_view_if_needed()
            box = frame.bounding_box()
            top = page.evaluate("window.scrollY") + box["y"] - 260  # the cell's code and the classifier's end above
            page.screenshot(path=out / "notebook.png", full_page=True,
                            clip={"x": 0, "y": max(0, top), "width": 1280, "height": 1100})  # fmt: skip
            browser.close()
    print(f"wrote notebook.png to {out}")


def lesson(browser, url: str, width: int, out: Path) -> None:
    """The lesson at its second step (#lesson-2, a batch through the net) for MNIST's first test 7,
    picked from the keyboard's menu, with the step's task done (the timeline at step 0): the screen
    a class sees."""
    page = browser.new_page(viewport={"width": width, "height": 844 if width < 600 else 900})
    page.goto(url + "#lesson-2")
    page.wait_for_selector("body[data-ready=true]")
    page.select_option("#pick-digit", "7")
    settle(page, 0)
    before = answers(page)
    page.get_by_test_id("timeline").fill("0")
    settle(page, before)
    page.screenshot(path=out)
    page.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--phone", action="store_true")
    parser.add_argument("--notebook", action="store_true", help="the notebook tutorial's screenshot instead")
    args = parser.parse_args()
    if args.notebook:
        notebook(args.out)
        return 0
    from playwright.sync_api import sync_playwright

    from mnistsoftmax import checkpoint

    path = args.checkpoint or checkpoint.default_path()
    steps = checkpoint.snapshot_steps(path)
    proc, url, _ = start(path)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page()
            page.goto(url)
            drawn(page, 1280)
            page.screenshot(path=args.out / "serve.png", full_page=True, clip=region(page, "header", "#batch-view"))
            if steps:
                # An early snapshot: the first whose loss for this digit is below half of ln 10.
                losses = [float(page.get_by_test_id(f"timeline-loss-{i}").get_attribute("data-value"))
                          for i in range(len(steps))]  # fmt: skip
                early = next((i for i, loss in enumerate(losses) if loss < math.log(10) / 2), len(steps) - 1)
                at_snapshot(page, early)
                page.evaluate("window.scrollTo(0, 0)")
                clip = region(page, "#timeline-bar", "#timeline-view")
                page.screenshot(path=args.out / "timeline.png", full_page=True, clip=clip)
                at_snapshot(page, len(steps) - 1)
            page.set_viewport_size({"width": 960, "height": 1000})
            page.screenshot(path=args.out / "lab.png", full_page=True, clip=region(page, "#curves-view", "#step-view"))
            for width, name in ((1280, "lesson.png"), (390, "lesson-phone.png")):
                lesson(browser, url, width, args.out / name)
            if args.phone:
                phone = browser.new_page()
                phone.goto(url)
                drawn(phone, 390)
                phone.screenshot(path=args.out / "phone-page.png", full_page=True)
                print("phone: scrollWidth", phone.evaluate("document.documentElement.scrollWidth"))
            browser.close()
    finally:
        proc.terminate()
        proc.wait()
    print(f"wrote serve.png, timeline.png, lab.png, lesson.png, lesson-phone.png to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
