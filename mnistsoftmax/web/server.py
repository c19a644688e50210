"""uvicorn on a socket bound here, so that `--port 0` knows its port before the app is built (the
app refuses requests addressed to any other host:port), and the URL is announced only once the
server accepts connections."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from mnistsoftmax.errors import MnistSoftmaxError

LISTEN_BACKLOG = 32


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
        sock.listen(LISTEN_BACKLOG)
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

    # backlog: asyncio accepts up to this many connections in one burst before any of them is seen by
    # the protocol (uvicorn's default, 2,048, would take a 1,024-descriptor process past its limit
    # before the oldest idle connections could make way).
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=3,
                            http=_quick_protocol(), backlog=LISTEN_BACKLOG)  # fmt: skip
    Server(config).run(sockets=[sock])


# Connections open at once: beyond this the oldest idle one (no request in progress) is closed for
# each newcomer, so that idle or half-sent connections can neither exhaust the process's file
# descriptors (accept() failing with EMFILE, a traceback a second) nor keep the page from answering.
MAX_CONNECTIONS = 512
FD_RESERVE = 64  # descriptors kept for the checkpoints, metrics files and worker threads
# A connection that has not sent a whole request's headers this long after it opened (or after its
# last answer) is closed, however slowly it trickles bytes: uvicorn times out only kept-alive
# connections between requests.
HEADER_TIMEOUT_S = 10.0


def connection_limit() -> int:
    """MAX_CONNECTIONS, or fewer where the open-file limit is low (the soft limit is first raised
    toward the hard one, as servers do)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = 2 * MAX_CONNECTIONS
        if soft != resource.RLIM_INFINITY and soft < wanted:
            raised = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    except (ImportError, ValueError, OSError):
        return 64
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_now = 64
    # Room for what is open already, the accepted connections not yet seen by the protocol (asyncio
    # accepts a backlog's worth each turn of its loop, and a connection is seen, or closed, a few
    # turns later), and the reserve.
    return max(16, min(MAX_CONNECTIONS, soft - open_now - 4 * LISTEN_BACKLOG - FD_RESERVE))


def _quick_protocol():
    """uvicorn's HTTP/1.1 protocol with every connection's socket set to answer at once: TCP_NODELAY
    (each write leaves without waiting for the last one's ACK), and TCP_QUICKACK after each read on
    Linux, so that a client that sends its headers and its body in two writes (Nagle's algorithm
    holds the body until the headers are acknowledged) does not wait out the server's delayed ACK,
    40 ms on every request of a kept-alive connection. It also bounds the connections: at most
    connection_limit() open (the oldest idle one closed for a newcomer), and none waiting for its
    headers longer than HEADER_TIMEOUT_S."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    quickack = getattr(socket, "TCP_QUICKACK", None)
    limit = connection_limit()

    class Protocol(H11Protocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._socket = transport.get_extra_info("socket")
            if self._socket is not None and self._socket.family in (socket.AF_INET, socket.AF_INET6):
                self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            else:
                self._socket = None
            self._waiting_since, self._seen_cycle = self.loop.time(), None
            self._timer = self.loop.call_later(HEADER_TIMEOUT_S, self._check_waiting)
            if len(self.connections) > limit:
                idle = [c for c in self.connections if c is not self and isinstance(c, Protocol)
                        and not c.transport.is_closing() and c._idle()]  # fmt: skip
                oldest = min(idle, key=lambda c: c._waiting_since, default=self)
                oldest.transport.close()

        def _idle(self) -> bool:
            """No request in progress: waiting for (the rest of) a request's headers."""
            return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

        def _check_waiting(self) -> None:
            if self.transport.is_closing():
                return
            now = self.loop.time()
            if self.cycle is not self._seen_cycle:  # a request came since: its wait starts anew
                self._seen_cycle, self._waiting_since = self.cycle, now
            if self._idle() and now - self._waiting_since >= HEADER_TIMEOUT_S:
                self.transport.close()
                return
            self._timer = self.loop.call_later(HEADER_TIMEOUT_S, self._check_waiting)

        def connection_lost(self, exc):
            self._timer.cancel()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._socket is not None and quickack is not None:
                try:
                    self._socket.setsockopt(socket.IPPROTO_TCP, quickack, 1)  # Linux resets it: again each time
                except OSError:
                    pass
            super().data_received(data)

    return Protocol
