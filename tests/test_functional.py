"""The math: worked numbers, properties over random inputs, and gradients against finite differences."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mnistsoftmax import functional as F
from mnistsoftmax import losses
from mnistsoftmax.gradcheck import numerical_gradient, relative_error


def test_softmax_worked_example_3_4_1():
    """softmax([3, 4, 1]) and its cross-entropy gradient for true class 1 are the textbook numbers."""
    Z = np.array([[3.0, 4.0, 1.0]])
    np.testing.assert_allclose(F.softmax(Z)[0], [0.25949646, 0.70538451, 0.03511903], atol=1e-8)
    dZ = losses.cross_entropy_backward(Z, np.array([1]))
    np.testing.assert_allclose(dZ[0], [0.25949646, -0.29461549, 0.03511903], atol=1e-8)
    assert losses.cross_entropy(Z, np.array([1])) == pytest.approx(-math.log(0.70538451), abs=1e-8)


def test_softmax_worked_example_1_2_3():
    """softmax([1, 2, 3]) = [0.09003057, 0.24472847, 0.66524096]."""
    np.testing.assert_allclose(
        F.softmax(np.array([[1.0, 2.0, 3.0]]))[0], [0.09003057, 0.24472847, 0.66524096], atol=1e-8
    )


def test_softmax_huge_logits_no_overflow():
    """softmax([1000, 2000, 3000]) = [0, 0, 1] with no warning and no NaN; log-softmax stays finite."""
    Z = np.array([[1000.0, 2000.0, 3000.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        S = F.softmax(Z)
        logS = F.log_softmax(Z)
        loss = losses.cross_entropy(Z, np.array([0]))
    np.testing.assert_array_equal(S[0], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(logS[0], [-2000.0, -1000.0, 0.0])
    assert loss == 2000.0


def test_untrained_uniform_logits_give_ln10():
    """Equal logits: every class 0.1, log-softmax -ln 10, loss ln 10 = 2.302585."""
    Z = np.zeros((5, 10))
    np.testing.assert_allclose(F.softmax(Z), 0.1)
    np.testing.assert_allclose(F.log_softmax(Z), -math.log(10))
    assert losses.cross_entropy(Z, np.arange(5)) == pytest.approx(2.302585093, abs=1e-9)


logit_rows = arrays(
    np.float64, st.tuples(st.integers(1, 8), st.integers(2, 12)), elements=st.floats(-50, 50, allow_nan=False)
)


@settings(max_examples=200, deadline=None)
@given(Z=logit_rows, shift=st.floats(-1e3, 1e3))
def test_softmax_properties(Z, shift):
    """Rows are probabilities summing to 1, invariant to adding a constant; log-softmax = log(softmax)."""
    S = F.softmax(Z)
    assert np.all(S >= 0) and np.all(S <= 1)
    np.testing.assert_allclose(S.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(F.softmax(Z + shift), S, atol=1e-12)
    np.testing.assert_allclose(np.exp(F.log_softmax(Z)), S, atol=1e-12)
    # The most likely class is the largest logit.
    np.testing.assert_array_equal(S.max(axis=1), S[np.arange(len(Z)), Z.argmax(axis=1)])


@settings(max_examples=50, deadline=None)
@given(Z=logit_rows, data=st.data())
def test_fused_gradient_matches_finite_differences(Z, data):
    """(softmax - onehot)/N is the gradient of the mean cross entropy (float64 central differences)."""
    y = np.array(data.draw(st.lists(st.integers(0, Z.shape[1] - 1), min_size=len(Z), max_size=len(Z))))
    numeric = numerical_gradient(lambda: losses.cross_entropy(Z, y), Z)
    # Entries near 0 (a confident, right prediction) carry the difference quotient's rounding noise
    # of ~1e-11, hence the absolute tolerance.
    np.testing.assert_allclose(losses.cross_entropy_backward(Z, y), numeric, rtol=1e-6, atol=1e-9)


def test_jacobian_collapses_to_fused_gradient():
    """Chain rule through the softmax Jacobian S_i(delta_ij - S_j) equals softmax - onehot."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal(7)
    s = F.softmax(z[None])[0]
    J = F.softmax_jacobian(s)
    y = 3
    dL_dS = np.zeros(7)
    dL_dS[y] = -1 / s[y]  # L = -log S_y
    np.testing.assert_allclose(J.T @ dL_dS, s - np.eye(7)[y], atol=1e-12)
    # The Jacobian itself, against finite differences of softmax.
    numeric = np.stack(
        [(F.softmax((z + 1e-6 * e)[None])[0] - F.softmax((z - 1e-6 * e)[None])[0]) / 2e-6 for e in np.eye(7)], axis=1
    )
    np.testing.assert_allclose(J, numeric, atol=1e-9)
    np.testing.assert_allclose(J, J.T)  # symmetric, rows sum to 0
    np.testing.assert_allclose(J.sum(axis=1), 0, atol=1e-15)


def test_inplace_fused_loss_and_gradient_match_the_plain_ones():
    """The training loop's in-place softmax-cross-entropy equals cross_entropy + cross_entropy_backward."""
    rng = np.random.default_rng(2)
    Z = rng.standard_normal((16, 10)) * 5
    y = rng.integers(0, 10, 16)
    expected_loss, expected_grad = losses.cross_entropy(Z, y), losses.cross_entropy_backward(Z, y)
    buf = Z.copy()
    loss, correct = losses.inplace_softmax_cross_entropy(buf, y, np.arange(16))
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(buf, expected_grad, atol=1e-15)
    assert correct == np.count_nonzero(Z.argmax(axis=1) == y) > 0


def test_inplace_fused_loss_of_huge_logits_and_ties():
    """Logits in the thousands do not overflow; a tie for the largest logit counts the first as predicted."""
    Z = np.array([[1000.0, 2000.0, 3000.0], [5.0, 5.0, 1.0]])
    loss, correct = losses.inplace_softmax_cross_entropy(Z, np.array([2, 1]), np.arange(2))
    # row 0: log-sum-exp is 3000 + log(1 + e^-1000 + e^-2000) = 3000: loss 0. row 1: log(2 + e^-4).
    assert loss == pytest.approx(np.log(2 + np.exp(-4.0)) / 2, rel=1e-12)
    assert correct == 1  # row 0 right; row 1 predicts class 0, the first of the tie
    np.testing.assert_allclose(Z[0], [0.0, 0.0, 0.0], atol=1e-300)


def test_relu_forward_backward():
    """ReLU passes positives, zeroes the rest, and its gradient is the mask (0 at exactly 0)."""
    H = np.array([[-2.0, 0.0, 3.0], [1.0, -0.5, 0.25]])
    A, cache = F.relu_forward(H)
    np.testing.assert_array_equal(A, [[0, 0, 3], [1, 0, 0.25]])
    dA = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
    expected = [[0, 0, 30], [40, 0, 60]]
    np.testing.assert_array_equal(F.relu_backward(dA, cache), expected)
    np.testing.assert_array_equal(F.relu_backward(dA, cache, out=np.empty_like(dA)), expected)


def test_affine_gradients_match_finite_differences():
    """dX, dW, db of X @ W + b for a scalar objective sum(Z * G)."""
    rng = np.random.default_rng(3)
    X, W, b, G = (
        rng.standard_normal((4, 5)),
        rng.standard_normal((5, 3)),
        rng.standard_normal(3),
        rng.standard_normal((4, 3)),
    )
    dX, dW, db = F.affine_backward(G, (X, W))

    def f():
        return float(np.sum(F.affine_forward(X, W, b)[0] * G))

    for analytic, param in ((dX, X), (dW, W), (db, b)):
        assert relative_error(analytic, numerical_gradient(f, param)) < 1e-8


def test_l2_penalty_and_gradient():
    """reg * sum(W**2) and its gradient 2 * reg * W."""
    W = np.array([[1.0, -2.0], [3.0, 0.5]])
    assert F.l2_penalty([W], 0.1) == pytest.approx(0.1 * (1 + 4 + 9 + 0.25))
    np.testing.assert_allclose(F.l2_penalty_backward(W, 0.1), 0.2 * W)


def test_label_smoothing_worked_example():
    """Logits (0, ln 2, 0), true class 1, e = 0.3: S = (1/4, 1/2, 1/4); targets (0.1, 0.8, 0.1);
    loss -(0.8 ln 1/2 + 0.2 ln 1/4) = 1.2 ln 2; gradient S - targets = (0.15, -0.3, 0.15)."""
    Z = np.array([[0.0, math.log(2), 0.0]])
    y = np.array([1])
    np.testing.assert_allclose(losses.smoothed_targets(y, 3, 0.3), [[0.1, 0.8, 0.1]])
    assert losses.cross_entropy(Z, y, 0.3) == pytest.approx(1.2 * math.log(2), rel=1e-12)
    np.testing.assert_allclose(losses.cross_entropy_backward(Z, y, 0.3), [[0.15, -0.3, 0.15]], atol=1e-15)
    buf = Z.copy()
    loss, _ = losses.inplace_softmax_cross_entropy(buf, y, np.arange(1), 0.3)
    assert loss == pytest.approx(1.2 * math.log(2), rel=1e-12)
    np.testing.assert_allclose(buf, [[0.15, -0.3, 0.15]], atol=1e-15)
    # An untrained net's loss is ln C with or without smoothing.
    assert losses.cross_entropy(np.zeros((4, 10)), np.arange(4), 0.1) == pytest.approx(math.log(10), abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(Z=logit_rows, data=st.data(), smoothing=st.floats(0.01, 0.9))
def test_smoothed_gradient_matches_finite_differences(Z, data, smoothing):
    """(softmax - targets)/N is the gradient of the smoothed mean cross entropy; the in-place
    training form gives the same loss and gradient."""
    y = np.array(data.draw(st.lists(st.integers(0, Z.shape[1] - 1), min_size=len(Z), max_size=len(Z))))
    grad = losses.cross_entropy_backward(Z, y, smoothing)
    numeric = numerical_gradient(lambda: losses.cross_entropy(Z, y, smoothing), Z)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    buf = Z.copy()
    loss, _ = losses.inplace_softmax_cross_entropy(buf, y, np.arange(len(Z)), smoothing)
    assert loss == pytest.approx(losses.cross_entropy(Z, y, smoothing), rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(buf, grad, atol=1e-12)
