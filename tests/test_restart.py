"""kill -9 of the worker at any point, then a restart: nothing lost, nothing twice — counted
on the simulator's side."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from example import add_accounts, copy_example, set_storm_time
from sqlalchemy import select
from sqlalchemy.orm import Session
from test_cli_online import point_accounts_at
from test_dispatch import CREDENTIALS

from stormer.outbox.db import make_engine
from stormer.outbox.models import Outbox
from stormer.timezones import iso_utc

EXTRA_ACCOUNTS = 40  # Mastodon accounts added to the example storm, for a real burst


@pytest.fixture
def storm(tmp_path: Path, simulator: str) -> tuple[Path, dict[str, str]]:
    root = copy_example(tmp_path / "storm")
    point_accounts_at(root, simulator)
    extra = "".join(
        f'''
[[accounts]]
name = "extra-{n:03d}"
platform = "mastodon"
base_url = "{simulator}"
langs = ["en", "es", "fr", "it", "ar"]
credentials = {{ access_token = "EXTRA_{n:03d}" }}
'''
        for n in range(EXTRA_ACCOUNTS)
    )
    add_accounts(root, extra)
    env = {
        **os.environ,
        **CREDENTIALS,
        **{f"EXTRA_{n:03d}": f"tok-extra-{n}" for n in range(EXTRA_ACCOUNTS)},
        "FPS_DISCORD_WEBHOOK_URL": f"{simulator}/api/webhooks/7/tok-d",
        "STORMER_DATABASE_URL": f"sqlite:///{tmp_path / 'stormer.db'}",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    return root, env


def stormer(env: dict[str, str], root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stormer", *args, "--storm", str(root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def worker(env: dict[str, str], root: Path, *extra: str) -> subprocess.Popen[str]:
    return stormer(
        env,
        root,
        "run",
        "--until-done",
        "--staging-window",
        "1m",
        "--grace",
        "2m",
        "--lease",
        "3s",
        "--poll",
        "0.3",
        *extra,
    )


def schedule(env: dict[str, str], root: Path, at: datetime) -> None:
    set_storm_time(root, iso_utc(at))
    done = subprocess.run(
        [sys.executable, "-m", "stormer", "schedule", "--storm", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def outbox(env: dict[str, str]) -> list[Outbox]:
    engine = make_engine(env["STORMER_DATABASE_URL"])
    try:
        with Session(engine) as session:
            found = list(session.scalars(select(Outbox)))
            session.expunge_all()
            return found
    finally:
        engine.dispose()


def kill_hard(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


def finish(env: dict[str, str], root: Path) -> str:
    proc = worker(env, root)
    try:
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        states = Counter((r.state, r.lease_owner is not None, r.error) for r in outbox(env))
        raise AssertionError(
            f"the restarted worker did not finish: {states}\n{out[-3000:]}"
        ) from None
    assert proc.returncode == 0, out
    return out


def assert_nothing_lost_nothing_twice(
    simulator: str, env: dict[str, str], at: datetime
) -> Counter[str]:
    rows = outbox(env)
    landed = httpx.get(f"{simulator}/_sim/posts").json()
    counts: Counter[tuple[str, str]] = Counter()
    for row in rows:
        same = [
            p
            for p in landed
            if p["platform"] == row.platform
            and p["text"] == row.text
            and p["account"] == landed_account(row, landed)
        ]
        counts[(row.id, row.state)] = len(same)
    states = Counter(r.state for r in rows)
    for (item, state), n in counts.items():
        assert n <= 1, f"{item} posted {n} times"
        if state == "sent":
            assert n == 1, f"{item} marked sent but not on the platform"
        assert state in ("sent", "unconfirmed"), f"{item} ended {state}"
    assert all(
        datetime.fromisoformat(p["received_at"].replace("Z", "+00:00")) >= at for p in landed
    ), "a post arrived early"
    return states


def landed_account(row: Outbox, landed: list[dict]) -> str:  # type: ignore[type-arg]
    """The simulator names accounts by their credential; map via the item's own post."""
    for p in landed:
        if p["remote_id"] == row.remote_id:
            return str(p["account"])
    return ""


def test_kill_before_t_then_restart(storm, simulator: str) -> None:  # type: ignore[no-untyped-def]
    root, env = storm
    at = (datetime.now(UTC) + timedelta(seconds=9)).replace(microsecond=0)
    schedule(env, root, at)
    first = worker(env, root)
    while datetime.now(UTC) < at - timedelta(seconds=3):  # staged; attempts not yet recorded
        time.sleep(0.05)
    kill_hard(first)
    assert not httpx.get(f"{simulator}/_sim/posts").json()
    finish(env, root)
    states = assert_nothing_lost_nothing_twice(simulator, env, at)
    assert states == Counter({"sent": 8 + EXTRA_ACCOUNTS})
    assert all(r.attempts == 1 for r in outbox(env))


def test_kill_during_the_burst_then_restart(storm, simulator: str) -> None:  # type: ignore[no-untyped-def]
    root, env = storm
    httpx.post(f"{simulator}/_sim/config", json={"latency_ms": [300, 900]}).raise_for_status()
    at = (datetime.now(UTC) + timedelta(seconds=12)).replace(microsecond=0)  # staging is slow
    schedule(env, root, at)
    first = worker(env, root)
    while datetime.now(UTC) < at + timedelta(milliseconds=400):
        time.sleep(0.02)
    kill_hard(first)
    # Killed mid-burst: every attempt recorded, requests in flight, no outcome written yet
    # (each answer takes at least 300 ms, and outcomes are written after the burst).
    assert Counter(r.state for r in outbox(env)) == Counter({"sending": 8 + EXTRA_ACCOUNTS})
    finish(env, root)
    states = assert_nothing_lost_nothing_twice(simulator, env, at)
    # Only platforms that cannot be asked (Telegram, Discord webhooks) may stay unconfirmed.
    unconfirmed = [r.platform for r in outbox(env) if r.state == "unconfirmed"]
    assert set(unconfirmed) <= {"telegram", "discord"}
    assert states["sent"] + states["unconfirmed"] == 8 + EXTRA_ACCOUNTS
