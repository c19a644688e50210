"""Property-based tests: whatever bytes or arrays come in, only the designed errors come out."""

import gzip
import io
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from mnistsoftmax.datasets import DataError, parse_idx, read_idx_bytes
from mnistsoftmax.images import ImageError, preprocess, to_mnist


def idx_like():
    """Bytes that often start like an IDX file (right magic, plausible sizes) and then go wrong."""
    header = st.builds(
        lambda ndim, dims: bytes([0, 0, 8, ndim]) + b"".join(struct.pack(">I", d) for d in dims),
        st.integers(0, 4),
        st.lists(st.integers(0, 40), max_size=4),
    )
    return st.one_of(st.binary(max_size=200), st.builds(bytes.__add__, header, st.binary(max_size=3000)))


@settings(max_examples=400, deadline=None)
@given(data=idx_like(), ndim=st.sampled_from([1, 3]))
def test_idx_reader_raises_only_data_error(data, ndim):
    """parse_idx returns a uint8 array of the announced shape or raises DataError, nothing else."""
    try:
        array = parse_idx(data, "f", ndim)
    except DataError:
        return
    assert array.dtype == np.uint8 and array.ndim == ndim
    assert 4 + 4 * ndim + array.size == len(data)
    if ndim == 1:
        assert array.size == 0 or array.max() <= 9
    else:
        assert array.shape[1:] == (28, 28)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(gzip.compress),
                      st.binary(max_size=300).map(lambda b: gzip.compress(b)[: max(1, len(b) // 2)])))  # fmt: skip
def test_gz_reader_raises_only_data_error(tmp_path, data):
    """Arbitrary or truncated .gz files: read_idx_bytes returns bytes or raises DataError."""
    path = tmp_path / "x.gz"
    path.write_bytes(data)
    try:
        assert isinstance(read_idx_bytes(path), bytes)
    except DataError:
        pass


def image_bytes():
    """Arbitrary bytes, and real images of random content and format, sometimes cut short."""

    def encode(args):
        pixels, fmt, mode, cut = args
        im = Image.fromarray(pixels).convert(mode)
        buf = io.BytesIO()
        im.save(buf, format=fmt)
        data = buf.getvalue()
        return data[: len(data) * cut // 4] if cut < 4 else data

    real = st.tuples(
        arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40))),
        st.sampled_from(["PNG", "BMP", "GIF", "TIFF", "WEBP"]),
        st.sampled_from(["L", "RGB", "1", "P"]),
        st.integers(0, 4),
    ).map(encode)
    return st.one_of(st.binary(max_size=500), real)


@settings(max_examples=300, deadline=None)
@given(data=image_bytes())
def test_image_loading_raises_only_image_error(data):
    """preprocess gives a 28x28 uint8 digit or raises ImageError, whatever the bytes."""
    try:
        out = preprocess(data, "<bytes>")
    except ImageError:
        return
    assert out.shape == (28, 28) and out.dtype == np.uint8


@settings(max_examples=300, deadline=None)
@given(gray=arrays(np.float64, st.tuples(st.integers(1, 60), st.integers(1, 60)), elements=st.floats(0, 1)))
def test_preprocessing_of_any_gray_image(gray):
    """to_mnist on any grey image: a valid digit field (ink in [0, 255]) or ImageError for blank ones."""
    try:
        out = to_mnist(gray)
    except ImageError as exc:
        assert "no ink found" in str(exc)
        return
    assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() > 0
