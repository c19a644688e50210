"""The page's engine (static/local.js) against Python's answer, without a browser: Node runs the
engine on export.page_model's document of random nets of every depth and activation (tests/nets.py),
and every number of its answers (explain, the lab, the timeline) equals what POST /api/predict
computes in Python (draw_routes.answer) to 1e-6, with the same fields; so do a batch's logits and
box plots under a snapshot and the squared weights' sums.

The engine computes in float64 (JavaScript's numbers) from the float32 weights, so Python's side
runs on float64 copies of the same weights: the test compares the two engines' math, not float32's
rounding (a served answer's float32 logits differ from float64's by a few 1e-6)."""

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")

from mnistsoftmax import export  # noqa: E402
from mnistsoftmax.inference import Normalization  # noqa: E402
from mnistsoftmax.models import build_model, with_dtype  # noqa: E402
from mnistsoftmax.snapshots import Snapshots  # noqa: E402
from mnistsoftmax.web import draw_routes  # noqa: E402
from mnistsoftmax.web.catalog import Loaded, Timeline  # noqa: E402
from tests.nets import NET_IDS, NETS  # noqa: E402

NODE = shutil.which("node") or shutil.which("nodejs")
HARNESS = Path(__file__).parent / "js" / "engine.mjs"
STEPS = [0, 1, 3, 7, 15]
TOLERANCE = 1e-6

if NODE is None and os.environ.get("MNISTSOFTMAX_REQUIRE_BROWSER"):
    pytest.fail("node is not installed (Debian's nodejs): the page's engine cannot be tested", pytrace=False)
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (Debian's nodejs)")


def random_checkpoint(kind, widths, activation, seed=0):
    """A net of random weights (outputs scaled up, so that the answers are not all near 10 %), its
    initial weights, and snapshots on the straight line from those to it, as a run would store them."""
    rng = np.random.default_rng(seed)
    untrained = build_model(kind, rng, widths, activation=activation)
    for p in untrained.params.values():  # as a page holds them: float16
        p[...] = p.astype(np.float16)
    model = build_model(kind, rng, widths, activation=activation)
    for p in model.params.values():
        p *= 40.0 / np.sqrt(p.size) ** 0.5
        p += 0.05 * rng.standard_normal(p.shape).astype(np.float32)
    arrays = {name: [((1 - t) * untrained.params[name] + t * p).astype(np.float16)
                     for t in np.linspace(0, 1, len(STEPS))] for name, p in model.params.items()}  # fmt: skip
    kept = Snapshots(STEPS, STEPS, arrays)
    meta = {"kind": model.kind, "normalization": {"mean": 0.13, "std": 0.31}, "temperature": 1.3,
            "config": {"model": kind, "hidden": widths or [1], "seed": seed, "activation": activation}}  # fmt: skip
    return model, untrained, kept, meta


class OneCheckpoint:
    """The catalog draw_routes.answer asks, holding one checkpoint."""

    def __init__(self, entry):
        self.entry = entry

    def get(self, name):
        return self.entry


def digits(rng, count):
    """Drawings of a few strokes of ink, 28 x 28 rows of 0-255."""
    out = []
    for _ in range(count):
        ink = np.zeros((28, 28), np.uint8)
        for _ in range(3):
            r, c = rng.integers(6, 22, size=2)
            ink[max(r - 6, 0) : r + 6, c : c + 3] = 255
        out.append(ink.tolist())
    return out


def close(js, py, where=""):
    """Every number alike to TOLERANCE (absolute, or relative above 1), every key alike."""
    if isinstance(py, dict):
        assert isinstance(js, dict) and set(js) == set(py), f"{where}: keys {sorted(set(js) ^ set(py))}"
        for key in py:
            close(js[key], py[key], f"{where}.{key}")
    elif isinstance(py, list):
        assert isinstance(js, list) and len(js) == len(py), f"{where}: length {len(js)} against {len(py)}"
        for i, (a, b) in enumerate(zip(js, py, strict=True)):
            close(a, b, f"{where}[{i}]")
    elif isinstance(py, float) or isinstance(js, float):
        assert abs(js - py) <= TOLERANCE * max(1.0, abs(py)), f"{where}: {js} against {py}"
    else:
        assert js == py, f"{where}: {js!r} against {py!r}"


def check_batches(batches, entry, batch, classes, k, indices):
    """The engine's batch under each snapshot (None: the trained weights): its logits are Python's
    (inference.logits in float64), its box plots np.quantile's per true class and output, its loss
    and accuracy the mean cross entropy's and the argmax's."""
    from mnistsoftmax.functional import log_softmax
    from mnistsoftmax.inference import logits

    labels = np.repeat(classes, k)
    for got, index in zip(batches, indices, strict=True):
        model = entry.model if index is None else entry.timeline().models[index]
        Z = logits(model, batch, entry.norm).astype(np.float64)  # (N, C)
        np.testing.assert_allclose(got["logits"], Z, rtol=TOLERANCE, atol=TOLERANCE)
        logp = log_softmax(Z)
        for name, values in (("logits", Z), ("softmax", np.exp(logp))):
            grouped = values.reshape(len(classes), k, -1)
            q = np.quantile(grouped, [0, 0.25, 0.5, 0.75, 1], axis=1)  # (5, C_present, C)
            for i, stat in enumerate(("min", "q1", "median", "q3", "max")):
                np.testing.assert_allclose(got["boxes"][name][stat], q[i], rtol=TOLERANCE, atol=TOLERANCE)
        assert got["loss"] == pytest.approx(-logp[np.arange(len(labels)), labels].mean(), rel=TOLERANCE)
        assert got["accuracy"] == np.mean(Z.argmax(axis=1) == labels)
        assert got["step"] == (None if index is None else STEPS[index])


def pictures(encoded: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(encoded), np.uint8).astype(int)


@pytest.mark.parametrize(("kind", "widths", "activation"), NETS, ids=NET_IDS)
def test_the_page_engine_answers_as_python(kind, widths, activation):
    model, untrained, kept, meta = random_checkpoint(kind, widths, activation)
    norm = Normalization(**meta["normalization"])
    train_loss = [[1, 2.3], [15, 0.5]]
    exact, exact_untrained = with_dtype(model, np.float64), with_dtype(untrained, np.float64)
    entry = Loaded("random", Path("random.npz"), exact, meta, norm, exact_untrained, STEPS, None)
    entry._timeline = Timeline(kept.models(exact), kept.steps, train_loss, 0.0, None, kept)
    document = export.page_model(model, meta, "random", kept, train_loss, untrained=untrained)
    rng = np.random.default_rng(1)
    cases = [dict(label=None, lr=None, snapshot=None), dict(label=3, lr=0.01, snapshot=None),
             dict(label=7, lr=None, snapshot=2), dict(label=None, lr=0.5, snapshot=0)]  # fmt: skip
    expected, asked = [], []
    for case, drawing in zip(cases, digits(rng, len(cases)), strict=True):
        fields = {k: v for k, v in case.items() if v is not None} | {"timeline": True}
        body = json.dumps({"pixels": drawing, **fields}).encode()
        answer = draw_routes.answer(OneCheckpoint(entry), body, True, {})
        expected.append(answer)
        asked.append({**case, "pixels": [v for row in answer["preprocessed"] for v in row]})
    k, classes = 3, list(range(10))
    batch = np.concatenate([np.asarray(digits(rng, k), np.uint8).reshape(k, 784) for _ in classes])  # (30, 784)
    indices = [0, 2, None]
    done = subprocess.run(
        [NODE, str(HARNESS)],
        capture_output=True,
        text=True,
        timeout=120,
        input=json.dumps(
            [document, asked, {"pixels": batch.reshape(-1).tolist(), "classes": classes, "k": k, "indices": indices}]
        ),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    engine = json.loads(done.stdout)
    check_batches(engine["batches"], entry, batch, classes, k, indices)
    weights = [name for name in exact.params if name.startswith("W")]
    squared = [sum(float(np.vdot(m.params[w], m.params[w])) for w in weights) for m in entry.timeline().models]
    close(engine["squared"], {"trained": squared[-1], "through": squared}, "squared weights")
    for i, (js, py) in enumerate(zip(engine["answers"], expected, strict=True)):
        for answer in (js, py):
            answer.pop("stages")  # the engine is given the digit in MNIST's form: nothing to preprocess
            for images in [answer.get("hidden"), answer["lab"].get("step", {}).get("gradient")]:
                if images is not None:  # uint8 pictures: a value on a rounding edge may fall either way
                    answer.setdefault("_pictures", []).append(pictures(images.pop("images")))
        for a, b in zip(js.pop("_pictures", []), py.pop("_pictures", []), strict=True):
            assert a.shape == b.shape and np.abs(a - b).max() <= 1, f"case {i}: pictures"
        close(js, py, f"case {i}")
