"""Training from the server: POST /api/runs, GET /api/runs, the events stream (SSE), stop and
resume, over a real `mnistsoftmax serve` process and real runs of `train` in its worker."""

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from mnistsoftmax import checkpoint, live
from mnistsoftmax.cli import main
from mnistsoftmax.web.app import create_app
from mnistsoftmax.web.catalog import Catalog
from tests.conftest import write_dataset
from tests.test_serve import BASE, start_server

SLOW_RUN = {"epochs": 12, "hidden": 256}  # a few seconds here: long enough to stop in the middle


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Two custom data sets: tiny (a run in a second) and larger (a run of some seconds)."""
    root = tmp_path_factory.mktemp("runs-api")
    write_dataset(root / "tiny")
    write_dataset(root / "larger", n_train=10000, n_test=500)
    return root


@pytest.fixture
def server(tmp_path, data):
    """`mnistsoftmax serve` on a free port, its runs folder holding one finished run."""
    runs = tmp_path / "runs"
    args = ["train", "--dataset", "custom", "--data-dir", str(data / "tiny"), "--epochs", "1", "--hidden", "8",
            "--out", str(runs / "latest.npz")]  # fmt: skip
    assert CliRunner().invoke(main, args).exit_code == 0
    # The page trains on the data sets its server knows: these two folders, chosen by their path.
    proc, url = start_server("--data-dir", data / "tiny", "--data-dir", data / "larger",
                             env={"MNISTSOFTMAX_RUNS_DIR": str(runs)})  # fmt: skip
    yield url, runs, proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


def request(url, method="GET", body=None, headers=None):
    """(status, JSON answer)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(headers or {})} if body is not None else headers or {}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def events(url, run_id, until=None, last_id=None):
    """The run's events as (id, record), read as they come; stops after the record until(record)
    is true for, or at the end of the stream."""
    headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
    req = urllib.request.Request(f"{url}api/runs/{run_id}/events", headers=headers)
    got = []
    with urllib.request.urlopen(req, timeout=120) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        event_id = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                got.append((event_id, json.loads(line[6:])))
                if until and until(got[-1][1]):
                    break
    return got


def options(data, folder="tiny", **more):
    """A run's options as the page sends them: the data set by its name on the server."""
    return {"dataset": str((data / folder).resolve()), "epochs": 2, "hidden": 32, "seed": 3, **more}


def cli_run(tmp_path, data, opts: dict):
    """The same options through `mnistsoftmax train`: its checkpoint's parameters, and with them
    its snapshots' arrays (under their member names), which the page's run must equal too."""
    out = tmp_path / "cli" / "model.npz"
    opts = {**opts, "dataset": "custom", "data-dir": opts["dataset"]}
    flags = [x for k, v in opts.items() for x in (f"--{k}", str(v))]
    result = CliRunner().invoke(main, ["train", *flags, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return with_snapshots(out)


def with_snapshots(path) -> dict:
    """A checkpoint's parameters and its snapshots' stacked arrays, by member name."""
    model = checkpoint.load(path)[0]
    kept = checkpoint.load_snapshots(path, model)
    assert kept is not None and kept.steps[0] == 0, f"{path} kept no snapshots"
    return {**model.params, **kept.to_arrays()}


def same_bytes(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)


def test_a_run_from_the_api_is_the_command_lines_run(server, data, tmp_path):
    """Started by POST /api/runs: the events are the metrics file's records in order, numbered
    from 0, from init and the first probe (step 0) to the test record; the checkpoint is the one
    `mnistsoftmax train` writes with the same options, bit for bit; the list shows it finished."""
    url, runs, _ = server
    status, answer = request(url + "api/runs", "POST", options(data))
    assert status == 201, answer
    run_id = answer["id"]
    got = events(url, run_id)
    ids, records = [i for i, _ in got], [r for _, r in got]
    assert ids == list(range(len(ids)))
    assert records[0]["type"] == "init" and records[1]["type"] == "probe" and records[1]["step"] == 0
    assert records[-1]["type"] == "test"
    assert records == checkpoint.read_metrics(runs / f"{run_id}.npz")
    assert same_bytes(with_snapshots(runs / f"{run_id}.npz"), cli_run(tmp_path, data, options(data)))

    listed = {r["id"]: r for r in request(url + "api/runs")[1]}
    assert listed[run_id]["status"] == "finished" and listed[run_id]["from_page"]
    assert listed[run_id]["accuracy"] == records[-1]["accuracy"]
    assert listed[run_id]["options"]["hidden"] == [32]
    assert listed[run_id]["options"]["data-dir"] == str((data / "tiny").resolve())
    assert listed["latest"]["status"] == "finished" and not listed["latest"]["from_page"]
    # A reconnecting stream (EventSource sends Last-Event-ID) gets only what it has not seen.
    assert events(url, run_id, last_id=ids[-3]) == got[-2:]


def test_stop_resume_and_one_run_at_a_time(server, data, tmp_path):
    """A second start while a run goes gets 409 with the reason; stop takes the Ctrl-C path
    (the stream ends with "stopped", NAME.interrupted.npz appears); resume finishes it bit for
    bit as the uninterrupted command-line run; the second stream replays the first's records."""
    url, runs, _ = server
    opts = options(data, "larger", **SLOW_RUN)
    status, answer = request(url + "api/runs", "POST", opts)
    assert status == 201, answer
    run_id = answer["id"]
    status, busy = request(url + "api/runs", "POST", options(data))
    assert status == 409 and run_id in busy["error"] and "one run at a time" in busy["error"]
    status, busy = request(url + "api/runs", "POST", {"resume": "latest"})
    assert status in (400, 409)

    first = events(url, run_id, until=lambda r: r["type"] == "epoch")
    assert request(url + f"api/runs/{run_id}/stop", "POST", {})[0] == 202
    rest = events(url, run_id, last_id=first[-1][0])
    assert rest[-1][1] == {"type": "stopped", "resume": run_id}
    saved = checkpoint.load_resumable(checkpoint.interrupted_path(runs / f"{run_id}.npz"))[1]
    assert 71 <= saved["resume"]["step"] < 12 * 71  # 9,000 training images in batches of 128: 71 steps an epoch
    assert {r["id"]: r["status"] for r in request(url + "api/runs")[1]}[run_id] == "stopped"

    status, answer = request(url + "api/runs", "POST", {"resume": run_id})
    assert status == 201 and answer["id"] == run_id
    resumed = [r for _, r in events(url, run_id)]
    assert resumed[-1]["type"] == "test"
    done = [r for _, r in first + rest[:-1]]
    assert resumed[: len(done)] == done  # the records before the stop come first, as they were
    assert not checkpoint.interrupted_path(runs / f"{run_id}.npz").exists()
    assert same_bytes(with_snapshots(runs / f"{run_id}.npz"), cli_run(tmp_path, data, opts))  # a resumed page run


def test_a_command_line_run_in_the_folder_is_listed_and_followed(server, data):
    """`mnistsoftmax train` started in a terminal, writing into the server's runs folder: listed
    as running with its options, followed live to its test record; the server cannot stop it."""
    url, runs, _ = server
    out = runs / "terminal.npz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mnistsoftmax", "train", "--dataset", "custom", "--data-dir", str(data / "larger"),
         "--epochs", "6", "--hidden", "128", "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "terminal" not in live.in_progress(runs) and time.monotonic() < deadline:
            time.sleep(0.02)
        # Held still while the server is asked (a quick run may otherwise end before the listing).
        proc.send_signal(signal.SIGSTOP)
        try:
            listed = {r["id"]: r for r in request(url + "api/runs")[1]}
            assert listed["terminal"]["status"] == "running" and not listed["terminal"]["from_page"]
            assert listed["terminal"]["options"]["hidden"] == [128]
            status, answer = request(url + "api/runs/terminal/stop", "POST", {})
            assert status == 409 and "where it was started" in answer["error"]
        finally:
            proc.send_signal(signal.SIGCONT)
        got = [r for _, r in events(url, "terminal")]
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert got[-1]["type"] == "test" and got == checkpoint.read_metrics(out)


def test_a_run_that_fails_to_start_says_why(tmp_path, data):
    """A data folder the server was given that is gone since: the worker's one-line error ends
    the stream and stays in the list; nothing is written."""
    import shutil

    runs, gone = tmp_path / "runs", tmp_path / "gone"
    shutil.copytree(data / "tiny", gone)
    proc, url = start_server("--data-dir", gone, env={"MNISTSOFTMAX_RUNS_DIR": str(runs)})
    shutil.rmtree(gone)
    before = sorted(p.name for p in runs.iterdir()) if runs.exists() else []
    status, answer = request(url + "api/runs", "POST", {"dataset": str(gone.resolve())})
    assert status == 201
    try:
        got = [r for _, r in events(url, answer["id"])]
        assert got == [{"type": "error", "error": f"data folder {gone.resolve()} does not exist or is not a folder"}]
        listed = {r["id"]: r for r in request(url + "api/runs")[1]}[answer["id"]]
        assert listed["status"] == "failed" and listed["error"] == got[0]["error"]
        assert "out" not in listed["options"] and listed["options"]["dataset"] == "custom"
        assert sorted(p.name for p in runs.iterdir()) == before
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)


def test_stopping_the_server_mid_run_saves_the_interrupted_checkpoint(server, data):
    url, runs, proc = server
    status, answer = request(url + "api/runs", "POST", options(data, "larger", **SLOW_RUN))
    assert status == 201
    run_id = answer["id"]
    events(url, run_id, until=lambda r: r["type"] == "epoch")
    proc.send_signal(signal.SIGINT)  # Ctrl-C at the server's terminal
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in stderr
    saved = checkpoint.interrupted_path(runs / f"{run_id}.npz")
    model, meta, velocity = checkpoint.load_resumable(saved)
    assert meta["resume"]["step"] > 0 and live.runs_in(runs)[run_id].status == "stopped"


@pytest.fixture
def client(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    return TestClient(create_app(Catalog(runs), "127.0.0.1", 8765), base_url=BASE), runs


def cli_error(*flags) -> str:
    result = CliRunner().invoke(main, ["train", *flags])
    assert result.exit_code == 2
    return result.stderr.strip().splitlines()[-1].removeprefix("Error: ")


@pytest.mark.parametrize(
    "body, flags",
    [
        ({"epochs": 0}, ["--epochs", "0"]),
        ({"lr": "fast"}, ["--lr", "fast"]),
        ({"model": "cnn"}, ["--model", "cnn"]),
        ({"momentum": 1}, ["--momentum", "1"]),
        ({"hidden": 2.5}, ["--hidden", "2.5"]),
    ],
)
def test_bad_options_get_400_with_the_command_lines_message(client, body, flags):
    c, runs = client
    r = c.post("/api/runs", json=body)
    assert r.status_code == 400 and r.json() == {"error": cli_error(*flags)}
    assert list(runs.iterdir()) == []  # nothing started, nothing written


@pytest.mark.parametrize(
    "body, message",
    [
        ({"epochs": 2, "colour": "red"}, "unknown key 'colour'"),
        ({"out": "/etc/passwd.npz"}, "'out': it is chosen by the server"),
        ({"data-dir": "/proc"}, "'data-dir': it is chosen by the server"),
        ({"mirror": "http://127.0.0.1:9/"}, "'mirror': it is chosen by the server"),
        ({"dataset": "/etc"}, "is not one of the data sets this server knows"),
        ({"resume": "x", "epochs": 1}, "'resume': it is chosen by the server"),
        ({"hflip": "yes"}, "hflip = 'yes' should be true or false"),
        ({"model": "linear", "dropout": 0.5}, "needs --model mlp"),
        ({"resume": "nothing-here"}, "no run 'nothing-here' cannot be resumed"),
        ({"resume": 5}, "resume must be the id of a stopped run"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_other_bad_starts_are_400(client, body, message):
    c, _ = client
    r = c.post("/api/runs", json=body)
    assert r.status_code == 400 and message in r.json()["error"], r.json()


def test_requests_the_run_routes_refuse(client):
    c, _ = client
    assert c.post("/api/runs", content=b'{"epochs": 1}', headers={"Content-Type": "text/plain"}).status_code == 415
    assert c.post("/api/runs", content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    foreign = c.post("/api/runs", json={"epochs": 1}, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "refused" in foreign.json()["error"]
    assert c.post("/api/runs", json={"epochs": 0}, headers={"Origin": BASE}).status_code == 400  # its own page
    assert c.get("/api/runs/nope/events").status_code == 404
    assert c.post("/api/runs/nope/stop", json={}).status_code == 404
    assert c.post("/api/runs/nope/stop").status_code == 404  # a run that is not there, whatever the body
    assert c.delete("/api/runs").status_code == 405
    assert c.get("/api/runs").json() == []


def test_train_options_describe_the_form(client):
    c, _ = client
    described = {o["key"]: o for o in c.get("/api/train/options").json()}
    assert described["model"] == {"key": "model", "kind": "choice", "default": "mlp", "choices": ["linear", "mlp"],
                                  "help": described["model"]["help"], "group": "model"}  # fmt: skip
    assert described["epochs"]["kind"] == "int" and described["epochs"]["default"] == 10
    assert described["lr"]["kind"] == "float" and described["hflip"]["kind"] == "bool"
    assert "data-dir" not in described and "mirror" not in described  # a request never names a path or a URL
    assert "out" not in described and "resume" not in described
    assert described["dataset"]["choices"] == ["mnist", "fashion-mnist"] and described["dataset"]["default"] == "mnist"
    assert np.isclose(described["momentum"]["max"], 1)


def test_files_that_are_not_runs_are_listed_with_the_reason_and_never_block(client):
    """In the runs folder: a FIFO named like a metrics file beside a good checkpoint (its open once
    waited for a writer inside a shared lock, hanging /api/runs for everyone), a FIFO named like a
    checkpoint, a checkpoint whose metadata is wrong, and a FIFO named like a run's partial metrics
    file. /api/runs answers at once, lists the good run, and the others as unreadable with the
    reason; /api/checkpoints leaves them out; the page's routes keep answering."""
    import os

    from mnistsoftmax.models import build_model

    http, runs = client
    norm = {"normalization": {"mean": 0.1, "std": 0.3}}
    checkpoint.save(runs / "good.npz", build_model("linear", np.random.default_rng(0)), norm)
    os.mkfifo(runs / "good.metrics.jsonl")
    os.mkfifo(runs / "pipe.npz")
    checkpoint.save(runs / "wrong.npz", build_model("linear", np.random.default_rng(0)), {**norm, "metrics": "x"})
    os.mkfifo(runs / ".good.metrics.jsonl.abcdefgh.partial")
    listed = {r["id"]: r for r in http.get("/api/runs").json()}
    assert listed["good"]["status"] == "finished"
    assert listed["pipe"]["status"] == "unreadable" and "not a regular file" in listed["pipe"]["error"]
    assert listed["wrong"]["status"] == "unreadable" and "metrics are not an object" in listed["wrong"]["error"]
    assert str(runs) not in listed["wrong"]["error"]  # the file's name, not the server's folders
    assert [e["name"] for e in http.get("/api/checkpoints").json()] == ["good"]
    events = http.get("/api/runs/pipe/events")  # the stream of a run that has no records ends at once
    assert events.status_code == 200 and '"type": "error"' in events.text, events.text[:200]


@pytest.mark.parametrize("config", ["a string", [1, 2], {"model": "mlp", "hidden": "abc"}, {"hidden": 5.5},
                                    {"hidden": [None]}, {"hidden": [10**400]}, {"epochs": "many"}])  # fmt: skip
def test_one_bad_configuration_in_the_runs_folder_takes_nothing_down(client, config):
    """A checkpoint whose stored configuration is not one (a string, a list, widths that are not
    widths) beside a good run, and a partial metrics file opening with the same: /api/runs answers
    200, lists the good run, the bad file as unreadable with the reason, and the running one with
    no options; the good run's stream and the page's answers go on."""
    from mnistsoftmax.models import build_model

    http, runs = client
    norm = {"normalization": {"mean": 0.1, "std": 0.3}}
    checkpoint.save(runs / "good.npz", build_model("linear", np.random.default_rng(0)), norm)
    checkpoint.save(runs / "bad.npz", build_model("linear", np.random.default_rng(0)), {**norm, "config": config})
    (runs / ".going.metrics.jsonl.abcdefgh.partial").write_text(json.dumps({"type": "init", "config": config}) + "\n")
    answer = http.get("/api/runs")
    assert answer.status_code == 200, answer.text[:300]
    listed = {r["id"]: r for r in answer.json()}
    assert listed["good"]["status"] == "finished"
    assert listed["bad"]["status"] == "unreadable" and "stored configuration is not valid" in listed["bad"]["error"]
    assert "\n" not in listed["bad"]["error"] and len(listed["bad"]["error"]) <= 300
    assert [e["name"] for e in http.get("/api/checkpoints").json()] == ["good"]
    assert http.get("/api/runs/good/events").status_code == 200
