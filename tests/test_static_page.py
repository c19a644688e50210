"""The draw page exported as one file (`export --format html`), opened from disk in Chromium with
every network request refused: user-style digit images read as `predict` reads them, every number
the page shows equals the served page's for the same image and label, and a 7 drawn with the mouse
reads 7. `scripts/static_page.py` measures the same for the H = 512 model of configs/mlp.toml."""

import base64
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mnistsoftmax import checkpoint, datasets
from mnistsoftmax.cli import main
from mnistsoftmax.predict import predict_files
from tests.test_browser import (  # noqa: F401 - fixtures
    DIGITS,
    browser,
    served,
    seven_png,
    upload_a_seven,
    walk_the_lesson,
)
from tests.test_predict_real import MNIST_DIR, PHOTOS, RENDERERS

PROBABILITY_TOLERANCE = 1e-4  # float32 weights, float64 arithmetic in the browser; the issue asks 1e-3


def user_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` MNIST test digits rendered as users make them and as phone photos of paper
    (tests/test_predict_real.py's renderers, in turn), written as files."""
    test = datasets.load("mnist", MNIST_DIR, splits=("test",)).test
    rng = np.random.default_rng(seed)
    renderers = RENDERERS + PHOTOS
    paths = []
    for i in range(count):
        render = renderers[i % len(renderers)]
        data = render(test.images[i], rng)
        kind = "jpg" if data[:2] == b"\xff\xd8" else "png"
        path = folder / f"{i:02d}-{render.__name__}.{kind}"
        path.write_bytes(data)
        paths.append(path)
    return paths


def export_html(model: Path, out: Path) -> Path:
    result = CliRunner().invoke(main, ["export", str(model), "--format", "html", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


class StaticPage:
    """The exported file in a fresh browser context that refuses every request but the file's own."""

    def __init__(self, browser, html: Path, width: int = 1280):
        self.refused: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": width, "height": 1000})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.goto(html.resolve().as_uri())
        self.page.wait_for_selector("body[data-ready=true]")

    def _route(self, route):
        if route.request.url.startswith(("file:", "blob:", "data:")):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def answers(self) -> int:
        return int(self.page.evaluate("() => Number(document.body.dataset.answers || 0)"))

    def settle(self, before: int) -> None:
        # The page's Content-Security-Policy forbids eval, hence a selector rather than wait_for_function.
        self.page.wait_for_selector(f"body[data-busy=false][data-answers='{before + 1}']", timeout=30_000)

    def upload(self, path: Path) -> tuple[str, list[float]]:
        before = self.answers()
        self.page.get_by_test_id("upload").set_input_files(str(path))
        self.settle(before)
        return self.prediction()

    def choose_label(self, label: int) -> None:
        before = self.answers()
        self.page.get_by_test_id("label").select_option(str(label))
        self.settle(before)

    def prediction(self) -> tuple[str, list[float]]:
        probabilities = [float(self.page.get_by_test_id(f"prob-{c}").get_attribute("data-value")) for c in range(10)]
        return self.page.get_by_test_id("prediction").text_content(), probabilities

    def draw(self, strokes) -> None:
        box = self.page.get_by_test_id("pad").bounding_box()
        for stroke in strokes:
            before = self.answers()
            self.page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
            self.page.mouse.down()
            for x, y in stroke[1:]:
                self.page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
            self.page.mouse.up()
            self.page.wait_for_selector(f"body[data-busy=false]:not([data-answers='{before}'])", timeout=30_000)

    def close(self) -> None:
        self.context.close()


def compare_with_predict(page: StaticPage, model: Path, images: list[Path]) -> list[dict]:
    """Each image through the page and through predict: the digits and the largest difference."""
    trained, meta = checkpoint.load(model)
    expected = predict_files(trained, meta, [str(p) for p in images], top_k=10)
    rows = []
    for path, want in zip(images, expected, strict=True):
        shown, probabilities = page.upload(path)
        wanted = [p for _, p in sorted(want["top_k"])]
        rows.append({"image": path.name, "page": int(shown), "predict": want["digit"],
                     "difference": float(np.max(np.abs(np.subtract(probabilities, wanted))))})  # fmt: skip
    return rows


def upload_a_seven_to(page: StaticPage, tmp_path: Path, label: int) -> Path:
    """test_browser's drawn 7, uploaded into the file, and a label chosen."""
    image = seven_png(tmp_path)
    page.upload(image)
    page.choose_label(label)
    return image


@pytest.fixture(scope="module")
def exported(served, tmp_path_factory) -> Path:
    _, model = served
    return export_html(model, tmp_path_factory.mktemp("static") / "digits.html")


@pytest.fixture
def static(browser, exported):
    page = StaticPage(browser, exported)
    yield page
    page.close()
    assert page.refused == [] and page.errors == [], (page.refused, page.errors)


def test_user_images_read_as_predict_reads_them(static, served, tmp_path):
    """40 images (clean drawings, JPEG photos, transparency, a corner, and phone photos of grey,
    shaded, ruled and squared paper): the same digit as predict, probabilities within 1e-4."""
    _, model = served
    rows = compare_with_predict(static, model, user_images(tmp_path, 40))
    assert [r["page"] for r in rows] == [r["predict"] for r in rows]
    assert max(r["difference"] for r in rows) < PROBABILITY_TOLERANCE, rows


def test_a_seven_drawn_with_the_mouse_reads_seven(static):
    static.draw(DIGITS["7"])
    assert static.page.get_by_test_id("prediction").text_content() == "7"


def test_every_number_equals_the_served_page(browser, served, static, tmp_path):
    """The same image and label in the served page and in the file: every value the views hold
    (probabilities, the table, the lab's Jacobian, curves, hinge, temperature and step) agrees."""
    url, _ = served
    seven = upload_a_seven_to(static, tmp_path, label=3)
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        live = context.new_page()
        live.goto(url)
        live.wait_for_selector("body[data-ready=true]")
        assert upload_a_seven(live, tmp_path, label=3).read_bytes() == seven.read_bytes()
        read = (
            "() => [...document.querySelectorAll('[data-value]')].map(e => [e.dataset.testid || e.id, e.dataset.value])"
        )
        here, there = static.page.evaluate(read), live.evaluate(read)
        texts = ["prediction", "loss"]
        assert [static.page.get_by_test_id(t).text_content() for t in texts] == [
            live.get_by_test_id(t).text_content() for t in texts
        ]
    finally:
        context.close()
    assert len(here) == len(there) > 150 and [k for k, _ in here] == [k for k, _ in there]
    for (key, mine), (_, theirs) in zip(here, there, strict=True):
        assert float(mine) == pytest.approx(float(theirs), rel=1e-4, abs=1e-6), key


def test_the_timeline_in_the_file_for_an_uploaded_and_a_drawn_digit(static, served, tmp_path):
    """The same checks as the served page's (test_browser.check_timeline), computed in the browser
    from the snapshots inside the file."""
    from tests.test_browser import check_timeline

    _, model = served
    upload_a_seven_to(static, tmp_path, label=7)
    check_timeline(static.page, model, static.settle, label=7)
    static.page.get_by_test_id("clear").click()
    static.draw(DIGITS["7"])
    check_timeline(static.page, model, static.settle, label=7)


def test_the_file_without_snapshots_says_why_there_is_no_timeline(browser, served, tmp_path):
    _, model = served
    html = tmp_path / "small.html"
    result = CliRunner().invoke(main, ["export", str(model), "--format", "html", "--no-snapshots", "-o", str(html)])
    assert result.exit_code == 0, result.output
    assert html.stat().st_size < 5 * 2**20
    page = StaticPage(browser, html)
    try:
        assert page.page.get_by_test_id("timeline").is_hidden()
        assert "exported without the run's snapshots" in page.page.locator("#timeline-summary").text_content()
        upload_a_seven_to(page, tmp_path, label=7)
        assert page.prediction()[0] == "7" and page.page.get_by_test_id("timeline").is_hidden()
    finally:
        page.close()
    assert page.errors == [] and page.refused == []


def test_the_file_is_one_page_that_loads_nothing(exported):
    """One HTML file with the model and its snapshots inside (under the limit for a page with a
    timeline), a policy that refuses every request, no URL of a server or a CDN."""
    from mnistsoftmax.export import TIMELINE_HTML_LIMIT

    text = exported.read_text(encoding="utf-8")
    assert 5 * 2**20 < exported.stat().st_size < TIMELINE_HTML_LIMIT
    assert 'http-equiv="Content-Security-Policy"' in text and "connect-src 'none'" in text
    assert (
        'id="mnistsoftmax-model"' in text
        and "/static/" not in text
        and "/api/" not in text.split("mnistsoftmax-modules")[0]
    )
    namespaces = ("http://www.w3.org/2000/svg", "http://www.w3.org/1998/Math/MathML")  # names, never fetched
    for namespace in namespaces:
        text = text.replace(namespace, "")
    assert "http://" not in text and "https://" not in text


def test_a_model_too_large_to_share_is_one_line(served, tmp_path, monkeypatch):
    from mnistsoftmax import export

    _, model = served
    monkeypatch.setattr(export, "HTML_LIMIT", 100_000)
    monkeypatch.setattr(export, "TIMELINE_HTML_LIMIT", 100_000)
    result = CliRunner().invoke(main, ["export", str(model), "--format", "html", "-o", str(tmp_path / "big.html")])
    assert result.exit_code == 1 and "above the 0.1 MB a page to share should" in result.output
    assert "(--no-snapshots)" in result.output
    assert "export a smaller model" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "big.html").exists()


def test_the_page_at_phone_width_does_not_scroll_sideways(browser, exported, tmp_path):
    page = StaticPage(browser, exported, width=390)
    try:
        upload_a_seven_to(page, tmp_path, label=7)
        assert page.page.evaluate("() => document.documentElement.scrollWidth") <= 390
    finally:
        page.close()


def test_a_bad_file_is_one_line_on_the_page(static, tmp_path):
    """What predict refuses, the file refuses in one line, as the served page does: not an image,
    a truncated one, a blank one; the page keeps working after each."""
    from PIL import Image

    notes, blank, truncated = tmp_path / "notes.png", tmp_path / "blank.png", tmp_path / "truncated.png"
    notes.write_text("not an image")
    Image.new("L", (120, 90), 255).save(blank)
    upload_a_seven_to(static, tmp_path, label=7)
    truncated.write_bytes((tmp_path / "seven.png").read_bytes()[:60])
    for bad, words in ((notes, "not an image"), (truncated, "damaged or truncated image"), (blank, "no ink found")):
        before = static.answers()
        static.page.get_by_test_id("upload").set_input_files(str(bad))
        static.page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        static.page.wait_for_selector("body[data-busy=false]")
        message = static.page.locator("#error").text_content()
        assert words in message and "\n" not in message and static.answers() == before, message
    static.upload(tmp_path / "seven.png")
    assert static.page.locator("#error").is_hidden() and static.prediction()[0] == "7"


def large_photo(path: Path, seed: int = 0) -> Path:
    """A 3000 x 2250 colour JPEG of a digit on shaded paper, as a phone takes it: shrunk to 2048 by
    a box filter before anything else (Pillow's thumbnail, reproduced in preprocess.js)."""
    from PIL import Image

    from tests.test_predict_real import large_ink

    rng = np.random.default_rng(seed)
    test = datasets.load("mnist", MNIST_DIR, splits=("test",)).test
    ink = np.zeros((2250, 3000))
    ink[500 : 500 + 28 * 50, 900 : 900 + 28 * 50] = np.asarray(large_ink(test.images[11], 50), dtype=np.float64) / 255
    light = np.linspace(250, 170, 3000)[None, :] * np.ones((2250, 1))
    gray = light * (1 - ink) + 40 * ink + rng.normal(0, 6, ink.shape)
    rgb = np.clip(np.stack([gray, gray * 0.97, gray * 0.92], axis=-1), 0, 255).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(path, quality=85)
    return path


def test_the_preprocessing_in_javascript_gives_predicts_digits(browser, served, tmp_path):
    """preprocess.js (readGray, mnistStages) on the very files predict reads: the same 28 x 28
    digits, pixel for pixel, on 22 user-style images and a 3000 x 2250 phone photo."""
    from mnistsoftmax import images

    url, _ = served
    files = [*user_images(tmp_path, 22), large_photo(tmp_path / "photo.jpg")]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url)
        digits = page.evaluate(
            """async (files) => {
                const { readGray, mnistStages } = await import("/static/preprocess.js");
                const out = [];
                for (const [name, base64] of files) {
                  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
                  out.push(Array.from(mnistStages(await readGray(new Blob([bytes]), name), name).digit));
                }
                return out;
            }""",
            [[p.name, base64.b64encode(p.read_bytes()).decode()] for p in files],
        )
    finally:
        context.close()
    for path, digit in zip(files, digits, strict=True):
        expected = images.preprocess(path).ravel()
        assert np.array_equal(np.array(digit, dtype=np.uint8), expected), (
            path.name,
            np.abs(np.array(digit) - expected).max(),
        )


def test_a_two_hidden_layer_net_equals_the_served_page(browser, served, tmp_path):
    """A 784-32-16-10 net trained here, served and exported: the same image and label give the
    same values in every view, the same units of the last hidden layer with the same pictures (its
    weights carried down through the first layer as this digit sets it), and the page says which
    layer they are. (Last in the module: it adds a checkpoint to the served folder, then removes it.)"""
    url, model = served
    deep = model.parent / "deep.npz"
    result = CliRunner().invoke(main, ["train", "--data-dir", str(MNIST_DIR), "--hidden", "32,16", "--epochs", "1",
                                       "--probe-every", "0", "--out", str(deep)])  # fmt: skip
    assert result.exit_code == 0, result.output
    static = StaticPage(browser, export_html(deep, tmp_path / "deep.html"))
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    read = "() => [...document.querySelectorAll('[data-value]')].map(e => [e.dataset.testid || e.id, e.dataset.value])"
    pictures = "() => [...document.querySelectorAll('#units canvas')].map(c => c.toDataURL())"
    try:
        upload_a_seven_to(static, tmp_path, label=3)
        live = context.new_page()
        live.goto(url)
        live.wait_for_selector("body[data-ready=true]")
        live.get_by_test_id("checkpoint").select_option("deep")
        upload_a_seven(live, tmp_path, label=3)
        here, there = static.page.evaluate(read), live.evaluate(read)
        assert static.page.evaluate(pictures) == live.evaluate(pictures) != []
        summary = [p.locator("#units-summary").text_content() for p in (static.page, live)]
    finally:
        context.close()
        static.close()
        for leftover in (deep, checkpoint.metrics_path(deep)):
            leftover.unlink(missing_ok=True)
    assert static.refused == [] and static.errors == [], (static.refused, static.errors)
    assert summary[0] == summary[1] and "of 16 units of hidden layer 2 (the last of 2) fire" in summary[0]
    assert len(here) == len(there) > 150 and [k for k, _ in here] == [k for k, _ in there]
    for (key, mine), (_, theirs) in zip(here, there, strict=True):
        assert float(mine) == pytest.approx(float(theirs), rel=1e-4, abs=1e-6), key


def test_the_lesson_runs_in_the_file_with_no_network(static):
    """The lesson in the exported page: a test digit picked from the keyboard, every one of its
    steps reached with "." and its sentence said with that digit's numbers; step 2's batch of test
    digits is drawn from the file alone (the page's fixture refuses any request)."""
    page = static.page
    page.get_by_test_id("lesson").click()
    before = static.answers()
    page.get_by_test_id("pick-digit").focus()
    page.select_option("#pick-digit", "7")
    static.settle(before)
    assert page.get_by_test_id("lesson-task").get_attribute("data-done") == "true"
    walk_the_lesson(page, page.keyboard)
    caption = page.get_by_test_id("batch-caption")
    assert "over the 100 test digits" in caption.text_content()
    assert float(caption.get_attribute("data-right-p")) > 0.9
