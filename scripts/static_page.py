"""The exported draw page against `predict`, for a real model: the file's size, and 40 user-style
digit images uploaded into it (opened from disk in Chromium, every network request refused) against
predict's answers for the same files; then a 7 drawn with the mouse, and the time an answer takes.

    python scripts/static_page.py CHECKPOINT [--count 40] [--data-dir data/mnist]

Needs Debian's chromium and playwright (the test extra), and MNIST for the images.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, DIGITS  # noqa: E402
from tests.test_static_page import StaticPage, compare_with_predict, export_html, user_images  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--count", type=int, default=40)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as p:
        folder = Path(scratch)
        started = time.perf_counter()
        html = export_html(args.checkpoint, folder / "digits.html")
        exported, size = time.perf_counter() - started, html.stat().st_size
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = StaticPage(browser, html)
        images = user_images(folder, args.count)
        started = time.perf_counter()
        rows = compare_with_predict(page, args.checkpoint, images)
        per_image = (time.perf_counter() - started) / len(rows)
        page.page.get_by_test_id("clear").click()
        page.draw(DIGITS["7"])
        seven = page.page.get_by_test_id("prediction").text_content()
        page.close()
        browser.close()

    print(f"{'image':<28} {'page':>4} {'predict':>7}  largest probability difference")
    print("-" * 72)
    for r in rows:
        print(f"{r['image']:<28} {r['page']:>4} {r['predict']:>7}  {r['difference']:.2e}")
    same = sum(r["page"] == r["predict"] for r in rows)
    worst = max(r["difference"] for r in rows)
    print()
    from mnistsoftmax.checkpoint import snapshot_steps
    from mnistsoftmax.export import HTML_LIMIT, TIMELINE_HTML_LIMIT

    steps = snapshot_steps(args.checkpoint)
    limit = HTML_LIMIT if steps is None else TIMELINE_HTML_LIMIT
    with_what = "no snapshots" if steps is None else f"the timeline's {len(steps)} snapshots"
    print(
        f"file: {size / 2**20:.2f} MB with {with_what} (goal <= {limit / 2**20:.0f} MB), exported in {exported:.2f} s"
    )
    print(f"the same digit as predict: {same}/{len(rows)}; largest probability difference {worst:.2e} (goal < 1e-3)")
    print(f"a 7 drawn with the mouse reads: {seven}")
    print(f"upload to answer shown, per image (preprocessing, forward passes, lab, drawing): {1000 * per_image:.0f} ms")
    print(f"requests refused: {len(page.refused)}; page errors: {len(page.errors)}")
    return 0 if same == len(rows) and worst < 1e-3 and seven == "7" and not page.refused else 1


if __name__ == "__main__":
    sys.exit(main())
