"""The page of `serve` in a real browser: Debian's chromium driven by Playwright (never a browser
download). Digits drawn with mouse strokes on the pad, a label chosen, a file uploaded.

Needs chromium (apt), playwright (pip) and the genuine MNIST in data/mnist (`make data`), for a
model that reads handwriting. Skipped without them, except where MNISTSOFTMAX_REQUIRE_BROWSER=1
(set by .ci/run) makes their absence a failure.
"""

import json
import math
import os
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from mnistsoftmax import checkpoint
from mnistsoftmax.cli import main
from tests.test_predict_real import MNIST_DIR
from tests.test_serve import start_server

CHROMIUM = os.environ.get("MNISTSOFTMAX_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags chromium keeps trying to reach Google's hosts.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


def require(condition: bool, why: str) -> None:
    if not condition:
        if os.environ.get("MNISTSOFTMAX_REQUIRE_BROWSER"):
            pytest.fail(why)
        pytest.skip(why)


def require_mnist() -> None:
    have = (MNIST_DIR / "t10k-labels-idx1-ubyte").exists() or (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").exists()
    if not have and os.environ.get("MNISTSOFTMAX_REQUIRE_REAL_DATA"):
        pytest.fail(f"no MNIST in {MNIST_DIR}: run `make data`")
    require(have, f"no MNIST in {MNIST_DIR} (make data)")


@pytest.fixture(scope="module")
def browser():
    require(Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None, f"no chromium at {CHROMIUM} (apt)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright is not installed (pip install playwright)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`mnistsoftmax serve` on a free port with an mlp trained here for 3 epochs on MNIST."""
    require_mnist()
    runs = tmp_path_factory.mktemp("browser-runs")
    model = runs / "latest.npz"
    result = CliRunner().invoke(main, ["train", "--data-dir", str(MNIST_DIR), "--hidden", "128", "--epochs", "3",
                                       "--out", str(model)])  # fmt: skip
    assert result.exit_code == 0, result.output
    proc, url = start_server(model, env={"MNISTSOFTMAX_RUNS_DIR": str(runs)})
    yield url, model
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)


@pytest.fixture
def page(browser, served):
    url, _ = served
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    yield page
    context.close()
    assert errors == [], errors


def settle(page, answers_before: int) -> None:
    """Wait until the page has shown an answer after the last change and sends nothing more."""
    page.wait_for_function(
        f"Number(document.body.dataset.answers || 0) > {answers_before} && document.body.dataset.busy === 'false'"
    )


def answers(page) -> int:
    return int(page.evaluate("Number(document.body.dataset.answers || 0)"))


def draw(page, strokes) -> None:
    """Mouse strokes on the pad, in pad pixels (280 x 280)."""
    box = page.get_by_test_id("pad").bounding_box()
    before = answers(page)
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
        page.mouse.up()
    settle(page, before)


def ellipse(cx, cy, rx, ry, n=24):
    return [(cx + rx * math.sin(2 * math.pi * k / n), cy - ry * math.cos(2 * math.pi * k / n)) for k in range(n + 1)]


DIGITS = {
    "1": [[(145, 50), (140, 150), (135, 235)]],
    "7": [[(80, 60), (200, 60), (150, 150), (120, 235)]],
    "0": [ellipse(140, 140, 60, 95)],
}


def shown_probabilities(page) -> tuple[list[float], list[float]]:
    """The ten probabilities as shown (percent text) and as held (data-value, fractions)."""
    cells = [page.get_by_test_id(f"prob-{c}") for c in range(10)]
    return [float(c.text_content()) for c in cells], [float(c.get_attribute("data-value")) for c in cells]


@pytest.mark.parametrize("digit", list(DIGITS))
def test_a_drawn_digit_is_recognised(page, digit):
    """A digit drawn with the mouse: the page shows it as the prediction, the ten probabilities
    sum to 100 % within rounding, and the preprocessed 28x28 input is drawn."""
    draw(page, DIGITS[digit])
    assert page.get_by_test_id("prediction").text_content() == digit
    shown, held = shown_probabilities(page)
    assert abs(sum(shown) - 100) <= 10 * 0.005 + 1e-9
    assert max(range(10), key=lambda c: held[c]) == int(digit)
    assert page.get_by_test_id("preprocessed").evaluate("c => c.width") == 28


def test_the_label_shows_minus_log_of_its_probability(page):
    """Choosing a true label shows -ln p(label); the loss of another class is larger; clear empties."""
    draw(page, DIGITS["7"])
    for label in ("7", "1"):
        before = answers(page)
        page.get_by_test_id("label").select_option(label)
        settle(page, before)
        _, held = shown_probabilities(page)
        shown_loss = float(page.get_by_test_id("loss").text_content())
        assert shown_loss == pytest.approx(-math.log(held[int(label)]), rel=1e-3)
        if label == "7":
            loss_of_the_prediction = shown_loss
    assert shown_loss > loss_of_the_prediction
    page.get_by_test_id("clear").click()
    page.wait_for_function("document.querySelector('[data-testid=prediction]').textContent === '–'")


def test_an_uploaded_file_gives_the_same_digit_as_predict(page, served, tmp_path):
    """A file chosen in the upload gets the digit `mnistsoftmax predict` gives it, with the same
    probability."""
    _, model = served
    image = tmp_path / "two.png"
    im = Image.new("RGB", (300, 240), "white")
    ImageDraw.Draw(im).line([(110, 70), (150, 45), (190, 70), (185, 110), (110, 190), (200, 190)], fill="navy",
                            width=16, joint="curve")  # fmt: skip
    im.save(image)
    cli = CliRunner().invoke(main, ["predict", str(image), "--json", "--checkpoint", str(model)])
    assert cli.exit_code == 0, cli.output
    expected = json.loads(cli.stdout)[0]
    before = answers(page)
    page.get_by_test_id("upload").set_input_files(str(image))
    settle(page, before)
    assert page.get_by_test_id("prediction").text_content() == str(expected["digit"])
    _, held = shown_probabilities(page)
    assert held[expected["digit"]] == pytest.approx(expected["probability"], abs=1e-6)


def test_the_checkpoint_picker_lists_the_runs(page):
    options = page.get_by_test_id("checkpoint").locator("option").all_text_contents()
    assert options == ["latest"]


def test_the_training_view_from_the_keyboard(page, served):
    """/train: every option's field sits in its label (its accessible name), and a run's row opens
    with Tab and Enter, as a click opens it."""
    url, _ = served
    page.goto(url + "train")
    page.wait_for_selector("#runs tbody tr[data-run]")
    fields = "[...document.querySelectorAll('#options input, #options select')]"
    unlabelled = page.evaluate(fields + ".filter((i) => !i.labels.length || !i.labels[0].textContent.trim()).length")
    assert unlabelled == 0 and page.locator("#options input").count() > 10
    row = page.locator("#runs tbody tr[data-run]").first
    row.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('watched').textContent.includes('latest')")
    assert "latest" in page.locator("#watched").text_content()


def test_the_jacobian_is_one_tab_stop_with_arrow_keys_inside(page):
    """The W3C grid pattern: 100 cells, one of them in the Tab order; arrows move between them,
    End to the row's end, Ctrl+Home to the corner, and each cell says its value and its meaning."""
    before = answers(page)
    page.get_by_test_id("upload").set_input_files(str(SEVEN))
    settle(page, before)
    grid = page.get_by_test_id("jacobian")
    assert grid.get_attribute("role") == "grid" and grid.locator("[role=gridcell]").count() == 100
    assert grid.locator('[tabindex="0"]').count() == 1
    grid.locator('[tabindex="0"]').focus()
    for key in ("ArrowRight", "ArrowDown", "ArrowDown"):
        page.keyboard.press(key)
    focused = page.evaluate("[document.activeElement.dataset.i, document.activeElement.dataset.j]")
    assert focused == ["2", "1"] and grid.locator('[tabindex="0"]').count() == 1
    said = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert said.startswith("∂S2/∂z1 = ") and "how S2 moves with z1" in said
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.dataset.j") == "9"
    page.keyboard.press("Control+Home")
    assert page.evaluate("[document.activeElement.dataset.i, document.activeElement.dataset.j]") == ["0", "0"]


def test_a_keyboard_alone_reaches_a_prediction_and_moves_the_timeline(page, served):
    """From a fresh page, Tab and keys only: to "pick a test digit", arrows to a 7 (MNIST's first
    test 7 goes on the pad, the true label set to 7), the prediction; Shift+Tab back to the
    timeline, Home and End, each step read in its aria-valuetext."""
    url, model = served
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "pick-digit":
            break
    assert page.evaluate("document.activeElement.id") == "pick-digit"
    picker = page.get_by_test_id("pick-digit")
    for _ in range(30):  # ArrowDown past "a test digit…", 0 ... 6, one option at a time
        if picker.input_value() == "7":
            break
        page.keyboard.press("ArrowDown")
        page.wait_for_timeout(50)
    page.wait_for_function(
        "document.getElementById('prediction').textContent === '7' && document.body.dataset.busy === 'false'"
    )
    assert page.get_by_test_id("pick-digit").input_value() == "7" and page.get_by_test_id("label").input_value() == "7"
    assert page.locator("#prediction").text_content() == "7"
    for _ in range(10):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.id") == "timeline":
            break
    kept = checkpoint.snapshot_steps(model)
    for key, said in (
        ("Home", f"step 0 of {kept[-1]}, untrained"),
        ("End", f"step {kept[-1]} of {kept[-1]}, trained"),
    ):
        before = answers(page)
        page.keyboard.press(key)
        settle(page, before)
        assert page.get_by_test_id("timeline").get_attribute("aria-valuetext") == said


def test_the_lesson_runs_through_every_step_from_the_keyboard(page, served):
    """The lesson: opened by its button, 14 steps; a picked 7 does step 1's task; "." and the next
    button (Enter) go on, "," back; #lesson-N opens step N; step 2's batch numbers are its view's,
    and its task (the timeline at step 0) is noticed; the playground's task is noticed when p0
    passes 90 %; each step's numbers are the views' (step 3's probability is prob-7's); the last
    step ends the way on (next disabled)."""
    url, _ = served
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    page.get_by_test_id("lesson").click()
    step, task = page.get_by_test_id("lesson-step"), page.get_by_test_id("lesson-task")
    assert step.get_attribute("data-index") == "1" and step.get_attribute("data-count") == "14"
    assert task.get_attribute("data-done") == "false"
    before = answers(page)
    page.select_option("#pick-digit", "7")
    settle(page, before)
    assert task.get_attribute("data-done") == "true"
    page.get_by_test_id("lesson-next").focus()
    page.keyboard.press("Enter")
    assert step.get_attribute("data-index") == "2" and task.get_attribute("data-done") == "false"
    caption = page.get_by_test_id("batch-caption").text_content()
    median = re.search(r"right class's median logit (\S+),", caption).group(1)
    assert f"the right class's median logit is {median}," in page.locator("#lesson-text").text_content()
    move_timeline(page, 0, lambda b: settle(page, b))
    assert task.get_attribute("data-done") == "true"
    page.get_by_test_id("lesson-next").focus()  # out of the slider: "." there is the slider's
    page.keyboard.press(".")
    assert step.get_attribute("data-index") == "3" and page.evaluate("location.hash") == "#lesson-3"
    move_timeline(page, int(page.get_by_test_id("timeline").get_attribute("max")), lambda b: settle(page, b))
    p7 = float(page.get_by_test_id("prob-7").get_attribute("data-value"))
    assert f"σ(z)7 = {100 * p7:.{3 if p7 > 0.999 else 1}f} %" in page.locator("#lesson-text").text_content()
    page.get_by_test_id("lesson-next").focus()
    page.keyboard.press(",")
    assert step.get_attribute("data-index") == "2"
    page.goto(url + "#lesson-6")
    page.wait_for_selector("body[data-ready=true]")
    before = answers(page)
    page.select_option("#pick-digit", "3")
    settle(page, before)
    assert step.get_attribute("data-index") == "6" and task.get_attribute("data-done") == "false"
    page.get_by_test_id("preset-3-4-1").click()
    page.get_by_test_id("logit-0").fill("8")
    assert task.get_attribute("data-done") == "true"
    page.get_by_test_id("lesson-next").focus()  # out of the field: "." there is the field's
    for _ in range(9):
        page.keyboard.press(".")
    assert step.get_attribute("data-index") == "14" and page.get_by_test_id("lesson-next").is_disabled()


def test_the_batch_the_decay_and_the_layer_jacobian_follow_the_timeline(page, served, tmp_path):
    """A batch of MNIST's test digits (the first ten of each class): its box plots' medians equal
    NumPy's on a float64 forward of the snapshot's weights, near 0 and 10 % at step 0, the right
    class near 100 % at the end; weight decay's view: ΣW² of that snapshot, reg × ΣW² for the
    slider's reg, the shrink factor 1 − 2 lr reg; the output layer's T × NT Jacobian drawn with
    one diagonal block per row."""
    import base64

    from mnistsoftmax.inference import Normalization

    _, path = served
    upload_a_seven(page, tmp_path, label=7)
    source = (Path(__file__).parents[1] / "mnistsoftmax" / "web" / "static" / "examples.js").read_text()
    pixels = base64.b64decode("".join(re.findall(r'"([A-Za-z0-9+/=]+)"', source.split("export const BATCH")[1])))
    digits = np.frombuffer(pixels, np.uint8).reshape(100, 784)
    model, meta = checkpoint.load(path)
    kept = checkpoint.load_snapshots(path, model)
    norm = Normalization(**meta["normalization"])
    last = len(kept.steps) - 1
    for index in (0, last):
        move_timeline(page, index, lambda b: settle(page, b))
        params = {k: v.astype(np.float64) for k, v in kept.models(model)[index].params.items()}
        a = norm.apply(digits, dtype=np.float64)
        for i in range(1, len(params) // 2):
            a = np.maximum(a @ params[f"W{i}"] + params[f"b{i}"], 0)
        z = a @ params[f"W{len(params) // 2}"] + params[f"b{len(params) // 2}"]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        labels = np.repeat(np.arange(10), 10)
        right = np.median([np.median(z[labels == c, c]) for c in range(10)])
        right_p = np.median([np.median(p[labels == c, c]) for c in range(10)])
        said = page.get_by_test_id("batch-caption")
        assert float(said.get_attribute("data-right-logit")) == pytest.approx(right, rel=1e-6, abs=1e-9)
        assert float(said.get_attribute("data-right-p")) == pytest.approx(right_p, rel=1e-6, abs=1e-9)
        if index == 0:
            assert abs(right) < 0.5 and abs(right_p - 0.1) < 0.05
        else:
            assert right_p > 0.99
        squared = sum(float((params[k] ** 2).sum()) for k in params if k.startswith("W"))
        shown = float(page.get_by_test_id("decay-squared").get_attribute("data-value"))
        assert shown == pytest.approx(squared, rel=1e-9)
    assert page.get_by_test_id("decay-table").locator("tbody tr").count() == len(kept.steps)
    page.get_by_test_id("decay-reg").fill("4")  # log10(reg * 1e6): reg = 1e-2
    term = float(page.get_by_test_id("decay-term").get_attribute("data-value"))
    assert term == pytest.approx(1e-2 * shown, rel=1e-9)
    shrink = float(page.get_by_test_id("decay-shrink").get_attribute("data-value"))
    assert shrink == pytest.approx(1 - 2 * meta["config"]["lr"] * 1e-2, rel=1e-12)
    matrix = page.get_by_test_id("layer-jacobian-matrix")
    assert (matrix.get_attribute("data-rows"), matrix.get_attribute("data-cols")) == ("10", "80")
    cells = matrix.evaluate("c => Array.from(c.getContext('2d').getImageData(0, 0, 80, 10).data)")
    grey = np.array(cells).reshape(10, 80, 4)[:, :, :3].tolist()
    for row in range(10):  # every cell outside the row's own block is a structural zero's grey
        assert all(grey[row][col] == [226, 226, 226] for col in range(80) if col // 8 != row), row


def walk_the_lesson(scope, keyboard) -> list[str]:
    """Every step of an open lesson from the first, reached with "." from the keyboard (`scope`: a
    page or a frame's locator root, `keyboard` its page's): each step's sentence, in order; the
    lesson has 14 steps and each says something with the digit's numbers."""
    step = scope.get_by_test_id("lesson-step")
    count = int(step.get_attribute("data-count"))
    scope.get_by_test_id("lesson-next").focus()
    said = []
    for index in range(1, count + 1):
        assert step.get_attribute("data-index") == str(index)
        said.append(scope.locator("#lesson-text").text_content())
        keyboard.press(".")
    assert count == 14 and all(len(text) > 40 for text in said), said
    return said


def test_the_same_digit_under_two_checkpoints(browser, served, tmp_path):
    """A second checkpoint (a linear net beside the served mlp): its bars (compare-prob-K) equal
    `predict --json` for it at the end of the timeline, and at an earlier step come from its
    snapshot at or before that step."""
    import subprocess
    import sys

    _, model = served
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copy(model, runs / "latest.npz")
    linear = runs / "linear.npz"
    result = CliRunner().invoke(main, ["train", "--model", "linear", "--data-dir", str(MNIST_DIR), "--epochs", "1",
                                       "--out", str(linear)])  # fmt: skip
    assert result.exit_code == 0, result.output
    proc, url = start_server(runs / "latest.npz", env={"MNISTSOFTMAX_RUNS_DIR": str(runs)})
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        page.select_option("#compare-checkpoint", "linear")
        compared = int(page.evaluate("Number(document.body.dataset.compared || 0)"))
        page.get_by_test_id("upload").set_input_files(str(SEVEN))
        page.wait_for_function(f"Number(document.body.dataset.compared || 0) > {compared}")
        shown = values(page, "compare-prob-")
        cli = subprocess.run([sys.executable, "-m", "mnistsoftmax", "predict", str(SEVEN), "--checkpoint", str(linear),
                              "--json", "--top-k", "10"], capture_output=True, text=True, check=True)  # fmt: skip
        expected = [0.0] * 10
        for c, p in json.loads(cli.stdout)[0]["top_k"]:
            expected[c] = p
        # The page computes in float64 from the float32 weights, predict in float32: alike to its rounding.
        np.testing.assert_allclose(shown, expected, rtol=1e-5, atol=1e-9)
        steps = checkpoint.snapshot_steps(linear)
        compared = int(page.evaluate("Number(document.body.dataset.compared || 0)"))
        page.get_by_test_id("timeline").fill("3")
        page.wait_for_function(f"Number(document.body.dataset.compared || 0) > {compared}")
        mine = int(page.get_by_test_id("timeline-step").get_attribute("data-value"))
        note = page.locator("#second-note").text_content()
        theirs = max(s for s in steps if s <= mine)
        assert f"its snapshot at step {theirs}:" in note, note
    finally:
        context.close()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_large_type_for_a_projector_is_kept_across_reloads(page, served):
    """Projector mode: every chart's text drawn at 18 px or more at 1280 px (font size times the
    SVG's scale), the body's text larger, the choice kept when the page is reloaded."""
    url, _ = served
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    before = answers(page)
    page.get_by_test_id("upload").set_input_files(str(SEVEN))
    settle(page, before)
    page.select_option("#label", "7")
    settle(page, before + 1)
    page.get_by_test_id("large-type").click()
    assert page.get_by_test_id("large-type").get_attribute("aria-pressed") == "true"
    sizes = page.evaluate("""() => [...document.querySelectorAll("svg text")]
        .filter((t) => t.getClientRects().length)
        .map((t) => parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a)""")  # fmt: skip
    assert len(sizes) > 50 and min(sizes) >= 18, min(sizes)
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert page.evaluate("document.body.classList.contains('large-type')")
    page.get_by_test_id("large-type").click()
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert not page.evaluate("document.body.classList.contains('large-type')")


def test_the_numbers_and_the_menu_come_from_the_list_of_views(page):
    """views.js's list numbers the headings 1, 2, ... in the page's order, fills the "go to" menu
    with every view (the unnumbered ones by name) and every "(view N)" reference."""
    listed = page.evaluate("""async () => (await import("/static/views.js")).VIEWS.map(
        (v) => [v.id, v.numbered, v.name])""")  # fmt: skip
    numbered = [view_id for view_id, is_numbered, _ in listed if is_numbered]
    headings = page.evaluate("ids => ids.map((id) => document.querySelector(`#${id} h2`).textContent)", numbered)
    assert [h.split(" · ")[0] for h in headings] == [str(i) for i in range(1, len(numbered) + 1)]
    menu = page.get_by_test_id("toc").locator("option").evaluate_all("os => os.map((o) => [o.value, o.textContent])")
    assert [value for value, _ in menu[1:]] == [view_id for view_id, _, _ in listed]
    assert dict(menu)["playground-view"] == f"{numbered.index('playground-view') + 1} · playground"
    assert dict(menu)["timeline-view"] == "through training"
    source = page.locator("#jacobian-source option[value=playground]").text_content()
    assert source == f"the playground's logits (view {numbered.index('playground-view') + 1})"


@pytest.fixture
def training_page(browser, tmp_path):
    """The training view of a server whose runs folder starts empty (MNIST for data: a test
    accuracy that is not simply 100 %)."""
    require_mnist()
    data = MNIST_DIR
    runs = tmp_path / "runs"
    proc, url = start_server("--data-dir", data, env={"MNISTSOFTMAX_RUNS_DIR": str(runs)})
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "train")
    page.wait_for_selector("body[data-ready=true]", state="attached")
    yield page, data, runs
    context.close()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert errors == [], errors


def test_a_run_started_from_the_form_is_watched_to_its_accuracy(training_page):
    """Options typed in the form, start: the loss chart gains points while the run goes (one
    element with data-step per point), the probes' box plots and the weights appear, and the
    test accuracy shown at the end is `eval`'s on the checkpoint the run wrote."""
    page, data, runs = training_page
    # The server's own folder is the data set chosen by default (first in the list), by its path.
    assert page.get_by_test_id("opt-dataset").input_value() == str(data.resolve())
    page.get_by_test_id("opt-epochs").fill("6")  # some seconds: the page redraws once a second
    page.get_by_test_id("opt-hidden").fill("256")
    page.get_by_test_id("opt-seed").fill("4")
    page.get_by_test_id("opt-elastic-alpha").fill("20")  # the distortions are on the form too
    page.get_by_test_id("opt-label-smoothing").fill("0.05")
    assert page.get_by_test_id("opt-hflip").get_attribute("type") == "checkbox"
    assert not page.get_by_test_id("opt-hflip").is_checked()  # never for digits by default
    page.get_by_test_id("train-start").click()
    points = page.get_by_test_id("loss-chart").locator("[data-step]")
    page.wait_for_function("document.querySelectorAll('[data-testid=loss-chart] [data-step]').length > 0")
    early = points.count()
    assert page.get_by_test_id("run-accuracy").text_content() == "–"  # still running
    assert axe_violations(page) == []  # /train during the run
    page.wait_for_function(f"document.querySelectorAll('[data-testid=loss-chart] [data-step]').length > {early}",
                           timeout=120_000)  # fmt: skip
    page.wait_for_function("document.querySelector('[data-testid=run-accuracy]').dataset.value !== undefined",
                           timeout=120_000)  # fmt: skip
    steps = [int(s) for s in points.evaluate_all("ps => ps.map(p => p.dataset.step)")]
    assert steps == sorted(steps) and steps[0] == 1
    assert page.locator("#softmax-boxes .box-panel").count() == 10
    assert axe_violations(page) == []  # and once its charts, box plots and weights are drawn
    assert page.locator("#weights canvas").count() == 16
    # The test record is written before the checkpoint: the run is finished once the page says so.
    page.wait_for_function("document.body.dataset.runStatus === 'finished'")
    (checkpoint_file,) = [p for p in runs.glob("*.npz")]
    config = checkpoint.read_meta(checkpoint_file)["config"]
    chosen = (config["elastic_alpha"], config["hflip"], config["seed"], config["label_smoothing"])
    assert chosen == (20.0, False, 4, 0.05)
    result = CliRunner().invoke(main, ["eval", str(checkpoint_file), "--json"])
    assert result.exit_code == 0, result.output
    accuracy = json.loads(result.stdout)["accuracy"]
    shown = page.get_by_test_id("run-accuracy")
    assert float(shown.get_attribute("data-value")) == accuracy
    assert shown.text_content() == f"{100 * accuracy:.2f} %" and 0.95 < accuracy < 1


def test_two_runs_side_by_side(browser, tmp_path):
    """The training view's side by side: a cross-entropy run and a hinge run of the same seed,
    each with its loss chart, its margins' line and its logits' box plots, and its own loss named."""
    from tests.conftest import write_dataset

    data, runs = tmp_path / "data", tmp_path / "runs"
    write_dataset(data)
    for loss in ("cross-entropy", "hinge"):
        args = ["train", "--dataset", "custom", "--data-dir", str(data), "--epochs", "2", "--hidden", "16",
                "--loss", loss, "--out", str(runs / f"{loss}.npz")]  # fmt: skip
        assert CliRunner().invoke(main, args).exit_code == 0
    proc, url = start_server(env={"MNISTSOFTMAX_RUNS_DIR": str(runs)})
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url + "train")
        page.wait_for_selector("body[data-ready=true]", state="attached")
        page.click('tr[data-run="cross-entropy"]')
        page.get_by_test_id("compare").select_option("hinge")
        for side, loss in ((0, "cross-entropy"), (1, "hinge")):
            root = page.get_by_test_id(f"side-{side}")
            root.locator(".side-summary", has_text="test accuracy").wait_for(timeout=20000)
            assert root.locator(".side-title").text_content().endswith(loss)
            assert root.locator(".side-loss circle").count() > 0
            assert root.get_by_test_id("margin-line").count() == 1
            assert root.locator(".side-logits svg").count() == 10
    finally:
        context.close()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert errors == [], errors


def test_the_reliability_diagram_and_the_temperature_switch(page, served):
    """The checkpoint's reliability diagram is drawn (its ECE the one stored); the calibrated
    switch shows softmax(z / T) in the bars and keeps the digit."""
    _, model = served
    meta = checkpoint.load(model)[1]
    assert not page.locator("#reliability-view").is_hidden()
    assert float(page.get_by_test_id("reliability").get_attribute("data-ece")) == meta["reliability"]["ece"]
    assert page.locator("#reliability circle").count() > 0
    before = answers(page)
    draw(page, [[(90, 60), (200, 60), (140, 230)]])
    settle(page, before)
    digit, plain = page.get_by_test_id("prediction").text_content(), shown_probabilities(page)[1]
    before = answers(page)
    page.get_by_test_id("calibrated").check()
    settle(page, before)
    cooled = shown_probabilities(page)[1]
    assert page.get_by_test_id("prediction").text_content() == digit and cooled != plain


def lab_answer(path: Path, image: bytes, label: int) -> dict:
    """Python's answer (draw_routes.answer, as POST /api/predict computes it) for the image and label
    the page was given, on the checkpoint's weights as the page's engine computes with them: in
    float64, its initial weights rounded to float16 as the page holds them. tests/test_engine.py
    holds the engine to this to 1e-6; the tests here check what the views draw of it."""
    from mnistsoftmax.inference import Normalization, initial_model
    from mnistsoftmax.models import with_dtype
    from mnistsoftmax.web import draw_routes
    from mnistsoftmax.web.catalog import Loaded

    model, meta = checkpoint.load(path)
    untrained = initial_model(meta)
    untrained = untrained.like({k: v.astype(np.float16).astype(np.float64) for k, v in untrained.params.items()})
    entry = Loaded(path.stem, path, with_dtype(model, np.float64), meta, Normalization(**meta["normalization"]),
                   untrained, None, "none")  # fmt: skip

    class One:
        get = staticmethod(lambda name: entry)

    return draw_routes.answer(One(), image, False, {"label": str(label)})


def seven_png(tmp_path) -> Path:
    """A 7 drawn black on white, 200 x 200, as seven.png in tmp_path."""
    image = tmp_path / "seven.png"
    im = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(im).line([(50, 40), (150, 40), (90, 170)], fill=0, width=14)
    im.save(image)
    return image


def upload_a_seven(page, tmp_path, label: int):
    """Upload a drawn 7 and choose a label, each answer awaited: the image's path."""
    image = seven_png(tmp_path)
    before = answers(page)
    page.get_by_test_id("upload").set_input_files(str(image))
    settle(page, before)
    before = answers(page)
    page.get_by_test_id("label").select_option(str(label))
    settle(page, before)
    return image


def values(page, testid_prefix: str, count: int = 10) -> list[float]:
    return [float(page.get_by_test_id(f"{testid_prefix}{k}").get_attribute("data-value")) for k in range(count)]


def test_the_lab_views_equal_the_math(page, served, tmp_path):
    """For an uploaded digit and its label, every lab number on the page equals the math on the
    logits to 1e-6 relative: the Jacobian's 100 cells, the curves' 30 points, the hinge terms
    and their sum, softmax at T = 2.5, the playground after one logit is edited; and one SGD step
    lowers the digit's loss."""
    _, path = served
    image = upload_a_seven(page, tmp_path, label=3)
    api = lab_answer(path, image.read_bytes(), 3)
    z = np.asarray(api["logits"], dtype=np.float64)
    S = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    close = dict(rtol=1e-6, atol=1e-12)

    cells = page.get_by_test_id("jacobian").locator("[data-i]")
    assert cells.count() == 100
    J = np.zeros((10, 10))
    for k in range(100):
        cell = cells.nth(k)
        i, j = int(cell.get_attribute("data-i")), int(cell.get_attribute("data-j"))
        J[i, j] = float(cell.get_attribute("data-value"))
    np.testing.assert_allclose(J, np.diag(S) - np.outer(S, S), **close)
    np.testing.assert_allclose(values(page, "chain-"), S - np.eye(10)[3], rtol=1e-6, atol=1e-9)

    logp = np.log(S)
    expected = {"curve-exp": np.exp(z - z.max()), "curve-log": logp, "curve-nll": -logp}
    for testid, ys in expected.items():
        points = page.get_by_test_id(testid).locator("[data-class]")
        got = {int(points.nth(k).get_attribute("data-class")): float(points.nth(k).get_attribute("data-y"))
               for k in range(points.count())}  # fmt: skip
        assert sorted(got) == list(range(10))
        np.testing.assert_allclose([got[c] for c in range(10)], ys, **close)
    untrained = float(page.get_by_test_id("untrained-point").get_attribute("data-y"))
    assert untrained == pytest.approx(api["untrained"]["loss"], rel=1e-6)

    terms = np.maximum(0, z - z[3] + 1)
    terms[3] = 0
    np.testing.assert_allclose(values(page, "hinge-"), terms, **close)
    hinge_loss = float(page.get_by_test_id("hinge-loss").get_attribute("data-value"))
    assert hinge_loss == pytest.approx(terms.sum(), rel=1e-6)

    page.get_by_test_id("temperature").fill("2.5")
    cooled = np.exp((z - z.max()) / 2.5) / np.exp((z - z.max()) / 2.5).sum()
    np.testing.assert_allclose(values(page, "t-prob-"), cooled, **close)

    page.get_by_test_id("logit-3").fill("20")
    edited = z.copy()
    edited[3] = 20
    played = np.exp(edited - edited.max()) / np.exp(edited - edited.max()).sum()
    np.testing.assert_allclose(values(page, "play-prob-"), played, **close)
    page.get_by_test_id("preset-1-2-3").click()
    np.testing.assert_allclose(values(page, "play-prob-")[:3], [0.09003057, 0.24472847, 0.66524096], rtol=1e-6)
    # The preset brings its own label (class 2, its largest logit): -ln 0.66524 = 0.4076, not the loss of 3.
    assert page.locator("#play-loss").text_content().startswith("loss −log p(2) = 0.4076 (the preset's label")

    assert page.locator("[data-testid^=grad-image]").count() >= 8
    before_loss = float(page.get_by_test_id("step-loss-before").get_attribute("data-value"))
    after_loss = float(page.get_by_test_id("step-loss-after").get_attribute("data-value"))
    assert after_loss < before_loss and before_loss == pytest.approx(api["loss"], rel=1e-5)


def test_the_lab_says_what_needs_a_label(page, tmp_path):
    """Without a label the Jacobian and curves are drawn; the views that need one say so."""
    image = tmp_path / "one.png"
    im = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(im).line([(100, 30), (100, 170)], fill=0, width=14)
    im.save(image)
    before = answers(page)
    page.get_by_test_id("upload").set_input_files(str(image))
    settle(page, before)
    assert page.get_by_test_id("jacobian").locator("[data-i]").count() == 100
    assert "Choose a true label" in page.locator("#hinge-terms").text_content()
    assert "Choose a true label" in page.locator("#step-probs").text_content()


def test_a_click_is_a_dot_and_moves_nothing(page):
    """A bare click on the pad leaves a dot of ink and sends it (never the blank pad): no error,
    and the pad stays where it was under the pointer."""
    pad = page.get_by_test_id("pad")
    page.get_by_test_id("clear").click()
    where = pad.bounding_box()
    before = answers(page)
    page.mouse.click(where["x"] + 140, where["y"] + 140)
    settle(page, before)
    assert pad.bounding_box() == where
    assert page.locator("#error").is_hidden()
    ink = page.evaluate("""() => {
      const c = document.querySelector('[data-testid="pad"]');
      return c.getContext('2d').getImageData(140, 140, 1, 1).data[0];
    }""")
    assert ink < 50


def page_digit(page) -> np.ndarray:
    """The 28x28 input the page shows (view 2's last canvas, grey levels as drawn)."""
    pixels = page.get_by_test_id("preprocessed").evaluate(
        "c => Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data.filter((_, i) => i % 4 === 0))"
    )
    return np.array(pixels, np.uint8).reshape(28, 28)


def move_timeline(page, index: int, settled) -> None:
    """The slider set to `index` as a hand drags it (an input event); settled(answers before) awaits
    the answer."""
    before = int(page.evaluate("() => Number(document.body.dataset.answers || 0)"))
    page.get_by_test_id("timeline").fill(str(index))
    settled(before)


def check_timeline(page, model: Path, settled, label: int | None) -> None:
    """Each of three snapshots: the slider's step, the ten bars and this digit's loss under every
    snapshot equal a NumPy float64 forward of the stored weights to 1e-6; step 0 near 10 %; the
    last index exactly the answer shown before the slider moved."""
    from tests.test_timeline import forward64

    trained = values(page, "prob-")
    kept = checkpoint.load_snapshots(model, checkpoint.load(model)[0])
    last = len(kept.steps) - 1
    assert page.get_by_test_id("timeline").get_attribute("max") == str(last)
    # the chart in words and as a table: its first and last points, every snapshot a row
    caption = page.get_by_test_id("timeline-caption").text_content()
    assert "at step 0 (ln 10 = 2.303" in caption and f"at step {kept.steps[last]};" in caption
    assert page.get_by_test_id("timeline-table").locator("tbody tr").count() == len(kept.steps)
    digit = page_digit(page)
    for index in (0, last // 2, last):
        move_timeline(page, index, settled)
        assert page.get_by_test_id("timeline-step").get_attribute("data-value") == str(kept.steps[index])
        # a screen reader hears the step, as the page shows it, not the slider's index
        where = ", untrained" if index == 0 else ", trained" if index == last else ""
        said = page.get_by_test_id("timeline").get_attribute("aria-valuetext")
        assert said == f"step {kept.steps[index]} of {kept.steps[last]}{where}"
        shown = values(page, "prob-")
        np.testing.assert_allclose(shown, forward64(model, index, digit), atol=1e-6, rtol=0)
        if index == 0:
            assert max(shown) < 0.2
        if index == last:
            assert shown == trained
    follow = label if label is not None else int(np.argmax(forward64(model, last, digit)))
    losses = [float(page.get_by_test_id(f"timeline-loss-{i}").get_attribute("data-value")) for i in range(last + 1)]
    expected = [-math.log(forward64(model, i, digit)[follow]) for i in range(last + 1)]
    np.testing.assert_allclose(losses, expected, atol=1e-5, rtol=1e-6)
    assert abs(losses[0] - math.log(10)) < 0.3 and losses[-1] < 0.5


def test_the_timeline_moves_every_view_for_an_uploaded_digit(page, served, tmp_path):
    _, model = served
    upload_a_seven(page, tmp_path, label=7)
    check_timeline(page, model, lambda before: settle(page, before), label=7)


def test_the_served_page_moves_with_no_request(page, served, tmp_path):
    """The served page computes its views in the browser: after the digit's first answer (and the
    checkpoint's weights, fetched once), moving the timeline, choosing another label and changing
    the lab's learning rate send no request at all; the views still follow (the bars change)."""
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    upload_a_seven(page, tmp_path, label=7)
    fetched = [url for url in requests if "/api/" in url]
    assert sum("/api/model" in url for url in fetched) == 1 and not any("/api/predict" in url for url in fetched)
    requests.clear()
    before = values(page, "prob-")
    move_timeline(page, 0, lambda b: settle(page, b))
    assert values(page, "prob-") != before
    answered = answers(page)
    page.get_by_test_id("label").select_option("1")
    settle(page, answered)
    answered = answers(page)
    page.get_by_test_id("step-lr").fill("0.01")
    page.get_by_test_id("step-lr").dispatch_event("change")
    settle(page, answered)
    assert requests == []


def test_the_timeline_moves_every_view_for_a_drawn_digit(page, served):
    _, model = served
    draw(page, DIGITS["7"])
    check_timeline(page, model, lambda before: settle(page, before), label=None)


def test_the_lab_views_are_pictures_that_follow_the_hand(page, served, tmp_path):
    """The temperature's log slider, the playground's sliders, the Jacobian of the playground's
    logits, the hinge's picture and the step's before/after bars: each drawn number equals the
    math on the API's answer; every lab view has its section-NAME testid."""
    _, path = served
    image = upload_a_seven(page, tmp_path, label=3)
    api = lab_answer(path, image.read_bytes(), 3)
    z = np.asarray(api["logits"], dtype=np.float64)
    close = dict(rtol=1e-6, atol=1e-12)
    for name in ("curves", "temperature", "playground", "jacobian", "hinge", "step"):
        assert page.get_by_test_id(f"section-{name}").count() == 1

    page.get_by_test_id("temperature-slider").fill(str(math.log10(2.5)))
    assert float(page.get_by_test_id("temperature").input_value()) == 2.51  # 10 ** 0.40: the slider's steps of 0.01
    assert page.get_by_test_id("temperature-slider").get_attribute("aria-valuetext") == "T = 2.51"  # not 0.4
    T = float(page.get_by_test_id("temperature").input_value())
    np.testing.assert_allclose(values(page, "t-prob-"), np.exp((z - z.max()) / T) / np.exp((z - z.max()) / T).sum(),
                               **close)  # fmt: skip

    page.get_by_test_id("logit-range-5").fill("4")
    assert float(page.get_by_test_id("logit-5").input_value()) == 4
    edited = z.copy()
    edited[5] = 4
    played = np.exp(edited - edited.max()) / np.exp(edited - edited.max()).sum()
    np.testing.assert_allclose(values(page, "play-prob-"), played, **close)

    page.get_by_test_id("preset-1-2-3").click()
    page.get_by_test_id("jacobian-source").select_option("playground")
    played = np.array([1, 2, 3] + [-50] * 7, dtype=np.float64)
    S = np.exp(played - played.max()) / np.exp(played - played.max()).sum()
    cells = page.get_by_test_id("jacobian").locator("[data-i]")
    J = np.zeros((10, 10))
    for k in range(100):
        cell = cells.nth(k)
        J[int(cell.get_attribute("data-i")), int(cell.get_attribute("data-j"))] = float(
            cell.get_attribute("data-value")
        )
    np.testing.assert_allclose(J, np.diag(S) - np.outer(S, S), rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(values(page, "chain-"), S - np.eye(10)[2], rtol=1e-6, atol=1e-12)  # the preset's label
    assert J[2, 2] == pytest.approx(S[2] * (1 - S[2])) and J[0, 1] == pytest.approx(-S[0] * S[1])

    picture = page.get_by_test_id("hinge-picture")
    violating = [k for k in range(10) if k != 3 and z[k] - z[3] + 1 > 0]
    assert picture.locator("g[data-class]").count() == 10
    assert picture.locator("circle.violating-point").count() == len(violating)
    assert picture.locator("circle.label-point").get_attribute("data-class") == "3"

    np.testing.assert_allclose(values(page, "step-after-"), api["lab"]["step"]["probabilities_after"], rtol=1e-6)


def test_choosing_a_class_marks_it_in_every_view(page, tmp_path):
    upload_a_seven(page, tmp_path, label=7)
    page.get_by_test_id("prob-4").click()
    marked = page.evaluate("() => [...document.querySelectorAll('.chosen')].map(e => e.closest('section').id)")
    for view in ("answer-view", "math-view", "compare-view", "curves-view", "temperature-view", "playground-view",
                 "jacobian-view", "hinge-view", "step-view"):  # fmt: skip
        assert view in marked, view
    assert page.locator("#math-table tr.chosen").get_attribute("data-class") == "4"
    page.get_by_test_id("prob-4").click()  # the same class again: chosen no more
    assert page.locator(".chosen").count() == 0


def test_the_derivations_carry_this_digits_numbers(page, served, tmp_path):
    """Item by item against NumPy on the API's answer: the quotient rule's two cases, the output
    layer's weight gradient (S_i - delta_iy) a_j, cross entropy against label smoothing's target, and
    e^z overflowing float32 where e^(z - max z) does not; every formula rendered as MathML."""
    _, path = served
    image = upload_a_seven(page, tmp_path, label=7)
    api = lab_answer(path, image.read_bytes(), 7)
    S = np.asarray(api["probabilities"], dtype=np.float64)
    runner = max((c for c in range(10) if c != 7), key=lambda c: S[c])
    rule = page.get_by_test_id("quotient-rule")
    assert float(rule.get_attribute("data-same")) == pytest.approx(S[7] * (1 - S[7]), rel=1e-9)
    assert float(rule.get_attribute("data-cross")) == pytest.approx(-S[7] * S[runner], rel=1e-9)
    assert rule.locator("math").count() >= 4 and "\\frac" not in rule.inner_text()

    unit = api["hidden"]["units"][0]
    layer = page.get_by_test_id("layer-jacobian")
    assert float(layer.get_attribute("data-own")) == pytest.approx((S[7] - 1) * unit["activation"], rel=1e-9)
    assert float(layer.get_attribute("data-runner")) == pytest.approx(S[runner] * unit["activation"], rel=1e-9)
    assert "10 × 1,280 = 12,800 entries" in layer.inner_text()  # T x NT for N = 128 hidden units

    q = np.full(10, 0.1 / 10)
    q[7] += 0.9
    loss = page.get_by_test_id("soft-loss")
    assert float(loss.get_attribute("data-value")) == pytest.approx(-(q * np.log(S)).sum(), rel=1e-9)
    assert float(loss.get_attribute("data-entropy")) == pytest.approx(-(q * np.log(q)).sum(), rel=1e-12)

    page.get_by_test_id("overflow-scale").fill("100")
    z = 100 * np.asarray(api["logits"], dtype=np.float64)
    cells = page.get_by_test_id("overflow-table").locator("tr[data-class]")
    assert (z.max() > 88.73) and "overflows float32" in page.get_by_test_id("overflow-verdict").text_content()
    top = cells.nth(int(np.argmax(z))).locator("td[data-value]")
    assert top.nth(0).get_attribute("data-value") == "Infinity" and top.nth(1).get_attribute("data-value") == "NaN"
    assert float(top.nth(3).get_attribute("data-value")) == pytest.approx(1.0, abs=1e-6)
    assert page.locator("#math-view math").count() >= 2


# Every element that scrolls sideways (its own overflow-x auto or scroll, content wider than it).
SIDEWAYS = """() => [...document.querySelectorAll('*')].filter(e => {
  const o = getComputedStyle(e).overflowX;
  return (o === 'auto' || o === 'scroll') && e.scrollWidth > e.clientWidth + 1;
}).map(e => `${(e.closest('section') || e).id}: ${e.tagName} ${e.scrollWidth}/${e.clientWidth}`)"""


def test_nothing_scrolls_sideways_at_phone_width(browser, served, tmp_path):
    """At 390 px, with a digit, a label, an early snapshot, the overflow slider at its end and the
    playground's Jacobian: neither the page nor any box in it scrolls sideways; nor does /train."""
    url, _ = served
    context = browser.new_context(viewport={"width": 390, "height": 900})
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        upload_a_seven(page, tmp_path, label=7)
        move_timeline(page, 1, lambda before: settle(page, before))
        page.get_by_test_id("overflow-scale").fill("100")
        page.get_by_test_id("jacobian-source").select_option("playground")
        assert page.evaluate(SIDEWAYS) == [] and page.evaluate("() => document.documentElement.scrollWidth") <= 390
        page.goto(url + "train")
        page.wait_for_selector("#runs tbody tr")
        page.locator("#runs tbody tr").first.click()
        page.wait_for_selector("#loss-chart polyline")
        assert page.evaluate(SIDEWAYS) == [] and page.evaluate("() => document.documentElement.scrollWidth") <= 390
    finally:
        context.close()


AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SEVEN = Path(__file__).parents[1] / "docs" / "examples" / "seven.png"  # MNIST's first test 7, drawn 280 x 280


def axe_violations(page) -> list:
    """axe-core's violations of every rule and impact on the page as it stands: [(rule, impact, first target)]."""
    page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    return page.evaluate("""async () => (await axe.run(document)).violations.map(
        (v) => [v.id, v.impact, v.nodes[0].target.join(" ")])""")  # fmt: skip


@pytest.mark.parametrize("width", [1280, 390])
def test_axe_finds_no_violation_on_either_page(browser, served, tmp_path, width):
    """axe-core 4.14.1 (vendored for the tests) on the draw page before a digit and after one, on
    /train, and on the exported page opened from disk, at 1280 and 390 px: no violation of any
    impact."""
    from mnistsoftmax.export import to_html

    url, model = served
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_selector("body[data-ready=true]")
        assert axe_violations(page) == []
        before = answers(page)
        page.get_by_test_id("upload").set_input_files(str(SEVEN))
        settle(page, before)
        page.select_option("#label", "7")
        settle(page, before + 1)
        assert axe_violations(page) == []
        page.get_by_test_id("lesson").click()  # the lesson open at its third step
        page.get_by_test_id("lesson-next").click()
        page.get_by_test_id("lesson-next").click()
        assert axe_violations(page) == []
        page.goto(url + "train")
        page.wait_for_selector("#runs tbody tr[data-run]")
        assert axe_violations(page) == []
        exported = tmp_path / "page.html"
        loaded, meta = checkpoint.load(model)
        exported.write_bytes(to_html(loaded, meta, "latest"))
        page.goto(exported.as_uri() + "#lesson-2")  # the lesson in the file too, opened by its address
        page.wait_for_selector("body[data-ready=true]")
        assert page.get_by_test_id("lesson-step").get_attribute("data-index") == "2"
        assert axe_violations(page) == []
    finally:
        context.close()
