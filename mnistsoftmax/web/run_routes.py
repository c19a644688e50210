"""The training view's routes: the page, train's options, the runs of the runs folder, one run's
records as Server-Sent Events, and starting, stopping and resuming the server's own run."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, StreamingResponse

from mnistsoftmax.errors import MnistSoftmaxError, quoted
from mnistsoftmax.web.http import JSONResponse, error, read_json, small_int
from mnistsoftmax.web.trainer import Busy, describe_options
from mnistsoftmax.web.watch import events


async def train_page(request: Request):
    return FileResponse(request.app.state.static / "train.html")


async def train_options(request: Request):
    return JSONResponse(describe_options(request.app.state.trainer.data))


async def list_runs(request: Request):
    run_list = request.app.state.run_list
    return JSONResponse(await run_in_threadpool(run_list.runs))


async def start_run(request: Request):
    trainer = request.app.state.trainer
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


MAX_STREAMS = 64  # event streams open at once; a page watches one


async def run_events(request: Request):
    run_list = request.app.state.run_list
    name = request.path_params["id"]
    if await run_in_threadpool(run_list.find, name) is None:
        raise error(404, f"no run {quoted(name)}: the runs are in /api/runs")
    last = small_int(request.headers.get("last-event-id", ""))
    skip = last + 1 if last is not None else 0
    state = request.app.state
    open_now = getattr(state, "open_streams", 0)
    if open_now >= MAX_STREAMS:  # each holds a file and a socket open: refuse before running out of either
        raise error(429, f"{open_now} event streams are open, the most this server keeps; close some pages")
    state.open_streams = open_now + 1

    async def counted():
        try:
            async for event in events(run_list, name, skip):
                yield event
        finally:
            state.open_streams -= 1

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(counted(), media_type="text/event-stream", headers=headers)


async def stop_run(request: Request):
    run_list, trainer = request.app.state.run_list, request.app.state.trainer
    name = request.path_params["id"]
    if await run_in_threadpool(run_list.find, name) is None:  # a run that is not there: 404, whatever the body
        raise error(404, f"no run {quoted(name)}: the runs are in /api/runs")
    await read_json(request)  # JSON only, as every request that changes something: no plain cross-site form
    try:
        trainer.stop(name)
    except Busy as exc:
        raise error(409, str(exc)) from None
    return JSONResponse({"id": name, "status": "stopping"}, status_code=202)
