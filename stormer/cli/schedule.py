"""`stormer schedule` and `stormer db`: writing the planned queue into the outbox."""

from __future__ import annotations

from pathlib import Path

import typer

from stormer.cli._common import JsonFlag, StormDir, load, open_engine, print_json
from stormer.cli.app import app

db_app = typer.Typer(help="The outbox database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command()
def schedule(as_json: JsonFlag = False, storm_dir: StormDir = Path(".")) -> None:
    """Write the planned queue into the outbox. Safe to run again after any edit: new items
    are added, unsent ones updated, sent ones never touched."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from stormer.cli.progress import Steps
    from stormer.errors import ConfigError, StormInPast
    from stormer.ops.checks import check
    from stormer.outbox.schedule import schedule as upsert
    from stormer.plan import plan, plan_posts
    from stormer.preview import with_payloads
    from stormer.timezones import iso_utc

    with Steps(quiet=as_json) as progress:
        storm = load(storm_dir, progress)
        now = datetime.now(UTC)
        progress.spin("planning")
        posts = list(plan_posts(storm))  # once, for the check and the outbox
        progress.done("planning")
        problems = check(storm, now=now, posts=posts, progress=progress)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise ConfigError(errors)
        assert storm.at is not None
        if storm.at <= now:
            raise StormInPast(
                f"the storm time {iso_utc(storm.at)} is not in the future (now {iso_utc(now)}); "
                "set [storm] at in config.toml to a future time, or use `stormer rehearse`"
            )
        items = with_payloads(storm, plan(storm, posts=posts), progress=progress)
        engine = open_engine(storm)
        try:
            with Session(engine) as session, session.begin():
                result = upsert(
                    items, session=session, storm=storm.slug, now=now, progress=progress
                )
        finally:
            engine.dispose()
    summary = {
        "storm": storm.slug,
        "fire_at": iso_utc(storm.at),
        "planned": len(items),
        "added": result.added,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "cancelled": result.cancelled,
        "restored": result.restored,
        "kept_sent": list(result.kept_sent),
        "too_late": result.too_late,
    }
    if as_json:
        print_json(summary)
        return
    print(
        f"{storm.name}: {len(items)} item(s) planned for {iso_utc(storm.at)} — "
        f"{len(result.added)} added, {len(result.updated)} updated, "
        f"{len(result.unchanged)} unchanged, {len(result.cancelled)} cancelled, "
        f"{len(result.restored)} restored."
    )
    if result.too_late:
        print(
            f"{len(result.too_late)} new item(s) were not added because their time has "
            "passed (reminders before a participant joined)."
        )
    if result.kept_sent:
        print(
            f"{len(result.kept_sent)} item(s) already sent or in flight were left as they "
            "are although the plan changed: " + ", ".join(result.kept_sent[:10])
        )


@db_app.command("upgrade")
def db_upgrade(storm_dir: StormDir = Path(".")) -> None:
    """Create or migrate the outbox schema to the latest version."""
    storm = load(storm_dir)
    open_engine(storm).dispose()
    print("database is up to date")
