"""A local HTTP mirror that can misbehave on request, for the tests and scripts/faults.py."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from pathlib import Path


class FaultyHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; a first path part names a fault to play instead:
    /403/..., /500/... answer that status; /slow/... waits 5 s before answering;
    /short/... announces the whole file but sends half of it and closes the connection;
    /drip/... sends the file slowly, 16 KB every 20 ms, so that concurrent downloads overlap."""

    def do_GET(self):
        fault, _, rest = self.path.lstrip("/").partition("/")
        if fault in ("403", "500"):
            self.send_error(int(fault))
        elif fault == "slow":
            time.sleep(5)
            self.send_error(503)
        elif fault == "drip":
            data = self._announce(rest)
            for start in range(0, len(data), 16384):
                self.wfile.write(data[start : start + 16384])
                self.wfile.flush()
                time.sleep(0.02)
        elif fault == "short":
            data = self._announce(rest)
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            super().do_GET()

    def _announce(self, name: str) -> bytes:
        """Send the headers of a 200 answer with the whole file's length; return the file."""
        data = (Path(self.directory) / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        return data

    def log_message(self, format, *args):  # keep the test output clean
        pass


def start_mirror(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve `folder` on 127.0.0.1 at a free port from a daemon thread: (server, base URL).
    Stop it with server.shutdown(); server.server_close()."""
    handler = functools.partial(FaultyHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"
