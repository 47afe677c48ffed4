"""Fixtures: the platform simulator served by uvicorn on a free loopback port.

`sim_server` (one per test session, i.e. per xdist worker) runs the app in a background
thread and stops it at the end; `simulator` hands each test the base URL of a simulator with
no posts, sessions or media and the initial fault config.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

__all__ = ["SimServer", "png_bytes", "serve_simulator", "sim_server", "simulator"]


def png_bytes(width: int = 4, height: int = 3, padding: int = 0) -> bytes:
    """A valid RGB PNG; `padding` adds an ancillary chunk to reach a wanted size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + b"\xd0\x30\x30" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    extra = chunk(b"tEXt", b"c\x00" + b"x" * padding) if padding else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


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


def serve_simulator(app: Starlette | None = None) -> SimServer:
    """Start the simulator (or `app`) on 127.0.0.1:<free port>; return once it answers."""
    import uvicorn

    from stormer.simulator import create_app

    app = app or create_app()
    # Binding here, not in uvicorn, means no race for the port and a known URL at once.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                           access_log=False, backlog=4096))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="simulator", daemon=True)
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


@pytest.fixture(scope="session")
def sim_server() -> Iterator[SimServer]:
    running = serve_simulator()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def simulator(sim_server: SimServer) -> str:
    """The base URL of a fresh simulator: no state, the initial fault config."""
    with httpx.Client(base_url=sim_server.url, timeout=10) as client:
        client.post("/_sim/reset").raise_for_status()
        client.post("/_sim/config", json={}).raise_for_status()
    return sim_server.url
