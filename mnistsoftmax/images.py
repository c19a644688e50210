"""A user's image -> a 28x28 input in MNIST's own form.

MNIST's digits were made like this: black-and-white scans, size-normalised so the digit fits a
20x20 box with its aspect ratio kept (anti-aliasing gives the grey levels), then placed in a
28x28 field so that the centre of mass of the ink lies at the centre. Light ink on a dark
background. A digit photographed or drawn by a user is brought into the same form:

    grayscale -> ink polarity from the border -> paper level removed -> crop to the ink
    -> longer side 20 px (anti-aliased) -> centre of mass at the centre of 28x28 -> uint8

The normalisation stored in the checkpoint is applied afterwards, by the model's caller.
Only numpy and Pillow are imported here: `predict` must start quickly.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistsoftmax.errors import MnistSoftmaxError

MAX_PIXELS = 50_000_000  # refuse larger images (decompression bombs); a 12 MP photo is 12,000,000
MAX_DECODED_BYTES = 256 * 1024 * 1024  # what decoding one image may take; a 12 MP colour photo takes 48 MB
LARGE_DECODE_BYTES = 64 * 1024 * 1024  # decodes above this take turns, one at a time per process (memory)
_LARGE_DECODE = threading.Lock()
# Bytes per pixel of Pillow's decoded image in each mode (colour modes are stored 4 bytes a pixel).
BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
WORKING_SIDE = 2048  # larger images are shrunk to this first: the digit ends up 20 px tall anyway
FIELD = 28
BOX = 20
INK_THRESHOLD = 0.25  # of the ink range: what counts as ink for the bounding box and blank test
MIN_CONTRAST = 0.08  # ink range (in 0-1 grey levels) below which the image is called blank
PREVIEW_SIDE = 140  # the largest side of the ink image an answer sends back to draw the crop on


class ImageError(MnistSoftmaxError):
    """An image could not be read or holds nothing to classify."""


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) an image file's header declares, read without decoding it; None when
    Pillow does not know the file."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:  # noqa: BLE001  (any failure: the full read reports it, in the worker thread)
        return None


def read_grayscale(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Read an image file (or its bytes) -> float64 grey levels in [0, 1], (H, W).

    EXIF orientation is applied; the first frame of an animation is used; a transparent
    background counts as paper (it is laid over the opposite of the ink's colour).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = name or str(source)
    if isinstance(source, bytes):
        if not source:
            raise ImageError(f"{name}: empty input, not an image")
        fp = io.BytesIO(source)
    else:
        path = Path(source)
        if path.is_dir():
            raise ImageError(f"{name}: is a folder, not an image")
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if path.stat().st_size == 0:
            raise ImageError(f"{name}: empty file, not an image")
        fp = path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pillow's "Corrupt EXIF data" and the like
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as im, _turn(im):
                pixels = im.width * im.height
                if pixels > MAX_PIXELS:
                    raise ImageError(
                        f"{name}: {im.width}x{im.height} = {pixels:,} pixels is above the limit of "
                        f"{MAX_PIXELS:,} (refused as a possible decompression bomb)"
                    )
                decoded = pixels * BYTES_PER_PIXEL.get(im.mode, 4)
                if decoded > MAX_DECODED_BYTES and im.format != "JPEG":  # JPEGs are decoded at a reduced scale
                    raise ImageError(
                        f"{name}: {im.width}x{im.height} in mode {im.mode} would take {decoded / 2**20:,.0f} MB "
                        f"to decode, above the limit of {MAX_DECODED_BYTES / 2**20:,.0f} MB"
                    )
                im.seek(0)
                if im.format == "JPEG":
                    im.draft(im.mode, (WORKING_SIDE, WORKING_SIDE))  # decode at a reduced scale: fast, small
                im = ImageOps.exif_transpose(im)
                return _to_gray(im, name)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image Pillow can read (PNG, JPEG, BMP, GIF, TIFF, WebP, ...)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own, larger limit
        raise ImageError(
            f"{name}: the image is above the limit of {MAX_PIXELS:,} pixels (refused as a possible decompression bomb)"
        ) from None
    except PermissionError as exc:
        raise ImageError(f"{name}: cannot read ({exc.strerror})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or damaged data
        raise ImageError(f"{name}: damaged or truncated image ({exc})") from None


@contextlib.contextmanager
def _turn(im):
    """A large decode waits for the one going on (a server decodes in several threads)."""
    if im.width * im.height * BYTES_PER_PIXEL.get(im.mode, 4) <= LARGE_DECODE_BYTES or im.format == "JPEG":
        yield
        return
    with _LARGE_DECODE:
        yield


def _to_gray(im, name: str = "the image") -> np.ndarray:
    """A Pillow image in any mode -> grey levels in [0, 1] (H, W), transparency as paper."""
    from PIL import Image

    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        a = np.asarray(im)  # its own dtype: a float64 copy of a large 16-bit scan would take gigabytes
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ImageError(f"{name}: it holds pixel values that are not finite (NaN or infinity)")
        a = _shrunk(a)
        if im.mode.startswith("I;16"):
            return a / 65535.0
        lo, hi = float(a.min()), float(a.max())
        return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)
    im = im.convert("RGBA" if has_alpha else "L")
    # Shrink a large photo while it is still 8-bit: its float copies would take gigabytes.
    im.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
    if not has_alpha:
        return np.asarray(im, dtype=np.float64) / 255.0
    rgba = np.asarray(im, dtype=np.float64) / 255.0
    gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma, as Pillow's "L"
    alpha = rgba[..., 3]
    opaque = alpha > 0.5
    # Paper is the opposite of the ink: dark strokes on transparency are laid on white, light on black.
    paper = 1.0 if not opaque.any() or gray[opaque].mean() < 0.5 else 0.0
    return alpha * gray + (1 - alpha) * paper


def _shrunk(a: np.ndarray) -> np.ndarray:
    """(H, W) of any dtype -> float64 with the longer side at most WORKING_SIDE, by the mean of
    f x f blocks (the edge repeated to fill the last ones), as the 8-bit path's BOX thumbnail."""
    f = -(-max(a.shape) // WORKING_SIDE)
    if f <= 1:
        return a.astype(np.float64)
    h, w = a.shape
    a = np.pad(a, ((0, -h % f), (0, -w % f)), mode="edge")
    return a.reshape(a.shape[0] // f, f, a.shape[1] // f, f).mean(axis=(1, 3), dtype=np.float64)


@dataclass(frozen=True)
class Stages:
    """Each step of bringing an image into MNIST's form, as `predict` takes them.

    ink     (H, W) float64 in [0, 1]: light ink on black, the paper's level removed
    crop    (top, left, bottom, right) of the ink's bounding box in `ink`, bottom/right exclusive
    box     (h, w) float64 in [0, 1], the longer side 20 px: the crop scaled, anti-aliased
    digit   (28, 28) uint8: the box placed with its centre of mass at pixel (14, 14)
    """

    ink: np.ndarray
    crop: tuple[int, int, int, int]
    box: np.ndarray
    digit: np.ndarray


def mnist_stages(gray: np.ndarray, name: str = "image") -> Stages:
    """Grey levels (H, W) in [0, 1] -> every stage of the way to a 28x28 uint8 digit in MNIST's form."""
    from PIL import Image

    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    paper = float(np.median(border))
    if paper > 0.5:  # dark ink on light paper: invert to MNIST's light ink on dark
        gray, paper = 1.0 - gray, 1.0 - paper
    ink = _without_paper(gray - paper)  # the paper's own grey level becomes 0; a photo's shading and lines go
    top = float(ink.max())
    if top < MIN_CONTRAST:
        raise ImageError(f"{name}: no ink found: the image is blank (contrast {top:.3f} of 1)")
    ink = np.clip(ink / top, 0.0, 1.0)
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    crop = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    cropped = ink[crop[0] : crop[2], crop[1] : crop[3]]

    h, w = cropped.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # Lanczos over a float image: anti-aliased down-scaling, as MNIST's normalisation did.
    small = np.asarray(Image.fromarray(cropped.astype(np.float32), mode="F").resize(size, Image.Resampling.LANCZOS))
    small = np.clip(small, 0.0, 1.0)

    # Centre of mass of the ink to pixel (14, 14), by a whole-pixel shift. MNIST's own digits have
    # their centre of mass there (mean over the test set: row 14.00, column 14.01), not at 13.5.
    mass = small.sum()
    if not mass > 0:  # a mark so faint that nothing is left of it at 20 px
        raise ImageError(f"{name}: no ink found: the marks vanish at MNIST's size")
    cy = (small.sum(axis=1) @ np.arange(small.shape[0])) / mass
    cx = (small.sum(axis=0) @ np.arange(small.shape[1])) / mass
    top_left_y = int(round(FIELD / 2 - cy))
    top_left_x = int(round(FIELD / 2 - cx))
    field = np.zeros((FIELD, FIELD))
    _paste(field, small, top_left_y, top_left_x)
    return Stages(ink, crop, small.astype(np.float64), np.round(field * 255).astype(np.uint8))


CLEAN_BORDER = 0.02  # a border whose middle 80 % of grey levels spans less than this is clean paper
PAPER_QUANTILE = 25  # of each row and column: the paper, while the ink covers less than 75 % of it


def _without_paper(ink: np.ndarray) -> np.ndarray:
    """Ink (H, W), light on dark, with what the paper of a photo adds taken out: its slow shading,
    its printed lines and its noise. An image whose border is flat paper (a drawing, a scan) comes
    back unchanged, so what `predict` gives for it stays as it was.

    The paper is most of every region, row and column, so a low quantile of each is the paper:
    subtracting a coarse grid's (_paper_surface) removes a shadow or a lamp's fall-off; the rows'
    and then the columns' remove what is left of a ramp of light and the ruled and squared lines;
    then the noise, averaged over 3 x 3 pixels, is cut away at 3 times its robust sigma
    (1.4826 MAD). Measured by scripts/users_digits.py (photo-like renders of MNIST test digits).
    """
    border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
    low, high = np.percentile(border, (10, 90))
    if high - low < CLEAN_BORDER:
        return ink
    flat = ink - _paper_surface(ink)  # a shadow's or a lamp's broad, two-dimensional part
    flat -= np.percentile(flat, PAPER_QUANTILE, axis=1, keepdims=True)  # (H, W) - (H, 1): lines, ramps
    flat -= np.percentile(flat, PAPER_QUANTILE, axis=0, keepdims=True)  # - (1, W)
    # A 3 x 3 mean first: a photo's noise is per pixel, a pen's stroke is many pixels wide.
    padded = np.pad(flat, 1, mode="edge")
    flat = sum(padded[i : i + flat.shape[0], j : j + flat.shape[1]] for i in range(3) for j in range(3)) / 9
    sigma = 1.4826 * float(np.median(np.abs(flat - np.median(flat))))
    return np.maximum(flat - 3 * sigma, 0.0)


PAPER_BLOCKS = 8  # the paper's surface is estimated on a grid of about this many blocks a side


def _paper_surface(ink: np.ndarray) -> np.ndarray:
    """The paper's level under the ink, (H, W): the low quantile of each block of a coarse grid
    (the ink covers less of a block than the paper does), interpolated bilinearly between the
    blocks' centres."""
    from PIL import Image

    h, w = ink.shape
    b = max(1, -(-max(h, w) // PAPER_BLOCKS))
    padded = np.pad(ink, ((0, -h % b), (0, -w % b)), mode="edge")
    ny, nx = padded.shape[0] // b, padded.shape[1] // b
    blocks = padded.reshape(ny, b, nx, b).transpose(0, 2, 1, 3).reshape(ny, nx, b * b)
    levels = np.percentile(blocks, PAPER_QUANTILE, axis=-1)  # (ny, nx)
    # A block inside a thick stroke is mostly ink: the smallest of each block's 3 x 3 neighbourhood
    # is the paper nearby (a shadow changes slowly; the ink never lowers the paper).
    around = np.pad(levels, 1, mode="edge")
    levels = np.min([around[i : i + ny, j : j + nx] for i in range(3) for j in range(3)], axis=0).astype(np.float32)
    surface = Image.fromarray(levels, mode="F").resize((nx * b, ny * b), Image.Resampling.BILINEAR)
    return np.asarray(surface, dtype=np.float64)[:h, :w]


def to_mnist(gray: np.ndarray, name: str = "image") -> np.ndarray:
    """Grey levels (H, W) in [0, 1] -> a 28x28 uint8 digit in MNIST's form (light ink on black)."""
    return mnist_stages(gray, name).digit


def _paste(field: np.ndarray, patch: np.ndarray, y: int, x: int) -> None:
    """Write patch into field with its top-left corner at (y, x), clipping at the edges."""
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + patch.shape[0], field.shape[0]), min(x + patch.shape[1], field.shape[1])
    field[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]


def preprocess(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """An image file (or its bytes) -> 28x28 uint8 in MNIST's form."""
    name = name or str(source)
    return to_mnist(read_grayscale(source, name), name)


MAX_INK_SIDE = 1024  # the largest array of ink values a caller may hand in (the page's pad is 280)


def gray_from_ink(pixels, name: str = "pixels") -> np.ndarray:
    """Rows of ink values 0-255 (0 = paper), as nested lists or an array, (H, W) -> grey levels in
    [0, 1] as read_grayscale gives them (light ink on dark paper, MNIST's polarity)."""
    try:
        a = np.asarray(pixels, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer of 400 digits
        raise ImageError(f"{name}: expected rows of numbers 0-255 of equal length") from None
    if a.ndim != 2 or a.size == 0:
        raise ImageError(f"{name}: expected a non-empty 2-D array of rows, got shape {a.shape}")
    if max(a.shape) > MAX_INK_SIDE:
        raise ImageError(f"{name}: {a.shape[1]}x{a.shape[0]} is larger than {MAX_INK_SIDE}x{MAX_INK_SIDE}")
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 255:
        raise ImageError(f"{name}: ink values must lie between 0 and 255")
    return a / 255.0
