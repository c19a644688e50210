"""The lab's numbers (lab.py) for one digit: the chain rule through the Jacobian, the curves'
points, the hinge's terms, and one SGD step that lowers the loss without touching the model."""

import numpy as np
import pytest

from mnistsoftmax import lab
from mnistsoftmax.explain import softmax_steps
from mnistsoftmax.models import build_model


@pytest.fixture
def digit():
    rng = np.random.default_rng(0)
    model = build_model("mlp", rng, hidden=32)
    for p in model.params.values():
        p += (0.2 * rng.standard_normal(p.shape)).astype(p.dtype)
    x = rng.standard_normal((1, 784)).astype(np.float32)
    return model, x


def test_the_jacobian_and_the_chain_rule_worked_example():
    """Bendersky's example: S = softmax([1, 2, 3]) = [0.09, 0.24, 0.67]; J = diag(S) - S S^T, each
    row summing to 0; with label 2, J^T dL/dS = S - onehot(2)."""
    steps = softmax_steps(np.array([1.0, 2.0, 3.0]), label=2)
    np.testing.assert_allclose(steps["probabilities"], [0.09003057, 0.24472847, 0.66524096], rtol=1e-7)
    result = lab.jacobian(steps)
    S = steps["probabilities"]
    np.testing.assert_allclose(result["matrix"], np.diag(S) - np.outer(S, S), rtol=1e-12)
    np.testing.assert_allclose(result["matrix"].sum(axis=0), 0, atol=1e-15)
    np.testing.assert_allclose(result["chain"], S - [0, 0, 1], rtol=1e-12, atol=1e-15)
    assert "chain" not in lab.jacobian(softmax_steps(np.array([1.0, 2.0, 3.0])))


def test_curves_points_and_the_untrained_point():
    steps = softmax_steps(np.array([1.0, 2.0, 5.0]), label=0)
    untrained = softmax_steps(np.zeros(3), label=0)
    c = lab.curves(steps, untrained)
    np.testing.assert_allclose(c["exp"][:, 1], np.exp(c["exp"][:, 0]))
    np.testing.assert_allclose(c["nll"][:, 1], -np.log(c["nll"][:, 0]))
    np.testing.assert_allclose(c["untrained_nll"], [1 / 3, np.log(3)])


def test_hinge_terms_for_a_digit():
    steps = softmax_steps(np.array([3.2, 5.1, -1.7]), label=0)  # cs231n's cat
    h = lab.hinge(steps)
    np.testing.assert_allclose(h["terms"], [0.0, 2.9, 0.0], atol=1e-12)
    assert h["loss"] == pytest.approx(2.9) and h["violating"] == [1]


def test_one_step_lowers_the_loss_and_leaves_the_model(digit):
    model, x = digit
    before = {k: v.copy() for k, v in model.params.items()}
    step = lab.training_step(model, x, label=4, lr=1e-3)
    assert step["loss_after"] < step["loss_before"]
    assert all(np.array_equal(before[k], v) for k, v in model.params.items())
    g = step["gradient"]
    assert g["caption"] == "unit" and len(g["units"]) == lab.GRADIENT_IMAGES and g["images"].shape == (12, 28, 28)
    assert list(g["norms"]) == sorted(g["norms"], reverse=True)
    # For one input each first-layer column of the gradient is x times a number: its image is x's, scaled.
    expected = x[0].reshape(28, 28) / np.abs(x[0]).max()
    assert min(np.abs(np.abs(im) - np.abs(expected)).max() for im in g["images"]) < 1e-5


def test_a_linear_models_gradient_images_are_its_ten_templates():
    rng = np.random.default_rng(1)
    model = build_model("linear", rng)
    step = lab.training_step(model, rng.standard_normal((1, 784)).astype(np.float32), label=2)
    assert step["gradient"]["caption"] == "class" and sorted(step["gradient"]["units"]) == list(range(10))


@pytest.mark.parametrize("lr", ["nan", "0", "-1", "x", "1e9", "inf"])
def test_the_api_refuses_a_bad_learning_rate(lr):
    pytest.importorskip("starlette")
    from mnistsoftmax.web.draw_routes import parse_lr
    from mnistsoftmax.web.http import HTTPException

    with pytest.raises(HTTPException):
        parse_lr(lr)
    assert parse_lr("0.01") == 0.01 and parse_lr(None) is None
