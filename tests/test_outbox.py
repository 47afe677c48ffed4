"""The outbox on SQLite and PostgreSQL: schema by migration, idempotent scheduling, UTC times."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, inspect, select, text, update
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import ORMExecuteState, Session

from stormer.errors import StormerError
from stormer.outbox import db
from stormer.outbox import schedule as outbox
from stormer.outbox.models import Base, Outbox, UTCDateTime
from stormer.queue import MediaRef, QueueItem, item_id

T = datetime(2027, 3, 11, 18, 0, tzinfo=UTC)
NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def item(n: int, **changes: Any) -> QueueItem:
    base = QueueItem(
        id=item_id("gaza", "post", n),
        kind="post",
        fire_at=T + timedelta(seconds=n % 7),
        platform="mastodon",
        account=f"acct{n}",
        lang="ar",
        text=f"غزة #storm {n} 🕊",
        media=(MediaRef("img/dove.png", "a white dove", 800, 600),),
        source="posts/ar.md",
        payload={"status": f"post {n}", "visibility": "public"},
    )
    return replace(base, **changes)


def plan(n: int = 5) -> list[QueueItem]:
    return [item(i) for i in range(n)]


def schedule(engine: Engine, items: list[QueueItem], now: datetime = NOW) -> outbox.ScheduleResult:
    with Session(engine) as session, session.begin():
        return outbox.schedule(items, session=session, storm="gaza", now=now)


def rows(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every column of every row, read as plain values (not through the ORM identity map)."""
    with engine.connect() as conn:
        result = conn.execute(select(Outbox.__table__))
        return {r.id: dict(r._mapping) for r in result}


def set_state(engine: Engine, item_id_: str, **values: Any) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(Outbox).where(Outbox.id == item_id_).values(**values))


# --- schema ------------------------------------------------------------------------------------


def test_migration_creates_the_schema_and_downgrade_drops_it(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        assert not db.migrations_current(engine)
        db.upgrade(engine)
        assert db.migrations_current(engine)
        insp = inspect(engine)
        assert set(insp.get_table_names()) == {"outbox", "workers", "bursts", "alembic_version"}
        assert {i["name"] for i in insp.get_indexes("outbox")} == {
            "ix_outbox_storm",
            "ix_outbox_state_fire_at",
        }
        assert sorted(c["name"] for c in insp.get_check_constraints("outbox")) == [
            "ck_outbox_claimed_from",
            "ck_outbox_state",
        ]

        with engine.begin() as conn:
            command.downgrade(db.alembic_config(conn), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert not db.migrations_current(engine)
        db.upgrade(engine)  # and back: the round trip is clean
        assert db.migrations_current(engine)
    finally:
        engine.dispose()


def test_models_match_the_migrations_exactly(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_state_outside_the_lifecycle_is_refused_by_the_database(engine: Engine) -> None:
    schedule(engine, plan(1))
    with pytest.raises(Exception, match=r"(?i)check"):
        set_state(engine, item(0).id, state="posted")


def test_upgrade_without_migrations_folder_is_a_clear_error(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(db, "MIGRATIONS_DIR", tmp_path / "nowhere")
    with pytest.raises(StormerError, match="migrations not found"):
        db.upgrade(engine)


# --- schedule ----------------------------------------------------------------------------------


def test_first_schedule_adds_everything_as_pending(engine: Engine) -> None:
    result = schedule(engine, plan())
    assert sorted(result.added) == sorted(i.id for i in plan())
    with Session(engine) as session:
        assert outbox.counts(session=session, storm="gaza") == {
            "pending": 5,
            "staged": 0,
            "claimed": 0,
            "sending": 0,
            "sent": 0,
            "failed": 0,
            "dead": 0,
            "unconfirmed": 0,
            "missed": 0,
            "cancelled": 0,
        }
        stored = outbox.items(session=session, storm="gaza")
    first = stored[0]
    assert (first.text, first.lang, first.source) == (item(0).text, "ar", "posts/ar.md")
    assert first.media == [item(0).media[0].as_dict()]
    assert first.payload == item(0).payload
    assert (first.attempts, first.created_at, first.updated_at) == (0, NOW, NOW)


def test_items_come_in_firing_order_then_by_id(engine: Engine) -> None:
    schedule(engine, plan(20))
    with Session(engine) as session:
        got = [(o.fire_at, o.id) for o in outbox.items(session=session, storm="gaza")]
    assert got == sorted((i.fire_at, i.id) for i in plan(20))


def test_scheduling_twice_changes_nothing(engine: Engine) -> None:
    schedule(engine, plan())
    before = rows(engine)
    again = schedule(engine, plan(), now=NOW + timedelta(hours=1))
    assert again.added == again.updated == again.cancelled == again.restored == []
    assert sorted(again.unchanged) == sorted(before)
    assert rows(engine) == before


def test_other_storms_are_left_alone(engine: Engine) -> None:
    schedule(engine, plan(3))
    with Session(engine) as session, session.begin():
        other = [replace(item(9), id=item_id("paris", "post", 1))]
        outbox.schedule(other, session=session, storm="paris", now=NOW)
        assert outbox.counts(session=session, storm="paris")["pending"] == 1
        assert outbox.counts(session=session, storm="gaza")["pending"] == 3


def test_editing_one_text_updates_only_that_item(engine: Engine) -> None:
    schedule(engine, plan())
    before = rows(engine)
    edited = plan()
    edited[2] = replace(edited[2], text="a better text #storm")
    later = NOW + timedelta(minutes=5)
    result = schedule(engine, edited, now=later)
    assert result.updated == [edited[2].id]
    after = rows(engine)
    assert after[edited[2].id]["text"] == "a better text #storm"
    assert after[edited[2].id]["content_hash"] == edited[2].content_hash()
    assert after[edited[2].id]["updated_at"] == later
    assert {k: v for k, v in after.items() if k != edited[2].id} == {
        k: v for k, v in before.items() if k != edited[2].id
    }


@pytest.mark.parametrize("state", ["staged", "failed"])
def test_changed_unsent_item_goes_back_to_pending_keeping_attempts(
    engine: Engine, state: str
) -> None:
    schedule(engine, plan(1))
    set_state(engine, item(0).id, state=state, attempts=2)
    result = schedule(engine, [item(0, fire_at=T + timedelta(minutes=1))])
    assert result.updated == [item(0).id]
    row = rows(engine)[item(0).id]
    assert (row["state"], row["attempts"], row["fire_at"]) == (
        "pending",
        2,
        T + timedelta(minutes=1),
    )


@pytest.mark.parametrize("state", ["claimed", "sending", "sent", "dead", "unconfirmed", "missed"])
def test_item_that_may_have_reached_the_platform_is_never_touched(
    engine: Engine, state: str
) -> None:
    schedule(engine, plan(2))
    sent_id = item(0).id
    set_state(
        engine,
        sent_id,
        state=state,
        sent_at=T + timedelta(milliseconds=1234),
        remote_id="109",
        attempts=1,
    )
    before = rows(engine)[sent_id]

    changed = [item(0, text="edited after sending", fire_at=T + timedelta(hours=1)), item(1)]
    result = schedule(engine, changed, now=NOW + timedelta(days=1))

    assert result.kept_sent == [sent_id]
    assert result.updated == []
    assert rows(engine)[sent_id] == before  # byte-identical: text, fire_at, state, sent_at…


def test_unchanged_sent_item_is_just_unchanged(engine: Engine) -> None:
    schedule(engine, plan(1))
    set_state(engine, item(0).id, state="sent")
    result = schedule(engine, plan(1))
    assert (result.unchanged, result.kept_sent) == ([item(0).id], [])


def test_removed_item_is_cancelled_not_deleted_and_comes_back_when_planned_again(
    engine: Engine,
) -> None:
    schedule(engine, plan(3))
    dropped = item(1).id
    result = schedule(engine, [item(0), item(2)])
    assert result.cancelled == [dropped]
    assert rows(engine)[dropped]["state"] == "cancelled"
    assert len(rows(engine)) == 3

    assert schedule(engine, [item(0), item(2)]).cancelled == []  # already cancelled: stays so

    edited = item(1, text="back, and reworded")
    result = schedule(engine, [item(0), edited, item(2)])
    assert result.restored == [dropped]
    row = rows(engine)[dropped]
    assert (row["state"], row["text"]) == ("pending", "back, and reworded")


def test_removed_item_already_sent_is_kept_and_reported(engine: Engine) -> None:
    schedule(engine, plan(2))
    set_state(engine, item(1).id, state="sent")
    result = schedule(engine, [item(0)])
    assert (result.cancelled, result.kept_sent) == ([], [item(1).id])
    assert rows(engine)[item(1).id]["state"] == "sent"


@pytest.mark.parametrize(("meanwhile", "kept"), [("claimed", True), ("staged", False)])
def test_state_at_write_time_decides_not_the_state_read_before(
    engine: Engine, meanwhile: str, kept: bool
) -> None:
    """A dispatcher moving a row between schedule's read and its write: claimed wins, staged
    is still rewritten."""
    schedule(engine, plan(2))
    raced = item(0).id
    with Session(engine) as session, session.begin():

        @event.listens_for(session, "do_orm_execute")
        def dispatcher(state: ORMExecuteState) -> None:
            if state.is_update and not getattr(dispatcher, "done", False):
                dispatcher.done = True  # type: ignore[attr-defined]
                state.session.connection().execute(
                    update(Outbox).where(Outbox.id == raced).values(state=meanwhile)
                )

        changed = [item(0, text="edit 0"), item(1, text="edit 1")]
        result = outbox.schedule(changed, session=session, storm="gaza", now=NOW)

    after = rows(engine)
    assert after[item(1).id]["text"] == "edit 1"
    if kept:
        assert (result.kept_sent, result.updated) == ([raced], [item(1).id])
        assert (after[raced]["state"], after[raced]["text"]) == ("claimed", item(0).text)
    else:
        assert (result.kept_sent, sorted(result.updated)) == ([], sorted([raced, item(1).id]))
        assert (after[raced]["state"], after[raced]["text"]) == ("pending", "edit 0")


def test_a_schedule_that_fails_halfway_leaves_nothing_behind(engine: Engine) -> None:
    schedule(engine, plan(2))
    before = rows(engine)
    changed = [item(0, text="edited"), item(1), item(2)]
    with Session(engine) as session:

        @event.listens_for(session, "do_orm_execute")
        def crash(state: ORMExecuteState) -> None:
            if state.is_update:  # after the new item was inserted
                raise RuntimeError("power cut")

        with pytest.raises(RuntimeError, match="power cut"), session.begin():
            outbox.schedule(changed, session=session, storm="gaza", now=NOW)
    assert rows(engine) == before


def test_duplicate_ids_in_a_plan_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="two items"):
        schedule(engine, [item(0), item(0, text="twin")])


def test_twenty_thousand_items(engine: Engine) -> None:
    big = plan(20_000)
    assert len(schedule(engine, big).added) == 20_000
    assert len(schedule(engine, big).unchanged) == 20_000
    edited = [replace(i, text=i.text + " v2") if n % 10 == 0 else i for n, i in enumerate(big)]
    result = schedule(engine, edited[:-1000])
    assert (len(result.updated), len(result.cancelled)) == (1_900, 1_000)
    with Session(engine) as session:
        counts = outbox.counts(session=session, storm="gaza")
    assert (counts["pending"], counts["cancelled"]) == (19_000, 1_000)


# --- time --------------------------------------------------------------------------------------

AWARE = [
    datetime(2027, 3, 11, 18, 0, tzinfo=UTC),
    datetime(2027, 3, 11, 20, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
    datetime(2027, 3, 11, 8, 0, tzinfo=timezone(timedelta(hours=-10))),
    datetime(2027, 3, 12, 3, 45, tzinfo=timezone(timedelta(hours=9, minutes=45))),
]


@pytest.mark.parametrize("fire_at", AWARE, ids=lambda d: d.isoformat())
def test_datetimes_come_back_aware_utc_and_equal(engine: Engine, fire_at: datetime) -> None:
    schedule(engine, [item(0, fire_at=fire_at)])
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            # psycopg answers in the session's zone; the column type must undo that.
            session.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
        got = outbox.items(session=session, storm="gaza")[0].fire_at
    assert got == fire_at
    assert got.tzinfo is UTC


def test_sqlite_stores_utc(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 's.db'}")
    try:
        db.upgrade(engine)
        schedule(engine, [item(0, fire_at=AWARE[1])])
        with engine.connect() as conn:
            raw = conn.execute(text("SELECT fire_at FROM outbox")).scalar_one()
        assert raw == "2027-03-11 18:00:00.123456"
    finally:
        engine.dispose()


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    naive = datetime(2027, 3, 11, 18, 0)
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(naive, engine.dialect)
    with pytest.raises(ValueError, match="naive"):
        schedule(engine, [item(0, fire_at=naive)])
    with pytest.raises(ValueError, match="tz-aware"):
        schedule(engine, plan(1), now=naive)
    schedule(engine, plan(1))
    with pytest.raises(StatementError, match="naive"):
        set_state(engine, item(0).id, sent_at=naive)


def test_property_any_aware_datetime_round_trips_on_sqlite(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 's.db'}")
    db.upgrade(engine)
    schedule(engine, plan(1))
    offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
        lambda m: timezone(timedelta(minutes=m))
    )

    @settings(max_examples=150, deadline=None)
    @given(
        st.datetimes(
            min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=offsets
        )
    )
    def round_trip(moment: datetime) -> None:
        set_state(engine, item(0).id, lease_until=moment)
        with engine.connect() as conn:
            got = conn.execute(select(Outbox.lease_until)).scalar_one()
        assert got == moment
        assert got.tzinfo is UTC

    try:
        round_trip()
    finally:
        engine.dispose()


# --- configuration -----------------------------------------------------------------------------


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(db.ENV_VAR, raising=False)
    return monkeypatch


def test_default_database_is_sqlite_in_the_storm_root(no_env: Any, tmp_path: Path) -> None:
    assert db.database_url(None, tmp_path) == f"sqlite:///{tmp_path}/stormer.db"


def test_relative_sqlite_path_in_config_is_relative_to_the_storm_root(
    no_env: Any, tmp_path: Path
) -> None:
    assert db.database_url("sqlite:///data/x.db", tmp_path) == f"sqlite:///{tmp_path}/data/x.db"
    assert db.database_url("sqlite:////srv/x.db", tmp_path) == "sqlite:////srv/x.db"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory"])
def test_an_in_memory_database_is_refused(
    no_env: pytest.MonkeyPatch, tmp_path: Path, url: str
) -> None:
    # Found by tests/test_cli_fuzz.py: `run` on `sqlite:///:memory:` failed in its threads
    # ("no such table: workers") with a traceback; `schedule` wrote an outbox nobody can read.
    with pytest.raises(StormerError, match="in-memory SQLite database"):
        db.database_url(url, tmp_path)
    no_env.setenv(db.ENV_VAR, url)
    with pytest.raises(StormerError, match="from STORMER_DATABASE_URL is an in-memory"):
        db.database_url(None, tmp_path)


def test_postgresql_urls_use_psycopg_3(no_env: Any, tmp_path: Path) -> None:
    assert (
        db.database_url("postgresql://u:s3cr%40t@db:5432/storms", tmp_path)
        == "postgresql+psycopg://u:s3cr%40t@db:5432/storms"
    )
    assert (
        db.database_url("postgresql+psycopg://u@db/storms", tmp_path)
        == "postgresql+psycopg://u@db/storms"
    )


def test_environment_beats_config_beats_default(no_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_env.setenv(db.ENV_VAR, "postgresql://worker@db/storms")
    assert db.database_url("sqlite:///x.db", tmp_path) == "postgresql+psycopg://worker@db/storms"
    assert db.database_url(None, tmp_path) == "postgresql+psycopg://worker@db/storms"
    no_env.setenv(db.ENV_VAR, "")  # set but empty counts as unset
    assert db.database_url("sqlite:///x.db", tmp_path) == f"sqlite:///{tmp_path}/x.db"


def test_unparseable_url_is_a_clear_error_that_does_not_echo_it(
    no_env: Any, tmp_path: Path
) -> None:
    with pytest.raises(StormerError, match="cannot be parsed") as err:
        db.database_url("not a url hunter2", tmp_path)
    assert "hunter2" not in str(err.value)


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 's.db'}")
    try:
        with engine.connect() as conn:
            pragma = {
                p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                for p in ("journal_mode", "busy_timeout", "foreign_keys")
            }
        assert pragma == {
            "journal_mode": "wal",
            "busy_timeout": db.SQLITE_BUSY_TIMEOUT_MS,
            "foreign_keys": 1,
        }
    finally:
        engine.dispose()


def test_importing_stormer_does_not_import_the_database_layer() -> None:
    code = "import sys, stormer; print(sorted(m for m in sys.modules if m in "
    code += "{'sqlalchemy', 'alembic', 'stormer.db', 'stormer.models'}))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_sqlite_outbox_and_its_wal_files_are_owner_only(tmp_path: Path) -> None:
    import stat

    from sqlalchemy import text

    from stormer.outbox.db import make_engine, upgrade

    database = tmp_path / "stormer.db"
    engine = make_engine(f"sqlite:///{database}")
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text("SELECT 1"))
            files = sorted(tmp_path.glob("stormer.db*"))
            assert {f.name for f in files} >= {"stormer.db", "stormer.db-wal", "stormer.db-shm"}
            modes = {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files}
            assert set(modes.values()) == {"0o600"}, modes
    finally:
        engine.dispose()


def test_a_wider_existing_outbox_is_tightened(tmp_path: Path) -> None:
    import stat

    from stormer.outbox.db import make_engine

    database = tmp_path / "stormer.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    make_engine(f"sqlite:///{database}").dispose()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


@pytest.mark.postgres
def test_postgresql_connections_get_the_timeouts_that_free_a_cut_off_machines_locks(
    pg_database: str,
) -> None:
    """The settings each connection gets (db.PG_SESSION, db.PG_CLIENT_SOCKET), read back
    from the server and from libpq, the URL's own parameters winning; tests/test_machines.py
    cuts a real session off and watches the server end it."""
    engine = db.make_engine(pg_database)
    try:
        with engine.connect() as conn:
            shown = {name: conn.execute(text(f"SHOW {name}")).scalar() for name in db.PG_SESSION}
            socket = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    finally:
        engine.dispose()
    assert shown["idle_in_transaction_session_timeout"] == "30s"
    assert shown["tcp_user_timeout"] == "20000"  # SHOW gives this one in ms
    assert shown["tcp_keepalives_count"] == "3"
    assert socket["keepalives_idle"] == "10"
    assert socket["tcp_user_timeout"] == "20000"
    engine = db.make_engine(f"{pg_database}?keepalives_idle=42")
    try:
        with engine.connect() as conn:
            socket = conn.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    finally:
        engine.dispose()
    assert socket["keepalives_idle"] == "42"
