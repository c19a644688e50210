"""predict: image formats and modes, preprocessing, output forms, and every kind of bad input."""

import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from mnistsoftmax import checkpoint
from mnistsoftmax.cli import main
from mnistsoftmax.images import MAX_PIXELS, ImageError, preprocess, read_grayscale, to_mnist
from mnistsoftmax.models import build_model


def seven(size=(240, 300), ink=0, paper=255, mode="L") -> Image.Image:
    """A thick, dark '7' drawn on light paper, off-centre."""
    im = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(im)
    draw.line([(60, 60), (170, 60), (100, 250)], fill=ink, width=18)
    return im


def save(im: Image.Image, path, fmt=None, **kw):
    im.save(path, format=fmt, **kw)
    return path


@pytest.fixture
def ckpt(tmp_path):
    """A small linear checkpoint (the numbers it predicts do not matter here)."""
    path = tmp_path / "model.npz"
    model = build_model("linear", np.random.default_rng(0))
    meta = {"normalization": {"mean": 0.13, "std": 0.31}, "class_names": [str(i) for i in range(10)]}
    checkpoint.save(path, model, meta)
    return path


def run(*args, input=None):
    return CliRunner().invoke(main, ["predict", *map(str, args)], input=input)


# --- preprocessing -------------------------------------------------------------------------------


def test_preprocessing_brings_a_drawing_into_mnist_form(tmp_path):
    """Dark-on-light becomes light-on-dark, the ink fits 20x20 and its centre of mass is at (14, 14)."""
    out = preprocess(save(seven(), tmp_path / "7.png"))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out.max() == 255 and out[0].max() == 0 and out[:, 0].max() == 0  # light ink, dark border
    rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
    assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) <= 21  # 20 px, +1 for the Lanczos fringe
    mass = out.astype(float) / out.sum()
    assert abs(mass.sum(axis=1) @ np.arange(28) - 14) <= 0.5 and abs(mass.sum(axis=0) @ np.arange(28) - 14) <= 0.5


def test_polarity_is_taken_from_the_image(tmp_path):
    """Light ink on dark paper and dark ink on light paper give the same result."""
    dark_on_light = preprocess(save(seven(), tmp_path / "a.png"))
    light_on_dark = preprocess(save(seven(ink=255, paper=0), tmp_path / "b.png"))
    np.testing.assert_array_equal(dark_on_light, light_on_dark)


def reference(tmp_path):
    return preprocess(save(seven(), tmp_path / "ref.png")).astype(int)


@pytest.mark.parametrize(
    "make, name, kw",
    [
        (lambda: seven().convert("1"), "x.png", {}),
        (lambda: seven().convert("LA"), "x.png", {}),
        (lambda: seven().convert("P"), "x.gif", {}),
        (lambda: seven().convert("RGB"), "x.jpg", {"quality": 90}),
        (lambda: seven().convert("RGB"), "x.bmp", {}),
        (lambda: seven().convert("RGB"), "x.webp", {"lossless": True}),
        (lambda: seven().convert("CMYK"), "x.tif", {}),
        (lambda: Image.fromarray(np.asarray(seven(), np.uint16) * 257), "x.png", {}),  # I;16
    ],
    ids=["mode-1", "LA", "P-gif", "RGB-jpeg", "bmp", "webp", "CMYK-tiff", "I;16"],
)
def test_formats_and_modes_agree(tmp_path, make, name, kw):
    """Every supported format and mode of the same drawing preprocesses to (nearly) the same digit."""
    out = preprocess(save(make(), tmp_path / name, **kw)).astype(int)
    assert np.abs(out - reference(tmp_path)).mean() < 4


def test_transparent_background_is_paper(tmp_path):
    """Black strokes on a transparent background read like black on white."""
    alpha = Image.eval(seven(), lambda v: 255 - v)  # opaque where the ink is
    rgba = Image.merge("RGBA", [Image.new("L", alpha.size, 0)] * 3 + [alpha])
    out = preprocess(save(rgba, tmp_path / "t.png")).astype(int)
    assert np.abs(out - reference(tmp_path)).mean() < 4


def test_gif_first_frame(tmp_path):
    """An animated GIF is read from its first frame."""
    blank = Image.new("L", (240, 300), 255)
    path = tmp_path / "anim.gif"
    seven().save(path, save_all=True, append_images=[blank, blank])
    assert np.abs(preprocess(path).astype(int) - reference(tmp_path)).mean() < 4


def test_exif_orientation_is_honoured(tmp_path):
    """A JPEG stored sideways with an EXIF Orientation tag reads upright."""
    upright = preprocess(save(seven().convert("RGB"), tmp_path / "up.jpg", quality=95)).astype(int)
    sideways = seven().convert("RGB").transpose(Image.Transpose.ROTATE_90)  # stored turned left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    out = preprocess(save(sideways, tmp_path / "side.jpg", quality=95, exif=exif)).astype(int)
    assert np.abs(out - upright).mean() < 4
    assert np.abs(preprocess(save(sideways, tmp_path / "plain.jpg", quality=95)).astype(int) - upright).mean() > 10


def test_to_mnist_on_a_tiny_mark():
    """A single bright pixel still makes a valid digit field (no division by zero, no empty crop)."""
    gray = np.zeros((50, 50))
    gray[10, 40] = 1.0
    out = to_mnist(gray)
    assert out.shape == (28, 28) and out.max() > 0


# --- bad input ----------------------------------------------------------------------------------


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def bomb_png(path, width=20000, height=20000):
    """A tiny PNG file whose header claims width x height pixels."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
                     + chunk(b"IEND", b""))  # fmt: skip
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.png", "no such file"),
        (lambda p: p, "is a folder, not an image"),
        (lambda p: write(p / "empty.png", b""), "empty file"),
        (lambda p: write(p / "notes.png", b"hello"), "not an image Pillow can read"),
        (lambda p: write(p / "cut.png", save(seven(), p / "full.png").read_bytes()[:400]), "damaged or truncated"),
        (lambda p: bomb_png(p / "bomb.png"), f"above the limit of {MAX_PIXELS:,}"),
        (lambda p: bomb_png(p / "big.png", 10000, 6000), "10000x6000 = 60,000,000 pixels is above the limit"),
        (lambda p: save(Image.new("L", (100, 80), 255), p / "blank.png"), "no ink found"),
        (lambda p: save(Image.new("RGBA", (100, 80), (0, 0, 0, 0)), p / "clear.png"), "no ink found"),
    ],
    ids=["missing", "folder", "empty", "text", "truncated", "bomb", "big", "blank", "transparent"],
)
def test_bad_images(tmp_path, ckpt, make, message):
    """Each bad input: one line on stderr naming the file and the reason, exit 1, others still predicted."""
    bad = make(tmp_path)
    good = save(seven(), tmp_path / "good.png")
    with pytest.raises(ImageError, match=message):
        preprocess(bad)
    result = run(bad, good, "--checkpoint", ckpt)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and str(bad) in errors[0] and message in errors[0]
    assert result.stdout.startswith(f"{good}: ")  # the good image was still predicted
    assert "Traceback" not in result.output


def test_missing_checkpoint_says_how_to_make_one(tmp_path):
    """No checkpoint given and none trained: exit 1 and how to make one."""
    result = run(save(seven(), tmp_path / "7.png"))  # conftest's runs folder holds nothing
    assert result.exit_code == 1 and "mnistsoftmax train" in result.stderr
    result = run(save(seven(), tmp_path / "7.png"), "--checkpoint", tmp_path / "none.npz")
    assert result.exit_code == 1 and "no such file" in result.stderr


def test_unreadable_checkpoint(tmp_path):
    """A checkpoint that is not one: exit 1, one line."""
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    result = run(save(seven(), tmp_path / "7.png"), "--checkpoint", bad)
    assert result.exit_code == 1 and "not a mnistsoftmax checkpoint" in result.stderr


# --- output -------------------------------------------------------------------------------------


def test_json_output_and_top_k(tmp_path, ckpt):
    """--json: one object per input, with digit, probability and top-k, or the error."""
    good = save(seven(), tmp_path / "7.png")
    result = run(good, tmp_path / "missing.png", "--checkpoint", ckpt, "--json", "--top-k", 4)
    assert result.exit_code == 1
    items = json.loads(result.stdout)
    assert items[0]["file"] == str(good) and len(items[0]["top_k"]) == 4
    probabilities = [p for _, p in items[0]["top_k"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert items[0]["top_k"][0] == [items[0]["digit"], items[0]["probability"]]
    assert items[1] == {"file": str(tmp_path / "missing.png"), "error": f"{tmp_path / 'missing.png'}: no such file"}


def test_probabilities_are_the_softmax_of_the_logits(tmp_path, ckpt):
    """The printed probabilities are softmax(model(preprocessed image)), summing to 1 over all classes."""
    from mnistsoftmax.functional import softmax
    from mnistsoftmax.inference import Normalization, logits

    good = save(seven(), tmp_path / "7.png")
    items = json.loads(run(good, "--checkpoint", ckpt, "--json", "--top-k", 10).stdout)
    model, meta = checkpoint.load(ckpt)
    expected = softmax(logits(model, preprocess(good)[None], Normalization(**meta["normalization"])).astype(float))[0]
    got = np.zeros(10)
    for digit, p in items[0]["top_k"]:
        got[digit] = p
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.sum() == pytest.approx(1.0)


def test_stdin_and_save_preprocessed(tmp_path, ckpt):
    """- reads the image from standard input; --save-preprocessed writes what the model saw."""
    data = save(seven(), tmp_path / "7.png").read_bytes()
    out = tmp_path / "seen"
    result = run("-", "--checkpoint", ckpt, "--save-preprocessed", out, input=data)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<stdin>: ")
    saved = np.asarray(Image.open(out / "stdin.28x28.png"))
    np.testing.assert_array_equal(saved, preprocess(data))


def test_default_checkpoint_is_the_last_trained(tmp_path, tiny_data):
    """Without --checkpoint, predict uses what train saved in its default place."""
    assert CliRunner().invoke(main, ["train", "--dataset", "custom", "--data-dir", str(tiny_data), "--epochs", "1",
                                     "--model", "linear"]).exit_code == 0  # fmt: skip
    result = run(save(seven(), tmp_path / "7.png"))
    assert result.exit_code == 0, result.output


def test_reading_bytes_directly():
    """read_grayscale takes bytes too (what stdin gives)."""
    buf = io.BytesIO()
    seven().save(buf, format="PNG")
    gray = read_grayscale(buf.getvalue(), "<bytes>")
    assert gray.shape == (300, 240) and gray.min() == 0.0 and gray.max() == 1.0


def test_predict_keeps_heavy_modules_off_its_import_path(tmp_path, ckpt):
    """predict never imports pooch, tqdm, requests or matplotlib (they cost start-up time)."""
    image = save(seven(), tmp_path / "7.png")
    code = (
        "import sys\n"
        "from mnistsoftmax.cli import main\n"
        f"try:\n    main(['predict', {str(image)!r}, '--checkpoint', {str(ckpt)!r}])\n"
        "except SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "print(sorted(m for m in ('pooch', 'tqdm', 'requests', 'matplotlib') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


def test_large_photo_is_shrunk_first_and_reads_the_same(tmp_path):
    """A 6000x4500 image (27 MP) preprocesses like the same drawing at a tenth of the size."""
    small = seven((600, 450))
    big = small.resize((6000, 4500), Image.Resampling.NEAREST)
    a = preprocess(save(small, tmp_path / "small.png")).astype(int)
    b = preprocess(save(big, tmp_path / "big.jpg", quality=90)).astype(int)
    assert np.abs(a - b).mean() < 4
