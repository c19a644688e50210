"""The optimizers computed by hand (SGD with momentum, Nesterov's, weight decay; Adam), against
torch.optim's formulas; learning-rate schedules."""

import numpy as np
import pytest

from mnistsoftmax.optim import SGD, Adam, learning_rate


def test_two_sgd_steps_by_hand():
    """Momentum 0.9, decay 0.1 on the weight only, lr 0.5: every number worked out on paper."""
    W = np.array([1.0, -2.0])
    b = np.array([0.5])
    opt = SGD({"W": W, "b": b}, momentum=0.9, weight_decay=0.1, decay_names=("W",))
    # Step 1: gW = [0.2, 0.4] + 2*0.1*[1, -2] = [0.4, 0.0]; v = gW; W = [1, -2] - 0.5*[0.4, 0] = [0.8, -2]
    #         gb = [1.0] (no decay); v = [1.0]; b = 0.5 - 0.5 = 0.0
    opt.add_gradients({"W": np.array([0.2, 0.4]), "b": np.array([1.0])})
    opt.step(lr=0.5)
    np.testing.assert_allclose(W, [0.8, -2.0])
    np.testing.assert_allclose(b, [0.0])
    # Step 2: gW = [0, 0] + 0.2*[0.8, -2] = [0.16, -0.4]; v = 0.9*[0.4, 0] + gW = [0.52, -0.4]
    #         W = [0.8, -2] - 0.5*[0.52, -0.4] = [0.54, -1.8]
    #         gb = [-1]; v = 0.9*1 - 1 = -0.1; b = 0 - 0.5*(-0.1) = 0.05
    opt.add_gradients({"W": np.array([0.0, 0.0]), "b": np.array([-1.0])})
    opt.step(lr=0.5)
    np.testing.assert_allclose(W, [0.54, -1.8])
    np.testing.assert_allclose(b, [0.05])
    np.testing.assert_allclose(opt.velocity["W"], [0.52, -0.4])


def test_plain_sgd_step():
    """Without momentum or decay, W <- W - lr * g."""
    W = np.array([[1.0, 2.0]])
    opt = SGD({"W": W})
    opt.add_gradients({"W": np.array([[0.5, -0.5]])})
    opt.step(lr=0.1)
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
    # warmup-cosine: 0.01 -> 0.1 linearly over the first 10 of 100 steps, then cosine over the other 90
    warm = [learning_rate("warmup-cosine", 0.1, s, 100) for s in (0, 5, 10, 55, 99)]
    assert warm == pytest.approx([0.01, 0.055, 0.1, 0.05, 0.05 * (1 + np.cos(np.pi * 89 / 90))])
    assert learning_rate("warmup-cosine", 0.1, 0, 1) == pytest.approx(0.01)  # one step: at least one warm step
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        learning_rate("linear", 0.1, 0, 10)


def test_step_after_a_backward_that_filled_the_velocity():
    """Plain SGD's fused path: its gradients are the velocity, written with beta = momentum by the
    backward; step(lr) adds the decay into v, then W <- W - lr v."""
    W, b = np.array([1.0, -2.0]), np.array([0.5])
    opt = SGD({"W": W, "b": b}, momentum=0.9, weight_decay=0.1, decay_names=("W",))
    assert opt.gradients is opt.velocity and opt.beta == 0.9
    opt.velocity["W"][...] = [0.2, 0.4]  # as the backward leaves it: 0.9 * 0 + g
    opt.velocity["b"][...] = [1.0]
    opt.step(lr=0.5)  # the first step of test_two_sgd_steps_by_hand
    np.testing.assert_allclose(W, [0.8, -2.0])
    np.testing.assert_allclose(b, [0.0])
    np.testing.assert_allclose(opt.velocity["W"], [0.4, 0.0])


def test_without_momentum_an_old_velocity_is_forgotten():
    """Momentum 0: v is the new gradient even if the old v held inf (0 * inf would be NaN)."""
    W = np.array([1.0, 1.0])
    opt = SGD({"W": W})
    opt.velocity["W"][...] = [np.inf, -np.inf]
    opt.add_gradients({"W": np.array([1.0, -1.0])})
    opt.step(lr=0.1)
    np.testing.assert_allclose(W, [0.9, 1.1])


def test_nesterov_steps_by_hand():
    """Nesterov momentum 0.5, decay 0.1 on W, lr 1, as torch.optim.SGD(nesterov=True) computes it."""
    W = np.array([1.0])
    opt = SGD({"W": W}, momentum=0.5, weight_decay=0.1, decay_names=("W",), nesterov=True)
    assert opt.beta == 0.0 and opt.gradients is not opt.velocity  # g is needed apart from v
    # g = 0.3 + 2*0.1*1 = 0.5; v = 0.5; step = g + 0.5 v = 0.75; W = 1 - 0.75 = 0.25
    opt.add_gradients({"W": np.array([0.3])})
    opt.step(lr=1.0)
    np.testing.assert_allclose(W, [0.25])
    # g = 0.1 + 0.2*0.25 = 0.15; v = 0.5*0.5 + 0.15 = 0.4; step = 0.15 + 0.5*0.4 = 0.35; W = -0.1
    opt.add_gradients({"W": np.array([0.1])})
    opt.step(lr=1.0)
    np.testing.assert_allclose(W, [-0.1])
    np.testing.assert_allclose(opt.velocity["W"], [0.4])


def test_adam_steps_by_hand():
    """Adam's first step moves each weight by lr whatever the gradient's size (after bias correction
    m / sqrt(s) = g / |g|, up to eps); the second by hand; the state counts its steps."""
    W = np.array([1.0, -1.0])
    opt = Adam({"W": W})
    opt.add_gradients({"W": np.array([4.0, -0.001])})
    opt.step(lr=0.1)
    np.testing.assert_allclose(W, [1 - 0.1 * 4 / (4 + 1e-8), -1 + 0.1 * 0.001 / (0.001 + 1e-8)], rtol=1e-12)
    # t = 2, g = 2 on W[0]: m = 0.9*0.4 + 0.1*2 = 0.56, s = 0.999*0.016 + 0.001*4 = 0.019984
    # m_hat = 0.56 / 0.19 = 2.947368..., s_hat = 0.019984 / 0.001999 = 9.996998...
    opt.add_gradients({"W": np.array([2.0, 0.0])})
    opt.step(lr=0.1)
    expected = 1 - 0.1 * 4 / (4 + 1e-8) - 0.1 * (0.56 / 0.19) / (np.sqrt(0.019984 / (1 - 0.999**2)) + 1e-8)
    np.testing.assert_allclose(W[0], expected, rtol=1e-12)
    assert int(opt.state_dict()["steps"]) == 2 and set(opt.state_dict()) == {"moment1.W", "moment2.W", "steps"}


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_a_state_from_elsewhere_is_refused(name):
    """load_state_dict takes its own names, shapes and dtypes only, and finite values."""
    from mnistsoftmax.optim import OptimizerStateError, build

    opt = build(name, {"W": np.zeros(3)}, momentum=0.9)
    good = {k: v.copy() for k, v in opt.state_dict().items()}
    opt.load_state_dict(good)
    for bad in ({}, {**good, "velocity.X": np.zeros(3)}, {k: v[:2] if v.ndim else v for k, v in good.items()},
                {k: np.full_like(v, np.nan) if v.dtype.kind == "f" else v for k, v in good.items()}):  # fmt: skip
        with pytest.raises(OptimizerStateError):
            opt.load_state_dict(bad)
