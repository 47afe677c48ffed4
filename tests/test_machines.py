"""Workers on several machines share one PostgreSQL outbox over a network: each item is fired
once, by one of them; and a machine cut off from the database, still alive and still able to
reach the platforms, fires nothing while another machine takes its items over.

The machines are network namespaces on a test LAN (tests/lan.py), each worker under its own
host name; PostgreSQL and the simulator listen on the LAN's server addresses, not loopback.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fixtures_db import PgServer, throwaway_server
from fixtures_workers import (
    ITEMS,
    assert_nothing_lost_nothing_twice,
    count_states,
    kill_hard,
    outbox,
    set_t,
    start_workers,
    wait_for,
)
from lan import Host, Lan, lan
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from stormer.outbox.db import make_engine
from stormer.outbox.models import Worker
from stormer.simulator.background import serve_simulator

pytestmark = pytest.mark.postgres

# A stormer process on a machine, in the middle of a transaction: it locks the rows its
# machine's worker holds (through stormer's own engine, with its session settings) and waits.
HOLD_LOCKS = """import sys, time
from sqlalchemy import text
from stormer.outbox.db import make_engine
conn = make_engine(sys.argv[1]).connect()
conn.begin()
mine = text("SELECT id FROM outbox WHERE lease_owner LIKE :m FOR UPDATE")
print("locked", len(conn.execute(mine, {"m": sys.argv[2] + ":%"}).all()), flush=True)
time.sleep(3600)
"""


@pytest.fixture
def network() -> Iterator[Lan]:
    with lan() as made:
        yield made


@pytest.fixture
def simulator(network: Lan) -> Iterator[str]:
    """The simulator on the LAN's platform address (this module's, in place of the suite's
    loopback one), so every machine reaches it; `burst_storm` points the storm at it."""
    running = serve_simulator(host=network.platforms)
    try:
        yield running.url
    finally:
        running.stop()


@pytest.fixture
def lan_database(network: Lan) -> Iterator[str]:
    """A database on a PostgreSQL server of its own, listening on the LAN's database address
    and trusting the LAN's hosts."""
    server: PgServer
    with throwaway_server(listen=network.database, trusted=network.network) as server:
        with server.admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "storm"'))
        yield server.url("storm")


def machine_of(worker_id: str | None) -> str:
    """The host name in a worker's id (`host:pid:random`)."""
    return (worker_id or "").split(":", 1)[0]


def registered_machines(env: dict[str, str]) -> set[str]:
    engine = make_engine(env["STORMER_DATABASE_URL"])
    try:
        with Session(engine) as session:
            return set(session.scalars(select(Worker.hostname)))
    finally:
        engine.dispose()


def on_machines(
    network: Lan, storm: tuple[Path, dict[str, str]], database: str, *names: str
) -> tuple[Path, dict[str, str], list[Host], datetime, list[subprocess.Popen[str]]]:
    """One worker on each of the machines `names`, on the storm (`burst_storm`) with its
    outbox in `database`: the storm, its environment, the machines, the far time it is
    scheduled for (`set_t` moves it) and the workers, each registered."""
    root, env = storm
    env = {**env, "STORMER_DATABASE_URL": database}
    hosts = [network.add_host(name) for name in names]
    start, workers = start_workers(env, root, len(hosts), "--claim-batch", "8", hosts=hosts)
    return root, env, hosts, start, workers


def finish_all(workers: list[subprocess.Popen[str]]) -> None:
    for w in workers:
        out, _ = w.communicate(timeout=150)
        assert w.returncode == 0, out[-3000:]


def stop_all(processes: list[subprocess.Popen[str]]) -> None:
    for proc in processes:
        if proc.poll() is None:
            kill_hard(proc)


def test_workers_on_three_machines_share_one_outbox(
    network: Lan,
    burst_storm: tuple[Path, dict[str, str]],
    simulator: str,
    lan_database: str,
) -> None:
    machines = ("amman", "bogota", "cork")
    root, env, _, start, workers = on_machines(network, burst_storm, lan_database, *machines)
    try:
        at = set_t(env, root, start, workers)
        finish_all(workers)
    finally:
        stop_all(workers)
    assert registered_machines(env) == {"amman", "bogota", "cork"}
    states = assert_nothing_lost_nothing_twice(simulator, env, at)
    assert states == Counter({"sent": ITEMS})
    fired_by = Counter(machine_of(r.lease_owner) for r in outbox(env))
    assert sum(fired_by.values()) == ITEMS
    assert len(fired_by) >= 2, f"the machines did not share the storm: {fired_by}"
    assert set(fired_by) <= {"amman", "bogota", "cork"}


def test_a_machine_cut_off_from_the_database_fires_nothing_and_another_takes_its_items(
    network: Lan,
    burst_storm: tuple[Path, dict[str, str]],
    simulator: str,
    lan_database: str,
) -> None:
    root, env, hosts, start, workers = on_machines(
        network, burst_storm, lan_database, "amman", "bogota"
    )
    amman, other = hosts[0], workers[1]
    try:
        at = set_t(env, root, start, workers)
        # Every item is staged, a second or more before any attempt is recorded: amman's
        # claims are its own until its lease (3 s) runs out.
        network.cut_off(amman, network.database)
        held = [r for r in outbox(env) if machine_of(r.lease_owner) == "amman"]
        assert held, "amman claimed nothing: the test shows nothing"
        assert {r.state for r in held} == {"claimed"}, "amman began its burst before the cut"
        wait_for(
            env,
            "every item sent, amman's by bogota",
            lambda: count_states(env) == Counter({"sent": ITEMS}),
            [other],
        )
        landed_while_cut_off = len(httpx.get(f"{simulator}/_sim/posts").json())
        network.reconnect(amman, network.database)
        # amman, back on the network, must find its claims gone and send nothing.
        finish_all(workers)
    finally:
        stop_all(workers)
    assert len(httpx.get(f"{simulator}/_sim/posts").json()) == landed_while_cut_off == ITEMS
    states = assert_nothing_lost_nothing_twice(simulator, env, at)
    assert states == Counter({"sent": ITEMS})
    fired_by = Counter(machine_of(r.lease_owner) for r in outbox(env))
    assert fired_by == Counter({"bogota": ITEMS}), fired_by
    assert {r.id for r in held} <= {r.id for r in outbox(env) if r.attempts == 1}


def test_a_machine_cut_off_inside_a_transaction_does_not_hold_its_items_for_long(
    network: Lan,
    burst_storm: tuple[Path, dict[str, str]],
    simulator: str,
    lan_database: str,
) -> None:
    """The server ends the cut-off session (idle in a transaction, its peer silent) within
    seconds, not the two hours of TCP keepalive: its row locks go, and bogota takes amman's
    items over inside the grace."""
    root, env, hosts, start, workers = on_machines(
        network, burst_storm, lan_database, "amman", "bogota"
    )
    amman = hosts[0]
    holder = None
    try:
        at = set_t(env, root, start, workers)
        holder = subprocess.Popen(
            amman.command([sys.executable, "-c", HOLD_LOCKS, lan_database, "amman"]),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None
        locked = int(holder.stdout.readline().split()[1])
        network.cut_off(amman, network.database)
        assert locked, "amman claimed nothing: the test shows nothing"
        wait_for(
            env,
            "every item sent, amman's by bogota",
            lambda: count_states(env) == Counter({"sent": ITEMS}),
            [workers[1]],
        )
        network.reconnect(amman, network.database)
        finish_all(workers)
    finally:
        stop_all([*workers, *([holder] if holder else [])])
    states = assert_nothing_lost_nothing_twice(simulator, env, at)
    assert states == Counter({"sent": ITEMS})
    fired_by = Counter(machine_of(r.lease_owner) for r in outbox(env))
    assert fired_by == Counter({"bogota": ITEMS}), fired_by
