"""What `scale.py` reads from the machine and from its workers: their exit and resource
usage, their JSON logs, the simulator's peak memory, and how many connections the floor may
open at once."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any


def peak_rss_mb(pid: int) -> float | None:
    """A running process's peak resident memory (the simulator's: it keeps every post)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether `proc` has exited, leaving it to be reaped by os.wait4 (for its usage)."""
    found = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return found is not None and found.si_pid == proc.pid


def wait4(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, int, Any]:
    """os.wait4 with a timeout: the child's exit status and its own resource usage."""
    give_up = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return pid, status, usage
        if time.monotonic() > give_up:
            raise TimeoutError
        time.sleep(0.2)


def started_at(log: Path) -> datetime | None:
    """When this worker was up (its `worker … started on …` line): imported, storm loaded."""
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if " started on " in doc.get("message", ""):
                return datetime.fromisoformat(doc["at"].replace("Z", "+00:00"))
    return None


def fired_count(log: Path) -> int:
    """Items this worker fired, from its `fired N item(s) …` JSON log lines."""
    fired = 0
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line).get("message", "")
            if m := re.match(r"fired (\d+) item", message):
                fired += int(m.group(1))
    return fired


def floor_connections(items: int) -> int:
    """The floor's aiohttp connection limit: 0 (one connection per request, its definition)
    up to 5,000 items, where the published tables measured it; beyond, 2,000 at once.

    One per request cannot go on: each connection is a file descriptor in the floor and
    another in the simulator (RLIMIT_NOFILE is 20,000 on the development machine) and a
    local port (28,232 in Linux's default ip_local_port_range), so 50,000 at once would fail
    with "Too many open files" and count as lost. And it stops being a floor well before
    that: 12,000 items (2026-12-02, load 1-3) landed with p99 17.5 s on 10,000 connections,
    15.9 s on 1,000 and 10.5 s on 2,000 (a worker's sender has two pools of 1,000)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    one_each = min(5_000, soft // 2) if soft != resource.RLIM_INFINITY else 5_000
    return 0 if items <= one_each else min(2_000, one_each)
