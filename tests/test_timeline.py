"""The timeline outside the browser: /api/predict's `snapshot` field and `timeline`, /api/checkpoints'
snapshot steps, `predict --through-training`, each against a NumPy forward pass of the snapshot's
weights in float64."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from mnistsoftmax import checkpoint, snapshots
from mnistsoftmax.cli import main
from mnistsoftmax.inference import Normalization
from tests.test_serve import BASE, drawn_seven

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from mnistsoftmax.web.app import create_app  # noqa: E402
from mnistsoftmax.web.catalog import Catalog  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two mlps trained on synthetic digits: `latest` with 12 snapshots, `none` with none."""
    from tests.conftest import write_dataset

    root = tmp_path_factory.mktemp("timeline")
    write_dataset(root / "data")
    common = ["train", "--dataset", "custom", "--data-dir", str(root / "data"), "--epochs", "3", "--hidden", "24,16"]
    for name, count in (("latest", "12"), ("none", "0")):
        result = CliRunner().invoke(main, [*common, "--snapshots", count, "--out", str(root / "runs" / f"{name}.npz")])
        assert result.exit_code == 0, result.output
    return root / "runs"


@pytest.fixture
def client(runs):
    return TestClient(create_app(Catalog(runs), "127.0.0.1", 8765), base_url=BASE)


def forward64(path, index: int, digit) -> np.ndarray:
    """Softmax probabilities (C,) of a 28x28 uint8 digit under snapshot `index`'s stored weights,
    computed here in float64 from the arrays as stored (float16, upcast)."""
    model, meta = checkpoint.load(path)
    kept = checkpoint.load_snapshots(path, model)
    params = {name: np.asarray(copies[index], np.float64) for name, copies in kept.arrays.items()}
    if index == len(kept.steps) - 1:  # the last index is the checkpoint's own float32 weights
        params = {name: p.astype(np.float64) for name, p in model.params.items()}
    norm = meta["normalization"]
    a = (np.asarray(digit, np.float64).reshape(-1) / 255 - norm["mean"]) / norm["std"]
    depth = len(model.hidden_widths)
    for layer in range(1, depth + 2):
        a = a @ params[f"W{layer}"] + params[f"b{layer}"]
        if layer <= depth:
            a = np.maximum(a, 0)
    e = np.exp(a - a.max())
    return e / e.sum()


def post(client, query: str = "", timeline: bool = True):
    """The drawn seven's answer; with the timeline unless told not to ask for it."""
    query += ("&" if "?" in query else "?") + "timeline=true" if timeline else ""
    return client.post(f"/api/predict{query}", content=drawn_seven(), headers={"Content-Type": "image/png"})


def test_the_timeline_comes_when_asked_for(client, runs):
    """A plain answer has no timeline (no snapshot is read for it); `timeline=true` (or 1, yes; a
    JSON true) adds it; another value is a 400 that names the field."""
    plain = post(client, timeline=False).json()
    assert "timeline" not in plain and "timeline_note" not in plain and plain["digit"] in range(10)
    last = len(client.get("/api/checkpoints").json()[0]["snapshots"]) - 1
    for value in ("true", "1", "yes"):
        assert post(client, f"?timeline={value}", timeline=False).json()["timeline"]["index"] == last
    for value in ("false", "0", "no", ""):
        assert "timeline" not in post(client, f"?timeline={value}", timeline=False).json()
    bar = [[255 if 8 <= x <= 11 and 4 <= y <= 23 else 0 for x in range(28)] for y in range(28)]
    answer = client.post("/api/predict", json={"pixels": bar, "timeline": True})
    assert answer.status_code == 200 and "timeline" in answer.json(), answer.text[:200]
    answer = post(client, "?timeline=maybe", timeline=False)
    assert answer.status_code == 400 and answer.json()["error"] == "timeline must be true or false, not 'maybe'"


def test_the_page_model_is_what_an_exported_page_holds(client, runs):
    """GET /api/model gives export.page_model's document for the checkpoint named (the first without
    a name): the weights as stored, the snapshots, the description; unknown names and fields are
    4xx in one line."""
    import base64

    from mnistsoftmax import checkpoint

    document = client.get("/api/model", params={"checkpoint": "latest"}).json()
    model, meta = checkpoint.load(runs / "latest.npz")
    assert document["entry"]["name"] == "latest" and document["layers"] == [list(x) for x in model.layers]
    for name, p in model.params.items():
        stored = document["parameters"][name]
        data = np.frombuffer(base64.b64decode(stored["data"]), "<f4").reshape(stored["shape"])
        assert data.tobytes() == p.astype("<f4").tobytes(), name
    assert document["snapshots"]["steps"] == client.get("/api/checkpoints").json()[0]["snapshots"]
    assert document["constants"]["margin"] == 1.0 and document["untrained"] is not None
    assert client.get("/api/model").json()["entry"]["name"] == client.get("/api/checkpoints").json()[0]["name"]
    missing = client.get("/api/model", params={"checkpoint": "nothing"})
    assert missing.status_code == 404 and "no checkpoint named 'nothing'" in missing.json()["error"]
    odd = client.get("/api/model", params={"checkpoint": "latest", "x": "1"})
    assert odd.status_code == 400 and "unknown field 'x'" in odd.json()["error"]


def test_checkpoints_list_their_snapshot_steps_or_why_there_are_none(client):
    listed = {c["name"]: c for c in client.get("/api/checkpoints").json()}
    steps = listed["latest"]["snapshots"]
    assert steps == list(snapshots.schedule(3 * 5, 12)) and steps[0] == 0 and steps[-1] == 15
    assert listed["latest"]["snapshots_note"] is None
    assert listed["none"]["snapshots"] is None and "--snapshots 0" in listed["none"]["snapshots_note"]


@pytest.mark.parametrize("index", [0, 1, 5, 11])
def test_each_snapshot_answers_as_numpy_forwards_its_weights(client, runs, index):
    r = post(client, f"?snapshot={index}&label=7").json()
    digit = np.array(r["preprocessed"], np.uint8)
    expected = forward64(runs / "latest.npz", index, digit)
    np.testing.assert_allclose(r["probabilities"], expected, atol=1e-6, rtol=0)
    assert r["loss"] == pytest.approx(-math.log(expected[7]), abs=1e-5)
    t = r["timeline"]
    assert t["index"] == index and t["label"] == 7 and t["label_from"] == "label"
    assert len(t["loss"]) == len(t["steps"]) == 12
    for i in range(12):
        p = forward64(runs / "latest.npz", i, digit)
        assert t["probability"][i] == pytest.approx(p[7], abs=1e-6)
        assert t["loss"][i] == pytest.approx(-math.log(p[7]), abs=1e-5)
        assert t["predicted"][i] == int(np.argmax(p))
    assert [s for s, _ in t["train_loss"]] == sorted(s for s, _ in t["train_loss"]) and t["train_loss"]


def test_step_0_is_near_a_uniform_guess_and_the_last_is_the_trained_answer(client):
    first = post(client, "?snapshot=0&label=7").json()
    assert max(first["probabilities"]) < 0.2 and abs(first["loss"] - math.log(10)) < 0.3
    assert "calibrated" not in first  # the temperature belongs to the trained weights
    trained, last = post(client, "?label=7").json(), post(client, "?snapshot=11&label=7").json()
    for key in ("probabilities", "loss", "logits", "hidden", "lab", "calibrated"):
        assert last[key] == trained[key], key
    assert trained["timeline"]["index"] == 11


def test_without_a_label_the_curve_follows_the_trained_answer(client):
    t = post(client, "?snapshot=3").json()["timeline"]
    assert t["label_from"] == "prediction" and t["label"] == t["predicted"][-1]


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("?snapshot=12", 400, "snapshot must be an index from 0 to 11"),
        ("?snapshot=-1", 400, "snapshot must be an index from 0 to 11"),
        ("?snapshot=1.5", 400, "snapshot must be an index"),
        ("?snapshot=%C2%B2", 400, "snapshot must be an index"),
        ("?checkpoint=none&snapshot=0", 400, "has no snapshots: this checkpoint kept no snapshots"),
    ],
)
def test_a_bad_snapshot_is_one_line(client, query, status, words):
    answer = post(client, query)
    assert answer.status_code == status and words in answer.json()["error"], answer.text
    assert "\n" not in answer.json()["error"]


def test_a_json_snapshot_must_be_an_integer(client):
    for value in (True, "x", [1], 2**70):
        answer = client.post("/api/predict", json={"pixels": [[0, 255], [255, 0]], "snapshot": value})
        assert answer.status_code == 400 and "snapshot must be an index" in answer.json()["error"], value


def test_a_checkpoint_without_snapshots_says_why(client):
    r = post(client, "?checkpoint=none").json()
    assert "timeline" not in r and "--snapshots 0" in r["timeline_note"]


def test_damaged_snapshots_leave_the_model_answering(tmp_path, runs):
    """Snapshots that cannot be read: the prediction answers with the reason, a request for a
    snapshot is a 422 in one line."""
    import shutil

    folder = tmp_path / "runs"
    folder.mkdir()
    shutil.copy(runs / "latest.npz", folder / "latest.npz")
    with np.load(folder / "latest.npz") as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["snapshots/W1"] = arrays["snapshots/W1"][:, :3]
    with open(folder / "latest.npz", "wb") as f:
        np.savez(f, **arrays)
    client = TestClient(create_app(Catalog(folder), "127.0.0.1", 8765), base_url=BASE)
    r = post(client).json()
    assert "snapshots of W1 are" in r["timeline_note"] and "probabilities" in r
    answer = post(client, "?snapshot=0")
    assert answer.status_code == 422 and "snapshots of W1 are" in answer.json()["error"]


@pytest.mark.parametrize("damage", ["overflowing float32", "inflates to a gigabyte"])
def test_one_bad_snapshot_costs_the_timeline_never_the_model_and_is_read_once(tmp_path, runs, damage, monkeypatch):
    """A float32 snapshot whose weights no run stored (3e37: every forward overflowed, and every
    answer was a 422), and a snapshot member whose header declares 24 x 784 x 16,384 floats (a
    small file inflating to 1.2 GB on every request): the model answers without a timeline, with
    the reason; a request for a snapshot is a 422; the file is read once, not on every answer."""
    import shutil
    import zipfile

    from mnistsoftmax import checkpoint as checkpoints

    folder = tmp_path / "runs"
    folder.mkdir()
    shutil.copy(runs / "latest.npz", folder / "latest.npz")
    with np.load(folder / "latest.npz") as archive:
        arrays = {k: archive[k] for k in archive.files}
    if damage == "overflowing float32":
        arrays["snapshots/W1"] = np.full(arrays["snapshots/W1"].shape, 3e37, np.float32)
        with open(folder / "latest.npz", "wb") as f:
            np.savez(f, **arrays)
        words = "every snapshot but the last holds values that are not finite or beyond the 65504 float16 holds"
    else:
        S, _, H = arrays["snapshots/W1"].shape
        with zipfile.ZipFile(folder / "latest.npz", "w", zipfile.ZIP_DEFLATED) as archive:
            for name, value in arrays.items():
                if name != "snapshots/W1":
                    with archive.open(name + ".npy", "w") as f:
                        np.lib.format.write_array(f, value)
            with archive.open("snapshots/W1.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_1_0(f, {"descr": "<f2", "fortran_order": False,
                                                         "shape": (S, 784, 16384)})  # fmt: skip
                zeros = bytes(1 << 20)
                for _ in range(S * 784 * 16384 * 2 >> 20):
                    f.write(zeros)
        words = "are (12, 784, 16384), not (12, 784, 24)"
    reads = []
    real = checkpoints.load_snapshots
    monkeypatch.setattr(checkpoints, "load_snapshots", lambda *a: reads.append(a) or real(*a))
    client = TestClient(create_app(Catalog(folder), "127.0.0.1", 8765), base_url=BASE)
    for _ in range(3):
        answer = post(client)
        assert answer.status_code == 200 and "timeline" not in answer.json(), answer.text[:300]
        assert words in answer.json()["timeline_note"] and answer.json()["digit"] in range(10)
    answer = post(client, "?snapshot=0")
    assert answer.status_code == 422 and words in answer.json()["error"]
    assert len(reads) == 1


def test_a_damaged_snapshot_is_left_out_and_the_others_answer(tmp_path, runs):
    """One snapshot (index 2) holding infinities: the timeline keeps every other snapshot, each
    answering as before, and says which step it left out; that step is not offered."""
    import shutil

    folder = tmp_path / "runs"
    folder.mkdir()
    shutil.copy(runs / "latest.npz", folder / "latest.npz")
    with np.load(folder / "latest.npz") as archive:
        arrays = {k: archive[k] for k in archive.files}
    steps = arrays["snapshots/steps"].tolist()
    arrays["snapshots/W2"][2] = np.inf
    with open(folder / "latest.npz", "wb") as f:
        np.savez(f, **arrays)
    damaged = TestClient(create_app(Catalog(folder), "127.0.0.1", 8765), base_url=BASE)
    whole = TestClient(create_app(Catalog(runs), "127.0.0.1", 8765), base_url=BASE)
    t, before = post(damaged).json()["timeline"], post(whole).json()["timeline"]
    assert t["steps"] == steps[:2] + steps[3:] and f"steps {steps[2]} are damaged and left out" in t["note"]
    np.testing.assert_array_equal(t["loss"], before["loss"][:2] + before["loss"][3:])


def test_predict_through_training_agrees_with_the_page(client, runs, tmp_path):
    image = tmp_path / "seven.png"
    image.write_bytes(drawn_seven())
    cli = CliRunner().invoke(main, ["predict", str(image), "--through-training", "--label", "7", "--json",
                                    "--checkpoint", str(runs / "latest.npz")])  # fmt: skip
    assert cli.exit_code == 0, cli.output
    (result,) = json.loads(cli.stdout)
    t = post(client, "?label=7").json()["timeline"]
    assert result["label"] == 7 and [s["step"] for s in result["snapshots"]] == t["steps"]
    assert [s["loss"] for s in result["snapshots"]] == pytest.approx(t["loss"], abs=1e-12)
    assert [s["probabilities"][7] for s in result["snapshots"]] == pytest.approx(t["probability"], abs=1e-12)
    assert [s["predicted"] for s in result["snapshots"]] == t["predicted"]
    text = CliRunner().invoke(main, ["predict", str(image), "--through-training", "--label", "7",
                                     "--checkpoint", str(runs / "latest.npz")])  # fmt: skip
    lines = text.stdout.splitlines()
    assert lines[1].split() == ["step", "predicted", "p(predicted)", "p(7)", "loss"] and len(lines) == 2 + 12 + 1
    first = lines[2].split()
    assert first[0] == "0" and float(first[-1]) == pytest.approx(t["loss"][0], abs=1e-4)


def test_predict_through_training_without_snapshots_or_with_explain_is_one_line(runs, tmp_path):
    image = tmp_path / "seven.png"
    image.write_bytes(drawn_seven())
    for args, words in (
        (["--checkpoint", str(runs / "none.npz")], "has no snapshots (trained with --snapshots 0"),
        (["--explain"], "--explain and --through-training are two views"),
        (["--calibrated"], "--calibrated applies to the final model's temperature"),
    ):
        result = CliRunner().invoke(main, ["predict", str(image), "--through-training", *args])
        assert result.exit_code != 0 and words in result.output, result.output
        assert "Traceback" not in result.output


def test_snapshots_of_the_page_numbers_use_the_normalisation(runs):
    """The helper above normalises as the package does: its last index equals predict's answer."""
    model, meta = checkpoint.load(runs / "latest.npz")
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    from mnistsoftmax.inference import logits

    z = logits(model, digit[None], Normalization(**meta["normalization"]))[0].astype(np.float64)
    e = np.exp(z - z.max())
    np.testing.assert_allclose(forward64(runs / "latest.npz", 11, digit), e / e.sum(), atol=1e-6)
