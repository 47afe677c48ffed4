"""`stormer run` fires on Python's asyncio loop by default and on uvloop with `--event-loop
uvloop` (a choice to measure the burst with, bench/README.md): the same storm, every item
sent, nothing early, on either."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fixtures_workers import ITEMS
from test_run_output import run_storm_soon
from typer.testing import CliRunner

from stormer.cli import app


@pytest.mark.parametrize(("option", "loop"), [((), "asyncio"), (("uvloop",), "uvloop")])
def test_both_event_loops_fire_the_storm(
    burst_storm: tuple[Path, dict[str, str]], simulator: str, option: tuple[str, ...], loop: str
) -> None:
    root, env = burst_storm
    extra = ("--event-loop", *option) if option else ()
    ran = run_storm_soon(env, root, "--log-format", "json", *extra)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    docs = [json.loads(line) for line in ran.stdout.splitlines()]
    assert f"event loop: {loop}" in [d.get("message") for d in docs]
    summary = docs[-1]
    assert summary["sent"] == summary["total"] == ITEMS
    assert summary["lateness"]["p50"] >= 0  # none before T
    landed = httpx.get(f"{simulator}/_sim/posts", timeout=10).json()
    assert len({p["remote_id"] for p in landed}) == len(landed) >= ITEMS


def test_an_unknown_event_loop_is_a_usage_error() -> None:
    done = CliRunner().invoke(app, ["run", "--event-loop", "trio"])
    assert done.exit_code == 2
    assert "'trio': choose asyncio or uvloop" in done.output
