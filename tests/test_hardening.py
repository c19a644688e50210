"""Every door against hostile input and faults: the server's requests (fuzzed too), hostile
checkpoints and files, readers of what other versions left, a server killed under its run."""

import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from mnistsoftmax import checkpoint, jsontext  # noqa: E402
from mnistsoftmax.cli import main  # noqa: E402
from mnistsoftmax.models import build_model  # noqa: E402
from mnistsoftmax.web.app import create_app  # noqa: E402
from mnistsoftmax.web.catalog import Catalog  # noqa: E402
from tests.conftest import write_dataset  # noqa: E402
from tests.test_serve import BASE, drawn_seven, start_server  # noqa: E402

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A runs folder with one small mlp checkpoint and a metrics file holding NaN, and a client."""
    root = tmp_path_factory.mktemp("hardening")
    data, runs = root / "data", root / "runs"
    write_dataset(data)
    args = ["train", "--dataset", "custom", "--data-dir", str(data), "--epochs", "1", "--hidden", "8",
            "--out", str(runs / "latest.npz")]  # fmt: skip
    assert CliRunner().invoke(main, args).exit_code == 0
    # What another version or a crash may leave: NaN and Infinity in a metrics file.
    with open(checkpoint.metrics_path(runs / "latest.npz"), "a", encoding="utf-8") as f:
        f.write('{"type": "epoch", "epoch": 9, "step": 9, "train_loss": NaN, "val_loss": Infinity}\n')
    return runs, data, TestClient(create_app(Catalog(runs), "127.0.0.1", 8765), base_url=BASE)


def is_json_error(response) -> bool:
    return (
        400 <= response.status_code < 500 and set(response.json()) == {"error"} and "\n" not in response.json()["error"]
    )


@pytest.mark.parametrize(
    "method, path, kwargs",
    [
        ("POST", "/api/predict?label=%C2%B2", {"content": drawn_seven()}),  # '²'.isdigit() is true
        ("POST", "/api/predict?label=-1", {"content": drawn_seven()}),
        ("POST", "/api/predict", {"content": b"[" * 1000 + b"]" * 1000, "headers": JSON}),
        ("POST", "/api/predict", {"content": b'{"pixels": [[NaN]]}', "headers": JSON}),
        ("POST", "/api/runs", {"content": b"[" * 1000 + b"]" * 1000, "headers": JSON}),
        ("POST", "/api/runs", {"content": b'{"lr": NaN}', "headers": JSON}),
        ("POST", "/api/runs", {"json": {"lr": "nan"}}),
        ("POST", "/api/runs", {"json": {"seed": "1\x00"}}),
        ("POST", "/api/runs", {"json": {"dataset": "x" * 200_000}}),
        ("POST", "/api/runs", {"json": {"data-dir": "/proc"}}),
        ("POST", "/api/runs", {"json": {"mirror": "http://127.0.0.1:9/"}}),
        ("POST", "/api/runs/latest/stop", {"content": b"{}"}),  # JSON only
        ("GET", "/api/runs/nope/events", {"headers": {"Last-Event-ID": "\u00b2".encode("latin-1")}}),
        # the second pass: numbers no machine holds, fields the query string refuses, sizes
        ("POST", "/api/predict", {"content": b'{"pixels": [[0]], "lr": 1' + b"0" * 400 + b"}", "headers": JSON}),
        ("POST", "/api/predict?lr=1" + "0" * 400, {"content": drawn_seven()}),
        ("POST", "/api/predict", {"content": b'{"pixels": [[1' + b"0" * 400 + b"]]}", "headers": JSON}),
        ("POST", "/api/predict", {"json": {"pixels": [[0]], "colour": "red"}}),
        ("POST", "/api/runs", {"json": {"epochs": 10**400}}),
        ("POST", "/api/runs", {"json": {"hidden": 3_000_000}}),
        ("POST", "/api/runs", {"json": {"hidden": "1e17"}}),
        ("POST", "/api/runs", {"json": {"lr": 10**400}}),
    ],
)
def test_hostile_requests_get_a_4xx_with_one_line(served, method, path, kwargs):
    """Each example of the hardening issue: a 4xx {"error": one line}, never a 500."""
    _, _, client = served
    assert is_json_error(client.request(method, path, **kwargs))


def test_a_last_event_id_that_is_not_ascii_digits_starts_from_the_first_event(served):
    _, _, client = served
    with client.stream("GET", "/api/runs/latest/events", headers={"Last-Event-ID": "\u00b2".encode("latin-1")}) as r:
        assert r.status_code == 200 and next(r.iter_lines()) == "id: 0"


def test_a_float_image_with_an_infinite_pixel_is_refused(served):
    _, _, client = served
    pixels = np.zeros((40, 40), np.float32)
    pixels[10:30, 18:22] = 1
    pixels[0, 0] = np.inf
    out = io.BytesIO()
    Image.fromarray(pixels, mode="F").save(out, format="TIFF")
    r = client.post("/api/predict", content=out.getvalue())
    assert is_json_error(r) and "not finite" in r.json()["error"]


def test_readers_survive_nan_left_in_a_metrics_file(served):
    """A metrics file holding NaN and Infinity: the runs list answers 200, the events stream and
    read_metrics give null; no output of the tool holds NaN or Infinity."""
    runs, _, client = served
    r = client.get("/api/runs")
    assert r.status_code == 200 and "NaN" not in r.text and "Infinity" not in r.text
    records = checkpoint.read_metrics(runs / "latest.npz")
    assert records[-1]["train_loss"] is None and records[-1]["val_loss"] is None
    with client.stream("GET", "/api/runs/latest/events") as stream:
        text = "".join(stream.iter_text())
    assert '"train_loss": null' in text and "NaN" not in text and "Infinity" not in text


def test_json_out_never_holds_nan():
    assert jsontext.dumps({"a": math.nan, "b": [math.inf, -math.inf, 1.5]}) == '{"a": null, "b": [null, null, 1.5]}'
    with pytest.raises(ValueError, match="nested"):
        jsontext.loads("[" * 100 + "]" * 100)
    with pytest.raises(ValueError, match="not a number JSON has"):
        jsontext.loads('{"lr": NaN}', strict=True)


def test_non_finite_weights_are_refused_at_load(tmp_path):
    model = build_model("linear", np.random.default_rng(0))
    model.params["W"][3, 4] = np.nan
    path = tmp_path / "nan.npz"
    checkpoint.save(path, model, {"normalization": {"mean": 0.1, "std": 0.3}})
    with pytest.raises(checkpoint.CheckpointError, match="parameter W holds values that are not finite"):
        checkpoint.load(path)


def test_a_checkpoint_declaring_gigabytes_or_strangers_is_refused_before_reading(tmp_path):
    """The zip's directory is read first: an unknown member, or members declaring more than the
    limit, are refused without loading anything."""
    import zipfile

    good = tmp_path / "good.npz"
    checkpoint.save(good, build_model("linear", np.random.default_rng(0)), {"normalization": {"mean": 0, "std": 1}})
    stranger = tmp_path / "stranger.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(stranger, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr("extra.npy", b"\x00" * 1000)
    with pytest.raises(checkpoint.CheckpointError, match="it holds 'extra.npy'"):
        checkpoint.load(stranger)
    big = tmp_path / "big.npz"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as dst:
        with dst.open("W.npy", "w", force_zip64=True) as f:  # 1.1 GB of zeros, a megabyte compressed
            chunk = b"\x00" * (1 << 24)
            for _ in range(70):
                f.write(chunk)
    with pytest.raises(checkpoint.CheckpointError, match="above the limit"):
        checkpoint.load(big)


def test_fifo_checkpoint_and_config_are_refused_not_waited_on(tmp_path):
    """A FIFO would block the read forever: refused at once, exit 1 (checkpoint) or 2 (config)."""
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    result = CliRunner().invoke(main, ["eval", str(fifo)])
    assert result.exit_code == 1 and "not a regular file" in result.stderr
    config = tmp_path / "c.toml"
    os.mkfifo(config)
    result = CliRunner().invoke(main, ["train", "--config", str(config)])
    assert result.exit_code == 2 and "not a regular file" in result.stderr


@pytest.mark.parametrize(
    "content, message",
    [(b"\xff\xfe\x00l\x00r", "not a text file in UTF-8"), (b"a = " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
     (b"# " + b"x" * (2 << 20), "larger than")],
)  # fmt: skip
def test_config_files_that_are_not_config_files(tmp_path, content, message):
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    result = CliRunner().invoke(main, ["train", "--config", str(path)])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


def test_output_into_a_closed_pipe_is_quiet(served, tmp_path):
    """`predict ... | head -2` (eval | head likewise): no 'Broken pipe' error, no traceback; the
    status of a SIGPIPE. 1,500 answers (about 100 kB) outgrow the pipe's buffer, so the writer
    meets the closed pipe whatever the timing."""
    runs, _, _ = served
    image = tmp_path / "seven.png"
    image.write_bytes(drawn_seven())
    files = " ".join([str(image)] * 1500)
    command = (f"{sys.executable} -m mnistsoftmax predict {files} --checkpoint {runs / 'latest.npz'} | head -2; "
               f"echo status ${{PIPESTATUS[0]}}")  # fmt: skip
    proc = subprocess.run(command, shell=True, capture_output=True, text=True, executable="/bin/bash")
    assert proc.stderr == "" and proc.stdout.splitlines()[-1] == "status 141", proc.stderr[-500:]


def test_save_preprocessed_never_overwrites(served, tmp_path):
    """Two inputs with the same name: NAME.28x28.png and NAME-2.28x28.png."""
    runs, _, _ = served
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "seven.png").write_bytes(drawn_seven())
    out = tmp_path / "out"
    sources = [str(tmp_path / "a/seven.png"), str(tmp_path / "b/seven.png")]
    args = ["predict", *sources, "--checkpoint", str(runs / "latest.npz"), "--save-preprocessed", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["seven-2.28x28.png", "seven.28x28.png"]


def test_bound_to_every_address_it_answers_the_machines_own(served):
    """serve --host 0.0.0.0: a Host naming an address of this machine (127.0.0.2 is one, on the
    loopback) is served; another host is refused."""
    runs, _, _ = served
    client = TestClient(create_app(Catalog(runs), "0.0.0.0", 8765), base_url="http://127.0.0.2:8765")
    assert client.get("/api/checkpoints").status_code == 200
    assert client.get("/api/checkpoints", headers={"Host": "192.0.2.77:8765"}).status_code == 403
    assert client.get("/api/checkpoints", headers={"Host": "127.0.0.2:9999"}).status_code == 403


# ---- fuzzing: arbitrary JSON bodies and checkpoint metadata

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
OPTION_KEYS = st.sampled_from(["epochs", "lr", "model", "hidden", "dataset", "seed", "hflip", "mirror", "x", "resume"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(OPTION_KEYS, JSON_VALUES, max_size=4) | JSON_VALUES)
def test_fuzzed_run_bodies_get_a_4xx_or_start(served, monkeypatch, body):
    """Any JSON to POST /api/runs: a 4xx with one line, or (valid options) a start; never a 500."""
    from mnistsoftmax.web import trainer

    runs, _, client = served
    started = []
    monkeypatch.setattr(trainer.Trainer, "_spawn", lambda self, *a: started.append(a) or _Stub())
    r = client.post("/api/runs", content=json.dumps(body, allow_nan=True), headers=JSON)
    assert r.status_code == 201 or is_json_error(r), (body, r.status_code, r.text)


class _Stub:
    name = "stub"
    running = False


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pixels=JSON_VALUES, label=JSON_VALUES, snapshot=JSON_VALUES)
def test_fuzzed_predict_bodies_get_a_4xx_or_an_answer(served, pixels, label, snapshot):
    _, _, client = served
    body = json.dumps({"pixels": pixels, "label": label, "snapshot": snapshot}, allow_nan=True)
    r = client.post("/api/predict", content=body, headers=JSON)
    assert r.status_code == 200 or is_json_error(r), (pixels, label, r.status_code, r.text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.dictionaries(st.sampled_from(["config", "class_names", "normalization", "dataset", "metrics", "x"]),
                             JSON_VALUES, max_size=3),
       config=st.dictionaries(OPTION_KEYS, JSON_VALUES, max_size=4))  # fmt: skip
@example(extra={"metrics": {"\n": False}}, config={})  # a key with a newline was echoed as it was
def test_fuzzed_checkpoint_metadata_is_loaded_or_refused_in_one_line(tmp_path_factory, extra, config):
    """Whatever the metadata, checkpoint.load gives a model whose explanation works, or a
    CheckpointError; nothing else comes out."""
    from mnistsoftmax.explain import explain
    from mnistsoftmax.inference import Normalization, initial_model

    path = tmp_path_factory.mktemp("meta") / "m.npz"
    meta = {"normalization": {"mean": 0.1, "std": 0.3}, "config": {"model": "mlp", "hidden": 4, "seed": 0, **config},
            **extra}  # fmt: skip
    checkpoint.save(path, build_model("mlp", np.random.default_rng(0), 4), meta)
    try:
        model, loaded = checkpoint.load(path)
    except checkpoint.CheckpointError as exc:
        assert "\n" not in str(exc)
        return
    explain(model, Normalization(**loaded["normalization"]), np.zeros((28, 28), np.uint8), 3, initial_model(loaded))


# ---- a server killed under its run


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP])
def test_a_page_started_run_outlives_its_server(tmp_path, sig):
    """SIGKILL or SIGHUP of serve mid-run: the worker, in its own session and writing to a file,
    finishes its checkpoint; a restarted server lists it as finished."""
    data, runs = tmp_path / "data", tmp_path / "runs"
    write_dataset(data, n_train=4000, n_test=200)
    env = {"MNISTSOFTMAX_RUNS_DIR": str(runs)}
    proc, url = start_server("--data-dir", data, env=env)
    client_body = json.dumps({"dataset": str(data.resolve()), "epochs": 6, "hidden": 64, "batch-size": 16})
    import urllib.request

    req = urllib.request.Request(url + "api/runs", data=client_body.encode(), method="POST", headers=JSON)
    run = json.loads(urllib.request.urlopen(req, timeout=30).read())["id"]
    deadline = time.monotonic() + 60
    while not list(runs.glob(f".{run}.metrics.jsonl.*.partial")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 120
    while not (runs / f"{run}.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    model, meta = checkpoint.load(runs / f"{run}.npz")
    assert checkpoint.read_metrics(runs / f"{run}.npz")[-1]["type"] == "test"
    again, url = start_server(env=env)
    try:
        listed = json.loads(urllib.request.urlopen(url + "api/runs", timeout=30).read())
        assert {r["id"]: r["status"] for r in listed}[run] == "finished"
    finally:
        again.send_signal(signal.SIGINT)
        again.communicate(timeout=60)


def _rewritten(good, path, replace: dict[str, bytes]):
    """A copy of the checkpoint `good` with the members named in `replace` given new bytes."""
    import zipfile

    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, replace.pop(item.filename, None) or src.read(item))
        for name, data in replace.items():
            dst.writestr(name, data)
    return path


def _npy_header(shape, descr="<f4") -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


@pytest.mark.parametrize(
    "replace, message",
    [
        ({"W.npy": b"not an npy file at all"}, "not a readable mnistsoftmax checkpoint"),
        ({"W.npy": _npy_header((784, 25_000_000)) + b"\x00" * 4000}, "declares 78,400,000,000 bytes of data and holds"),
        ({"W.npy": _npy_header((784, 10), "<f16") + b"\x00" * (784 * 10 * 16)}, "holds float128 values"),
        ({"W.npy": _npy_header((784, 10), "|O")}, "object arrays, which are never loaded"),
        ({"W.npy": _npy_header((784, 10, 1)) + b"\x00" * (784 * 10 * 4)}, "has the shape (784, 10, 1)"),
        ({"W2": b"\x00" * 100}, "is not an NPY file"),
        ({"W.npy": b"\x93NUMPY\x03\x00"}, "version (3, 0)"),
    ],
    ids=["raw-bytes", "declares-73-GiB", "float128", "object", "three-dimensional", "not-npy-name", "npy-version-3"],
)
def test_every_member_is_checked_by_its_header_before_its_data(tmp_path, replace, message):
    """A member that is not an NPY file, or declares a shape its bytes do not hold, or a dtype or
    shape no parameter has: one line naming the file, before anything is allocated."""
    good = tmp_path / "good.npz"
    checkpoint.save(good, build_model("linear", np.random.default_rng(0)), {"normalization": {"mean": 0, "std": 1}})
    import re

    bad = _rewritten(good, tmp_path / "bad.npz", dict(replace))
    with pytest.raises(checkpoint.CheckpointError, match=re.escape(message)):
        checkpoint.load(bad)


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"metrics": "x"}, "metrics are not an object"),
        ({"metrics": {"test_accuracy": {"a": 1}}}, 'metric "test_accuracy"'),
        ({"metrics": {"test_accuracy": 1.5}}, "is not in [0, 1]"),
        ({"temperature": -1}, "temperature -1 is not a number from 0.001 to 1000"),
        ({"temperature": 0}, "temperature 0 is not"),
        ({"temperature": "1.2"}, "temperature 1.2 is not"),
        ({"temperature": [1]}, "temperature [1] is not"),
        ({"temperature": 10**400}, "temperature 1000000"),
        ({"normalization": {"mean": 0.1, "std": 1e-320}}, "overflows float32"),
        ({"normalization": {"mean": 1e300, "std": 1e-10}}, "overflows float32"),
    ],
)
def test_metadata_is_checked_by_its_schema_wherever_it_is_read(tmp_path, meta, message):
    """Metadata of the wrong type or range (among them a temperature of -1, which turned a 7 into
    a 6 at 96 %) is refused in one line by load and by read_meta, which the listings use."""
    import re

    path = tmp_path / "m.npz"
    checkpoint.save(path, build_model("linear", np.random.default_rng(0)),
                    {"normalization": {"mean": 0.1, "std": 0.3}, **meta})  # fmt: skip
    for read in (checkpoint.load, checkpoint.read_meta):
        with pytest.raises(checkpoint.CheckpointError, match=re.escape(message)):
            read(path)


def test_metadata_above_its_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    """A metadata member larger than MAX_META_BYTES (200 MB once ended in an empty out-of-memory
    message) is refused by its header, here with the limit lowered to 1 kB."""
    path = tmp_path / "m.npz"
    checkpoint.save(path, build_model("linear", np.random.default_rng(0)),
                    {"normalization": {"mean": 0.1, "std": 0.3}, "note": "x" * 5000})  # fmt: skip
    monkeypatch.setattr(checkpoint, "MAX_META_BYTES", 1024)
    with pytest.raises(checkpoint.CheckpointError, match="bytes of metadata, above the limit of 1,024"):
        checkpoint.read_meta(path)


def test_an_out_of_memory_error_says_why(tiny_data, monkeypatch):
    """A MemoryError anywhere in a command is one line with numpy's reason, never an empty one."""
    from mnistsoftmax import training

    def fail(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(training, "prepare_run", fail)
    result = CliRunner().invoke(main, ["train", "--dataset", "custom", "--data-dir", str(tiny_data)])
    assert (
        result.exit_code == 1 and result.stderr.strip().splitlines()[-1] == "Error: out of memory: an allocation failed"
    )


@pytest.mark.parametrize(
    "path, kwargs",
    [
        ("/api/predict?label=" + "7" * 60_000, {"content": b"x"}),
        ("/api/predict", {"json": {"pixels": [[0]], "label": "7" * 6_000_000}}),
        ("/api/runs", {"json": {"loss": "x" * 7_000_000}}),
        ("/api/runs", {"json": {"x" * 7_000_000: 1}}),
    ],
    ids=["label-in-query", "label-in-body", "option-value", "option-key"],
)
def test_errors_quote_a_short_prefix_of_what_they_refuse(served, path, kwargs):
    """A 6 MB label or a 7 MB option comes back as a short, escaped prefix, not whole (the message
    may list what is expected)."""
    _, _, client = served
    response = client.post(path, **kwargs)
    assert is_json_error(response) and len(response.json()["error"]) < 500, response.json()["error"][:500]


def test_numbers_no_machine_holds_are_one_line_at_every_door(tmp_path):
    """--epochs of 400 digits, hidden = 1e17 in a TOML file, api.train(epochs=10**400): one line."""
    import mnistsoftmax

    result = CliRunner().invoke(main, ["train", "--epochs", "9" * 400])
    assert result.exit_code == 2 and "is not in the range 1<=x<=10000" in result.stderr
    assert len(result.stderr.splitlines()[-1]) < 200
    config = tmp_path / "c.toml"
    config.write_text("hidden = 1e17\n")
    result = CliRunner().invoke(main, ["train", "--config", str(config)])
    assert result.exit_code == 2 and "hidden = 1e+17 should be int (or a list of int), not float" in result.stderr
    config.write_text("hidden = 100000000000000000\n")
    result = CliRunner().invoke(main, ["train", "--config", str(config)])
    assert result.exit_code == 2 and "is not in the range 1<=x<=65536" in result.stderr
    for options in ({"epochs": 10**400}, {"lr": 10**400}, {"seed": 2**64}):
        with pytest.raises(mnistsoftmax.MnistSoftmaxError, match="is not"):
            mnistsoftmax.train(**options)


def test_small_mismatches_of_the_first_pass(served, tmp_path):
    """Stopping a run that is not there is a 404 whatever the body; an Origin of this host and port
    but another scheme, or two Origin (or Host) headers, are refused; a server bound to every
    address tells a refused user an address to open; logs that killed workers left are removed
    when a server starts on the folder."""
    runs, _, _ = served
    client = TestClient(create_app(Catalog(runs), "127.0.0.1", 8765), base_url=BASE)  # a trainer of its own
    assert client.post("/api/runs/NOPE/stop").status_code == 404
    assert client.post("/api/runs/NOPE/stop", content=b"not json").status_code == 404
    own = BASE.removeprefix("http://")
    for headers in ({"Origin": f"https://{own}"}, {"Origin": f"ftp://{own}"}):
        response = client.post("/api/runs", json={}, headers=headers)
        assert response.status_code == 403 and "are refused" in response.json()["error"]
    two = [("host", own), ("origin", f"http://{own}"), ("origin", "http://evil.example")]
    response = client.post("/api/runs/NOPE/stop", json={}, headers=two)
    assert response.status_code == 403 and "one Host and at most one Origin" in response.json()["error"]
    wildcard = TestClient(create_app(Catalog(runs), "0.0.0.0", 8765), base_url="http://192.0.2.77:8765")
    message = wildcard.get("/api/checkpoints").json()["error"]
    assert "open it as http://127.0.0.1:8765/" in message and "0.0.0.0" not in message
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / ".run-20260101-000000.log").write_text("killed\n")
    (folder / ".other.log").write_text("not ours\n")
    TestClient(create_app(Catalog(folder), "127.0.0.1", 8765), base_url=BASE)
    assert sorted(p.name for p in folder.iterdir()) == [".other.log"]


def test_idx_files_are_judged_by_their_header_before_their_size(tmp_path):
    """A 4 GiB sparse label file whose header announces 10 labels is refused after its header
    (it was read and hashed for 22 s); a small .gz announcing three billion labels reads what it
    holds, not what it claims (it ended in an empty out-of-memory message); identify names such a
    folder custom from the header alone."""
    import gzip

    from mnistsoftmax import datasets

    sparse = tmp_path / "t10k-labels-idx1-ubyte"
    sparse.write_bytes(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + bytes(10))
    os.truncate(sparse, 4 << 30)
    with pytest.raises(datasets.DataError, match="has trailing bytes: the header announces 18 bytes"):
        datasets.read_idx_bytes(sparse)
    claims = tmp_path / "claims.gz"
    claims.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (3_000_000_000).to_bytes(4, "big") + bytes(100)))
    data = datasets.read_idx_bytes(claims)
    assert len(data) == 108
    with pytest.raises(datasets.DataError, match="truncated"):
        datasets.parse_idx(data, "claims.gz", 1)
    write_dataset(tmp_path / "set")
    os.truncate(tmp_path / "set" / "t10k-labels-idx1-ubyte", 4 << 30)
    assert datasets.identify(tmp_path / "set") == "custom"


def test_a_config_with_a_key_of_thousands_of_parts_is_refused_at_once(tmp_path):
    """TOML with 100,000 dotted key parts (tomllib's time grows with their square: 11 s at 20,000)
    is refused before parsing, in one line; the shipped configs still load."""
    from mnistsoftmax import config

    path = tmp_path / "dotted.toml"
    path.write_text("a" + ".a" * 100_000 + " = 1\n")
    result = CliRunner().invoke(main, ["train", "--config", str(path)])
    assert result.exit_code == 2 and "has a dotted key or number of 100,001 parts" in result.stderr
    assert all(config.load(name) for name in config.shipped())


def test_weights_that_overflow_give_an_error_not_nan(tmp_path):
    """Weights 1e30 times their start, each finite, make the logits infinite: predict and the page refuse to answer in
    one line (a 422) instead of giving NaN probabilities with a 200."""
    model = build_model("mlp", np.random.default_rng(0), 8)
    model.params["W1"] *= 1e30  # each weight finite, their products past what float32 holds
    model.params["W2"] *= 1e30
    runs = tmp_path / "runs"
    checkpoint.save(runs / "latest.npz", model, {"normalization": {"mean": 0.1, "std": 0.3}})
    image = tmp_path / "seven.png"
    image.write_bytes(drawn_seven())
    result = CliRunner().invoke(main, ["predict", str(image), "--checkpoint", str(runs / "latest.npz")])
    assert result.exit_code == 1 and "logits for this input are not finite" in result.stderr
    client = TestClient(create_app(Catalog(runs), "127.0.0.1", 8765), base_url=BASE)
    response = client.post("/api/predict", content=drawn_seven())
    assert response.status_code == 422 and is_json_error(response)


def _stopped_run(folder, tiny_data, stored_out):
    """An interrupted run in `folder` whose stored `out` is rewritten to `stored_out`, as a crafted
    file would carry it."""
    import itertools

    from mnistsoftmax import options, runs
    from mnistsoftmax.training import Hooks

    config = options.resolve({"dataset": "custom", "data_dir": str(tiny_data), "hidden": [8], "epochs": 1,
                              "probe_every": 0, "snapshots": 0})  # fmt: skip
    calls = itertools.count()
    with pytest.raises(runs.Stopped) as stopped:
        runs.execute(config, folder / "cut.npz", Hooks(should_stop=lambda: next(calls) == 2))
    saved = stopped.value.saved
    model, meta, state = checkpoint.load_resumable(saved)
    checkpoint.save(saved, model, {**meta, "out": str(stored_out)}, optimizer_state=state)
    return saved


def test_a_resumed_file_does_not_choose_where_to_write(tmp_path, tiny_data):
    """The `out` stored in an interrupted file is never followed: without --out the checkpoint lands
    beside the resumed file (cut.npz for cut.interrupted.npz); a victim named by the file stays as it was."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "important.txt").write_text("keep me")
    folder = tmp_path / "runs"
    folder.mkdir()
    saved = _stopped_run(folder, tiny_data, victim / "important.txt")
    result = CliRunner().invoke(main, ["train", "--resume", str(saved)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in victim.iterdir()) == ["important.txt"]
    assert (victim / "important.txt").read_text() == "keep me"
    assert sorted(p.name for p in folder.iterdir()) == ["cut.metrics.jsonl", "cut.npz"]
    assert checkpoint.load(folder / "cut.npz")[0].hidden_widths == [8]


def test_no_command_writes_over_the_file_it_reads(tmp_path, tiny_data, monkeypatch):
    """`export -o` naming its own checkpoint (or the metrics beside it) and `train --resume --out`
    naming the resumed file are refused in one line, before anything is written; export without -o
    writes NAME.FORMAT in the current folder, and refuses to replace one already there."""
    folder = tmp_path / "runs"
    folder.mkdir()
    saved = _stopped_run(folder, tiny_data, folder / "elsewhere.npz")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--resume", str(saved), "--out", str(saved)])
    assert result.exit_code == 2 and "is a file --resume reads" in result.stderr
    assert "Traceback" not in result.output
    trained = tmp_path / "a.npz"
    assert runner.invoke(main, ["train", "--dataset", "custom", "--data-dir", str(tiny_data), "--hidden", "8",
                                "--epochs", "1", "--snapshots", "0", "--out", str(trained)]).exit_code == 0  # fmt: skip
    kept = trained.read_bytes(), checkpoint.metrics_path(trained).read_bytes()
    for target in (trained, checkpoint.metrics_path(trained)):
        result = runner.invoke(main, ["export", str(trained), "--format", "safetensors", "-o", str(target)])
        assert result.exit_code == 2 and "is a file export reads" in result.stderr, result.output
    assert (trained.read_bytes(), checkpoint.metrics_path(trained).read_bytes()) == kept
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["export", str(trained), "--format", "safetensors"])
    assert result.exit_code == 0 and result.stdout.strip() == "a.safetensors"
    written = (tmp_path / "a.safetensors").read_bytes()
    result = runner.invoke(main, ["export", str(trained), "--format", "safetensors"])
    assert result.exit_code == 2 and "a.safetensors exists" in result.stderr
    assert (tmp_path / "a.safetensors").read_bytes() == written


def _stopped_adam(folder, tiny_data):
    import itertools

    from mnistsoftmax import options, runs
    from mnistsoftmax.training import Hooks

    config = options.resolve({"dataset": "custom", "data_dir": str(tiny_data), "hidden": [8], "epochs": 2,
                              "probe_every": 0, "snapshots": 0, "optimizer": "adam", "batch_size": 64})  # fmt: skip
    calls = itertools.count()
    with pytest.raises(runs.Stopped) as stopped:
        runs.execute(config, folder / "cut.npz", Hooks(should_stop=lambda: next(calls) == 3))
    return stopped.value.saved


def _resume_changes():
    """Each a hostile edit of an interrupted file: (what, edit(meta, state) in place)."""

    def resume(key, value):
        return lambda meta, state: meta["resume"].__setitem__(key, value)

    def array(key, value):
        return lambda meta, state: state.__setitem__(key, np.full_like(state[key], value))

    changes = {
        "adam steps -1": array("steps", -1), "adam steps 1e18": array("steps", 10**18),
        "adam steps 2**63-1": array("steps", 2**63 - 1), "adam steps 10**15": array("steps", 10**15),
        "adam steps off by one": lambda meta, state: state.__setitem__("steps", state["steps"] + 1),
        "epoch '1'": resume("epoch", "1"), "epoch 1.5": resume("epoch", 1.5), "epoch 10**6": resume("epoch", 10**6),
        "epoch 0": resume("epoch", 0), "epoch -2": resume("epoch", -2), "epoch true": resume("epoch", True),
        "batch -5": resume("batch", -5), "batch 10**9": resume("batch", 10**9),
        "step -100": resume("step", -100), "step 'x'": resume("step", "x"), "step off": resume("step", 2),
        "loss_sum 'x'": resume("loss_sum", "x"), "seconds 'x'": resume("seconds", "x"),
        "window null": resume("window", None), "correct 10**400": resume("correct", 10**400),
        "correct beyond the samples": resume("correct", 10**6), "rng_state []": resume("rng_state", []),
        "resume a list": lambda meta, state: meta.__setitem__("resume", [1]),
        "resume foreign key": resume("epochs", 1),
        "records []": lambda meta, state: meta.__setitem__("records", []),
        "records ['x']": lambda meta, state: meta.__setitem__("records", ["x"]),
        "records [{}]": lambda meta, state: meta.__setitem__("records", [{}]),
        "records null": lambda meta, state: meta.__setitem__("records", None),
        "negative second moments": array("moment2.W1", -1.0),
        "moments 3e38": array("moment1.W1", 3e38), "moments 1e38": array("moment2.b2", 1e38),
    }  # fmt: skip
    return changes


@pytest.mark.parametrize("what", list(_resume_changes()))
def test_a_hostile_resumed_state_is_one_line_before_any_training(tmp_path, tiny_data, what):
    """Every hostile resume state of the third hardening pass: `train --resume` answers one line
    naming the file (exit 1), trains nothing and writes nothing: the folder is as it was."""
    folder = tmp_path / "runs"
    folder.mkdir()
    saved = _stopped_adam(folder, tiny_data)
    model, meta, state = checkpoint.load_resumable(saved)
    state = {k: v.copy() for k, v in state.items()}
    _resume_changes()[what](meta, state)
    checkpoint.save(saved, model, meta, optimizer_state=state)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = CliRunner().invoke(main, ["train", "--resume", str(saved)])
    assert result.exit_code == 1, (what, result.output)
    # progress lines may come first (resuming ..., config: ...); the error is one line naming the file
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and errors[0] == result.stderr.strip().splitlines()[-1], (what, result.output)
    assert str(saved) in errors[0] and "Traceback" not in result.output and "epoch 1/" not in result.output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_velocity_of_1e38_is_refused_as_a_saved_state(tmp_path, tiny_data):
    """SGD's saved velocity at 1e38 is the file's fault, not a learning rate's: one line naming it."""
    folder = tmp_path / "runs"
    folder.mkdir()
    saved = _stopped_run(folder, tiny_data, folder / "cut.npz")
    model, meta, state = checkpoint.load_resumable(saved)
    state = {k: (np.full_like(v, 1e38) if k == "velocity.W1" else v) for k, v in state.items()}
    checkpoint.save(saved, model, meta, optimizer_state=state)
    result = CliRunner().invoke(main, ["train", "--resume", str(saved)])
    assert result.exit_code == 1 and "velocity.W1 holds 1e+38" in result.stderr and "diverged" not in result.stderr


def test_idle_connections_beyond_the_open_file_limit_leave_the_page_answering(tmp_path):
    """With an open-file limit of 256 (scripts/bench_serve.py does 1,100 against 1,024), 400
    connections that send nothing or half a request's headers: the page answers at once meanwhile
    (the oldest idle connection makes way for a newcomer), the server never runs out of descriptors
    (no EMFILE traceback in its log), and the half-sent ones are closed once HEADER_TIMEOUT_S has
    passed."""
    import resource
    import socket
    import urllib.request

    from mnistsoftmax.web.server import HEADER_TIMEOUT_S

    runs = tmp_path / "runs"
    runs.mkdir()
    checkpoint.save(runs / "latest.npz", build_model("linear", np.random.default_rng(0)),
                    {"normalization": {"mean": 0.1, "std": 0.3}})  # fmt: skip

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "MNISTSOFTMAX_RUNS_DIR": str(runs)}
    proc = subprocess.Popen([sys.executable, "-m", "mnistsoftmax", "serve", "--port", "0", "--no-open"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=low_limit)  # fmt: skip
    sockets = []
    try:
        url = proc.stdout.readline().split()[-1]
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        baseline = len(os.listdir(f"/proc/{proc.pid}/fd"))
        for i in range(400):
            s = socket.create_connection((host, int(port)), timeout=10)
            if i % 2:
                s.sendall(b"GET /api/checkpoints HTTP/1.1\r\nHost: " + host.encode())  # never finished
            sockets.append(s)
        started = time.perf_counter()
        with urllib.request.urlopen(url + "api/checkpoints", timeout=10) as r:
            assert r.status == 200 and json.loads(r.read())[0]["name"] == "latest"
        assert time.perf_counter() - started < 2
        assert len(os.listdir(f"/proc/{proc.pid}/fd")) < 256
        time.sleep(HEADER_TIMEOUT_S + 3)
        assert len(os.listdir(f"/proc/{proc.pid}/fd")) <= baseline + 5  # the waiting ones are closed
        with urllib.request.urlopen(url + "api/checkpoints", timeout=10) as r:
            assert r.status == 200
    finally:
        for s in sockets:
            s.close()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert "Errno 24" not in stderr and "Traceback" not in stderr and len(stderr) < 2000, stderr[-2000:]


@pytest.mark.parametrize("hidden", ["٣٢", "1_000", "２５６", "+5"])
def test_widths_are_ascii_digits_at_every_door(hidden):
    """`--hidden` took what int() takes ('٣٢' is 32, '1_000' is 1000) where the server refused it:
    one parser now, ASCII digits only, at the command line, in config files and in requests."""
    from mnistsoftmax import options

    result = CliRunner().invoke(main, ["gradcheck", "--hidden", hidden])
    assert result.exit_code == 2 and "is not an integer" in result.stderr
    with pytest.raises(options.OptionError, match="is not an integer"):
        options.check("hidden", hidden)


def test_what_one_run_may_allocate_is_bounded_at_every_door(tmp_path):
    """Each width is bounded, and so now is their product: 8 layers of 65,536 (30 G parameters) and
    two of them (4.3 G) are refused in one line by the options' check every door makes (train,
    api.train, the estimator, the page's runs API); one layer of 65,536 (52 M) is not."""
    from mnistsoftmax import api, options
    from mnistsoftmax.sklearn import SoftmaxClassifier
    from mnistsoftmax.web.trainer import OptionsError, check_options

    for widths in ([65536] * 8, [65536, 65536]):
        with pytest.raises(options.OptionError, match="parameters, more than the 67,108,864 one run may hold"):
            options.check_combination({"model": "mlp", "hidden": widths})
        with pytest.raises(options.OptionError, match="one run may hold"):
            api.train(hidden=widths, data_dir=str(tmp_path))
        with pytest.raises(ValueError, match="one run may hold"):
            SoftmaxClassifier(hidden=widths).fit(np.zeros((4, 784), np.float32), np.arange(4))
        with pytest.raises(OptionsError, match="one run may hold"):
            check_options({"hidden": ",".join(map(str, widths))})
    options.check_combination({"model": "mlp", "hidden": [65536]})
    result = CliRunner().invoke(main, ["train", "--hidden", "65536,65536", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and result.stderr.strip().splitlines()[-1].startswith("Error: --hidden 65536,65536")


def test_a_large_opening_image_is_blamed_on_the_image_not_the_model(tmp_path):
    """explore(linear, big_photo, snapshots=False) said "export a smaller model": the image's bytes
    are bounded apart from the page's, so a 4 MB photo opens on a linear model's page without
    snapshots (as it did with them, under the larger limit), and one over 16 MB names the image."""
    from mnistsoftmax import export

    checkpoint.save(tmp_path / "linear.npz", build_model("linear", np.random.default_rng(0)),
                    {"normalization": {"mean": 0.1, "std": 0.3}})  # fmt: skip
    model, meta = checkpoint.load(tmp_path / "linear.npz")
    photo = os.urandom(4 << 20)
    page = export.to_html(model, meta, "linear", None, initial={"file": photo, "type": "image/jpeg", "label": 7})
    assert len(page) > export.HTML_LIMIT  # the image's share took it over the model's limit: allowed
    with pytest.raises(export.ExportError, match="the image the page opens with weighs .* give a smaller image"):
        export.to_html(model, meta, "linear", None, initial={"file": os.urandom(13 << 20), "type": "image/jpeg"})


def test_checkpoints_appearing_and_vanishing_while_the_page_polls(tmp_path):
    """Files written and deleted in the runs folder while /api/checkpoints and /api/predict are
    asked again and again (a FileNotFoundError between the listing and a stat gave 500s): every
    answer is 200, the good checkpoint always listed."""
    import shutil
    import threading

    runs = tmp_path / "runs"
    runs.mkdir()
    model = build_model("mlp", np.random.default_rng(0), hidden=8)
    checkpoint.save(runs / "latest.npz", model, {"normalization": {"mean": 0.1, "std": 0.3}})
    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set():
            shutil.copy(runs / "latest.npz", runs / f"run{i % 7}.npz")
            (runs / f"run{(i + 3) % 7}.npz").unlink(missing_ok=True)
            i += 1

    client = TestClient(create_app(Catalog(runs), "127.0.0.1", 8765), base_url=BASE)
    seven = drawn_seven()
    worker = threading.Thread(target=churn)
    worker.start()
    try:
        statuses = []
        for _ in range(150):
            listing = client.get("/api/checkpoints")
            statuses.append(listing.status_code)
            assert "latest" in [e["name"] for e in listing.json()]
            answer = client.post("/api/predict", content=seven, headers={"Content-Type": "image/png"})
            statuses.append(answer.status_code)
    finally:
        stop.set()
        worker.join()
    assert set(statuses) == {200}
