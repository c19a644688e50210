"""The draw page's routes: the page, the checkpoints to choose among, and one prediction with
every number between the image and its loss (explain.explain, as `predict --explain` prints it)."""

from __future__ import annotations

import json
import time

import numpy as np
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse

from mnistsoftmax import images
from mnistsoftmax.explain import explain, jsonable
from mnistsoftmax.web.http import error, read_body

PREVIEW_SIDE = 140  # the largest side of the ink image sent back to draw the crop on


async def index(request: Request):
    return FileResponse(request.app.state.static / "index.html")


async def checkpoints(request: Request):
    return JSONResponse([entry.summary() for entry in request.app.state.catalog.entries()])


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


async def predict(request: Request):
    """POST /api/predict: an image file or {"pixels": ...} -> explain()'s numbers and the stages."""
    catalog = request.app.state.catalog
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

