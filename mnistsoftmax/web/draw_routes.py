"""The draw page's routes: the page, the checkpoints to choose among, and one prediction with
every number between the image and its loss (explain.explain, as `predict --explain` prints it)."""

from __future__ import annotations

import base64
import time

import anyio
import anyio.to_thread
import numpy as np
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from mnistsoftmax import images
from mnistsoftmax.checkpoint import CheckpointError
from mnistsoftmax.errors import quoted
from mnistsoftmax.explain import explain, jsonable, through_training
from mnistsoftmax.inference import OverflowingModel
from mnistsoftmax.losses import nll
from mnistsoftmax.web.http import JSONResponse, encode, error, parse_json, read_body, small_int


async def index(request: Request):
    return FileResponse(request.app.state.static / "index.html")


def parse_label(value, num_classes: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and small_int(value.strip()) is not None:
        value = small_int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < num_classes:
        raise error(400, f"label must be a class number from 0 to {num_classes - 1}, not {quoted(value)}")
    return value


def preview(ink: np.ndarray) -> list[list[int]]:
    """The ink image (H, W) in [0, 1], shrunk to at most PREVIEW_SIDE, as rows of 0-255."""
    from PIL import Image

    h, w = ink.shape
    scale = min(1.0, images.PREVIEW_SIDE / max(h, w))
    small = Image.fromarray((ink * 255).round().astype(np.uint8), mode="L")
    if scale < 1:
        small = small.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
    return np.asarray(small).tolist()


# Predictions at work at once, in a worker thread: the event loop stays free to answer, and the
# memory of decoding is bounded. One: numpy's BLAS already keeps both cores busy, and two at a time
# measured slower than one (57 against 61 answers a second, scripts/bench_serve.py).
WORKERS = 1


def work_limiter(request: Request) -> anyio.CapacityLimiter:
    state = request.app.state
    if getattr(state, "work_limiter", None) is None:
        state.work_limiter = anyio.CapacityLimiter(WORKERS)
    return state.work_limiter


async def checkpoints(request: Request):
    """GET /api/checkpoints: the checkpoints to choose among (read from disk off the event loop,
    beside the predictions rather than behind them: a listing must not wait for a large decode)."""
    catalog = request.app.state.catalog
    entries = await anyio.to_thread.run_sync(catalog.entries)
    return JSONResponse([entry.summary() for entry in entries])


async def page_model(request: Request):
    """GET /api/model?checkpoint=NAME: what the page computes its answers from (export.page_model:
    the weights, the snapshots, the description), for the checkpoint of that name (the first of
    the list without one). Looked up (which may read the file) and made in a worker thread, on
    first use; kept with the checkpoint."""
    fields = dict(request.query_params)
    unknown = set(fields) - {"checkpoint"}
    if unknown:
        raise error(400, f"unknown field {quoted(sorted(unknown)[0])}: the one field is checkpoint")
    catalog, name = request.app.state.catalog, fields.get("checkpoint")
    encoded = await anyio.to_thread.run_sync(lambda: catalog.document(_entry(catalog, name)),
                                             limiter=work_limiter(request))  # fmt: skip
    return Response(encoded, media_type="application/json")


def _entry(catalog, name):
    """The checkpoint a request names (the first of the list for None), or the 4xx that says why not."""
    if name is not None and not isinstance(name, str):
        raise error(400, "checkpoint must be a name from /api/checkpoints")
    entry = catalog.get(name)
    if entry is None and name is not None:
        raise error(404, f"no checkpoint named {quoted(name)}: the names are in /api/checkpoints")
    if entry is None:
        raise error(404, "no checkpoint to use: train one with `mnistsoftmax train`")
    return entry


# An answer for an image of at most this many pixels, in a file of at most this many bytes, from a
# checkpoint already in memory and without the timeline, takes about a millisecond: it is computed
# on the event loop, where the hop to a worker thread and back would add a third to it (587 against
# 483 answers a second, scripts/bench_serve.py). Anything larger, or anything that reads a file,
# goes to the worker thread, so that the loop stays free.
QUICK_PIXELS = 64 * 64
QUICK_BYTES = 16 * 1024


def is_quick(body: bytes, is_json: bool, fields: dict) -> bool:
    """Whether an answer is small enough for the event loop (see QUICK_PIXELS)."""
    if is_json or len(body) > QUICK_BYTES or asks_snapshot(fields) or "timeline" in fields:
        return False
    size = images.declared_size(body)
    return size is not None and size[0] * size[1] <= QUICK_PIXELS


async def predict(request: Request):
    """POST /api/predict: an image file or {"pixels": ...} -> explain()'s numbers and the stages.
    The body is read here; everything else (parsing, decoding, the forward passes) runs in a
    worker thread, but for a small image of a checkpoint in memory (is_quick)."""
    started = time.perf_counter()
    body = await read_body(request)
    is_json = request.headers.get("content-type", "").split(";")[0].strip() == "application/json"
    if not is_json and not body:
        raise error(400, 'send an image file as the body, or JSON {"pixels": [[...]]}')
    catalog, query = request.app.state.catalog, dict(request.query_params)
    if is_quick(body, is_json, query) and catalog.ready(query.get("checkpoint")):
        encoded = answer_json(catalog, body, is_json, query)
    else:
        encoded = await anyio.to_thread.run_sync(answer_json, catalog, body, is_json, query,
                                                 limiter=work_limiter(request))  # fmt: skip
    response = Response(encoded, media_type="application/json")
    # The standard header for a server's own time, shown by browsers' developer tools too.
    response.headers["Server-Timing"] = f"predict;dur={1000 * (time.perf_counter() - started):.2f}"
    return response


def answer_json(catalog, body: bytes, is_json: bool, fields: dict) -> bytes:
    """answer() encoded, in the worker thread too: the event loop only sends the bytes."""
    return encode(answer(catalog, body, is_json, fields))


def answer(catalog, body: bytes, is_json: bool, fields: dict) -> dict:
    """The prediction of one request's image, with every number the page draws."""
    pixels = None
    if is_json:
        document = parse_json(body)
        if not isinstance(document, dict) or "pixels" not in document:
            raise error(400, 'a JSON body must be an object with "pixels": rows of ink values 0-255')
        pixels = document.pop("pixels")
        fields.update(document)  # the same fields as the query string's, checked alike
    unknown = set(fields) - {"checkpoint", "label", "lr", "snapshot", "timeline"}
    if unknown:
        raise error(400, f"unknown field {quoted(sorted(unknown)[0])}: the fields are checkpoint, label, lr, "
                         f"snapshot and timeline")  # fmt: skip
    entry = _entry(catalog, fields.get("checkpoint"))
    label = parse_label(fields.get("label"), entry.model.sizes["classes"])
    lr = parse_lr(fields.get("lr"))
    # The timeline is this digit under every snapshot: a forward pass each, asked for by name.
    wants_timeline = parse_flag(fields.get("timeline"), "timeline")
    wants_snapshots = wants_timeline or asks_snapshot(fields)
    try:
        timeline, absent = (entry.timeline() if wants_snapshots else None), entry.snapshots_note
    except CheckpointError as exc:  # the model answers all the same; only a request for a snapshot fails
        timeline, absent = None, f"its snapshots cannot be read: {exc}"
        if asks_snapshot(fields):
            raise error(422, absent) from None
    index = parse_snapshot(fields, entry, timeline)
    last = index is None or index == len(timeline.steps) - 1
    model = entry.model if index is None else timeline.models[index]
    try:
        if pixels is not None:
            gray = images.gray_from_ink(pixels, "pixels")
        else:
            gray = images.read_grayscale(body, "the uploaded image")
        stages = images.mnist_stages(gray, "the image" if pixels is None else "the drawing")
    except images.ImageError as exc:
        raise error(400, str(exc)) from None
    except MemoryError:
        raise error(413, "the image is too large to decode here") from None
    # The temperature was fitted to the final weights: it says nothing of an earlier snapshot's.
    temperature = entry.meta.get("temperature") if last else None
    try:
        explained = explain(model, entry.norm, stages.digit, label, entry.untrained, temperature, lr)
    except OverflowingModel as exc:
        raise error(422, str(exc)) from None
    if wants_timeline:
        try:  # a snapshot that overflows costs the timeline, never the answer
            if timeline is not None:
                explained["timeline"] = _timeline(timeline, entry.norm, stages.digit, label, index)
            else:
                explained["timeline_note"] = absent
        except OverflowingModel as exc:
            explained["timeline_note"] = f"a snapshot cannot be drawn: {exc}"
    hidden = explained.get("hidden")
    if hidden is not None:
        hidden.update(side=28, images=_pixels([unit.pop("weights") for unit in hidden["units"]]))
    step = explained["lab"].get("step")
    if step is not None:
        step["gradient"].update(side=28, images=_pixels(step["gradient"]["images"]))
    result = jsonable(explained)
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
    return result


def _timeline(timeline, norm, digit, label: int | None, index: int | None) -> dict:
    """This digit under every snapshot (explain.through_training), for the slider's curve: its loss
    for the label, or for the trained net's answer when no label is chosen (`label_from` says
    which), p(that class), the predicted class, and the run's mean training loss behind it."""
    last = len(timeline.steps) - 1
    seen = through_training(timeline.models, timeline.steps, norm, digit, label)
    shown = int(seen["predicted"][-1]) if label is None else label
    if label is None:  # the trained net's answer is known only once every snapshot has answered
        seen["loss"] = nll(seen["logits"], np.full(last + 1, shown))
    return {
        "steps": timeline.steps,
        "index": last if index is None else index,
        "label": shown,
        "label_from": "prediction" if label is None else "label",
        "loss": seen["loss"],
        "probability": seen["probabilities"][:, shown],
        "predicted": seen["predicted"],
        "train_loss": timeline.train_loss,
        "train_loss_smoothing": timeline.smoothing,
        **({"note": timeline.note} if timeline.note else {}),
    }


def asks_snapshot(fields: dict) -> bool:
    """Whether a request names a snapshot (an empty field names none: the checkpoint's own model)."""
    return fields.get("snapshot") not in (None, "")


def parse_snapshot(fields: dict, entry, timeline) -> int | None:
    """The index of the snapshot the request names, or None (the checkpoint's own model)."""
    if not asks_snapshot(fields):
        return None
    value = fields["snapshot"]
    if timeline is None:
        raise error(400, f"checkpoint {quoted(entry.name)} has no snapshots: {entry.snapshots_note}")
    if isinstance(value, str) and small_int(value.strip()) is not None:
        value = small_int(value.strip())
    last = len(timeline.steps) - 1
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= last:
        raise error(400, f"snapshot must be an index from 0 to {last} (the steps are in /api/checkpoints), "
                         f"not {quoted(value)}")  # fmt: skip
    return value


def _pixels(images) -> str:
    """Images in [-1, 1] as the page draws them, and the probes' weights records hold them: uint8
    (128 is 0) in base64, not a JSON float a pixel (6,272 of them were 1 ms of an answer)."""
    pixels = np.round(128 + 127 * np.asarray(images, dtype=np.float64)).astype(np.uint8)
    return base64.b64encode(pixels.tobytes()).decode("ascii")


def parse_flag(value, name: str) -> bool:
    """A yes-or-no field: true, 1 or yes (a JSON true too); absent, false, 0 or no."""
    if value is None or value is False or value in ("", "0", "false", "no"):
        return False
    if value is True or value in ("1", "true", "yes"):
        return True
    raise error(400, f"{name} must be true or false, not {quoted(value)}")


def parse_lr(value) -> float | None:
    """The lab's learning rate: a finite number in (0, 100], or None for the default."""
    if value is None or value == "":
        return None
    try:
        lr = float(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None
    except (ValueError, OverflowError):  # OverflowError: an integer of 400 digits
        lr = None
    if lr is None or not 0 < lr <= 100:  # NaN fails this too
        raise error(400, f"lr must be a number in (0, 100], not {quoted(value)}")
    return lr
