"""The simulator in a background thread of this process, on a free loopback port: what
`stormer rehearse` and the test suite use."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette


@dataclass
class SimServer:
    url: str
    app: Starlette
    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
        if self.thread.is_alive():
            raise RuntimeError("the simulator did not stop within 15 s")


def fastest_stack() -> tuple[str, str]:
    """uvicorn's event loop and HTTP parser for the simulator, as (loop, http): uvloop and
    httptools (both compiled, both dependencies) where installed, else asyncio and h11. A burst
    benchmark then measures the client, not the server (bench/README.md)."""
    from importlib.util import find_spec

    return (
        "uvloop" if find_spec("uvloop") else "asyncio",
        "httptools" if find_spec("httptools") else "h11",
    )


def quiet_server(app: Starlette) -> uvicorn.Server:
    """A uvicorn server for `app` on the fastest stack, without logs, lifespan or access log,
    with a backlog for a storm's thousands of connections at once; run it on a socket bound
    beforehand (`server.run(sockets=[sock])`: on the configured loop, which asyncio.run would
    ignore)."""
    import uvicorn

    loop, http = fastest_stack()
    return uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            backlog=4096,
            loop=loop,
            http=http,
        )
    )


def serve_simulator(app: Starlette | None = None, host: str = "127.0.0.1") -> SimServer:
    """Start the simulator (or `app`) on `host`:<free port>; return once it answers. (The
    tests' other machines, in network namespaces, reach it on an address of a test LAN.)"""

    from stormer.simulator import create_app

    app = app or create_app()
    # Binding here, not in uvicorn, means no race for the port and a known URL at once.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(4096)
    url = f"http://{host}:{sock.getsockname()[1]}"
    server = quiet_server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="simulator", daemon=True
    )
    thread.start()
    running = SimServer(url, app, server, thread, sock)
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"{url}/_sim/config", timeout=1).status_code == 200:
                return running
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            running.stop()
            raise RuntimeError("the simulator did not start within 15 s")
        time.sleep(0.02)
