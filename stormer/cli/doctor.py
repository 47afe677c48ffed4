"""`stormer doctor` and `stormer watchdog`: is everything ready, and is anyone sending?"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from stormer.cli._common import JsonFlag, StormDir, load, note, print_json
from stormer.cli.app import app


def _now() -> datetime:  # tests replace it: the clock is theirs to control
    return datetime.now(UTC)


@app.command()
def doctor(
    as_json: JsonFlag = False,
    test_alert: Annotated[
        bool,
        typer.Option(
            "--test-alert", help="Also send a test alert through every configured Apprise URL."
        ),
    ] = False,
    storm_dir: StormDir = Path("."),
) -> None:
    """Run every pre-flight check — config, credentials, media, clock, database, schedule,
    worker, reminders, alerts — and say what to fix. Exit status 1 when any check fails."""
    import asyncio

    from stormer.errors import ConfigError
    from stormer.ops.doctor import diagnose, doctor_lines, has_errors, send_test_alert
    from stormer.ops.findings import Finding

    try:
        storm = load(storm_dir)
    except ConfigError as e:  # an unreadable storm is a finding too
        problems = "; ".join(str(p) for p in e.problems)
        findings = [
            Finding("config", False, "error", problems, "fix config.toml, then run `stormer check`")
        ]
    else:
        findings = asyncio.run(diagnose(storm, now=_now))
        if test_alert:
            findings.append(send_test_alert(storm))
    if as_json:
        print_json({"ok": not has_errors(findings), "checks": [f.as_dict() for f in findings]})
    else:
        for line in doctor_lines(findings):
            if line.startswith("[FAIL]"):
                typer.secho(line, fg="red", bold=True)
            else:
                print(line)
    if has_errors(findings):
        raise typer.Exit(1)


@app.command()
def watchdog(
    as_json: JsonFlag = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing when all is well (for cron).")
    ] = False,
    storm_dir: StormDir = Path("."),
) -> None:
    """Check once that a live worker has staged what is due; if not, alert the organizer
    through the Apprise URLs of [alerts] — once per storm instant.

    A worker cannot report its own absence: run this from cron, every minute, on another
    machine than the worker's (`* * * * * stormer watchdog -q --storm DIR`). Exit status:
    0 all is well, 1 an alert is due (and was sent, now or before), 2 nobody could be told.
    """
    from stormer.ops.alerts import Alerted, watch
    from stormer.ops.doctor import read_engine
    from stormer.ops.report import duration
    from stormer.timezones import iso_utc

    storm = load(storm_dir)
    now = _now()
    engine = read_engine(storm)
    try:
        result = watch(storm, engine, now=now)
    finally:
        if engine is not None:
            engine.dispose()
    if as_json:
        print_json(
            {
                "storm": storm.slug,
                "now": iso_utc(now),
                "due": result.message is not None,
                "instant": iso_utc(result.instant) if result.instant else None,
                "message": result.message,
                "alerted": result.alerted,
                "error": result.error,
            }
        )
    elif result.message is None:
        if not quiet:
            within = duration(storm.unstaged_before.total_seconds())
            print(
                f"{storm.slug}: ok — the {result.ready} item(s) due within {within} are staged "
                "by a live worker"
                if result.ready
                else f"{storm.slug}: ok — nothing is due within {within}"
            )
    elif result.alerted != Alerted.ALREADY or not quiet:
        print(result.message)
    if result.message is None:
        return
    if result.alerted == Alerted.SENT:
        note("alert sent" + (f" (but {result.error})" if result.error else ""))
    elif result.alerted == Alerted.ALREADY:
        if not quiet:
            note("alert already sent for this storm instant")
    else:
        note(f"ALERT NOT SENT: {result.error}")
        raise typer.Exit(2)
    raise typer.Exit(1)
