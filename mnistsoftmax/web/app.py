"""The web app: JSON routes that parse, call the library and answer, and the page's static files.

Every answer is JSON; an error is a 4xx with {"error": "one line"}, never a traceback or an HTML
page. The guards of a server on the user's machine:
- a request whose Host header names another host is refused with 403, so that a web page
  elsewhere cannot reach this server through DNS rebinding;
- bodies above MAX_BODY get 413, announced or not, before they are read whole;
- images go through `predict`'s own reading and its guards (decompression bombs, truncated
  files, blank images); checkpoints are chosen by name from the catalog, never by path;
- nothing a request sends is written to disk.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mnistsoftmax import MnistSoftmaxError, images
from mnistsoftmax.explain import explain, jsonable
from mnistsoftmax.web.catalog import Catalog
from mnistsoftmax.web.trainer import Busy, Trainer, describe_options
from mnistsoftmax.web.watch import RunList, events

STATIC = Path(__file__).parent / "static"
MAX_BODY = 8 * 1024 * 1024  # an 8 MB photo is plenty for one digit; the pad's PNG is a few kB
PREVIEW_SIDE = 140  # the largest side of the ink image sent back to draw the crop on


class HostGuard:
    """ASGI middleware: 403 unless the Host header is one of `allowed` (host:port strings), and
    403 for a request that changes something (not GET or HEAD) sent by a page of another origin:
    browsers name the page's origin in the Origin header, and a web page elsewhere could
    otherwise start training runs here through a plain form."""

    def __init__(self, app, allowed: set[str]):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            host = headers.get(b"host", b"").decode("latin-1").lower()
            origin = headers.get(b"origin", b"").decode("latin-1").lower()
            message = None
            if host not in self.allowed:
                message = (f"host {host or '(none)'!r} is not this server's address; open it as "
                           f"http://{sorted(self.allowed)[0]}/")  # fmt: skip
            elif origin and scope["method"] not in ("GET", "HEAD") and origin.split("://", 1)[-1] not in self.allowed:
                message = f"requests from the page {origin!r} are refused: use this server's own page"
            if message is not None:
                await JSONResponse({"error": message}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def allowed_hosts(host: str, port: int) -> set[str]:
    """Host headers a browser sends for this server: the bound address, localhost and 127.0.0.1,
    each with the port."""
    bound = f"[{host}]" if ":" in host else host
    return {f"{h}:{port}" for h in {bound.lower(), "localhost", "127.0.0.1"}}


def error(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


async def read_body(request: Request) -> bytes:
    """The request's body, refused with 413 as soon as it is known to exceed MAX_BODY."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise error(413, f"the body of {int(declared):,} bytes is above the limit of {MAX_BODY:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise error(413, f"the body is above the limit of {MAX_BODY:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_label(value, num_classes: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < num_classes:
        raise error(400, f"label must be a class number from 0 to {num_classes - 1}, not {value!r}")
    return value


def preview(ink: np.ndarray) -> list[list[int]]:
    """The ink image (H, W) in [0, 1], shrunk to at most PREVIEW_SIDE, as rows of 0-255."""
    from PIL import Image

    h, w = ink.shape
    scale = min(1.0, PREVIEW_SIDE / max(h, w))
    small = Image.fromarray((ink * 255).round().astype(np.uint8), mode="L")
    if scale < 1:
        small = small.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
    return np.asarray(small).tolist()


async def read_json(request: Request):
    """The request's JSON body; 415 unless it says it is JSON (a plain cross-site form cannot)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise error(415, "send the options as JSON, with Content-Type: application/json")
    body = await read_body(request)
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise error(400, f"the body is not valid JSON: {exc}") from None


def create_app(
    catalog: Catalog, host: str = "127.0.0.1", port: int = 8765, trainer: Trainer | None = None
) -> Starlette:
    """The app for a catalog of checkpoints, accepting requests addressed to host:port; training
    runs go to the catalog's runs folder, through `trainer`."""
    trainer = trainer or Trainer(catalog.runs_dir)
    run_list = RunList(trainer)

    async def index(request: Request):
        return FileResponse(STATIC / "index.html")

    async def train_page(request: Request):
        return FileResponse(STATIC / "train.html")

    async def train_options(request: Request):
        return JSONResponse(describe_options())

    async def list_runs(request: Request):
        return JSONResponse(await run_in_threadpool(run_list.runs))

    async def start_run(request: Request):
        document = await read_json(request)
        try:
            if isinstance(document, dict) and set(document) == {"resume"}:
                job = await run_in_threadpool(trainer.resume, document["resume"])
            else:
                job = await run_in_threadpool(trainer.start, document)
        except Busy as exc:
            raise error(409, str(exc)) from None
        except MnistSoftmaxError as exc:
            raise error(400, str(exc)) from None
        return JSONResponse({"id": job.name}, status_code=201)

    async def run_events(request: Request):
        name = request.path_params["id"]
        if await run_in_threadpool(run_list.find, name) is None:
            raise error(404, f"no run {name!r}: the runs are in /api/runs")
        last = request.headers.get("last-event-id", "")
        skip = int(last) + 1 if last.isdigit() else 0
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(run_list, name, skip), media_type="text/event-stream", headers=headers)

    async def stop_run(request: Request):
        name = request.path_params["id"]
        if await run_in_threadpool(run_list.find, name) is None:
            raise error(404, f"no run {name!r}: the runs are in /api/runs")
        try:
            trainer.stop(name)
        except Busy as exc:
            raise error(409, str(exc)) from None
        return JSONResponse({"id": name, "status": "stopping"}, status_code=202)

    async def checkpoints(request: Request):
        return JSONResponse([entry.summary() for entry in catalog.entries()])

    async def predict(request: Request):
        started = time.perf_counter()
        body = await read_body(request)
        fields = dict(request.query_params)
        pixels = None
        if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
            try:
                document = json.loads(body)
            except (UnicodeDecodeError, ValueError) as exc:
                raise error(400, f"the body is not valid JSON: {exc}") from None
            if not isinstance(document, dict) or "pixels" not in document:
                raise error(400, 'a JSON body must be an object with "pixels": rows of ink values 0-255')
            pixels = document.pop("pixels")
            fields.update({k: v for k, v in document.items() if k in ("checkpoint", "label")})
        elif not body:
            raise error(400, 'send an image file as the body, or JSON {"pixels": [[...]]}')
        unknown = set(fields) - {"checkpoint", "label"}
        if unknown:
            raise error(400, f"unknown field {sorted(unknown)[0]!r}: the fields are checkpoint and label")
        name = fields.get("checkpoint")
        if name is not None and not isinstance(name, str):
            raise error(400, "checkpoint must be a name from /api/checkpoints")
        entry = catalog.get(name)
        if entry is None and name is not None:
            raise error(404, f"no checkpoint named {name!r}: the names are in /api/checkpoints")
        if entry is None:
            raise error(404, "no checkpoint to use: train one with `mnistsoftmax train`")
        label = parse_label(fields.get("label"), entry.model.sizes["classes"])
        try:
            if pixels is not None:
                gray = images.gray_from_ink(pixels, "pixels")
            else:
                gray = images.read_grayscale(body, "the uploaded image")
            stages = images.mnist_stages(gray, "the image" if pixels is None else "the drawing")
        except images.ImageError as exc:
            raise error(400, str(exc)) from None
        result = jsonable(explain(entry.model, entry.norm, stages.digit, label, entry.untrained))
        h, w = stages.ink.shape
        top, left, bottom, right = stages.crop
        result.update(
            checkpoint=entry.name,
            preprocessed=stages.digit.tolist(),
            stages={
                "ink": preview(stages.ink),
                "crop": [top / h, left / w, bottom / h, right / w],  # fractions of the image's height and width
                "box": np.round(stages.box * 255).astype(int).tolist(),
            },
        )
        for unit in result.get("hidden", {}).get("units", []):
            unit["weights"] = np.round(np.asarray(unit["weights"]), 3).tolist()
        response = JSONResponse(result)
        # The standard header for a server's own time, shown by browsers' developer tools too.
        response.headers["Server-Timing"] = f"predict;dur={1000 * (time.perf_counter() - started):.2f}"
        return response

    async def http_error(request: Request, exc: HTTPException):
        message = exc.detail
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such page: {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    async def server_error(request: Request, exc: Exception):
        # Not expected: every bad input has its 4xx above. No traceback leaves the server.
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    routes = [
        Route("/", index),
        Route("/api/checkpoints", checkpoints),
        Route("/api/predict", predict, methods=["POST"]),
        Route("/train", train_page),
        Route("/api/train/options", train_options),
        Route("/api/runs", list_runs, methods=["GET"]),
        Route("/api/runs", start_run, methods=["POST"]),
        Route("/api/runs/{id}/events", run_events),
        Route("/api/runs/{id}/stop", stop_run, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: server_error})
    app.add_middleware(HostGuard, allowed=allowed_hosts(host, port))
    app.state.trainer = trainer
    return app
