"""Fixtures: the platform simulator served by uvicorn on a free loopback port.

`sim_server` (one per test session, i.e. per xdist worker) runs the app in a background
thread and stops it at the end; `simulator` hands each test the base URL of a simulator with
no posts, sessions or media and the initial fault config.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import httpx
import pytest

from stormer.simulator.background import SimServer, serve_simulator

__all__ = ["SimServer", "png_bytes", "serve_simulator", "sim_server", "simulator"]


def png_bytes(width: int = 4, height: int = 3, padding: int = 0) -> bytes:
    """A valid RGB PNG; `padding` adds an ancillary chunk to reach a wanted size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(b"\x00" + b"\xd0\x30\x30" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    extra = chunk(b"tEXt", b"c\x00" + b"x" * padding) if padding else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


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
