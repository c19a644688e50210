"""Distortions and dropout: geometry pixel by pixel, the elastic field's distribution, dropout's
backward against finite differences, reproducibility and bit-identical resume with both on."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from mnistsoftmax import augment
from mnistsoftmax.activations import ACTIVATIONS
from mnistsoftmax.augment import Distortion, distort, ink_outside
from mnistsoftmax.cli import main
from mnistsoftmax.functional import dropout_backward, dropout_forward, dropout_mask
from mnistsoftmax.gradcheck import check_model, numerical_gradient, relative_error
from mnistsoftmax.inference import Normalization
from mnistsoftmax.models import build_model
from mnistsoftmax.training import Hooks, Interrupted, TrainSettings, train
from tests.conftest import synthetic_digits

AFFINE_AND_ELASTIC = Distortion(rotate=15, scale=0.1, shift=2, elastic_alpha=34, elastic_sigma=4)  # the ranges


class Fixed:
    """A stand-in generator whose uniform draws are given: u (N, 5), flips all True or all False."""

    def __init__(self, u, flip=False):
        self.u, self.flip = np.asarray(u, dtype=np.float64), flip

    def uniform(self, low, high, size):
        return np.broadcast_to(self.u, size).copy()

    def random(self, n):
        return np.zeros(n) if self.flip else np.ones(n)


def digits(n=64, seed=0):
    """MNIST-like digits: strokes inside the central 20 x 20 box, light on black."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    for img in images:
        r, c = rng.integers(4, 20, size=2)
        img[4:24, c : c + 3] = 255  # a vertical stroke
        img[r : r + 3, 4:24] = 200  # a horizontal one
    return images


def test_shapes_dtypes_and_zero_strength():
    """Shapes kept (flat or square), float32 out; all ranges 0 give the very same pixel values."""
    images = digits(10)
    rng = np.random.default_rng(0)
    out = distort(images, AFFINE_AND_ELASTIC, rng)
    assert out.shape == images.shape and out.dtype == np.float32
    assert distort(images.reshape(10, -1), AFFINE_AND_ELASTIC, rng).shape == (10, 784)
    np.testing.assert_array_equal(distort(images, Distortion(), rng), images.astype(np.float32))
    assert 0 <= out.min() and out.max() <= 255


def test_batches_larger_than_a_chunk_are_distorted_chunk_by_chunk(monkeypatch):
    """Above CHUNK images the Distorter works a chunk at a time, each drawing in turn: the same
    pixels as distorting the chunks one after the other from the same generator."""
    monkeypatch.setattr(augment, "CHUNK", 4)
    images = digits(10)
    whole = distort(images, AFFINE_AND_ELASTIC, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    parts = [distort(images[i : i + 4], AFFINE_AND_ELASTIC, rng) for i in (0, 4, 8)]
    np.testing.assert_array_equal(whole, np.concatenate(parts))
    assert augment.Distorter(AFFINE_AND_ELASTIC, 10).padded.shape[0] == 4


def test_rotation_by_a_quarter_turn_is_rot90():
    """u = 1 with rotate = 90: every pixel lands exactly where np.rot90 (counter-clockwise) puts it."""
    images = np.random.default_rng(1).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    out = distort(images, Distortion(rotate=90), Fixed([1, 0, 0, 0, 0]))
    np.testing.assert_array_equal(out, np.rot90(images, axes=(1, 2)).astype(np.float32))


def test_rotation_by_30_degrees_moves_a_dot_where_trigonometry_says():
    """A dot 10 px right of the centre, turned 30 degrees counter-clockwise, has its centre of
    mass at 10 (cos 30, -sin 30) from the centre (rows down), to 0.05 px."""
    image = np.zeros((1, 28, 28), np.uint8)
    image[0, 13:15, 23:25] = 255  # a 2 x 2 dot centred at (13.5, 23.5): offset (0, +10)
    out = distort(image, Distortion(rotate=30), Fixed([1, 0, 0, 0, 0]))[0].astype(np.float64)
    r, c = np.indices(out.shape)
    com = (r * out).sum() / out.sum() - 13.5, (c * out).sum() / out.sum() - 13.5
    assert com == pytest.approx((-10 * math.sin(math.pi / 6), 10 * math.cos(math.pi / 6)), abs=0.05)


def test_shift_scale_and_flip_pixel_by_pixel():
    """u = 1 with shift 2: the content moves 2 px down and right; scale 1 (u = 0) does nothing;
    a flip mirrors left to right."""
    images = digits(4)
    shifted = distort(images, Distortion(shift=2), Fixed([0, 0, 0, 1, 1]))
    np.testing.assert_array_equal(shifted[:, 2:, 2:], images[:, :-2, :-2].astype(np.float32))
    assert not shifted[:, :2, :].any() and not shifted[:, :, :2].any()
    np.testing.assert_array_equal(distort(images, Distortion(scale=0.5), Fixed([0] * 5)), images.astype(np.float32))
    flipped = distort(images, Distortion(hflip=True), Fixed([0] * 5, flip=True))
    np.testing.assert_array_equal(flipped, images[:, :, ::-1].astype(np.float32))


@pytest.mark.parametrize(
    "settings",
    [
        Distortion(shift=1),
        Distortion(shift=2.5),
        Distortion(hflip=True),
        Distortion(shift=1.7, hflip=True),
        Distortion(shift=30),
    ],
    ids=str,
)
def test_shifts_and_flips_alone_take_the_translation_path_bit_for_bit(settings):
    """Shifts and mirroring alone are sampled by Distorter.translate, which computes each row's and
    each column's position once: the same draws and the same float32 arithmetic as the general
    path (positions from the products, per pixel), so the images are equal bit for bit, shifts
    past the frame's edge (clipped) included; larger batches than a chunk go chunk by chunk alike."""
    images = np.random.default_rng(3).integers(0, 256, size=(300, 784)).astype(np.uint8)
    fast, general = augment.Distorter(settings, 128), augment.Distorter(settings, 128)
    general.translates = False
    assert fast.translates and not augment.Distorter(Distortion(shift=1, rotate=1), 8).translates
    a = fast(images, np.random.default_rng(5), np.empty((300, 784), np.float32))
    b = general(images, np.random.default_rng(5), np.empty((300, 784), np.float32))
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, images)  # it moved something


def test_ink_stays_in_the_frame_with_affine_and_elastic_distortions():
    """With the issue's ranges (affine and elastic), digits in MNIST's 20 x 20 box keep their ink:
    under 1 % of it reaches the outer pixel ring, and the total changes by under 3 %."""
    images = digits(500)
    out = distort(images, AFFINE_AND_ELASTIC, np.random.default_rng(2))
    assert ink_outside(out) < 0.01
    assert out.sum() / images.sum() == pytest.approx(1.0, abs=0.03)


def test_same_seed_same_distortions():
    images = digits(8)
    a = distort(images, AFFINE_AND_ELASTIC, np.random.default_rng(5))
    b = distort(images, AFFINE_AND_ELASTIC, np.random.default_rng(5))
    c = distort(images, AFFINE_AND_ELASTIC, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_elastic_field_has_simards_distribution():
    """The field drawn in the Gaussian's basis has the covariance of Simard's construction, alpha
    times uniform(-1, 1) noise smoothed by G: Cov = alpha^2 / 3 (G G^T)_rr' (G G^T)_cc'. Exactly,
    to 1e-6 of its largest entry, over every pair of pixels; and 4,000 of Simard's own fields
    agree with it to sampling error."""
    sigma, alpha = 4.0, 34.0
    G = augment.gaussian_matrix(28, sigma)
    GG = G @ G.T
    simard = alpha**2 / 3 * np.einsum("ac,bd->abcd", GG, GG).reshape(784, 784)
    B = augment.elastic_factor(28, sigma)
    assert B.shape == (28, 10)  # K = 10 for sigma = 4
    basis = alpha / math.sqrt(3) * np.kron(B, B)  # (784, K*K): the field is basis @ vec(Z), Z normal
    np.testing.assert_allclose(basis @ basis.T, simard, atol=1e-6 * simard.max())
    assert 1.0 < math.sqrt(simard[14 * 28 + 14, 14 * 28 + 14]) < 2.0  # ~1.4 px at the centre: a visible wobble
    fields = alpha * (G @ np.random.default_rng(0).uniform(-1, 1, (4000, 28, 28)) @ G.T)
    np.testing.assert_allclose(fields.reshape(4000, -1).std(axis=0), np.sqrt(np.diag(simard)), rtol=0.05)


def test_distorter_draws_fields_with_simards_covariance():
    """The fields the Distorter itself draws (its sampling positions less the identity's, 3,000
    images, elastic only): per pixel mean 0 and the standard deviation of Simard's construction,
    to sampling error, in both axes, and the two axes uncorrelated."""
    sigma, alpha, n = 4.0, 34.0, 3000
    G = augment.gaussian_matrix(28, sigma)
    expected = alpha / math.sqrt(3) * np.sqrt(np.einsum("a,b->ab", np.diag(G @ G.T), np.diag(G @ G.T)))
    distorter = augment.Distorter(Distortion(elastic_alpha=alpha, elastic_sigma=sigma), n)
    rows, cols = distorter.positions_for(n, np.random.default_rng(0))
    grid = np.arange(28.0) + augment.PAD
    field_r = rows.transpose(1, 0, 2) - grid[None, :, None]  # (N, S, S)
    field_c = cols.transpose(1, 0, 2) - grid[None, None, :]
    for field in (field_r, field_c):
        np.testing.assert_allclose(field.std(axis=0), expected, rtol=0.06)
        assert np.abs(field.mean(axis=0)).max() < 5 * expected.max() / math.sqrt(n)  # centred
    assert abs(np.corrcoef(field_r[:, 14, 14], field_c[:, 14, 14])[0, 1]) < 0.06


def test_dropout_mask_statistics():
    """Entries are 0 or 1 / (1 - p), kept with probability 1 - p."""
    mask = dropout_mask(np.random.default_rng(0), 0.25, np.empty((400, 500), np.float32))
    assert set(np.unique(mask)) == {0.0, np.float32(1 / 0.75)}
    assert np.mean(mask > 0) == pytest.approx(0.75, abs=0.005)
    assert mask.mean() == pytest.approx(1.0, abs=0.01)  # inverted dropout keeps the expectation


def test_dropout_backward_against_finite_differences():
    """The layer alone: d(sum(W * dropout(A)))/dA through a fixed mask, float64, central differences;
    and the whole mlp with a fixed mask, every parameter below 1e-6 relative error."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 9))
    W = rng.standard_normal((6, 9))
    mask = dropout_mask(rng, 0.5, np.empty((6, 9)))

    def f():
        return float((W * dropout_forward(A, mask)[0]).sum())

    out, cache = dropout_forward(A, mask)
    assert relative_error(dropout_backward(W, cache), numerical_gradient(f, A)) < 1e-9
    errors = check_model("mlp", seed=1, hidden=12, batch_size=6, dropout=0.5)
    assert set(errors) == {"W1", "b1", "W2", "b2"} and max(errors.values()) < 1e-6


def test_gradcheck_command_checks_dropout():
    result = CliRunner().invoke(main, ["gradcheck", "--model", "mlp", "--loss", "cross-entropy", "--dropout", "0.3"])
    # mlp 16 (W1 b1 W2 b2) and mlp 16,8 (W1 b1 W2 b2 W3 b3) under each activation: dropout masks on
    # each hidden layer (tanh's kept apart from its outputs)
    assert result.exit_code == 0 and result.stdout.count(" ok") == 10 * len(ACTIVATIONS)


def run(epochs=2, stop_at=None, resume=None, rng_seed=3, model=None, made=None):
    """Train an mlp H=32 on synthetic digits with distortions and dropout 0.3; `made` (a list)
    receives the model even when training raises Interrupted."""
    images, labels = synthetic_digits(400, np.random.default_rng(100))
    rng = np.random.default_rng(rng_seed)
    model = model if model is not None else build_model("mlp", rng, hidden=32)
    if made is not None:
        made.append(model)
    settings = TrainSettings(epochs=epochs, batch_size=64, lr=0.05, momentum=0.9, weight_decay=1e-4,
                             schedule="cosine", log_every=3, distortion=AFFINE_AND_ELASTIC, dropout=0.3)  # fmt: skip
    calls = iter(range(10**6))
    hooks = Hooks(should_stop=(lambda: next(calls) == stop_at) if stop_at is not None else None)
    records = train(model, images, labels, Normalization.of(images), settings, rng, hooks=hooks, resume=resume)
    return model, records, hooks


def test_same_seed_same_weights_with_distortions_and_dropout():
    a, _, _ = run()
    b, _, _ = run()
    c, _, _ = run(rng_seed=4)
    assert all(a.params[k].tobytes() == b.params[k].tobytes() for k in a.params)
    assert a.params["W1"].tobytes() != c.params["W1"].tobytes()


@pytest.mark.parametrize("stop_at", [2, 7, 11])  # mid-epoch, at the boundary, in the second epoch
def test_resume_is_bit_identical_with_distortions_and_dropout(stop_at):
    """Stopped before batch `stop_at` and resumed in a fresh generator, from the state as JSON:
    the same bytes as a run that never stopped (each batch draws from its own generator, keyed
    by its epoch)."""
    uninterrupted, _, _ = run(epochs=2)
    made = []
    with pytest.raises(Interrupted) as stopped:
        run(epochs=2, stop_at=stop_at, made=made)
    state = stopped.value.state
    resumed = build_model("mlp", np.random.default_rng(0), hidden=32)
    for name, p in made[0].params.items():
        resumed.params[name][...] = p
    meta = json.loads(json.dumps(state.to_meta()))
    saved = {k: v.copy() for k, v in state.optimizer_state.items()}
    run(epochs=2, resume=type(state).from_meta(meta, saved), rng_seed=999, model=resumed)
    for name in uninterrupted.params:
        assert resumed.params[name].tobytes() == uninterrupted.params[name].tobytes(), name


def test_a_short_run_with_distortions_learns():
    """From about ln 10 the loss falls; the training accuracy (on distorted digits) climbs."""
    _, records, hooks = run(epochs=4)
    steps = [r for r in hooks.records if r["type"] == "step"]
    assert abs(steps[0]["loss"] - math.log(10)) < 0.3
    assert records[-1]["train_loss"] < 0.5 * steps[0]["loss"] and records[-1]["train_accuracy"] > 0.8


def test_no_distortion_by_default_and_dropout_needs_the_mlp(tiny_data):
    """train's defaults leave distortions and dropout off (today's runs are unchanged); dropout on
    the linear model is a one-line error; bad ranges are usage errors."""
    from mnistsoftmax import config, runs

    settings = runs.settings_of({**config.resolve()})
    assert settings.distortion is None and settings.dropout == 0 and not settings.per_batch_randomness
    result = CliRunner().invoke(main, ["train", "--dataset", "custom", "--data-dir", str(tiny_data), "--model",
                                       "linear", "--dropout", "0.5", "--epochs", "1"])  # fmt: skip
    assert result.exit_code == 1 and "needs --model mlp" in result.stderr
    for bad in (["--rotate", "-1"], ["--scale", "1"], ["--elastic-sigma", "0"], ["--dropout", "1"]):
        assert CliRunner().invoke(main, ["train", *bad]).exit_code == 2


def test_plot_of_a_run_with_distortions_shows_them(tiny_data, tmp_path):
    """plot draws distortions.png, training digits beside distorted copies, for such a run only;
    the checkpoint's configuration keeps the ranges."""
    from mnistsoftmax import checkpoint

    runner = CliRunner()
    args = ["train", "--dataset", "custom", "--data-dir", str(tiny_data), "--epochs", "1", "--hidden", "16"]
    assert runner.invoke(main, [*args, "--rotate", "10", "--elastic-alpha", "20", "--dropout", "0.2"]).exit_code == 0
    _, meta = checkpoint.load(checkpoint.default_path())
    assert (meta["config"]["rotate"], meta["config"]["elastic_alpha"], meta["config"]["dropout"]) == (10, 20, 0.2)
    result = runner.invoke(main, ["plot", "--out", str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "figs" / "distortions.png").exists()
