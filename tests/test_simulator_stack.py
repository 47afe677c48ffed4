"""The simulator serves on uvicorn's compiled stack, uvloop and httptools, in `stormer
simulator serve` and in the background server of rehearsals and tests: a burst benchmark
then measures the client, not a pure-Python server (bench/README.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from stormer.cli import app
from stormer.simulator.background import SimServer, fastest_stack


def test_the_stack_is_uvloop_and_httptools_where_installed() -> None:
    assert fastest_stack() == ("uvloop", "httptools")  # both are dependencies


def test_the_background_simulator_runs_on_uvloop_and_httptools(sim_server: SimServer) -> None:
    listening = sim_server.server.servers
    assert listening and all(type(s).__module__.startswith("uvloop") for s in listening)
    assert sim_server.server.config.http_protocol_class.__name__ == "HttpToolsProtocol"


def test_serve_runs_on_uvloop_and_httptools(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the command's server runs on, seen from inside it; it then stops at once."""
    seen: dict[str, Any] = {}

    async def look(self: uvicorn.Server, sockets: Any = None) -> None:
        self.config.load()
        seen["loop"] = type(asyncio.get_running_loop()).__module__
        seen["http"] = self.config.http_protocol_class.__name__
        seen["sockets"] = sockets

    monkeypatch.setattr(uvicorn.Server, "serve", look)
    done = CliRunner().invoke(app, ["simulator", "serve", "--port", "0"])
    assert done.exit_code == 0, done.output
    assert done.output.startswith("http://127.0.0.1:")
    assert seen["loop"].startswith("uvloop")
    assert seen["http"] == "HttpToolsProtocol"
    assert len(seen["sockets"]) == 1  # the socket bound before, whose port was printed
