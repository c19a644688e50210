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

import functools
import socket
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mnistsoftmax.errors import quoted
from mnistsoftmax.web import draw_routes, run_routes
from mnistsoftmax.web.catalog import Catalog
from mnistsoftmax.web.http import JSONResponse
from mnistsoftmax.web.trainer import Trainer
from mnistsoftmax.web.watch import RunList

STATIC = Path(__file__).parent / "static"

# The routes: each a small handler that parses, calls the library and answers JSON.
ROUTES = [
    Route("/", draw_routes.index),
    Route("/api/checkpoints", draw_routes.checkpoints),
    Route("/api/predict", draw_routes.predict, methods=["POST"]),
    Route("/api/model", draw_routes.page_model),
    Route("/train", run_routes.train_page),
    Route("/api/train/options", run_routes.train_options),
    Route("/api/runs", run_routes.list_runs, methods=["GET"]),
    Route("/api/runs", run_routes.start_run, methods=["POST"]),
    Route("/api/runs/{id}/events", run_routes.run_events),
    Route("/api/runs/{id}/stop", run_routes.stop_run, methods=["POST"]),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]


class HostGuard:
    """ASGI middleware: 403 unless the Host header is one of `allowed` (host:port strings), and
    403 for a request that changes something (not GET or HEAD) sent by a page of another origin:
    browsers name the page's origin in the Origin header, and a web page elsewhere could
    otherwise start training runs here through a plain form."""

    def __init__(self, app, allowed: set[str], any_local_port: int | None = None):
        self.app = app
        self.allowed = allowed
        self.any_local_port = any_local_port  # bound to every address: any of the machine's, with this port

    def suggested(self) -> str:
        """The address to tell a refused user to open: 127.0.0.1 when the server binds every
        address (0.0.0.0 is no address to open), else the one it binds."""
        if self.any_local_port is not None:
            return f"127.0.0.1:{self.any_local_port}"
        return sorted(self.allowed)[0]

    def known(self, host: str) -> bool:
        if host in self.allowed:
            return True
        if self.any_local_port is None:
            return False
        name, _, port = host.rpartition(":")
        return port == str(self.any_local_port) and is_this_machine(name.strip("[]"))

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            hosts = [v.decode("latin-1").lower() for k, v in scope["headers"] if k == b"host"]
            origins = [v.decode("latin-1").lower() for k, v in scope["headers"] if k == b"origin"]
            host, origin = (hosts or [""])[0], (origins or [""])[0]
            scheme, _, origin_host = origin.partition("://")
            changes = scope["method"] not in ("GET", "HEAD")
            message = None
            if len(hosts) > 1 or len(origins) > 1:  # which one counts would be each reader's guess: none does
                message = "a request names one Host and at most one Origin"
            elif not self.known(host):
                message = (f"host {quoted(host or '(none)')} is not this server's address; open it as "
                           f"http://{self.suggested()}/")  # fmt: skip
            elif origin and changes and not (scheme == "http" and self.known(origin_host)):
                message = f"requests from the page {quoted(origin)} are refused: use this server's own page"
            if message is not None:
                await JSONResponse({"error": message}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


WILDCARDS = ("0.0.0.0", "::", "")


@functools.lru_cache(maxsize=256)
def is_this_machine(name: str) -> bool:
    """Whether a Host header's name is this machine: its host name, or an address it can bind
    (only an address of one of its own interfaces can be bound)."""
    if name in (socket.gethostname().lower(), socket.getfqdn().lower()):
        return True
    try:
        family = socket.AF_INET6 if ":" in name else socket.AF_INET
        socket.inet_pton(family, name)  # an address literal, not a name to look up
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((name, 0))
        return True
    except (OSError, ValueError):
        return False


def allowed_hosts(host: str, port: int) -> set[str]:
    """Host headers a browser sends for this server: the bound address, localhost and 127.0.0.1,
    each with the port."""
    bound = f"[{host}]" if ":" in host else host
    return {f"{h}:{port}" for h in {bound.lower(), "localhost", "127.0.0.1"}}


def create_app(
    catalog: Catalog, host: str = "127.0.0.1", port: int = 8765, trainer: Trainer | None = None, data_dirs=()
) -> Starlette:
    """The app for a catalog of checkpoints, accepting requests addressed to host:port; training
    runs go to the catalog's runs folder, through `trainer`. The handlers find what they serve in
    app.state."""
    app = Starlette(routes=ROUTES, exception_handlers={HTTPException: http_error, Exception: server_error})
    app.add_middleware(HostGuard, allowed=allowed_hosts(host, port), any_local_port=port if host in WILDCARDS else None)
    app.state.catalog = catalog
    app.state.trainer = trainer or Trainer(catalog.runs_dir, data_dirs)
    app.state.run_list = RunList(app.state.trainer)
    app.state.static = STATIC
    return app


async def http_error(request: Request, exc: HTTPException):
    message = exc.detail
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such page: {quoted(request.url.path)}"
    elif exc.status_code == 405:
        message = f"{request.method[:20]} is not allowed on {quoted(request.url.path)}"
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


async def server_error(request: Request, exc: Exception):
    # Not expected: every bad input has its 4xx. No traceback leaves the server.
    return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)
