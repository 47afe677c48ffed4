"""`stormer kit serve`: a built kit on http://127.0.0.1:PORT/ for review (and for browser tests),
with the pages' Content-Security-Policy sent as a header too. Loopback only: it is a look
before publishing, not a host."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from stormer.kit import KitError
from stormer.kit.build import MARKER
from stormer.kit.policy import header_policy

HOST: Final = "127.0.0.1"


class KitHandler(SimpleHTTPRequestHandler):
    """Files of the kit, each with the kit's CSP header and no caching (a review sees the
    latest build)."""

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", header_policy())
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a review server: no line per request


def kit_server(out: Path, port: int) -> ThreadingHTTPServer:
    """A server for the kit in `out` on 127.0.0.1:`port` (0: any free port), not started."""
    if not (out / MARKER).is_file():
        raise KitError(f"there is no kit in {out}: build it first with `stormer kit build`")
    handler = functools.partial(KitHandler, directory=str(out))
    try:
        return ThreadingHTTPServer((HOST, port), handler)
    except OSError as e:
        raise KitError(
            f"cannot listen on {HOST}:{port}: {e.strerror or e}; choose another with --port"
        ) from None


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://{HOST}:{server.server_address[1]}/"


@contextlib.contextmanager
def serving(out: Path, port: int = 0) -> Iterator[str]:
    """The kit served from a thread while the block runs; yields its URL."""
    server = kit_server(out, port)
    thread = threading.Thread(target=server.serve_forever, name="kit-serve", daemon=True)
    thread.start()
    try:
        yield url_of(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
