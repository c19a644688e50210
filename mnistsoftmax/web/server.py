"""uvicorn on a socket bound here, so that `--port 0` knows its port before the app is built (the
app refuses requests addressed to any other host:port), and the URL is announced only once the
server accepts connections."""

from __future__ import annotations

import socket
from collections.abc import Callable

from mnistsoftmax.errors import MnistSoftmaxError


class ServeError(MnistSoftmaxError):
    """The server could not start."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}:{port}: unknown host ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def url_of(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def run(app, sock: socket.socket, on_ready: Callable[[], None], on_shutdown: Callable[[], None] | None = None) -> None:
    """Serve `app` on `sock` until Ctrl-C or SIGTERM; on_ready() once connections are accepted,
    on_shutdown() (in a thread) as soon as shutting down begins, before open streams are closed."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets=sockets)
            if not self.should_exit:
                on_ready()

        async def shutdown(self, sockets=None):
            if on_shutdown is not None:
                import asyncio

                await asyncio.get_running_loop().run_in_executor(None, on_shutdown)
            await super().shutdown(sockets=sockets)

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=3,
                            http=_quick_protocol())  # fmt: skip
    Server(config).run(sockets=[sock])


def _quick_protocol():
    """uvicorn's HTTP/1.1 protocol with every connection's socket set to answer at once: TCP_NODELAY
    (each write leaves without waiting for the last one's ACK), and TCP_QUICKACK after each read on
    Linux, so that a client that sends its headers and its body in two writes (Nagle's algorithm
    holds the body until the headers are acknowledged) does not wait out the server's delayed ACK,
    40 ms on every request of a kept-alive connection."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    quickack = getattr(socket, "TCP_QUICKACK", None)

    class Protocol(H11Protocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._socket = transport.get_extra_info("socket")
            if self._socket is not None and self._socket.family in (socket.AF_INET, socket.AF_INET6):
                self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            else:
                self._socket = None

        def data_received(self, data: bytes) -> None:
            if self._socket is not None and quickack is not None:
                try:
                    self._socket.setsockopt(socket.IPPROTO_TCP, quickack, 1)  # Linux resets it: again each time
                except OSError:
                    pass
            super().data_received(data)

    return Protocol
