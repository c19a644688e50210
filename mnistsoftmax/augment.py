"""Distortions of training images, drawn afresh for every minibatch: random affine maps (rotation,
scaling, shear, translation), elastic distortions after Simard, Steinkraus and Platt (2003), and
optional horizontal flips; sampled bilinearly, vectorised over the batch.

Each output pixel p (row, column) takes the input's value at

    q = c + A (p - c) - t + alpha * F(p)

with c the image centre (13.5, 13.5); A the inverse of the content's rotation by theta
(counter-clockwise as displayed), shear and scaling by s; t the content's shift; F Simard's
elastic field: independent uniform(-1, 1) displacements per pixel and axis, smoothed by a
Gaussian of width sigma (drawn in the Gaussian's basis: see elastic_factor). Points outside the
image read 0 (paper).

Shapes: N images of S x S pixels (S = 28), P = S * S pixels per image.

Randomness, in this order, from the generator handed in (training gives each batch its own, see
training.batch_generator): uniform(-1, 1) of shape (N, 5) for rotation, scale, shear and the two
shifts; with flips, uniform (N,) < 0.5; with elastic distortions, float32 standard normals of
shape (2, N, K, K): the fields' coefficients, by axis (rows, columns), image, then Z's row and
column (see elastic_factor).
A range of 0 leaves its part out, and all ranges 0 give the image back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from mnistsoftmax.errors import MnistSoftmaxError
from mnistsoftmax.options import DEFAULTS, OptionError, check

SIDE = 28
PAD = 2  # zero rows and columns around each image: samples up to 2 px outside read paper
TRUNCATE = 4.0  # the Gaussian kernel is cut at 4 sigma, as scipy.ndimage's is
CHUNK = 4096  # images distorted at a time (see Distorter)


class DistortionError(MnistSoftmaxError):
    """Distortion settings out of range."""


@dataclass(frozen=True)
class Distortion:
    """The ranges of the random distortions: each drawn uniformly from [-range, +range]."""

    rotate: float = DEFAULTS["rotate"]  # degrees
    scale: float = DEFAULTS["scale"]  # fraction: 0.1 draws a zoom between 0.9 and 1.1
    shear: float = DEFAULTS["shear"]  # degrees
    shift: float = DEFAULTS["shift"]  # pixels, along each axis
    elastic_alpha: float = DEFAULTS["elastic_alpha"]  # pixels of displacement per unit of the smoothed field; 0: off
    elastic_sigma: float = DEFAULTS["elastic_sigma"]  # pixels, the smoothing Gaussian's width
    hflip: bool = DEFAULTS["hflip"]  # mirror half the images left to right (clothes, never digits)

    def __post_init__(self):
        # The ranges are the options' (options.py), checked by the same schema as every door's.
        for f in fields(self):
            try:
                check(f.name, getattr(self, f.name))
            except OptionError as exc:
                raise DistortionError(str(exc)) from None

    @property
    def active(self) -> bool:
        return bool(self.rotate or self.scale or self.shear or self.shift or self.elastic_alpha or self.hflip)

    def describe(self) -> str:
        """The active ranges in words, e.g. 'rotation ±15°, scaling ±10%, ...'."""
        parts = []
        if self.rotate:
            parts.append(f"rotation ±{self.rotate:g}°")
        if self.scale:
            parts.append(f"scaling ±{100 * self.scale:g}%")
        if self.shear:
            parts.append(f"shear ±{self.shear:g}°")
        if self.shift:
            parts.append(f"shifts ±{self.shift:g} px")
        if self.elastic_alpha:
            parts.append(f"elastic α = {self.elastic_alpha:g}, σ = {self.elastic_sigma:g}")
        if self.hflip:
            parts.append("horizontal flips")
        return ", ".join(parts) or "none"

    @classmethod
    def from_config(cls, config: dict) -> Distortion:
        """From a run's configuration (train's option names); absent keys mean no distortion."""
        return cls(**{f.name: config[f.name] for f in fields(cls) if config.get(f.name) is not None})


def gaussian_matrix(side: int, sigma: float) -> np.ndarray:
    """(S, S) matrix G with (G @ f)[i] = sum_j g(i - j) f[j]: a 1-D Gaussian convolution of width
    sigma with zeros beyond the edges; the kernel sums to 1 and is cut at TRUNCATE sigma."""
    radius = int(TRUNCATE * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    i = np.arange(side)
    d = i[:, None] - i[None, :]
    return np.where(np.abs(d) <= radius, kernel[np.clip(d + radius, 0, 2 * radius)], 0.0)


def affine_maps(u: np.ndarray, d: Distortion, flips: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Uniform(-1, 1) draws u (N, 5) -> sampling matrices A (N, 2, 2) acting on (row, column)
    offsets from the centre, and the content's shifts t (N, 2) in (row, column).

    The content is rotated counter-clockwise (as displayed, rows pointing down) by theta, sheared,
    scaled by s and mirrored where flips (N,) is True; A is the inverse of that map, since each
    output pixel looks up where its content came from.
    """
    theta = np.deg2rad(d.rotate) * u[:, 0]
    s = 1.0 + d.scale * u[:, 1]
    shear = np.tan(np.deg2rad(d.shear) * u[:, 2])
    cos, sin = np.cos(theta), np.sin(theta)
    # In (x = column, y = row), the content's rotation is (x, y) -> (x cos + y sin, -x sin + y cos);
    # its inverse, in (row, column): row_in = cos row + sin col, col_in = -sin row + cos col.
    A = np.empty((len(u), 2, 2))
    A[:, 0, 0], A[:, 0, 1] = cos, sin
    A[:, 1, 0], A[:, 1, 1] = -sin, cos
    A[:, :, 1] += shear[:, None] * A[:, :, 0]  # and the inverse of a shear of columns along rows
    A /= s[:, None, None]
    if flips is not None:
        A[flips, :, 1] *= -1  # a mirrored output column reads the opposite input column
    return A, d.shift * u[:, 3:5]


def elastic_factor(side: int, sigma: float, tolerance: float = 1e-3) -> np.ndarray:
    """The smoothed random fields' factor B (S, K): K the Gaussian matrix's singular values above
    `tolerance` of the largest (K = 10 for sigma = 4 on 28 px).

    Simard's field is G U G^T with U uniform(-1, 1) per pixel and G the Gaussian smoothing. With
    G = V S W^T (SVD), G U G^T = B (W^T U W) B^T, B = V S; the entries of W^T U W are
    uncorrelated with U's variance, 1/3, and, each a weighted sum of all S * S uniforms, Gaussian to
    within the central limit theorem. So the field is drawn as B Z B^T with Z (K, K) normal of
    variance 1/3: the same distribution (the dropped components carry < 1e-5 of its variance) from
    K * K draws instead of S * S, through two small matrix products. (Uniform draws for Z, with the
    same covariance but lighter tails, gave 99.12 / 99.08 / 99.19 % on MNIST, seeds 0-2, with
    configs/mlp-augmented.toml plus rotate 15, scale 0.1 and shift 2, against 99.25 / 99.16 /
    99.33 % with normals.)
    """
    V, S, _ = np.linalg.svd(gaussian_matrix(side, sigma))
    k = int(np.count_nonzero(S >= tolerance * S[0]))
    return V[:, :k] * S[:k]


class Distorter:
    """Distorts batches of flat images (N, P), reusing buffers for `capacity` images (at most
    CHUNK: larger batches are distorted CHUNK images at a time, each chunk drawing in turn).

    Every sampling position, affine and elastic parts together, comes from two matrix products.
    For image n and axis a (rows, columns) the positions are a matrix (S, S),

        L Z_an R^T,  L = [alpha / sqrt(3) B | offsets | 1],  R = [B | 1 | offsets]  (S, K + 2),

    Z_an block-diagonal: the field's draws (K, K), then [[A_a0, 0], [c_a, A_a1]] (the affine map's
    row a and constant): L Z R^T = alpha / sqrt(3) B Z B^T + A_a0 row offset + A_a1 column
    offset + c_a.
    The products run over the whole batch at once, leaving the positions in (row, image, column)
    order; the sampling works in that order and writes each image's pixels in place.

    Shifts and mirroring alone (no rotation, scaling, shear or elastic field) move every row of an
    image by the same amount and every column by the same amount: a row's sampling position
    depends on its row only, a column's on its column. Such settings take translate(): the same
    draws, each position computed once per row and once per column (the same float32 sum the
    products give, offset + constant), and the same bilinear arithmetic, with the fractions
    broadcast along the other axis, so the images are bit for bit the general path's at a third of
    its cost.
    """

    def __init__(self, settings: Distortion, capacity: int, side: int = SIDE):
        if side != SIDE:
            raise DistortionError(f"distortions work on {SIDE}x{SIDE} images, not {side}x{side}")
        size = side + 2 * PAD
        self.capacity = capacity = min(capacity, CHUNK)  # CHUNK * size**2 < 2**24: exact float32 indices
        self.settings = settings
        offsets = (np.arange(side) - (side - 1) / 2)[:, None]  # from the centre
        ones = np.ones((side, 1))
        B = elastic_factor(side, settings.elastic_sigma) if settings.elastic_alpha else np.zeros((side, 0))
        self.k = B.shape[1]
        # alpha / sqrt(3): the field's scale times the standard deviation of Simard's uniform noise
        field_scale = settings.elastic_alpha * math.sqrt(1.0 / 3.0)
        self.left = np.hstack([field_scale * B, offsets, ones]).astype(np.float32)  # (S, K + 2)
        self.right_t = np.ascontiguousarray(np.hstack([B, ones, offsets]).T, dtype=np.float32)  # (K + 2, S)
        t, m = self.k + 2, capacity * side * side
        self.coefficients = np.empty(t * 2 * capacity * t, np.float32)  # Z, as (K+2, 2, N, K+2)
        self.draws = np.empty(2 * capacity * self.k * self.k, np.float32)
        self.half = np.empty(t * 2 * capacity * side, np.float32)  # Z R^T
        self.positions = np.empty((2, m), np.float32)
        self.padded = np.zeros((capacity, size, size), np.float32)  # the border stays 0
        self.image_starts = (np.arange(capacity, dtype=np.float32) * size * size)[:, None]  # in `flat`
        self.scratch = {name: np.empty(m, np.float32) for name in ("cell", "low", "upper", "lower")}
        self.index32, self.index = np.empty(m, np.int32), np.empty(m, np.intp)
        self.translates = not (settings.rotate or settings.scale or settings.shear or settings.elastic_alpha)
        self.offsets32 = (np.arange(side) - (side - 1) / 2).astype(np.float32)  # (S,) from the centre

    def __call__(self, pixels: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> np.ndarray:
        """pixels (N, P) uint8 or float -> distorted pixel values (N, P) float32 in `out`."""
        if len(pixels) > self.capacity:
            for start in range(0, len(pixels), self.capacity):
                chunk = slice(start, start + self.capacity)
                self(pixels[chunk], rng, out[chunk])
            return out[: len(pixels)]
        if self.translates:
            return self.translate(pixels, rng, out)
        n, S = len(pixels), SIDE
        rows, cols = self.positions_for(n, rng)
        padded = self.padded[:n]
        padded[:, PAD:-PAD, PAD:-PAD] = pixels.reshape(n, S, S)
        by_row = out[:n].reshape(n, S, S).transpose(1, 0, 2)  # `out` in the positions' order
        bilinear(padded, rows, cols, by_row, self)
        return out[:n]

    def translate(self, pixels: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> np.ndarray:
        """__call__ for shifts and mirroring alone: pixels (n, P), n <= capacity -> out (n, P)."""
        d, n, S = self.settings, len(pixels), SIDE
        u = rng.uniform(-1.0, 1.0, size=(n, 5))
        flips = rng.random(n) < 0.5 if d.hflip else None
        A, shift = affine_maps(u, d, flips)  # A: the identity, its column entry -1 where mirrored
        constant = ((SIDE - 1) / 2 + PAD - shift).astype(np.float32)  # (n, 2), as positions_for's Z holds it
        # Where output row r reads: offset_r + constant (A's row entry is 1); output column c:
        # A_11 offset_c + constant, A_11 = +-1. One float32 rounding each, as in the products.
        rows = self.offsets32[None, :] + constant[:, :1]  # (n, S)
        cols = A[:, 1, 1, None].astype(np.float32) * self.offsets32[None, :] + constant[:, 1:]  # (n, S)
        padded = self.padded[:n]
        padded[:, PAD:-PAD, PAD:-PAD] = pixels.reshape(n, S, S)
        fractions, cells = [], []
        for positions in (rows, cols):
            np.clip(positions, PAD - 1.0, SIDE + PAD, out=positions)
            low = np.floor(positions)
            fractions.append(positions - low)  # exact in float32, as in bilinear()
            cells.append(low.astype(np.intp))
        size, m = SIDE + 2 * PAD, n * S * S
        # index (n, S, S): image n's row low[r], column low[c] in the flat padded images. Every
        # array of this size lives in the Distorter's buffers (a fresh one costs its page faults).
        index = self.index[:m].reshape(n, S, S)
        starts = (np.arange(n) * size * size)[:, None] + cells[0] * size  # (n, S)
        np.add(starts[:, :, None], cells[1][:, None, :], out=index)
        flat = padded.reshape(-1)
        row_fraction, col_fraction = fractions[0][:, :, None], fractions[1][:, None, :]  # (n, S, 1), (n, 1, S)
        upper, lower, right = (self.scratch[name][:m].reshape(n, S, S) for name in ("upper", "lower", "low"))
        for pair, start in ((upper, 0), (lower, size)):  # along the columns, as _between_neighbours
            np.take(flat[start:], index, out=pair, mode="wrap")
            np.take(flat[start + 1 :], index, out=right, mode="wrap")
            right -= pair
            right *= col_fraction
            pair += right
        lower -= upper
        lower *= row_fraction
        result = out[:n].reshape(n, S, S)
        np.add(upper, lower, out=result)  # and between the two rows
        return out[:n]

    def positions_for(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw n images' distortions -> where each output pixel reads: rows, cols (S, N, S) in
        (output row, image, output column) order, in the padded image's coordinates; views of
        this Distorter's buffers, overwritten by the next call."""
        d, S, k = self.settings, SIDE, self.k
        t = k + 2
        u = rng.uniform(-1.0, 1.0, size=(n, 5))
        flips = rng.random(n) < 0.5 if d.hflip else None
        A, shift = affine_maps(u, d, flips)
        z = self.coefficients[: t * 2 * n * t].reshape(t, 2, n, t)
        z.fill(0.0)
        if k:
            draws = self.draws[: 2 * n * k * k].reshape(2, n, k, k)
            rng.standard_normal(draws.shape, dtype=np.float32, out=draws)
            z[:k, :, :, :k] = draws.transpose(2, 0, 1, 3)
        z[k, :, :, k] = A[:, :, 0].T  # times the row offset
        z[k + 1, :, :, k + 1] = A[:, :, 1].T  # times the column offset
        z[k + 1, :, :, k] = (SIDE - 1) / 2 + PAD - shift.T  # times 1; in the padded image's coordinates
        half = np.matmul(z.reshape(-1, t), self.right_t, out=self.half[: t * 2 * n * S].reshape(-1, S))
        half = half.reshape(t, 2, n * S)
        rows, cols = (
            np.matmul(self.left, half[:, a], out=self.positions[a, : n * S * S].reshape(S, n * S)).reshape(S, n, S)
            for a in (0, 1)
        )
        return rows, cols


def bilinear(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray, out: np.ndarray, buffers: Distorter) -> None:
    """Sample images at fractional positions, bilinearly, into `out`.

    padded (N, S + 2 PAD, S + 2 PAD) float32: the images with PAD zero rows and columns around;
    rows, cols (S, N, S) float32: positions in the padded image's pixel coordinates, in (output
    row, image, output column) order (overwritten); out (S, N, S). Positions beyond 1 px outside
    the image read 0. Every temporary lives in `buffers`, since fresh arrays of this size cost a
    page fault per 4 kB on every call; the flat indices are computed in float32 (exact below
    2**24) and cast once, float32 to int32 being 6x faster than to int64; np.take's mode "wrap"
    (the indices are in range) is twice as fast as its default.
    """
    n, width = len(padded), padded.shape[2]
    flat = padded.reshape(-1)
    shape, m = rows.shape, rows.size
    cell, low, upper, lower = (buffers.scratch[name][:m].reshape(shape) for name in ("cell", "low", "upper", "lower"))
    np.clip(rows, PAD - 1.0, SIDE + PAD, out=rows)
    np.clip(cols, PAD - 1.0, SIDE + PAD, out=cols)
    np.floor(rows, out=low)
    rows -= low  # the fraction along the rows
    np.multiply(low, width, out=cell)
    np.floor(cols, out=low)
    cols -= low  # the fraction along the columns
    cell += low
    cell += buffers.image_starts[:n]  # (N, 1): broadcast along (row, image, column)
    np.copyto(buffers.index32[:m], cell.reshape(-1), casting="unsafe")
    index = buffers.index[:m]
    np.copyto(index, buffers.index32[:m])
    index = index.reshape(shape)
    # The four neighbours: the same index into views of the flat images starting 0, 1, width and
    # width + 1 elements later.
    _between_neighbours(flat, index, cols, upper, low)
    _between_neighbours(flat[width:], index, cols, lower, low)
    lower -= upper
    lower *= rows
    np.add(upper, lower, out=out)  # and between the two rows


def _between_neighbours(flat, index, fraction, out, scratch) -> None:
    """out <- (1 - fraction) flat[index] + fraction flat[index + 1]; scratch: a buffer like out."""
    np.take(flat, index, out=out, mode="wrap")
    np.take(flat[1:], index, out=scratch, mode="wrap")
    scratch -= out
    scratch *= fraction
    out += scratch


def distort(images: np.ndarray, settings: Distortion, rng: np.random.Generator) -> np.ndarray:
    """Images (N, 28, 28) or (N, 784) -> distorted copies, float32 pixel values of the same shape."""
    flat = images.reshape(len(images), -1)
    out = np.empty(flat.shape, np.float32)
    if len(flat):
        Distorter(settings, len(flat))(flat, rng, out)
    return out.reshape(images.shape)


def ink_outside(images: np.ndarray, margin: int = 1) -> float:
    """Fraction of the ink (N, 28, 28) lying in the outer `margin` pixels of the frame."""
    total = float(images.sum())
    inner = float(images[:, margin:-margin, margin:-margin].sum())
    return (total - inner) / total if total else 0.0
