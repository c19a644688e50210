"""In a notebook: a Classifier's rich display, mnistsoftmax.explore, and the tutorial notebook
executed with nbclient, then opened as nbconvert's HTML in Chromium, where a 7 drawn on the inline
pad reads 7 with no request made by the explorer."""

import base64
import html
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mnistsoftmax
from mnistsoftmax import MnistSoftmaxError, checkpoint
from mnistsoftmax.notebook import Explorer, diverging, png
from tests.test_browser import DIGITS, browser, require, require_mnist, walk_the_lesson  # noqa: F401 - fixtures
from tests.test_predict_real import MNIST_DIR

ROOT = Path(__file__).parents[1]
TUTORIAL = ROOT / "docs" / "how-to" / "notebook.ipynb"


@pytest.fixture(scope="module")
def small(tmp_path_factory, tiny_data_module):
    """A small mlp trained on the tiny data set, with snapshots, and the data."""
    out = tmp_path_factory.mktemp("notebook") / "small.npz"
    clf, _ = mnistsoftmax.train(dataset="custom", data_dir=tiny_data_module, hidden=16, epochs=2, snapshots=5,
                                out=out)  # fmt: skip
    return clf, mnistsoftmax.datasets.load("custom", tiny_data_module)


def page_document(explorer: Explorer) -> dict:
    """The JSON the explorer's page carries (its model, snapshots, opening digit)."""
    srcdoc = re.search(r'srcdoc="([^"]*)"', explorer._repr_html_()).group(1)
    page = html.unescape(srcdoc)
    assert page == explorer.html
    found = re.search(r'<script type="application/json" id="mnistsoftmax-model">(.*?)</script>', page, re.S)
    return json.loads(found.group(1))


def test_png_is_a_png_of_those_pixels():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png(rgb))).convert("RGB")), rgb)


def test_diverging_is_white_at_zero_red_positive_blue_negative():
    colours = diverging(np.array([[0.0, 2.0, -2.0, 1.0]]))
    assert colours[0].tolist() == [[255, 255, 255], [255, 0, 0], [0, 0, 255], [255, 128, 128]]


def test_the_rich_display_says_what_the_checkpoint_holds(small):
    clf, _ = small
    shown = clf._repr_html_()
    accuracy = clf.meta["metrics"]["test_accuracy"]
    assert f"<td style='text-align:left'>{html.escape(clf.model.describe())}</td>" in shown
    assert f"{100 * accuracy:.2f} %" in shown and "cross-entropy" in shown and "custom" in shown
    assert str(clf.path) in html.unescape(shown) and "2 epochs" in shown
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", shown)
    assert len(images) == 10  # the first 10 of 16 hidden units
    W = clf.model.params["W1"][:, 3].reshape(28, 28)
    picture = np.asarray(Image.open(io.BytesIO(base64.b64decode(images[3]))).convert("RGB"))
    assert np.array_equal(picture, diverging(W.astype(np.float64)))
    assert repr(clf) == "Classifier(mlp, inputs=784, hidden=[16], classes=10, dataset='custom')"


def test_the_rich_display_escapes_class_names(small):
    clf, _ = small
    hostile = mnistsoftmax.Classifier(clf.model, {**clf.meta, "dataset": "<script>x</script>"})
    shown = hostile._repr_html_()
    assert "<script>" not in shown and "&lt;script&gt;" in shown


def test_explore_carries_the_digit_the_label_and_the_snapshots(small):
    clf, data = small
    digit, label = data.test.images[3], int(data.test.labels[3])
    explorer = mnistsoftmax.explore(clf, image=digit.reshape(28, 28), label=label)
    document = page_document(explorer)
    assert np.array_equal(np.frombuffer(base64.b64decode(document["initial"]["pixels"]), np.uint8), digit.reshape(-1))
    assert document["initial"]["label"] == label
    assert document["snapshots"]["steps"] == checkpoint.snapshot_steps(clf.path)
    small_page = mnistsoftmax.explore(clf, snapshots=False)
    assert page_document(small_page)["snapshots"] is None and page_document(small_page)["initial"] is None
    assert len(small_page.html) < len(explorer.html)
    assert re.fullmatch(r"Explorer\(mnistsoftmax explorer: .*, a \d+\.\d MB page: display it in a notebook\)",
                        repr(explorer))  # fmt: skip


def test_explore_takes_a_file_and_a_pil_image_as_the_page_takes_an_upload(small, tmp_path):
    clf, data = small
    picture = Image.fromarray(255 - data.test.images[0].reshape(28, 28)).resize((140, 140))
    picture.save(tmp_path / "digit.png")
    from_file = page_document(mnistsoftmax.explore(clf, image=tmp_path / "digit.png"))["initial"]
    assert from_file["type"] == "image/png"
    assert base64.b64decode(from_file["file"]) == (tmp_path / "digit.png").read_bytes()
    from_pil = page_document(mnistsoftmax.explore(clf, image=picture, label=2))["initial"]
    assert from_pil["type"] == "image/png" and from_pil["label"] == 2
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(base64.b64decode(from_pil["file"])))), np.asarray(picture))
    # A format browsers may not decode goes as the digit Python makes of it.
    picture.save(tmp_path / "digit.tiff")
    from_tiff = page_document(mnistsoftmax.explore(clf, image=tmp_path / "digit.tiff"))["initial"]
    assert np.array_equal(np.frombuffer(base64.b64decode(from_tiff["pixels"]), np.uint8),
                          clf._pixels(tmp_path / "digit.tiff")[0])  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label": 10}, "label must be a class number from 0 to 9, not 10"),
        ({"label": True}, "label must be a class number from 0 to 9, not True"),
        ({"image": np.zeros((3, 28, 28), np.uint8)}, "image must be a path, a PIL image or a 28x28 array"),
        ({"image": np.zeros((28, 28))}, "images must be uint8 pixels 0-255"),
        ({"image": "no-such-file.png"}, "no-such-file.png"),
        ({"height": 5}, "height must be a whole number of pixels from 100 to 10000"),
    ],
)
def test_explore_refuses_bad_arguments_in_one_line(small, kwargs, message):
    clf, _ = small
    with pytest.raises(MnistSoftmaxError, match=re.escape(message)) as caught:
        mnistsoftmax.explore(clf, **kwargs)
    assert "\n" not in str(caught.value)


def test_a_classifier_trained_without_out_keeps_its_timeline_for_explore(tiny_data_module):
    clf, _ = mnistsoftmax.train(dataset="custom", data_dir=tiny_data_module, hidden=8, epochs=1, snapshots=3)
    assert clf.path is None
    assert len(page_document(mnistsoftmax.explore(clf))["snapshots"]["steps"]) == 3


def test_predict_and_train_import_nothing_of_the_notebook(tmp_path, small):
    clf, _ = small
    probe = ("import sys, runpy; sys.argv = ['mnistsoftmax', '--help'];\n"
             "from mnistsoftmax import cli, predict, runs, training, api\n"
             "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('nbclient', 'nbconvert', 'nbformat', "
             "'IPython', 'ipykernel') or m == 'mnistsoftmax.notebook')\n"
             "print(bad)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


def test_the_tutorial_is_stored_without_outputs():
    notebook = json.loads(TUTORIAL.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The tutorial executed by nbclient in a fresh folder, on the MNIST of data/mnist; and its HTML
    as nbconvert writes it."""
    require_mnist()
    try:
        import nbclient
        import nbconvert
        import nbformat
    except ImportError:
        require(False, "the notebook extra is not installed (pip install -e '.[notebook]')")
    folder = tmp_path_factory.mktemp("tutorial")
    notebook = nbformat.read(TUTORIAL, as_version=4)
    env = {"MNISTSOFTMAX_DATA_DIR": str(MNIST_DIR.parent), "MNISTSOFTMAX_RUNS_DIR": str(folder)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits them
    try:
        nbclient.NotebookClient(notebook, timeout=180, kernel_name="python3",
                                resources={"metadata": {"path": str(folder)}}).execute()  # fmt: skip
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    body, _ = nbconvert.HTMLExporter().from_notebook_node(notebook)
    page = folder / "notebook.html"
    page.write_text(body, encoding="utf-8")
    return notebook, page, folder


def test_the_executed_tutorial_shows_the_classifier_and_two_explorers(executed):
    notebook, _, folder = executed
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    accuracy = checkpoint.read_meta(folder / "fast.npz")["metrics"]["test_accuracy"]
    assert f"test accuracy {100 * accuracy:.2f} %" in printed and "before training: loss 2." in printed
    shown = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert len(shown) == 3
    assert "Classifier" in shown[0] and "fast.npz" in shown[0] and shown[0].count("data:image/png") == 10
    explorers = [Explorer(html.unescape(re.search(r'srcdoc="([^"]*)"', s).group(1)).encode(), "", 800)
                 for s in shown[1:]]  # fmt: skip
    first, blank = (page_document(e) for e in explorers)
    test = mnistsoftmax.datasets.load("mnist", MNIST_DIR, splits=("test",)).test
    pixels = np.frombuffer(base64.b64decode(first["initial"]["pixels"]), np.uint8)
    assert np.array_equal(pixels, test.images[0].reshape(-1))
    assert first["initial"]["label"] == int(test.labels[0]) and len(first["snapshots"]["steps"]) == 12
    assert blank["initial"] is None and blank["snapshots"] is None


def test_the_tutorials_html_in_chromium_reads_a_drawn_seven(executed, browser):  # noqa: F811
    _, page_file, _ = executed
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    explorer_requests, errors = [], []
    page = context.new_page()

    def route(r):
        # nbconvert's own template asks for MathJax and require.js from a CDN: refused here, and
        # not the explorer's. Anything an explorer's frame asks beyond its own blobs is a failure.
        if r.request.frame != page.main_frame and not r.request.url.startswith(("blob:", "data:", "about:")):
            explorer_requests.append(r.request.url)
        if r.request.url.startswith(("file:", "blob:", "data:", "about:")):
            r.continue_()
        else:
            r.abort()

    context.route("**/*", route)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_file.resolve().as_uri())
    frames = page.locator("iframe.mnistsoftmax-explorer")
    assert frames.count() == 2
    first, blank = (page.frame_locator("iframe.mnistsoftmax-explorer").nth(i) for i in (0, 1))
    first.locator("body[data-ready=true][data-busy=false]").wait_for(timeout=60_000)
    blank.locator("body[data-ready=true]").wait_for(timeout=60_000)
    # The first opens with the test set's first digit (a 7) and its label; the second is blank.
    test = mnistsoftmax.datasets.load("mnist", MNIST_DIR, splits=("test",)).test
    assert first.get_by_test_id("prediction").text_content() == str(test.labels[0])
    assert first.get_by_test_id("label").input_value() == str(test.labels[0])
    assert blank.get_by_test_id("prediction").text_content() == "–"
    pad = blank.get_by_test_id("pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    for stroke in DIGITS["7"]:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
        page.mouse.up()
    blank.locator("body[data-busy=false]:not([data-answers='0'])").wait_for(timeout=30_000)
    assert blank.get_by_test_id("prediction").text_content() == "7"
    # The first explorer did not hear the strokes: no shared ids, no shared state.
    assert first.locator("body").get_attribute("data-answers") == "1"
    # axe-core (vendored for the tests) in an explorer's own document: no violation of any impact
    # (nbconvert's page around it is Jupyter's, not ours).
    explorer = next(f for f in page.frames if f != page.main_frame and f.locator("body[data-ready=true]").count())
    explorer.add_script_tag(content=(Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text())
    found = explorer.evaluate("async () => (await axe.run(document)).violations.map((v) => [v.id, v.impact])")
    assert found == [], found
    # The lesson in the first explorer (opened with a 7 and its label), from the keyboard: each of
    # its steps reached with ".", its sentence said with the digit's numbers; the frame's address
    # (about:srcdoc) takes no #lesson-N, and the lesson goes on without.
    first.get_by_test_id("lesson").click()
    walk_the_lesson(first, page.keyboard)
    assert "over the 100 test digits" in first.get_by_test_id("batch-caption").text_content()
    context.close()
    assert explorer_requests == [] and errors == [], (explorer_requests, errors)
