"""Run every fault of the "nothing lost" list for real and print what the tool did.

    python scripts/faults.py

Real processes of `mnistsoftmax`, real signals, a real HTTP mirror on 127.0.0.1 that misbehaves
on request (tests/mirror.py) serving the genuine Fashion-MNIST from Debian's package
dataset-fashion-mnist. The official mirrors stay unreachable: every process gets a proxy that
refuses connections, except for 127.0.0.1. Prints a table: fault, what the tool did, data lost.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mnistsoftmax import checkpoint, datasets  # noqa: E402
from tests.conftest import write_dataset  # noqa: E402
from tests.mirror import start_mirror  # noqa: E402
from tests.test_faults import file_size_limit, start_and_signal  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")
TRAIN = ["train", "--dataset", "custom", "--model", "mlp", "--hidden", "32", "--batch-size", "8", "--log-every", "5",
         "--seed", "4"]  # fmt: skip
ROWS: list[tuple[str, str, str]] = []


def env(tmp: Path, **extra) -> dict:
    e = {**os.environ, "PYTHONPATH": str(ROOT), "MNISTSOFTMAX_DATA_DIR": str(tmp / "cache"),
         "MNISTSOFTMAX_RUNS_DIR": str(tmp / "runs"), "HTTP_PROXY": "http://127.0.0.1:9",
         "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1,localhost"}  # fmt: skip
    e.pop("MNISTSOFTMAX_MIRROR", None)
    return {**e, **extra}


def cli(args, environ, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnistsoftmax", *map(str, args)], capture_output=True, text=True,
                          env=environ, **kw)  # fmt: skip


TMP = ""  # the run's temporary folder, shown as $TMP in messages


def last_line(proc, width: int = 80) -> str:
    """The last line the process wrote on stderr, shortened for the table."""
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "%|" not in line]
    line = (lines[-1] if lines else "").removeprefix("Error: ").replace(TMP, "$TMP")
    line = re.sub(r"\$TMP/(\S*/)?", "", line)  # file names without their temporary folder
    return line if len(line) <= width else line[: width - 3] + "..."


def row(fault: str, did: str, lost: bool) -> None:
    ROWS.append((fault, did, "yes" if lost else "no"))
    print(f"  {fault}: {did}", file=sys.stderr)


def weights(path) -> dict:
    model, _ = checkpoint.load(path)
    return {k: v.tobytes() for k, v in model.params.items()}


# --- training ------------------------------------------------------------------------------------


def training_faults(tmp: Path) -> None:
    data = tmp / "digits"
    write_dataset(data, n_train=2000, n_test=100)
    e = env(tmp)
    args = [*TRAIN, "--data-dir", data, "--epochs", "40"]
    reference = tmp / "reference.npz"
    cli([*args, "--out", reference], e, check=True)

    for sig, name in ((signal.SIGINT, "Ctrl-C (SIGINT) during training"), (signal.SIGTERM, "SIGTERM during training")):
        out = tmp / name.split()[0].strip("(") / "model.npz"
        stopped = start_and_signal(args, out, sig, e)
        saved = checkpoint.interrupted_path(out)
        resumed = cli(["train", "--resume", saved], e)
        same = resumed.returncode == 0 and weights(out) == weights(reference)
        row(name, f"exit {stopped.returncode}, saved {saved.name}; resumed run bit-identical to an uninterrupted one: "
                  f"{'yes' if same else 'NO'}", not same)  # fmt: skip

    out = tmp / "kill" / "model.npz"
    cli([*TRAIN, "--data-dir", data, "--epochs", "1", "--out", out], e, check=True)
    good = out.read_bytes(), checkpoint.metrics_path(out).read_bytes()
    random.seed(0)
    survived = 0
    trials = 8
    for _ in range(trials):  # kill at random moments of a whole run, saving included
        proc = subprocess.Popen([sys.executable, "-m", "mnistsoftmax", *map(str, TRAIN), "--data-dir", str(data),
                                 "--epochs", "3", "--out", str(out)], env=e, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(random.uniform(0.3, 2.0))
        proc.kill()
        proc.wait()
        try:
            checkpoint.load(out)
            metrics = checkpoint.metrics_path(out).read_text().splitlines()
            survived += out.read_bytes() == good[0] or '"type": "test"' in metrics[-1]
            good = out.read_bytes(), checkpoint.metrics_path(out).read_bytes()
        except Exception:  # noqa: BLE001 - any failure to read back counts as a loss
            pass
    row(f"SIGKILL at {trials} random moments of a run", f"checkpoint and metrics readable and whole after "
        f"{survived}/{trials} kills (old or new, never half)", survived != trials)  # fmt: skip

    before = out.read_bytes()
    diverged = cli([*TRAIN, "--data-dir", data, "--epochs", "1", "--lr", "1e30", "--out", out], e)
    row("divergence (--lr 1e30)", f"exit {diverged.returncode}: {last_line(diverged)}; last good checkpoint kept",
        out.read_bytes() != before)  # fmt: skip

    # A nearly full disk, as a file-size limit on the child (no root, no tmpfs needed).
    for limit, moment in ((0, "before the first metrics record"), (16_000, "at the checkpoint")):
        before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
        # Without probes the metrics file stays a few kB: the 31 kB checkpoint is what meets the limit.
        full = cli([*TRAIN, "--model", "linear", "--data-dir", data, "--epochs", "1", "--probe-every", "0",
                    "--out", out], e, preexec_fn=file_size_limit(limit))  # fmt: skip
        after = {p.name: p.read_bytes() for p in out.parent.iterdir()}
        row(f"disk full {moment}", f"exit {full.returncode}: {last_line(full)}; folder unchanged: "
            f"{'yes' if after == before else 'NO'}", after != before)  # fmt: skip

    codes = [cli(["train", *bad], e).returncode for bad in (["--epochs", "0"], ["--batch-size", "0"], ["--lr", "0"],
             ["--momentum", "1"], ["--val-split", "1"], ["--hidden", "-3"])]  # fmt: skip
    row("invalid options (6 kinds)",
        f"exit statuses {sorted(set(codes))} (usage error)", False)  # fmt: skip


# --- data --------------------------------------------------------------------------------------


def data_faults(tmp: Path) -> None:
    server, url = start_mirror(FASHION)
    try:
        names = [f"{f.name}.gz" for f in datasets.DATASETS["fashion-mnist"].files.values()]
        for i, (fault, prefix, extra) in enumerate([
            ("mirror refuses the connection", "http://127.0.0.1:9/", {}),
            ("mirror answers 403", url + "403/", {}),
            ("mirror answers 500", url + "500/", {}),
            ("mirror times out", url + "slow/", {"MNISTSOFTMAX_DOWNLOAD_TIMEOUT": "1"}),
            ("mirror cuts the body short", url + "short/", {}),
        ]):  # fmt: skip
            t = tmp / f"mirror{i}"
            done = cli(["download", "--dataset", "fashion-mnist", "--mirror", prefix, "--mirror", url], env(t, **extra))
            ok = done.returncode == 0 and sorted(p.name for p in (t / "cache" / "fashion-mnist").iterdir()) == sorted(
                names
            )
            row(fault, f"exit {done.returncode}, fetched from the next mirror, cache verified", not ok)

        t = tmp / "allfail"
        failed = cli(["download", "--dataset", "fashion-mnist", "--mirror", url + "403/", "--mirror", url + "short/"],
                     env(t))  # fmt: skip
        left = list((t / "cache" / "fashion-mnist").iterdir()) if (t / "cache" / "fashion-mnist").exists() else []
        message = last_line(failed, 10**4)
        row("every mirror failing", f"exit {failed.returncode}, one line naming the {message.count('http')} URLs "
            f"tried and --data-dir / --mirror / --dataset custom; cache empty: {not left}", bool(left))  # fmt: skip

        t = tmp / "killed-download"
        proc = subprocess.Popen([sys.executable, "-m", "mnistsoftmax", "download", "--dataset", "fashion-mnist",
                                 "--mirror", url + "drip/"], env=env(t), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(1.0)
        proc.kill()
        proc.wait()
        folder = t / "cache" / "fashion-mnist"
        visible = sorted(p.name for p in folder.iterdir() if not p.name.startswith("tmp")) if folder.exists() else []
        again = cli(["download", "--dataset", "fashion-mnist", "--mirror", url], env(t))
        row("download killed midway", f"left {visible or 'no finished-looking file'}; the next run verified and "
            f"completed (exit {again.returncode})", again.returncode != 0)  # fmt: skip

        t = tmp / "two"
        procs = [subprocess.Popen([sys.executable, "-m", "mnistsoftmax", "download", "--dataset", "fashion-mnist",
                                   "--mirror", url + "drip/"], env=env(t), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(2)]  # fmt: skip
        codes = [p.wait() for p in procs]
        check = cli(["download", "--dataset", "fashion-mnist", "--mirror", "http://127.0.0.1:9/"], env(t))
        row("two processes downloading into one empty cache", f"exit statuses {codes}; cache verified offline "
            f"afterwards (exit {check.returncode})", codes != [0, 0] or check.returncode != 0)  # fmt: skip

        t = tmp / "unwritable"
        t.mkdir()
        (t / "a-file").write_text("")
        denied = cli(["download", "--dataset", "fashion-mnist", "--mirror", url],
                     env(t, MNISTSOFTMAX_DATA_DIR=str(t / "a-file")))  # fmt: skip
        row("cache folder cannot be written", f"exit {denied.returncode}: {last_line(denied, 90)}", False)

        t = tmp / "corrupt"
        cli(["download", "--dataset", "fashion-mnist", "--mirror", url], env(t), check=True)
        cached = t / "cache" / "fashion-mnist" / "train-labels-idx1-ubyte.gz"
        for fault, damage in (("cached file with flipped bytes", lambda b: b[:100] + bytes([b[100] ^ 0xFF]) + b[101:]),
                              ("cached file truncated", lambda b: b[: len(b) // 2])):  # fmt: skip
            cached.write_bytes(damage(cached.read_bytes()))
            fixed = cli(["download", "--dataset", "fashion-mnist", "--mirror", url], env(t))
            genuine = datasets.sha256(datasets.read_idx_bytes(cached)) == datasets.DATASETS["fashion-mnist"].files[
                "train_labels"].sha256  # fmt: skip
            row(fault, f"detected by its SHA-256 and fetched again (exit {fixed.returncode})", not genuine)
        cached.write_bytes(cached.read_bytes()[:-10])
        offline = cli(["download", "--dataset", "fashion-mnist", "--mirror", "http://127.0.0.1:9/"], env(t))
        row("cached file damaged, network down", f"exit {offline.returncode}: {last_line(offline)}", False)
    finally:
        server.shutdown()
        server.server_close()


# --- checkpoints and images ----------------------------------------------------------------------


class _Payload:
    """Unpickling this creates a file: proof that a pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def checkpoint_and_image_faults(tmp: Path) -> None:
    from mnistsoftmax.models import build_model

    e = env(tmp)
    marker = tmp / "pickle-was-executed"
    cases = {
        "random bytes": lambda p: p.write_bytes(os.urandom(4096)),
        "a pickle (with a payload)": lambda p: p.write_bytes(pickle.dumps({"W": _Payload(marker)})),
        ".npz with object arrays": lambda p: np.savez(p, W=np.array([_Payload(marker)], dtype=object)),
        "wrong shapes": lambda p: checkpoint.save(
            p,
            type(
                "M",
                (),
                {
                    "kind": "linear",
                    "sizes": {},
                    "params": {"W": np.zeros((784, 9), np.float32), "b": np.zeros(10, np.float32)},
                },
            )(),
            {},
        ),  # fmt: skip
        "a newer format version": lambda p: _newer_format(p, build_model),
    }
    for name, make in cases.items():
        path = tmp / f"{''.join(c if c.isalnum() else '-' for c in name)}.npz"
        make(path)
        result = cli(["eval", path], e)
        row(f"checkpoint: {name}", f"exit {result.returncode}: {last_line(result)}", marker.exists())

    from PIL import Image

    good = tmp / "seven.png"
    im = Image.new("L", (200, 200), 255)
    im.paste(0, (60, 40, 150, 60))
    im.paste(0, (120, 40, 140, 170))
    im.save(good)
    ckpt = tmp / "model.npz"
    checkpoint.save(
        ckpt, build_model("linear", np.random.default_rng(0)), {"normalization": {"mean": 0.13, "std": 0.31}}
    )
    bomb = tmp / "bomb.png"
    sys.path.insert(0, str(ROOT / "tests"))
    from test_predict import bomb_png

    bomb_png(bomb)
    truncated = tmp / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:300])
    text = tmp / "notes.png"
    text.write_text("not an image")
    for name, path in (
        ("image: decompression bomb", bomb),
        ("image: truncated", truncated),
        ("image: not an image", text),
    ):
        result = cli(["predict", path, good, "--checkpoint", ckpt], e)
        still = result.stdout.startswith(f"{good}: ")
        row(name, f"exit {result.returncode}: {last_line(result, 70)}; the other image predicted: "
            f"{'yes' if still else 'NO'}", False)  # fmt: skip


# --- the server -----------------------------------------------------------------------------------


def _serve(tmp: Path, *args):
    """`mnistsoftmax serve ARGS --port 0` with tmp's runs folder: (process, URL)."""
    proc = subprocess.Popen([sys.executable, "-m", "mnistsoftmax", "serve", *map(str, args), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(tmp))  # fmt: skip
    line = proc.stdout.readline()
    if not line.startswith("serving on "):
        proc.kill()
        raise RuntimeError(f"serve printed {line!r}: {proc.stderr.read()}")
    return proc, line.split()[-1]


def _call(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    """(status, answer text) of one request; never raises for an HTTP status."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _json_post(url: str, document) -> tuple[int, str]:
    import json

    return _call(url, "POST", json.dumps(document).encode(), {"Content-Type": "application/json"})


def server_faults(tmp: Path) -> None:
    import json

    data = tmp / "digits"
    write_dataset(data, n_train=4000, n_test=200)
    options = {"dataset": str(data.resolve()), "epochs": 30, "hidden": 64, "batch-size": 8}
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGKILL):
        proc, url = _serve(tmp, "--data-dir", data)
        status, answer = _json_post(url + "api/runs", options)
        run = json.loads(answer)["id"]
        runs = tmp / "runs"
        deadline = time.monotonic() + 60
        while not list(runs.glob(f".{run}.metrics.jsonl.*.partial")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # well into the run
        proc.send_signal(sig)
        proc.communicate(timeout=90)
        deadline = time.monotonic() + 300
        finished, stopped = runs / f"{run}.npz", runs / f"{run}.interrupted.npz"
        while not (finished.exists() or stopped.exists()) and time.monotonic() < deadline:
            time.sleep(0.2)
        saved = finished if finished.exists() else stopped
        again, url = _serve(tmp)
        listed = {r["id"]: r["status"] for r in json.loads(_call(url + "api/runs")[1])}
        again.send_signal(signal.SIGINT)
        again.communicate(timeout=60)
        readable = saved.exists() and bool(checkpoint.load(saved))
        row(f"serve killed by {signal.Signals(sig).name} mid-run",
            f"the run saved {saved.name if saved.exists() else 'NOTHING'}; a restarted server lists it as "
            f"{listed.get(run, 'MISSING')}", not readable or run not in listed)  # fmt: skip

    runs = tmp / "runs"
    from mnistsoftmax.models import build_model

    hostile = runs / "hostile.npz"
    checkpoint.save(hostile, build_model("mlp", np.random.default_rng(0), 8),
                    {"normalization": {"mean": 0.1, "std": 0.3},
                     "config": {"model": "mlp", "hidden": 2000000000, "seed": -1}})  # fmt: skip
    (runs / "garbage.npz").write_bytes(os.urandom(2048))
    os.mkfifo(runs / "fifo.npz")
    proc, url = _serve(tmp)
    codes = [_call(url + "api/checkpoints")[0], _call(url + "api/runs")[0]]
    row("hostile files in the runs folder (bad config, garbage, a FIFO)",
        f"serve started; /api/checkpoints and /api/runs answered {codes}", codes != [200, 200])  # fmt: skip

    bad_requests = _hostile_requests(url, tmp)
    statuses = sorted({code for code, _ in bad_requests})
    no_json = sum(1 for code, text in bad_requests if not text.startswith('{"error"'))
    row(f"{len(bad_requests)} hostile requests (see _hostile_requests)",
        f"statuses {statuses}; without a JSON error: {no_json}", any(c >= 500 for c, _ in bad_requests))  # fmt: skip
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)


def _hostile_requests(url: str, tmp: Path) -> list[tuple[int, str]]:
    """Requests an adversary sends: every one should get a 4xx with {"error": ...}."""
    import io

    from PIL import Image

    json_type = {"Content-Type": "application/json"}
    deep = ("[" * 1000 + "]" * 1000).encode()
    big16 = io.BytesIO()
    Image.fromarray(np.zeros((7000, 7000), np.uint16)).save(big16, format="PNG")
    inf_tiff = io.BytesIO()
    pixels = np.zeros((40, 40), np.float32)
    pixels[0, 0] = np.inf
    Image.fromarray(pixels, mode="F").save(inf_tiff, format="TIFF")
    answers = [
        _call(url + "api/predict?label=%C2%B2", "POST", b"x"),
        _call(url + "api/predict", "POST", deep, json_type),
        _call(url + "api/predict", "POST", inf_tiff.getvalue()),
        _call(url + "api/predict", "POST", big16.getvalue()),
        _call(url + "api/runs", "POST", deep, json_type),
        _call(url + "api/runs/x/events", headers={"Last-Event-ID": "\u00b2"}),
        _call(url + "api/runs/x/stop", "POST", b"{}"),
        _json_post(url + "api/runs", {"lr": "nan"}),
        _call(url + "api/runs", "POST", b'{"lr": NaN}', json_type),
        _json_post(url + "api/runs", {"seed": "1\x00"}),
        _json_post(url + "api/runs", {"dataset": "x" * 200_000}),
        _json_post(url + "api/runs", {"data-dir": "/proc"}),
        _json_post(url + "api/runs", {"mirror": "http://127.0.0.1:9/"}),
        _json_post(url + "api/runs", {"dataset": "/etc"}),
        _call(url + "api/checkpoints", headers={"Host": "evil.example:80"}),
    ]
    return answers


def _newer_format(path: Path, build_model) -> None:
    checkpoint.save(path, build_model("linear", np.random.default_rng(0)), {})
    with np.load(path) as npz:
        arrays = dict(npz)
    meta = arrays.pop(checkpoint.META_KEY).tobytes().decode().replace('"format": 1', '"format": 2')
    np.savez(path, **arrays, **{checkpoint.META_KEY: np.frombuffer(meta.encode(), np.uint8)})


def main() -> int:
    if not FASHION.is_dir():
        print(f"{FASHION} is missing: apt-get install dataset-fashion-mnist", file=sys.stderr)
        return 1
    global TMP
    with tempfile.TemporaryDirectory() as tmp:
        TMP, tmp = tmp, Path(tmp)
        for part in (training_faults, data_faults, checkpoint_and_image_faults, server_faults):
            (tmp / part.__name__).mkdir()
            part(tmp / part.__name__)
    width = max(len(f) for f, _, _ in ROWS)
    print(f"{'fault':<{width}}  {'data lost':<9}  what the tool did")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 40}")
    for fault, did, lost in ROWS:
        print(f"{fault:<{width}}  {lost:<9}  {did}")
    return 1 if any(lost == "yes" for _, _, lost in ROWS) else 0


if __name__ == "__main__":
    sys.exit(main())
