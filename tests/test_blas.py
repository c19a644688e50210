"""numpy's own BLAS through ctypes: the same numbers as numpy, on every layout, on both paths."""

from pathlib import Path

import numpy as np
import pytest

from mnistsoftmax import blas

BACKENDS = ["library", "numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """Run a test once through the BLAS library and once through the numpy fallback."""
    if request.param == "numpy":
        monkeypatch.setattr(blas, "LIBRARY", None)
    elif blas.LIBRARY is None:
        pytest.skip("numpy's BLAS is not reachable here")
    return request.param


def test_numpy_wheel_blas_is_found():
    """With the OpenBLAS numpy's wheels bundle, the fast path is on: the fallback is ~30 % slower."""
    if np.__config__.CONFIG["Build Dependencies"]["blas"]["name"] != "scipy-openblas":
        pytest.skip("numpy was not built with the wheels' OpenBLAS")
    assert blas.LIBRARY is not None
    assert "openblas" in blas.LIBRARY.path


def test_numpy_own_blas_comes_before_another_one_in_the_process():
    """With scipy's OpenBLAS mapped too, numpy's copy (in numpy.libs) is the one tried first."""
    maps = (
        "7f00-7f10 r-xp 00000000 08:01 11 /site/scipy.libs/libscipy_openblas-aa.so\n"
        "7f10-7f20 r--p 00000000 08:01 11 /site/scipy.libs/libscipy_openblas-aa.so\n"
        "7f20-7f30 r-xp 00000000 08:01 12 /site/numpy.libs/libscipy_openblas64_-bb.so\n"
        "7f30-7f40 r-xp 00000000 08:01 13 /usr/lib/libc.so.6\n"
        "7f40-7f50 rw-p 00000000 00:00 0 \n"
    )
    assert blas.blas_paths(maps, (Path("/site/numpy.libs"),)) == [
        "/site/numpy.libs/libscipy_openblas64_-bb.so",
        "/site/scipy.libs/libscipy_openblas-aa.so",
    ]


def _operand(rng, shape, transposed, dtype):
    """An array of `shape`, stored row-major, or as the transposed view of a row-major array."""
    if transposed:
        return rng.standard_normal(shape[::-1]).astype(dtype).T
    return rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.9, -0.3])
def test_gemm_matches_float64_matmul(backend, dtype, trans_a, trans_b, beta):
    """out <- a @ b + beta out for every combination of transposed operands."""
    rng = np.random.default_rng(0)
    a, b = _operand(rng, (7, 5), trans_a, dtype), _operand(rng, (5, 3), trans_b, dtype)
    out = rng.standard_normal((7, 3)).astype(dtype)
    expected = a.astype(np.float64) @ b.astype(np.float64) + beta * out.astype(np.float64)
    result = blas.gemm(a, b, out, beta=beta)
    assert result is out and out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_gemm_with_beta_zero_ignores_what_out_held(backend):
    """beta = 0 means the old content is not read: NaN and inf in out do not leak into the result."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 2))
    out = np.full((4, 2), np.nan)
    out[0, 0] = np.inf
    np.testing.assert_allclose(blas.gemm(a, b, out), a @ b, rtol=1e-12)


def test_gemm_on_rows_of_a_wider_buffer_and_on_slices(backend):
    """Row slices of workspace buffers and column blocks of a wider array are read in place."""
    rng = np.random.default_rng(2)
    wide = rng.standard_normal((9, 12)).astype(np.float32)
    a = wide[:5, :4]  # rows of a wider array: leading dimension 12
    b = rng.standard_normal((4, 3)).astype(np.float32)
    buffer = np.zeros((8, 3), np.float32)
    blas.gemm(a, b, buffer[:5])
    np.testing.assert_allclose(buffer[:5], a @ b, rtol=1e-5, atol=1e-6)
    assert not buffer[5:].any()
    every_other = rng.standard_normal((10, 4)).astype(np.float32)[::2]  # no BLAS layout: numpy path
    np.testing.assert_allclose(blas.gemm(every_other, b, np.empty((5, 3), np.float32)), every_other @ b, rtol=1e-5)


def test_gemm_into_an_operand_is_still_right(backend):
    """out sharing memory with an input goes the numpy way instead of corrupting the product."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 4))
    b = rng.standard_normal((4, 4))
    expected = a @ b + 0.5 * a
    np.testing.assert_allclose(blas.gemm(a, b, a, beta=0.5), expected, rtol=1e-12)


def test_read_only_and_byte_swapped_arrays_take_the_numpy_path(backend):
    """Memory numpy would refuse to write is not written behind its back; big-endian data is read right."""
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones((3, 2), dtype=np.float32)
    frozen = np.zeros((2, 2), dtype=np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        blas.gemm(a, b, frozen)
    assert not frozen.any()
    swapped = a.astype(">f4")
    np.testing.assert_array_equal(blas.gemm(swapped, b, np.empty((2, 2), np.float32)), a @ b)
    y = np.zeros(3, dtype=">f8")
    np.testing.assert_array_equal(blas.axpy(2.0, np.ones(3, ">f8"), y), [2, 2, 2])


def test_gemm_shape_mismatch_is_an_error():
    """Shapes that do not fit are refused before anything is written."""
    out = np.zeros((3, 2))
    with pytest.raises(ValueError, match="gemm shapes do not fit"):
        blas.gemm(np.ones((3, 4)), np.ones((5, 2)), out)
    with pytest.raises(ValueError, match="gemm shapes do not fit"):
        blas.gemm(np.ones((3, 4)), np.ones((4, 3)), out)
    assert not out.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_column_sums(backend, dtype, transposed, beta):
    """out <- a.sum(axis=0) + beta out, for a stored matrix and a transposed view."""
    rng = np.random.default_rng(4)
    a = _operand(rng, (6, 5), transposed, dtype)
    out = rng.standard_normal(5).astype(dtype)
    expected = a.astype(np.float64).sum(axis=0) + beta * out.astype(np.float64)
    assert blas.column_sums(a, out, beta=beta) is out
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_column_sums_of_a_bigger_batch_after_a_smaller_one(backend):
    """The vector of ones grows with the batch: a later, longer input is summed over all its rows."""
    small, big = np.ones((3, 2), np.float32), np.ones((40, 2), np.float32)
    np.testing.assert_array_equal(blas.column_sums(small, np.empty(2, np.float32)), [3, 3])
    np.testing.assert_array_equal(blas.column_sums(big, np.empty(2, np.float32)), [40, 40])
    np.testing.assert_array_equal(blas.column_sums(small, np.empty(2, np.float32)), [3, 3])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_axpy(backend, dtype):
    """y <- y + alpha x in place, matrices included; x is left alone."""
    x = np.arange(6, dtype=dtype).reshape(2, 3)
    y = np.ones((2, 3), dtype)
    assert blas.axpy(-0.5, x, y) is y
    np.testing.assert_array_equal(y, 1 - 0.5 * np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(x, np.arange(6).reshape(2, 3))
    with pytest.raises(ValueError, match="axpy shapes differ"):
        blas.axpy(1.0, x, y.T)


def test_the_library_path_is_taken_for_the_training_layouts(monkeypatch):
    """The hot loop's operands (row slices, transposed views, float32) reach the library, not numpy."""
    if blas.LIBRARY is None:
        pytest.skip("numpy's BLAS is not reachable here")
    calls = []
    for table in (blas.LIBRARY.gemm, blas.LIBRARY.gemv, blas.LIBRARY.axpy):
        original = table[np.dtype(np.float32)]
        monkeypatch.setitem(table, np.dtype(np.float32), lambda *args, f=original: calls.append(f) or f(*args))
    monkeypatch.setattr(blas.np, "matmul", None)  # the fallback would fail loudly
    rng = np.random.default_rng(5)
    X = rng.standard_normal((16, 8)).astype(np.float32)[:10]
    dZ = rng.standard_normal((10, 4)).astype(np.float32)
    dW, db, W = np.zeros((8, 4), np.float32), np.zeros(4, np.float32), np.ones((8, 4), np.float32)
    blas.gemm(X.T, dZ, dW, beta=0.9)
    blas.column_sums(dZ, db, beta=0.9)
    blas.gemm(dZ, W.T, np.empty((10, 8), np.float32))
    blas.axpy(0.1, W, dW)
    assert len(calls) == 4
