"""serve: the JSON API through Starlette's test client (each field, each error, each refusal), the
numbers of explain(), `predict --explain`, and the server process itself."""

import base64
import builtins
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
from PIL import Image, ImageDraw

from mnistsoftmax import checkpoint
from mnistsoftmax.cli import main
from mnistsoftmax.explain import softmax_steps

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from mnistsoftmax.web import http as web_http  # noqa: E402
from mnistsoftmax.web.app import create_app  # noqa: E402
from mnistsoftmax.web.catalog import Catalog  # noqa: E402

BASE = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A runs folder with two checkpoints trained on synthetic digits: an mlp (`latest`) and a
    linear (`lin`); plus a file that is not a checkpoint, which the list leaves out."""
    from tests.conftest import write_dataset

    root = tmp_path_factory.mktemp("serve")
    data = root / "data"
    write_dataset(data)
    folder = root / "runs"
    runner = CliRunner()
    common = ["train", "--dataset", "custom", "--data-dir", str(data), "--epochs", "2"]
    for args in ([*common, "--hidden", "16", "--out", str(folder / "latest.npz")],
                 [*common, "--model", "linear", "--out", str(folder / "lin.npz")]):  # fmt: skip
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
    (folder / "junk.npz").write_bytes(b"not a checkpoint")
    return folder


@pytest.fixture
def client(runs):
    return TestClient(create_app(Catalog(runs), "127.0.0.1", 8765), base_url=BASE)


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def drawn_seven() -> bytes:
    im = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(im).line([(50, 40), (150, 40), (90, 170)], fill=0, width=14)
    return png(im)


def test_checkpoints_lists_the_runs_folder(client, runs):
    """Each finished checkpoint with its name, model, data set and test accuracy; a file that is
    not a checkpoint is left out."""
    listed = client.get("/api/checkpoints")
    assert listed.status_code == 200
    entries = {e["name"]: e for e in listed.json()}
    assert set(entries) == {"latest", "lin"}
    assert entries["latest"]["model"] == "mlp" and entries["latest"]["hidden"] == [16]
    assert entries["lin"]["model"] == "linear" and entries["lin"]["dataset"] == "custom"
    for name, e in entries.items():
        _, meta = checkpoint.load(runs / f"{name}.npz")
        assert e["accuracy"] == meta["metrics"]["test_accuracy"]


def test_predict_an_image_file_equals_predict_json(client, runs, tmp_path):
    """The raw bytes of an image file: every field, and probabilities equal to `predict --json`
    on the same file to 1e-6."""
    image = tmp_path / "seven.png"
    image.write_bytes(drawn_seven())
    answer = client.post("/api/predict", content=image.read_bytes(), headers={"Content-Type": "image/png"})
    assert answer.status_code == 200, answer.text
    r = answer.json()
    for key in ("digit", "probabilities", "logits", "log_softmax", "preprocessed", "exp_shifted", "exp_sum",
                "stages", "untrained", "hidden", "checkpoint"):  # fmt: skip
        assert key in r
    assert "loss" not in r and "gradient" not in r
    assert r["checkpoint"] == "latest"
    assert np.array(r["preprocessed"]).shape == (28, 28) and all(isinstance(v, int) for v in r["preprocessed"][14])
    cli = CliRunner().invoke(main, ["predict", str(image), "--json", "--checkpoint", str(runs / "latest.npz"),
                                    "--top-k", "10"])  # fmt: skip
    assert cli.exit_code == 0, cli.output
    expected = np.zeros(10)
    for c, p in json.loads(cli.stdout)[0]["top_k"]:
        expected[c] = p
    np.testing.assert_allclose(r["probabilities"], expected, atol=1e-6, rtol=0)
    assert r["digit"] == int(np.argmax(expected))
    np.testing.assert_allclose(np.exp(r["log_softmax"]), r["probabilities"], atol=1e-12)
    np.testing.assert_allclose(np.array(r["exp_shifted"]) / r["exp_sum"], r["probabilities"], atol=1e-12)
    assert r["stages"]["crop"][0] < r["stages"]["crop"][2] <= 1 and len(r["stages"]["box"]) <= 20


def test_predict_pixels_with_a_label(client):
    """JSON pixels (0 = paper) and a label: loss = -log p(label), gradient = p - onehot; untrained
    near 10 % everywhere with a loss near ln 10; the hidden units of the mlp."""
    pixels = np.zeros((100, 80), dtype=int)
    pixels[20:80, 36:44] = 255  # a 1
    r = client.post("/api/predict", json={"pixels": pixels.tolist(), "label": 3}).json()
    p = np.array(r["probabilities"])
    assert r["label"] == 3 and r["loss"] == pytest.approx(-math.log(p[3]), rel=1e-9)
    np.testing.assert_allclose(r["gradient"], p - np.eye(10)[3], atol=1e-12)
    u = r["untrained"]
    assert np.all(np.abs(np.array(u["probabilities"]) - 0.1) < 0.05) and abs(u["loss"] - math.log(10)) < 0.5
    h = r["hidden"]
    assert h["total"] == 16 and 0 <= h["active"] <= 16 and len(h["units"]) == 8
    pushes = [unit["push"] for unit in h["units"]]
    assert pushes == sorted(pushes, reverse=True)
    assert h["side"] == 28 and len(base64.b64decode(h["images"])) == 8 * 28 * 28  # uint8 pictures, 128 = 0
    # the same as an image file of those ink values, on white paper
    as_file = png(Image.fromarray((255 - pixels).astype(np.uint8), mode="L"))
    r2 = client.post("/api/predict?label=3", content=as_file).json()
    np.testing.assert_allclose(r2["probabilities"], p, atol=1e-12)


def test_choose_a_checkpoint_by_name(client):
    """`checkpoint` names one from the list; a linear model has no hidden units."""
    r = client.post("/api/predict?checkpoint=lin", content=drawn_seven()).json()
    assert r["checkpoint"] == "lin" and "hidden" not in r


@pytest.mark.parametrize(
    "query",
    ["checkpoint=nope", "checkpoint=../runs/latest", "checkpoint=/etc/passwd", "checkpoint=latest.npz",
     "checkpoint=junk"],
)  # fmt: skip
def test_unknown_checkpoints_are_404(client, query):
    """Only names from the list: paths, ../ and unknown names get 404 with a JSON message."""
    r = client.post(f"/api/predict?{query}", content=drawn_seven())
    assert r.status_code == 404 and "no checkpoint named" in r.json()["error"]


def bomb() -> bytes:
    """A PNG whose header announces 60,000 x 60,000 pixels (3.6 billion) in a few kB."""
    out = io.BytesIO()
    Image.new("1", (60000, 60000)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "body, kwargs, message",
    [
        (b"", {}, "send an image file"),
        (b"hello, not an image", {}, "not an image Pillow can read"),
        (drawn_seven()[:300], {}, "damaged or truncated"),
        (png(Image.new("L", (50, 50), 255)), {}, "blank"),
        (None, {"json": {"pixels": []}}, "non-empty 2-D"),
        (None, {"json": {"pixels": [[1, 2], [3]]}}, "rows of numbers"),
        (None, {"json": {"pixels": [[300]]}}, "between 0 and 255"),
        (None, {"json": {"pixels": [[0] * 1025]}}, "larger than 1024x1024"),
        (None, {"json": {"no": 1}}, '"pixels"'),
        (None, {"json": [1, 2]}, '"pixels"'),
        (b"{not json", {"headers": {"Content-Type": "application/json"}}, "not valid JSON"),
        (None, {"json": {"pixels": [[0, 255]], "label": 10}}, "label must be"),
        (None, {"json": {"pixels": [[0, 255]], "label": True}}, "label must be"),
        (None, {"json": {"pixels": [[0, 255]], "checkpoint": 3}}, "checkpoint must be"),
    ],
    ids=["empty", "not-an-image", "truncated", "blank", "no-rows", "ragged", "out-of-range", "too-large",
         "no-pixels", "not-an-object", "bad-json", "label-10", "label-bool", "checkpoint-number"],
)  # fmt: skip
def test_bad_inputs_are_400_with_one_line(client, body, kwargs, message):
    """Every bad body is a 400 with JSON {"error": one line}, through predict's own guards."""
    r = (
        client.post("/api/predict", content=body, **kwargs)
        if body is not None
        else client.post("/api/predict", **kwargs)
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    assert message in r.json()["error"] and "\n" not in r.json()["error"]


def test_decompression_bomb_is_refused(client):
    """An image announcing billions of pixels is refused before it is decoded."""
    r = client.post("/api/predict", content=bomb())
    assert r.status_code == 400 and "decompression bomb" in r.json()["error"]


def test_query_errors(client):
    """A bad label or an unknown field in the query is a 400."""
    assert client.post("/api/predict?label=x", content=drawn_seven()).status_code == 400
    r = client.post("/api/predict?colour=red", content=drawn_seven())
    assert r.status_code == 400 and "unknown field 'colour'" in r.json()["error"]


def test_bodies_above_the_limit_get_413(client, monkeypatch):
    """Above MAX_BODY: 413, whether the size is announced or the body streams in chunks."""
    monkeypatch.setattr(web_http, "MAX_BODY", 1000)
    r = client.post("/api/predict", content=b"x" * 1001)
    assert r.status_code == 413 and "limit of 1,000 bytes" in r.json()["error"]

    def chunks():
        for _ in range(5):
            yield b"y" * 400

    r = client.post("/api/predict", content=chunks())  # no Content-Length: chunked
    assert r.status_code == 413 and "above the limit" in r.json()["error"]


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1:9999", "localhost", "attacker.com:8765", ""])
def test_other_hosts_are_refused(client, host):
    """DNS rebinding: a Host header that is not this server's address (with its port) gets 403."""
    r = client.get("/api/checkpoints", headers={"Host": host})
    assert r.status_code == 403 and "not this server's address" in r.json()["error"]


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765"])
def test_local_hosts_are_served(client, host):
    assert client.get("/api/checkpoints", headers={"Host": host}).status_code == 200


def test_unknown_pages_and_methods_are_json(client):
    """No HTML error pages: 404 and 405 answer JSON too; the page and its files are served."""
    r = client.get("/nope")
    assert r.status_code == 404 and r.json() == {"error": "no such page: '/nope'"}
    r = client.get("/api/predict")
    assert r.status_code == 405 and "GET is not allowed" in r.json()["error"]
    assert client.get("/static/../../cli.py").status_code == 404
    page = client.get("/")
    assert page.status_code == 200 and 'data-testid="pad"' in page.text
    for name in ("main.js", "pad.js", "api.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200


def test_nothing_a_request_sends_is_written(client, runs, tmp_path, monkeypatch):
    """After good and bad requests, the runs folder and the working folder hold what they held."""
    monkeypatch.chdir(tmp_path)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in runs.iterdir())
    client.post("/api/predict?label=1", content=drawn_seven())
    client.post("/api/predict", json={"pixels": [[0, 255], [255, 0]]})
    client.post("/api/predict", content=b"junk")
    assert sorted((p.name, p.stat().st_mtime_ns) for p in runs.iterdir()) == before
    assert list(tmp_path.iterdir()) == []


def test_softmax_steps_worked_example():
    """z = [3, 4, 1]: shifted [-1, 0, -3], e^ [e^-1, 1, e^-3], softmax [0.2595, 0.7054, 0.0351];
    with label 0 the loss is -log 0.2595 = 1.3490 and the gradient [-0.7405, 0.7054, 0.0351]."""
    s = softmax_steps(np.array([3.0, 4.0, 1.0]), label=0)
    np.testing.assert_allclose(s["shifted"], [-1, 0, -3])
    np.testing.assert_allclose(s["exp_shifted"], [math.exp(-1), 1, math.exp(-3)])
    assert s["exp_sum"] == pytest.approx(1 + math.exp(-1) + math.exp(-3))
    np.testing.assert_allclose(s["probabilities"], [0.25949646, 0.70538451, 0.03511903], atol=1e-8)
    np.testing.assert_allclose(s["log_softmax"], np.log(s["probabilities"]), atol=1e-12)
    assert s["loss"] == pytest.approx(1.34901222, abs=1e-8) and s["digit"] == 1
    np.testing.assert_allclose(s["gradient"], [0.25949646 - 1, 0.70538451, 0.03511903], atol=1e-8)
    big = softmax_steps(np.array([1000.0, 2000.0, 3000.0]))
    np.testing.assert_array_equal(big["probabilities"], [0, 0, 1])


def test_predict_explain_prints_the_table(runs, tmp_path):
    """`predict IMAGE --explain --label D` prints the worked table, the loss, the hidden units and
    the untrained model; --json gives the same numbers as the API."""
    image = tmp_path / "seven.png"
    image.write_bytes(drawn_seven())
    args = ["predict", str(image), "--checkpoint", str(runs / "latest.npz"), "--explain", "--label", "7"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "e^(z-max)" in out and "softmax-onehot" in out and "sum of e^(z - max z)" in out
    assert "label 7: loss = -log p(7) = " in out and "hidden units: " in out and "of 16 fire" in out
    assert "untrained (the run's initial weights)" in out
    as_json = json.loads(CliRunner().invoke(main, [*args, "--json"]).stdout)[0]
    assert as_json["loss"] == pytest.approx(-math.log(as_json["probabilities"][7]))
    result = CliRunner().invoke(main, ["predict", str(image), "--label", "7"])
    assert result.exit_code == 2 and "--label goes with --explain" in result.stderr


def test_serve_without_the_extra_says_what_to_install(runs, monkeypatch):
    """Without Starlette or uvicorn: exit 1 and the pip command for the serve extra."""
    real_import = builtins.__import__

    def no_web(name, *args, **kwargs):
        if name.split(".")[0] in ("starlette", "uvicorn"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_web)
    result = CliRunner().invoke(main, ["serve", str(runs / "latest.npz")])
    assert result.exit_code == 1 and "pip install 'mnistsoftmax[serve]'" in result.stderr


def test_serve_refuses_a_bad_checkpoint(tmp_path):
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "missing.npz")])
    assert result.exit_code == 1 and "no checkpoint at" in result.stderr


def start_server(*args, env=None):
    """`mnistsoftmax serve ARGS --port 0 --no-open` in a process: (process, URL)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "mnistsoftmax", "serve", *map(str, args), "--port", "0",
                             "--no-open"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    line = proc.stdout.readline()
    if not line.startswith("serving on http://"):
        proc.kill()
        pytest.fail(f"serve printed {line!r}: {proc.stderr.read()}")
    return proc, line.split()[-1]


def test_serve_prints_its_url_answers_and_stops_on_ctrl_c(runs):
    """One line `serving on URL` with the port picked; the page answers at once; Ctrl-C ends it
    with status 0 and no traceback."""
    import urllib.request

    proc, url = start_server(runs / "lin.npz", env={"MNISTSOFTMAX_RUNS_DIR": str(runs)})
    try:
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/")
        with urllib.request.urlopen(url + "api/checkpoints", timeout=10) as r:
            names = [e["name"] for e in json.loads(r.read())]
        assert names[0] == "lin" and set(names) == {"lin", "latest"}
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_serve_on_another_host_warns(runs):
    """Listening beyond 127.0.0.1 prints a warning that the page has no authentication."""
    proc, url = start_server(runs / "lin.npz", "--host", "0.0.0.0")
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=20)
    assert "no authentication" in stderr and proc.returncode == 0


def test_the_answer_says_what_the_outputs_are_and_their_temperature(client):
    """The list gives each checkpoint's loss, what its outputs are and its fitted temperature; a
    prediction carries the calibrated probabilities softmax(z / T), with the same argmax."""
    entry = client.get("/api/checkpoints").json()[0]
    assert entry["loss"] == "cross-entropy" and entry["outputs"] == "probabilities" and entry["temperature"] > 0
    answer = client.post("/api/predict", content=drawn_seven()).json()
    z = np.asarray(answer["logits"]) / answer["temperature"]
    expected = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    np.testing.assert_allclose(answer["calibrated"], expected, rtol=1e-12)
    assert int(np.argmax(answer["calibrated"])) == answer["digit"]


def test_connections_answer_without_waiting_for_acks():
    """Each accepted socket gets TCP_NODELAY when the connection is made, and TCP_QUICKACK (Linux)
    again after each read: a kept-alive client that sends its headers and its body in two writes
    then waits for the answer, not for the server's delayed ACK (48 ms a request before, measured
    in scripts/bench_serve.py's terms)."""
    import asyncio
    import socket

    import uvicorn
    from uvicorn.server import ServerState

    from mnistsoftmax.web.server import _quick_protocol

    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()

    class Transport(asyncio.Transport):
        def get_extra_info(self, name, default=None):
            return {"socket": accepted, "peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

        def is_closing(self):
            return False

    async def app(scope, receive, send):
        pass

    config = uvicorn.Config(app, lifespan="off")
    config.load()
    loop = asyncio.new_event_loop()
    try:
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        protocol = _quick_protocol()(config=config, server_state=ServerState(), app_state={}, _loop=loop)
        protocol.connection_made(Transport())
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        if hasattr(socket, "TCP_QUICKACK"):
            accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
            protocol.data_received(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers not yet ended
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1
    finally:
        loop.close()
        for s in (client, accepted, listener):
            s.close()


def test_small_answers_of_a_checkpoint_in_memory_are_quick(runs, tmp_path):
    """is_quick takes a small image file (at most 64 x 64 declared, 16 kB), never JSON, a snapshot,
    the timeline or bytes Pillow does not know; Catalog.ready is true only once the checkpoint is
    in memory, and again false when its file changes (it must be read again, off the loop)."""
    import shutil

    from mnistsoftmax.web.draw_routes import is_quick

    def sized(w, h):
        return png(Image.new("L", (w, h), 255))

    assert is_quick(sized(28, 28), False, {}) and is_quick(sized(64, 64), False, {"label": "3"})
    assert not is_quick(sized(65, 64), False, {}) and not is_quick(sized(28, 28), True, {})
    assert not is_quick(sized(28, 28), False, {"snapshot": "0"})
    assert not is_quick(sized(28, 28), False, {"timeline": ""})
    assert not is_quick(b"not an image", False, {}) and not is_quick(sized(28, 28) + bytes(20_000), False, {})
    folder = tmp_path / "runs"
    folder.mkdir()
    shutil.copy(runs / "latest.npz", folder / "latest.npz")
    catalog = Catalog(folder)
    assert not catalog.ready(None) and not catalog.ready("latest")
    assert catalog.get("latest") is not None and catalog.ready(None) and catalog.ready("latest")
    assert not catalog.ready("other")
    os.utime(folder / "latest.npz", ns=(1, 1))
    assert not catalog.ready("latest")


def test_the_catalog_keeps_the_last_few_page_documents(runs, tmp_path):
    """Catalog.document encodes a checkpoint's page document once and keeps the DOCUMENTS_KEPT last
    asked for: the same bytes again for a page's reload, no more than that many for a client that
    walks the whole folder, and a new one once the file changes."""
    import shutil

    from mnistsoftmax.web import catalog as catalogs

    folder = tmp_path / "runs"
    folder.mkdir()
    for i in range(catalogs.DOCUMENTS_KEPT + 2):
        shutil.copy(runs / "latest.npz", folder / f"run{i}.npz")
    catalog = Catalog(folder)
    first = catalog.document(catalog.get("run0"))
    assert catalog.document(catalog.get("run0")) is first
    assert json.loads(first)["entry"]["name"] == "run0"
    for i in range(1, catalogs.DOCUMENTS_KEPT + 2):
        catalog.document(catalog.get(f"run{i}"))
    assert len(catalog._documents) == catalogs.DOCUMENTS_KEPT
    assert catalog.document(catalog.get("run0")) is not first  # pushed out, made again
    os.utime(folder / "run0.npz", ns=(1, 1))
    again = catalog.document(catalog.get("run0"))
    assert again == first and catalog.document(catalog.get("run0")) is again
