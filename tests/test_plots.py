"""plot: the numbers behind each figure, and the figures themselves as PNG files."""

import builtins
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw

from mnistsoftmax import analysis, checkpoint, plots
from mnistsoftmax.cli import main
from mnistsoftmax.inference import Normalization, untrained_model
from mnistsoftmax.training import TrainSettings, train
from tests.conftest import synthetic_digits


@pytest.fixture(scope="module")
def models():
    """A small two-hidden-layer mlp trained on synthetic digits, the same architecture untrained,
    and test data (two layers: every figure is drawn, the last layer's units too)."""
    images, labels = synthetic_digits(1500, np.random.default_rng(11))
    test_images, test_labels = synthetic_digits(400, np.random.default_rng(12))
    norm = Normalization.of(images)
    trained = untrained_model("mlp", [32, 16], seed=5)
    settings = TrainSettings(epochs=3, batch_size=32, lr=0.05, momentum=0.9, schedule="cosine", log_every=10)
    train(trained, images, labels, norm, settings, np.random.default_rng(0))
    return trained, untrained_model("mlp", [32, 16], seed=5), test_images, test_labels, norm


def test_untrained_model_is_the_initialisation():
    """untrained_model redraws exactly the weights a run with that seed started from."""
    a, b = untrained_model("mlp", 16, seed=3), untrained_model("mlp", 16, seed=3)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["W1"], untrained_model("mlp", 16, seed=4).params["W1"])


def test_softmax_before_and_after_training(models):
    """Untrained: every class's median softmax is 0.1 +- 0.05 and log-softmax near -ln 10.
    Trained: for images of each digit the true class's median probability is above 0.9."""
    trained, untrained, images, labels, norm = models
    before, after = analysis.outputs(untrained, images, norm), analysis.outputs(trained, images, norm)
    for d in range(10):
        medians = [np.median(col) for col in analysis.columns_for_digit(before["softmax"], labels, d)]
        assert all(abs(m - 0.1) <= 0.05 for m in medians), (d, medians)
        log_medians = [np.median(col) for col in analysis.columns_for_digit(before["log_softmax"], labels, d)]
        assert all(abs(m + math.log(10)) < 0.5 for m in log_medians)
        assert np.median(analysis.columns_for_digit(after["softmax"], labels, d)[d]) > 0.9
        assert np.median(analysis.columns_for_digit(after["log_softmax"], labels, d)[d]) > math.log(0.9)
    np.testing.assert_allclose(np.exp(after["log_softmax"]), after["softmax"], atol=1e-12)


def test_per_sample_loss_before_and_after(models):
    """Each image's loss is ln 10 +- 0.3 untrained and mostly near 0 trained."""
    trained, untrained, images, labels, norm = models
    before = analysis.per_sample_loss(untrained, images, labels, norm)
    after = analysis.per_sample_loss(trained, images, labels, norm)
    assert before.shape == (400,) and np.all(np.abs(before - math.log(10)) < 0.3)
    assert np.median(after) < 0.05


def test_confusion_and_mistakes():
    """Confusion rows are true classes; mistakes come surest first and only wrong ones."""
    labels = np.array([0, 1, 2, 2])
    probabilities = np.array([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.05, 0.9, 0.05], [0.6, 0, 0.4]])
    matrix = analysis.confusion(probabilities.argmax(axis=1), labels, num_classes=3)
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    np.testing.assert_array_equal(analysis.confident_mistakes(probabilities, labels, k=5), [2, 3])


def test_first_layer_images(models):
    """First-layer weights come out as 28x28 images scaled to [-1, 1], one per unit or class."""
    trained = models[0]
    images = analysis.first_layer_images(trained, count=8)
    assert images.shape == (8, 28, 28)
    np.testing.assert_allclose(np.abs(images).max(axis=(1, 2)), 1.0)
    np.testing.assert_allclose(
        images[3] * np.abs(trained.params["W1"][:, 3]).max(), trained.params["W1"][:, 3].reshape(28, 28)
    )
    assert analysis.first_layer_images(untrained_model("linear", 0, seed=0)).shape == (10, 28, 28)


def test_top_units_ranks_a_hand_built_model():
    """Units come strongest first by ||W2[j]||, ties in index order; the images are the chosen
    units' weights and exactly what training added to each."""
    from mnistsoftmax.models import Network

    W2 = np.zeros((5, 10))
    W2[0, 0], W2[1, :2], W2[2, 3], W2[3, 0], W2[4, 9] = 1.0, [3.0, 4.0], 7.0, 2.0, 1.0  # norms 1, 5, 7, 2, 1
    W1 = np.arange(784 * 5, dtype=np.float64).reshape(784, 5) % 13 - 6
    trained = Network({"W1": W1, "b1": np.zeros(5), "W2": W2, "b2": np.zeros(10)})
    untrained = Network({"W1": W1 / 2, "b1": np.zeros(5), "W2": W2, "b2": np.zeros(10)})
    np.testing.assert_allclose(trained.unit_strength(), [1, 5, 7, 2, 1])
    assert analysis.top_units(trained.unit_strength(), 5).tolist() == [2, 1, 3, 0, 4]
    assert analysis.top_units(np.array([0.5, -1.0, 0.5, 3.0]), 2).tolist() == [3, 0]
    shown = analysis.hidden_unit_images(trained, untrained, count=3)
    assert shown["units"].tolist() == [2, 1, 3]
    assert shown["weights"].shape == shown["added"].shape == (3, 28, 28)
    expected = (W1[:, 1] / 2).reshape(28, 28)  # W1 - W1/2 for unit 1, scaled by its largest |value|
    np.testing.assert_allclose(shown["added"][1], expected / np.abs(expected).max())


def test_training_curves_from_records():
    """Records of the metrics file become aligned arrays; a missing validation value is NaN."""
    records = [{"type": "init", "loss": 2.3}, {"type": "step", "step": 5, "loss": 1.0},
               {"type": "epoch", "epoch": 1, "step": 10, "train_loss": 0.8, "train_accuracy": 0.7}]  # fmt: skip
    c = analysis.training_curves(records)
    assert c["step"].tolist() == [5] and c["initial_loss"].tolist() == [2.3]
    assert c["train_loss"].tolist() == [0.8] and math.isnan(c["val_loss"][0])


def _probe(step: int, classes=(0, 1), outputs: int = 3) -> dict:
    """A whole probe record as probes.Probe writes one (two classes, three outputs)."""
    five = {k: [[0.1 * (o + 1) for o in range(outputs)] for _ in classes] for k in analysis.FIVE}
    return {"type": "probe", "step": step, "epoch": 1, "loss": 0.5, "accuracy": 0.9, "images": 4,
            "classes": list(classes), "logits": five, "softmax": five,
            "margin": {k: 1.0 for k in analysis.FIVE}}  # fmt: skip


def test_probe_moments_are_first_last_and_log_spaced_between():
    records = [_probe(s) for s in (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144)]
    records.insert(3, {"type": "step", "step": 3})
    assert [r["step"] for r in analysis.probe_moments(records, 3, count=5)] == [0, 1, 5, 34, 144]
    assert [r["step"] for r in analysis.probe_moments(records[:4], 3, count=5)] == [0, 1, 2]
    assert analysis.probe_moments([{"type": "init"}], 3) == []


def _malformed_probes():
    def without(key):
        return lambda r: r.pop(key)

    def setting(key, value):
        return lambda r: r.__setitem__(key, value)

    return {
        "no step": without("step"), "step 'x'": setting("step", "x"), "step true": setting("step", True),
        "no softmax": without("softmax"), "no classes": without("classes"), "classes 'abc'": setting("classes", "abc"),
        "classes [99]": setting("classes", [99]), "classes twice": setting("classes", [0, 0]),
        "loss null": setting("loss", None), "accuracy 1e400": setting("accuracy", 10**400),
        "margin without quartiles": setting("margin", {"median": 1.0}),
        "softmax rows short": lambda r: r["softmax"]["q1"].pop(),
        "softmax a string": lambda r: r["softmax"].__setitem__("max", [["x", 1, 2], [1, 2, 3]]),
    }  # fmt: skip


@pytest.mark.parametrize("what", list(_malformed_probes()))
def test_a_malformed_probe_record_is_left_out_not_a_crash(what):
    """The 13 malformed probe records of the third hardening pass, each in a file of good ones: the
    figures' readers (probe moments, and plot --compare's margins) leave it out."""
    bad = _probe(7)
    _malformed_probes()[what](bad)
    records = [_probe(0), bad, _probe(20)]
    assert analysis.probe_records(records, 3) == [records[0], records[2]]
    assert [r["step"] for r in analysis.probe_moments(records, 3)] == [0, 20]


def test_compare_draws_two_checkpoints(models, tmp_path):
    """plot --compare: one PNG of its size from two models and their records (probe margins too)."""
    from mnistsoftmax.probes import Probe, choose

    trained, untrained, images, labels, norm = models
    chosen = choose(labels, seed=0, per_class=5)
    records = [{"type": "step", "step": s, "loss": 2.0 / s} for s in (1, 2, 5)]
    records += [Probe(trained, images[chosen], labels[chosen], norm).record(trained, s, 1) for s in (0, 5)]
    assert "margin" in records[-1] and set(records[-1]["margin"]) == {"min", "q1", "median", "q3", "max"}
    path = plots.write_comparison(tmp_path, {"a": (trained, norm, records, 1.5), "b": (untrained, norm, [], None)},
                                  images, labels)  # fmt: skip
    with Image.open(path) as im:
        assert im.size == tuple(plots.DPI * v for v in plots.SIZES["compare"])


def test_every_figure_is_a_png_of_its_size(models, tmp_path):
    """Each figure is a valid, non-empty PNG of the stated pixel size; index.html shows them all."""
    trained, untrained, images, labels, norm = models
    records = [{"type": "init", "loss": 2.3}, {"type": "step", "step": 1, "loss": 2.2},
               {"type": "step", "step": 10, "loss": 1.0},
               {"type": "epoch", "epoch": 1, "step": 47, "train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.6,
                "val_accuracy": 0.75}]  # fmt: skip
    from mnistsoftmax.augment import Distortion
    from mnistsoftmax.probes import Probe, choose

    chosen = choose(labels, seed=0, per_class=5)
    for step, model in ((0, untrained), (4, trained), (9, trained), (20, trained), (33, trained), (47, trained)):
        records.append(Probe(model, images[chosen], labels[chosen], norm).record(model, step, 1))

    from mnistsoftmax.explain import through_training

    seen = through_training([untrained, trained], [0, 47], norm, images[0], int(labels[0]))
    written = plots.write_figures(tmp_path, trained, untrained, images, labels, norm, list("0123456789"), records, 3,
                                  distortion=Distortion(rotate=15, elastic_alpha=34), train_images=images,
                                  timeline=(seen, int(labels[0]), "test image 0"))  # fmt: skip
    pngs = [p for p in written if p.suffix == ".png"]
    # distortions.png only for a run with distortions, compare.png only with plot --compare
    assert [p.stem for p in pngs] == [name for name in plots.SIZES if name != "compare"]
    for path in pngs:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            w, h = plots.SIZES[path.stem]
            assert im.format == "PNG" and im.size == (w * plots.DPI, h * plots.DPI)
            assert np.asarray(im.convert("L")).std() > 5  # something is drawn
    index = (tmp_path / "index.html").read_text()
    assert all(f"src='{p.name}'" in index for p in pngs) and index.count("<figcaption>") == len(pngs)


def test_plot_command(tmp_path, tiny_data):
    """plot draws from the last checkpoint, its metrics and its data, and lists what it wrote."""
    runner = CliRunner()
    assert runner.invoke(main, ["train", "--dataset", "custom", "--data-dir", str(tiny_data), "--epochs", "2",
                                "--model", "linear"]).exit_code == 0  # fmt: skip
    result = runner.invoke(main, ["plot", "--out", str(tmp_path / "figs"), "--digit", "7"])
    assert result.exit_code == 0, result.output
    # all but distortions, compare and the last layer's units (a linear model), and index.html
    assert len(result.stdout.splitlines()) == len(plots.SIZES) - 2
    assert json.loads(checkpoint.metrics_path(checkpoint.default_path()).read_text().splitlines()[0])["type"] == "init"


def test_plot_draws_your_digit_through_training(tmp_path, tiny_data):
    """--image draws that image under each snapshot (and is a one-line error for a checkpoint
    without them); --label without --image is a usage error."""
    runner = CliRunner()
    common = ["train", "--dataset", "custom", "--data-dir", str(tiny_data), "--epochs", "2"]
    assert runner.invoke(main, [*common, "--out", str(tmp_path / "kept.npz")]).exit_code == 0
    assert runner.invoke(main, [*common, "--snapshots", "0", "--out", str(tmp_path / "none.npz")]).exit_code == 0
    image = tmp_path / "seven.png"
    im = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(im).line([(50, 40), (150, 40), (90, 170)], fill=0, width=14)
    im.save(image)
    result = runner.invoke(main, ["plot", str(tmp_path / "kept.npz"), "--out", str(tmp_path / "figs"), "--image",
                                  str(image), "--label", "7"])  # fmt: skip
    assert result.exit_code == 0, result.output
    drawn = tmp_path / "figs" / "through_training.png"
    assert str(drawn) in result.stdout.splitlines()
    with Image.open(drawn) as png:
        assert png.size == tuple(plots.DPI * v for v in plots.SIZES["through_training"])
    result = runner.invoke(main, ["plot", str(tmp_path / "none.npz"), "--out", str(tmp_path / "f2"), "--image",
                                  str(image)])  # fmt: skip
    assert result.exit_code == 1 and "has no snapshots" in result.output and "Traceback" not in result.output
    result = runner.invoke(main, ["plot", str(tmp_path / "none.npz"), "--out", str(tmp_path / "f3")])
    assert result.exit_code == 0 and "through_training" not in result.stdout
    result = runner.invoke(main, ["plot", str(tmp_path / "kept.npz"), "--out", str(tmp_path / "f4"), "--label", "3"])
    assert result.exit_code == 2 and "--label goes with --image" in result.output


def test_plot_without_matplotlib_says_how_to_install(tmp_path, tiny_data, monkeypatch):
    """Without matplotlib: exit 1 and the pip command for the plot extra."""
    runner = CliRunner()
    assert runner.invoke(main, ["train", "--dataset", "custom", "--data-dir", str(tiny_data), "--epochs", "1",
                                "--model", "linear"]).exit_code == 0  # fmt: skip
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = runner.invoke(main, ["plot", "--out", str(tmp_path / "figs")])
    assert result.exit_code == 1 and "pip install 'mnistsoftmax[plot]'" in result.stderr
    assert not (tmp_path / "figs").exists()


def test_through_training_names_label_smoothing_where_the_run_used_it():
    """through_training.png's title says a smoothed run was trained toward 1 - e + e / C, not 1."""
    from mnistsoftmax import plots

    assert plots._smoothing_line(0.05, 10) == "\nlabel smoothing e = 0.05: trained toward p = 0.955 on the label, not 1"
    assert plots._smoothing_line(0.0, 10) == ""
