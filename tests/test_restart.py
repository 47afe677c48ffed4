"""kill -9 of the worker at any point, then a restart: nothing lost, nothing twice — counted
on the simulator's side."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
from fixtures_workers import (
    EXTRA_ACCOUNTS,
    ITEMS,
    assert_nothing_lost_nothing_twice,
    count_staged,
    finish,
    kill_hard,
    outbox,
    set_t,
    slow_answers,
    start_workers,
    wait_for_the_burst,
)


def test_kill_before_t_then_restart(
    burst_storm: tuple[Path, dict[str, str]], simulator: str
) -> None:
    root, env = burst_storm
    start, first = start_workers(env, root, 1)
    at = set_t(env, root, start, first)
    kill_hard(first[0])
    # Killed when everything was staged and no attempt recorded yet.
    assert count_staged(env) == ITEMS
    assert not httpx.get(f"{simulator}/_sim/posts").json()
    finish(env, root)
    states = assert_nothing_lost_nothing_twice(simulator, env, at)
    assert states == Counter({"sent": 8 + EXTRA_ACCOUNTS})
    assert all(r.attempts == 1 for r in outbox(env))


def test_kill_during_the_burst_then_restart(
    burst_storm: tuple[Path, dict[str, str]], simulator: str
) -> None:
    root, env = burst_storm
    start, first = start_workers(env, root, 1)
    at = set_t(env, root, start, first)
    slow_answers(simulator)
    wait_for_the_burst(env, at, first)
    kill_hard(first[0])
    # Killed mid-burst: every attempt recorded, requests in flight, no outcome written yet.
    assert Counter(r.state for r in outbox(env)) == Counter({"sending": 8 + EXTRA_ACCOUNTS})
    finish(env, root)
    states = assert_nothing_lost_nothing_twice(simulator, env, at)
    # Only platforms that cannot be asked (Telegram, Discord webhooks) may stay unconfirmed.
    unconfirmed = [r.platform for r in outbox(env) if r.state == "unconfirmed"]
    assert set(unconfirmed) <= {"telegram", "discord"}
    assert states["sent"] + states["unconfirmed"] == 8 + EXTRA_ACCOUNTS
