"""SGD with momentum and weight decay, computed by hand; learning-rate schedules."""

import numpy as np
import pytest

from mnistsoftmax.optim import SGD, learning_rate


def test_two_sgd_steps_by_hand():
    """Momentum 0.9, decay 0.1 on the weight only, lr 0.5: every number worked out on paper."""
    W = np.array([1.0, -2.0])
    b = np.array([0.5])
    opt = SGD({"W": W, "b": b}, momentum=0.9, weight_decay=0.1, decay_names=("W",))
    # Step 1: gW = [0.2, 0.4] + 2*0.1*[1, -2] = [0.4, 0.0]; v = gW; W = [1, -2] - 0.5*[0.4, 0] = [0.8, -2]
    #         gb = [1.0] (no decay); v = [1.0]; b = 0.5 - 0.5 = 0.0
    opt.step({"W": np.array([0.2, 0.4]), "b": np.array([1.0])}, lr=0.5)
    np.testing.assert_allclose(W, [0.8, -2.0])
    np.testing.assert_allclose(b, [0.0])
    # Step 2: gW = [0, 0] + 0.2*[0.8, -2] = [0.16, -0.4]; v = 0.9*[0.4, 0] + gW = [0.52, -0.4]
    #         W = [0.8, -2] - 0.5*[0.52, -0.4] = [0.54, -1.8]
    #         gb = [-1]; v = 0.9*1 - 1 = -0.1; b = 0 - 0.5*(-0.1) = 0.05
    opt.step({"W": np.array([0.0, 0.0]), "b": np.array([-1.0])}, lr=0.5)
    np.testing.assert_allclose(W, [0.54, -1.8])
    np.testing.assert_allclose(b, [0.05])
    np.testing.assert_allclose(opt.velocity["W"], [0.52, -0.4])


def test_plain_sgd_step():
    """Without momentum or decay, W <- W - lr * g."""
    W = np.array([[1.0, 2.0]])
    SGD({"W": W}).step({"W": np.array([[0.5, -0.5]])}, lr=0.1)
    np.testing.assert_allclose(W, [[0.95, 2.05]])


def test_schedules():
    """constant stays; cosine goes from lr through lr/2 at half way towards 0; step divides by 10 twice."""
    assert learning_rate("constant", 0.1, 70, 100) == 0.1
    assert learning_rate("cosine", 0.1, 0, 100) == pytest.approx(0.1)
    assert learning_rate("cosine", 0.1, 50, 100) == pytest.approx(0.05)
    assert learning_rate("cosine", 0.1, 99, 100) == pytest.approx(0.1 * 0.5 * (1 + np.cos(np.pi * 0.99)))
    assert [learning_rate("step", 1.0, s, 100) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01]
    )
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        learning_rate("linear", 0.1, 0, 10)


def test_update_after_a_backward_that_filled_the_velocity():
    """update(lr) is step() without the velocity step: decay into v, then W <- W - lr v."""
    W, b = np.array([1.0, -2.0]), np.array([0.5])
    opt = SGD({"W": W, "b": b}, momentum=0.9, weight_decay=0.1, decay_names=("W",))
    opt.velocity["W"][...] = [0.2, 0.4]  # as the backward leaves it: 0.9 * 0 + g
    opt.velocity["b"][...] = [1.0]
    opt.update(lr=0.5)  # the first step of test_two_sgd_steps_by_hand
    np.testing.assert_allclose(W, [0.8, -2.0])
    np.testing.assert_allclose(b, [0.0])
    np.testing.assert_allclose(opt.velocity["W"], [0.4, 0.0])


def test_without_momentum_an_old_velocity_is_forgotten():
    """Momentum 0: v is the new gradient even if the old v held inf (0 * inf would be NaN)."""
    W = np.array([1.0, 1.0])
    opt = SGD({"W": W})
    opt.velocity["W"][...] = [np.inf, -np.inf]
    opt.step({"W": np.array([1.0, -1.0])}, lr=0.1)
    np.testing.assert_allclose(W, [0.9, 1.1])
