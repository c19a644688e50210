"""Distortions of training images, drawn afresh for every minibatch: random affine maps (rotation,
scaling, shear, translation), elastic distortions after Simard, Steinkraus and Platt (2003), and
optional horizontal flips; sampled bilinearly, vectorised over the batch.

Each output pixel p (row, column) takes the input's value at

    q = c + A (p - c) - t + alpha * F(p)

with c the image centre (13.5, 13.5); A the inverse of the content's rotation by theta
(counter-clockwise as displayed), shear and scaling by s; t the content's shift; F Simard's
elastic field: independent uniform(-1, 1) displacements per pixel and axis, smoothed by a
Gaussian of width sigma (drawn in the Gaussian's basis: see elastic_basis). Points outside the
image read 0 (paper).

Shapes: N images of S x S pixels (S = 28), P = S * S pixels per image.

Randomness, in this order, from the generator handed in (training gives each batch its own, see
training.batch_generator): uniform(-1, 1) of shape (N, 5) for rotation, scale, shear and the two
shifts; with flips, uniform (N,) < 0.5; with elastic distortions, standard normals (2, N, K * K).
A range of 0 leaves its part out, and all ranges 0 give the image back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from mnistsoftmax import MnistSoftmaxError

SIDE = 28
PAD = 2  # zero rows and columns around each image: samples up to 2 px outside read paper
TRUNCATE = 4.0  # the Gaussian kernel is cut at 4 sigma, as scipy.ndimage's is


class DistortionError(MnistSoftmaxError):
    """Distortion settings out of range."""


@dataclass(frozen=True)
class Distortion:
    """The ranges of the random distortions: each drawn uniformly from [-range, +range]."""

    rotate: float = 0.0  # degrees
    scale: float = 0.0  # fraction: 0.1 draws a zoom between 0.9 and 1.1
    shear: float = 0.0  # degrees
    shift: float = 0.0  # pixels, along each axis
    elastic_alpha: float = 0.0  # pixels of displacement per unit of the smoothed field; 0: off
    elastic_sigma: float = 4.0  # pixels, the smoothing Gaussian's width
    hflip: bool = False  # mirror half the images left to right (clothes, never digits)

    def __post_init__(self):
        if not 0 <= self.scale < 1:
            raise DistortionError(f"scale must be in [0, 1), not {self.scale}")
        if not 0 <= self.shear < 90 or not 0 <= self.rotate <= 180:
            raise DistortionError("rotate must be in [0, 180] and shear in [0, 90) degrees")
        if self.shift < 0 or self.elastic_alpha < 0 or self.elastic_sigma <= 0:
            raise DistortionError("shift and elastic-alpha must be >= 0, elastic-sigma > 0")

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


def elastic_basis(side: int, sigma: float, tolerance: float = 1e-3) -> np.ndarray:
    """The smoothed random fields' basis: (S * S, K * K) with K the Gaussian matrix's singular
    values above `tolerance` of the largest (K = 10 for sigma = 4 on 28 px).

    Simard's field is G U G^T with U uniform(-1, 1) per pixel and G the Gaussian smoothing. With
    G = V S W^T (SVD), G U G^T = B (W^T U W) B^T, B = V S; the entries of W^T U W are uncorrelated
    with the variance of U, 1/3, and, each a weighted sum of all S * S uniforms, Gaussian to within
    the central limit theorem. So the field is drawn as B Z B^T with Z (K, K) normal of variance
    1/3: the same distribution (the dropped components carry < 1e-5 of its variance) from K * K
    draws instead of S * S, and, flattened, vec(B Z B^T) = (B kron B) vec(Z): one matrix product.
    """
    V, S, _ = np.linalg.svd(gaussian_matrix(side, sigma))
    k = int(np.count_nonzero(S >= tolerance * S[0]))
    B = V[:, :k] * S[:k]
    return np.kron(B, B) * math.sqrt(1.0 / 3.0)  # (S*S, K*K): times standard normals


def bilinear(padded: np.ndarray, rows: np.ndarray, cols: np.ndarray, out: np.ndarray, scratch: dict) -> np.ndarray:
    """Sample images at fractional positions, bilinearly.

    padded (N, S + 2 PAD, S + 2 PAD) float32: the images with PAD zero rows and columns around;
    rows, cols (N, P) float32: positions in the unpadded image's pixel coordinates (overwritten);
    out (N, P) float32 receives the values. `scratch` holds buffers of at least (N, P): "index",
    "step" (intp), "low", "high" (float32); every temporary lives there, since fresh arrays of
    this size cost a page fault per 4 kB on every call. Positions beyond 1 px outside read 0.
    """
    n, width = len(padded), padded.shape[2]
    flat = padded.reshape(-1)
    index, step = scratch["index"][:n], scratch["step"][:n]
    low, high = scratch["low"][:n], scratch["high"][:n]
    np.clip(rows, -1.0 + PAD, SIDE + PAD, out=rows)  # (positions were shifted by PAD beforehand)
    np.clip(cols, -1.0 + PAD, SIDE + PAD, out=cols)
    np.floor(rows, out=low)
    rows -= low  # the fraction along the rows
    np.copyto(index, low, casting="unsafe")
    index *= width
    index += scratch["offsets"][:n]  # each image's first element in `flat`
    np.floor(cols, out=low)
    cols -= low  # the fraction along the columns
    np.copyto(step, low, casting="unsafe")
    index += step
    _between_neighbours(flat, index, cols, out, step, low)  # the upper row of the four pixels
    index += width
    _between_neighbours(flat, index, cols, high, step, low)  # the lower row
    high -= out
    high *= rows
    out += high  # and between the two rows
    return out


def _between_neighbours(flat, index, fraction, out, step, scratch) -> None:
    """out <- (1 - fraction) flat[index] + fraction flat[index + 1], in place; step, scratch: buffers."""
    np.take(flat, index, out=out)
    np.add(index, 1, out=step)
    np.take(flat, step, out=scratch)
    scratch -= out
    scratch *= fraction
    out += scratch


class Distorter:
    """Distorts batches of up to `capacity` flat images (N, P), reusing its buffers.

    Every sampling position, affine and elastic parts together, comes from one matrix product:
    positions (2N, P) = coefficients (2N, 3 + K*K) @ basis (3 + K*K, P), the basis holding each
    pixel's row and column offset from the centre, a 1, and the elastic fields' basis.
    """

    def __init__(self, settings: Distortion, capacity: int, side: int = SIDE):
        if side != SIDE:
            raise DistortionError(f"distortions work on {SIDE}x{SIDE} images, not {side}x{side}")
        self.settings = settings
        grid = np.arange(side) - (side - 1) / 2  # offsets from the centre
        parts = [np.repeat(grid, side)[:, None], np.tile(grid, side)[:, None], np.ones((side * side, 1))]
        if settings.elastic_alpha:
            parts.append(settings.elastic_alpha * elastic_basis(side, settings.elastic_sigma))
        self.basis = np.ascontiguousarray(np.hstack(parts).T, dtype=np.float32)  # (3 + K*K, P)
        self.elastic_terms = self.basis.shape[0] - 3
        size = side + 2 * PAD
        self.padded = np.zeros((capacity, size, size), np.float32)  # the border stays 0
        self.positions = np.empty((2 * capacity, side * side), np.float32)
        self.coefficients = np.empty((2 * capacity, self.basis.shape[0]), np.float32)
        shape = (capacity, side * side)
        self.scratch = {
            "index": np.empty(shape, np.intp),
            "step": np.empty(shape, np.intp),
            "low": np.empty(shape, np.float32),
            "high": np.empty(shape, np.float32),
            "offsets": (np.arange(capacity, dtype=np.intp) * size * size)[:, None],
        }

    def __call__(self, pixels: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> np.ndarray:
        """pixels (N, P) uint8 or float -> distorted pixel values (N, P) float32 in `out`."""
        n, d = len(pixels), self.settings
        u = rng.uniform(-1.0, 1.0, size=(n, 5))
        flips = rng.random(n) < 0.5 if d.hflip else None
        A, t = affine_maps(u, d, flips)
        centre = (SIDE - 1) / 2
        c = self.coefficients[: 2 * n].reshape(2, n, -1)  # [0]: row positions, [1]: column positions
        c[:, :, 0] = A[:, :, 0].T  # times the row offset
        c[:, :, 1] = A[:, :, 1].T  # times the column offset
        c[:, :, 2] = centre + PAD - t.T  # times 1; in the padded image's coordinates
        if self.elastic_terms:
            c[:, :, 3:] = rng.standard_normal((2, n, self.elastic_terms), dtype=np.float32)
        positions = np.matmul(c.reshape(2 * n, -1), self.basis, out=self.positions[: 2 * n])  # (2N, P)
        padded = self.padded[:n]
        padded[:, PAD:-PAD, PAD:-PAD] = pixels.reshape(n, SIDE, SIDE)
        return bilinear(padded, positions[:n], positions[n:], out[:n], self.scratch)


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
