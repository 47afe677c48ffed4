"""`stormer schedule` end to end, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from example import copy_example, set_storm_time
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from stormer.cli import app
from stormer.outbox.db import make_engine
from stormer.outbox.models import Outbox

runner = CliRunner()
FUTURE = "2031-03-13T18:00:00Z"


@pytest.fixture
def storm(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STORMER_DATABASE_URL", db_url)
    return copy_example(tmp_path / "storm", at=FUTURE)


def schedule(storm: Path) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["schedule", "--json", "--storm", str(storm)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def rows(db_url: str) -> dict[str, Outbox]:
    engine = make_engine(db_url)
    try:
        with Session(engine) as session:
            found = {r.id: r for r in session.scalars(select(Outbox))}
            session.expunge_all()
            return found
    finally:
        engine.dispose()


def test_schedule_is_idempotent(storm: Path, db_url: str) -> None:
    first = schedule(storm)
    assert first["planned"] == 8 and len(first["added"]) == 8
    before = rows(db_url)
    second = schedule(storm)
    assert second["added"] == [] and second["updated"] == [] and len(second["unchanged"]) == 8
    after = rows(db_url)
    assert {k: (r.text, r.fire_at, r.state, r.updated_at) for k, r in before.items()} == {
        k: (r.text, r.fire_at, r.state, r.updated_at) for k, r in after.items()
    }
    assert all(r.fire_at.isoformat() == "2031-03-13T18:00:00+00:00" for r in after.values())
    assert all(r.state == "pending" for r in after.values())


def test_editing_a_post_updates_only_its_unsent_items(storm: Path, db_url: str) -> None:
    schedule(storm)
    x_item = next(r for r in rows(db_url).values() if r.platform == "x")
    post = storm / x_item.source
    post.write_text(
        post.read_text(encoding="utf-8").replace(
            "#FreePalestinianStudents", "Today! #FreePalestinianStudents"
        ),
        encoding="utf-8",
    )
    result = schedule(storm)
    assert result["updated"] == [x_item.id]
    assert "Today! #FreePalestinianStudents" in rows(db_url)[x_item.id].text


def test_a_sent_item_is_never_changed(storm: Path, db_url: str) -> None:
    schedule(storm)
    engine = make_engine(db_url)
    with Session(engine) as session, session.begin():
        row = session.scalars(select(Outbox).where(Outbox.platform == "mastodon")).first()
        assert row is not None
        row.state = "sent"
        sent_id, sent_text = row.id, row.text
    engine.dispose()
    set_storm_time(storm, "2031-03-13T19:00:00Z")
    result = schedule(storm)
    assert sent_id in result["kept_sent"]
    after = rows(db_url)
    assert after[sent_id].state == "sent" and after[sent_id].text == sent_text
    assert after[sent_id].fire_at.isoformat() == "2031-03-13T18:00:00+00:00"
    moved = [r for r in after.values() if r.id != sent_id]
    assert all(r.fire_at.isoformat() == "2031-03-13T19:00:00+00:00" for r in moved)


def test_a_storm_in_the_past_is_refused(
    tmp_path: Path, db_url: str, engine: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORMER_DATABASE_URL", db_url)
    storm = copy_example(tmp_path / "storm")  # 11 March 2021
    result = runner.invoke(app, ["schedule", "--storm", str(storm)])
    assert result.exit_code != 0
    assert "not in the future" in str(result.exception)
    assert rows(db_url) == {}  # nothing written (the `engine` fixture made the schema)


def test_a_storm_with_errors_is_refused(storm: Path, db_url: str, engine: object) -> None:
    (storm / "posts" / "images" / "flag-book.png").unlink()
    result = runner.invoke(app, ["schedule", "--storm", str(storm)])
    assert result.exit_code != 0
    assert "missing-image" in str(result.exception)
    assert rows(db_url) == {}


def test_human_summary_counts(storm: Path) -> None:
    result = runner.invoke(app, ["schedule", "--storm", str(storm)])
    assert result.exit_code == 0, result.output
    assert "8 item(s) planned" in result.stdout and "8 added, 0 updated" in result.stdout
