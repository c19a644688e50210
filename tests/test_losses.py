"""The loss registry: the multiclass hinge beside cross entropy (worked examples, finite
differences, the fused form), margins, calibration and temperature scaling."""

import math

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mnistsoftmax import calibration, losses
from mnistsoftmax.cli import main
from mnistsoftmax.gradcheck import check_model, numerical_gradient, relative_error
from tests.nets import NET_IDS, NETS


def test_hinge_worked_example_of_cs231n():
    """Scores cat 3.2, car 5.1, frog -1.7 for a cat: max(0, 5.1 - 3.2 + 1) + max(0, -1.7 - 3.2 + 1)
    = 2.9; the gradient +1 for car (violates), 0 for frog (satisfied), -1 for the true class."""
    Z, y = np.array([[3.2, 5.1, -1.7]]), np.array([0])
    assert losses.hinge_per_sample(Z, y) == pytest.approx([2.9])
    np.testing.assert_allclose(losses.hinge_backward(Z, y), [[-1.0, 1.0, 0.0]])
    # Satisfied by a margin of at least 1: zero loss, zero gradient (the hinge "gives up").
    Z = np.array([[5.0, 3.9, -1.0]])
    assert losses.hinge_per_sample(Z, y) == [0.0] and not losses.hinge_backward(Z, y).any()
    np.testing.assert_allclose(losses.margins(Z, y), [1.1])


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, (6, 10), elements=st.floats(-5, 5)), st.lists(st.integers(0, 9), min_size=6, max_size=6))
def test_hinge_gradient_matches_finite_differences(Z, labels):
    """Away from the kinks (|z_j - z_y + 1| > 1e-3) the hand-derived gradient is the derivative."""
    y = np.array(labels)
    rows = np.arange(6)
    kinks = np.abs(Z - Z[rows, y][:, None] + 1)
    kinks[rows, y] = 1
    if kinks.min() < 1e-3:
        return
    Z = Z.copy()
    numeric = numerical_gradient(lambda: losses.LOSSES["hinge"].forward(Z, y), Z)
    assert relative_error(losses.hinge_backward(Z, y), numeric) < 1e-6


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, (8, 10), elements=st.floats(-20, 20)), st.lists(st.integers(0, 9), min_size=8, max_size=8))
def test_fused_forms_equal_the_plain_ones(Z, labels):
    """Each loss's fused training form gives its forward's loss and its backward's gradient."""
    y = np.array(labels)
    for loss in losses.LOSSES.values():
        buf = Z.copy()
        value, correct = loss.inplace(buf, y, np.arange(8))
        assert value == pytest.approx(loss.forward(Z, y), rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(buf, loss.backward(Z, y), rtol=1e-9, atol=1e-12)
        assert correct == int((Z.argmax(axis=1) == y).sum())


@pytest.mark.parametrize(("kind", "widths", "activation"), NETS, ids=NET_IDS)
def test_gradcheck_of_the_hinge_model(kind, widths, activation):
    """Every parameter of every depth and activation under the hinge (and L2), float64, < 1e-6."""
    errors = check_model(kind, seed=3, hidden=widths, batch_size=6, reg=1e-3, loss="hinge", activation=activation)
    assert max(errors.values()) < 1e-6, errors


def test_gradcheck_command_checks_the_hinge():
    result = CliRunner().invoke(main, ["gradcheck", "--loss", "hinge", "--hidden", "8", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines and all(" hinge " in line and line.endswith("ok") for line in lines)


def test_hinge_refuses_label_smoothing():
    result = CliRunner().invoke(main, ["train", "--loss", "hinge", "--label-smoothing", "0.1"])
    assert result.exit_code == 1 and "the hinge loss has none" in result.stderr


def test_margins_and_five_numbers():
    Z = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 1.0, 5.0]])
    y = np.array([0, 0, 2])
    np.testing.assert_allclose(losses.margins(Z, y), [1.0, -3.0, 4.0])
    assert calibration.five_numbers([1, 2, 3, 4, 5]) == {"min": 1, "q1": 2, "median": 3, "q3": 4, "max": 5}


def test_calibration_worked_numbers():
    """Ten samples at confidence 0.8 of which 8 are right: ECE 0; 5 right: ECE 0.3. Brier of a
    certain right answer 0, of a uniform guess over C classes 1 - 1/C."""
    p = np.tile([0.8, 0.2], (10, 1))
    assert calibration.expected_calibration_error(p, np.array([0] * 8 + [1] * 2)) == pytest.approx(0, abs=1e-12)
    assert calibration.expected_calibration_error(p, np.array([0] * 5 + [1] * 5)) == pytest.approx(0.3)
    assert calibration.brier(np.array([[1.0, 0.0]]), np.array([0])) == 0
    assert calibration.brier(np.full((1, 10), 0.1), np.array([3])) == pytest.approx(0.9)


def test_temperature_minimises_the_nll_and_changes_no_prediction():
    """The solver's T is the grid's best to its spacing; softmax(z / T) keeps every argmax."""
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((3000, 10)) * 6
    y = np.where(rng.random(3000) < 0.8, Z.argmax(axis=1), rng.integers(0, 10, 3000))
    T = calibration.fit_temperature(Z, y)
    grid = np.linspace(0.5, 6, 5501)
    best = grid[np.argmin([losses.nll(Z / t, y).mean() for t in grid])]
    assert abs(T - best) < 2e-3
    assert (calibration.softmax_at(Z, T).argmax(axis=1) == Z.argmax(axis=1)).all()
    report = calibration.report(Z, y, T)
    assert report["nll_calibrated"] <= report["nll"] and math.isfinite(report["ece_calibrated"])


def test_an_overconfident_net_is_cooled():
    """Logits three times too large: the fitted temperature is about 3."""
    rng = np.random.default_rng(1)
    true = rng.standard_normal((20000, 10))
    y = np.array([rng.choice(10, p=p) for p in calibration.softmax_at(true)])
    assert calibration.fit_temperature(3 * true, y) == pytest.approx(3, rel=0.05)


def test_a_hinge_run_end_to_end(tiny_data, tmp_path):
    """train --loss hinge from the same seed starts from the same weights as cross entropy (the
    first probe's logits are equal) and differs after; eval --json reports the loss by name with
    margins, nll, brier, ece and the fitted temperature; predict --calibrated changes no digit;
    predict says the outputs are scores."""
    import json

    from mnistsoftmax import checkpoint

    outs = {}
    for loss in ("cross-entropy", "hinge"):
        outs[loss] = tmp_path / f"{loss}.npz"
        args = ["train", "--dataset", "custom", "--data-dir", str(tiny_data), "--epochs", "2", "--hidden", "16",
                "--loss", loss, "--out", str(outs[loss])]  # fmt: skip
        assert CliRunner().invoke(main, args).exit_code == 0
    first = {loss: next(r for r in checkpoint.read_metrics(p) if r["type"] == "probe") for loss, p in outs.items()}
    assert first["hinge"]["logits"] == first["cross-entropy"]["logits"] and "margin" in first["hinge"]
    hinge_model, meta = checkpoint.load(outs["hinge"])
    assert meta["config"]["loss"] == "hinge" and meta["temperature"] > 0
    assert hinge_model.params["W1"].tobytes() != checkpoint.load(outs["cross-entropy"])[0].params["W1"].tobytes()

    report = json.loads(CliRunner().invoke(main, ["eval", str(outs["hinge"]), "--json"]).stdout)
    assert report["loss_name"] == "hinge" and set(report["margin"]) == {"min", "q1", "median", "q3", "max"}
    for key in ("nll", "brier", "ece", "temperature", "nll_calibrated", "ece_calibrated"):
        assert math.isfinite(report[key]), key

    from PIL import Image

    image = tmp_path / "digit.png"
    Image.fromarray(255 - np.kron(np.eye(4, dtype=np.uint8) * 255, np.ones((7, 7), np.uint8))).save(image)
    plain = CliRunner().invoke(main, ["predict", str(image), "--checkpoint", str(outs["hinge"]), "--json"])
    cooled = CliRunner().invoke(main, ["predict", str(image), "--checkpoint", str(outs["hinge"]), "--json",
                                       "--calibrated"])  # fmt: skip
    a, b = json.loads(plain.stdout)[0], json.loads(cooled.stdout)[0]
    assert a["digit"] == b["digit"] and a["probability"] != b["probability"]
    text = CliRunner().invoke(main, ["predict", str(image), "--checkpoint", str(outs["hinge"])])
    assert "gives scores" in text.stderr
