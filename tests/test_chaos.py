"""Chaos, counted (issue 15, item 3): whole storms through the CLI against the simulator in
its own process, one worker SIGKILLed at a moment drawn from the seed and restarted, over
many seeds per platform mix, on SQLite and PostgreSQL. Counted from the simulator's own post
log: nothing early, nothing twice where the platform lets stormer know, nothing lost, and
the outbox agreeing with the platform item by item.

Seeds per mix: STORMER_CHAOS_SEEDS (default 20; more for a long run, e.g. 200). Each seed
aims at one kill moment (seed modulo the six moments) on one database (SQLite for the first
six seeds of every twelve, PostgreSQL for the next six): the test id names both.
`bench/chaos_bench.py` prints the counted table over many seeds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaos import Plan, Result, run_until_hit
from chaos_count import LostItems
from chaos_storm import MIXES, NO_READ_BACK, Databases, Simulator
from fixtures_db import PgServer

SEEDS = int(os.environ.get("STORMER_CHAOS_SEEDS", "20"))


def plans() -> list[object]:
    found: list[object] = []
    for mix in MIXES:
        for seed in range(SEEDS):
            plan = Plan(mix, seed)
            marks = [pytest.mark.postgres] if plan.database == "postgresql" else []
            found.append(pytest.param(plan, marks=marks, id=str(plan)))
    return found


@pytest.fixture(scope="module")
def chaos_simulator() -> Iterator[Simulator]:
    sim = Simulator()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def sqlite_files(tmp_path_factory: pytest.TempPathFactory) -> Databases:
    return Databases(folder=tmp_path_factory.mktemp("chaos-sqlite"))


@pytest.fixture(scope="module")
def pg_databases(pg_server: PgServer) -> Databases:
    return Databases(server=pg_server.url("").rstrip("/"))


@pytest.mark.parametrize("plan", plans())
def test_chaos(
    plan: Plan, chaos_simulator: Simulator, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    fixture = "pg_databases" if plan.database == "postgresql" else "sqlite_files"
    databases: Databases = request.getfixturevalue(fixture)
    results = run_until_hit(chaos_simulator, plan, databases, tmp_path)
    for result in results:
        print(result.describe())  # shown with -rP: where each kill landed, what was counted
        assert_promises_kept(result)
    assert results[-1].hit, "no kill landed in its moment:\n" + "\n".join(
        r.describe() for r in results
    )
    for result in results:  # a try whose kill missed its moment too
        assert_nothing_lost(result)


def assert_promises_kept(result: Result) -> None:
    """Everything but `lost`: never early, never twice where stormer can know, every item
    settled with the outbox agreeing with the platform."""
    c, about = result.counted, f"{result.describe()}\n{result.logs}"
    assert not c.early, f"posted early: {c.early}\n{about}"
    twice = {p: ids for p, ids in c.duplicates.items() if ids and p not in NO_READ_BACK}
    assert not twice, f"posted twice: {twice}\n{about}"
    assert not c.disagreements, f"the outbox disagrees: {c.disagreements}\n{about}"
    assert not c.other, f"posts no item explains: {c.other}\n{about}"
    unknown = {p for p, n in c.unconfirmed.items() if n}
    assert unknown <= NO_READ_BACK, f"unconfirmed where stormer can ask: {unknown}\n{about}"


def assert_nothing_lost(result: Result) -> None:
    """An item may end unconfirmed without being on its platform only if its request may have
    left: the worker was killed after its burst began."""
    if result.counted.lost:
        raise LostItems(f"lost: {result.counted.lost}\n{result.describe()}")
