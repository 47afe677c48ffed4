"""`stormer rehearse`: the README's demo — the example storm fired at the local simulator — what
it keeps to inspect (`report --rehearsal`), and what its verdict says."""

from __future__ import annotations

import csv
import json
import stat
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from stormer.cli import app
from stormer.ops.rehearse import (
    IMPACT,
    KEPT,
    OUTBOX,
    PROVES,
    REHEARSALS,
    REPORT,
    SIMULATOR_LOG,
    Rehearsal,
    _judge_reminders,
    _new_folder,
    _post_failures,
)
from stormer.outbox.db import make_engine
from stormer.outbox.models import Outbox
from stormer.storm import load_storm

runner = CliRunner()


def stormer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stormer", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": "/tmp",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        },
    )


def test_rehearsal_of_the_example_storm(storm: Path) -> None:
    # In 10 s, as `make demo`: staging must be over by T for the lateness bound below, and
    # on a loaded machine planning and staging the example's 140 items can take longer than 3 s.
    result = stormer("rehearse", "--in", "10s", "--json", "--storm", str(storm))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["items"] == 8 and report["landed"] == 8
    assert (report["early"], report["duplicates"], report["lost"]) == (0, 0, 0)
    # Every participant with a contact gets the three reminders, in the simulator's inbox.
    reminders = report["reminders"]
    assert reminders["participants"] == 44
    assert reminders["planned"] == reminders["delivered"] == 3 * 44
    assert (reminders["early"], reminders["duplicates"], reminders["lost"]) == (0, 0, 0)
    assert report["states"] == {"sent": 8 + 3 * 44}
    assert report["lateness_ms"]["max"] >= 0
    assert report["failures"] == []
    # A crowd posted by hand around T, some before it (the embargo broken): not the storm's
    # posts, so not early ones; `impact` read them back from the simulator.
    crowd = report["crowd"]
    assert crowd["planned"] == crowd["landed"] == 44 and crowd["first_ms"] < 0
    measured = " ".join(report["impact"])
    assert "mastodon:" in measured and "bluesky:" in measured and "ours 2 (" in measured
    assert "X: not measured" in measured and "client-not-enrolled" in measured
    assert not (storm / "stormer.db").exists()  # the storm's own outbox is not touched

    # Kept to inspect: its outbox and what the simulator received, owner-only.
    (kept,) = (storm / REHEARSALS).iterdir()
    assert report["folder"] == str(kept.relative_to(storm))
    assert stat.S_IMODE((storm / ".stormer").stat().st_mode) == 0o700
    assert stat.S_IMODE(kept.stat().st_mode) == 0o700
    files = sorted(p.name for p in kept.iterdir())
    # Each item left within 5 s of its time, or of its staging where a loaded machine staged
    # it after its time (then it goes at once): late only by the time the burst takes.
    engine = make_engine(f"sqlite:///{kept / OUTBOX}")
    try:
        with Session(engine) as session:
            for row in session.scalars(select(Outbox)):
                ready = max(row.fire_at, row.staged_at or row.fire_at)
                assert row.sent_at is not None and row.sent_at - ready < timedelta(seconds=5), row
    finally:
        engine.dispose()
    assert OUTBOX in files and SIMULATOR_LOG in files and IMPACT in files and REPORT in files
    html = (kept / REPORT).read_text(encoding="utf-8")
    for key in ("per-minute", "timeline", "lateness", "reminders"):
        assert f"<figure id='{key}'" in html
    assert report["report"] == str((kept / REPORT).relative_to(storm))
    for name in files:
        assert stat.S_IMODE((kept / name).stat().st_mode) == 0o600, name
    log = json.loads((kept / SIMULATOR_LOG).read_text(encoding="utf-8"))
    assert len(log["posts"]) == 8 + 44 and len(log["reminders"]) == 3 * 44
    impact = json.loads((kept / IMPACT).read_text(encoding="utf-8"))
    counted = Counter(p["platform"] for p in impact["posts"])
    # The crowd's 44 and the storm's own 4 on these two platforms, told apart.
    assert sum(counted.values()) == 44 + 4 and set(counted) == {"mastodon", "bluesky"}

    # Reminders went to the simulator's inbox: no participant's address (or its host) is kept.
    config = (storm / "config.toml").read_text(encoding="utf-8")
    kept_bytes = b"".join((kept / name).read_bytes() for name in files)
    with (storm / "participants.csv").open(encoding="utf-8") as f:
        contacts = [row["contact"] for row in csv.DictReader(f) if row["contact"]]
    assert contacts
    for contact in contacts:
        host = contact.split("://")[-1].split("@")[-1].split("/")[0]
        assert contact.encode() not in kept_bytes
        if host not in config:  # the kit page's host is the storm's, not a participant's
            assert host.encode() not in kept_bytes, host

    # `report --rehearsal latest`: every item, each post with its lateness.
    shown = stormer("report", "--rehearsal", "latest", "--json", "--storm", str(storm))
    assert shown.returncode == 0, shown.stderr
    assert kept.name in shown.stderr
    rows = json.loads(shown.stdout)["rows"]
    posts = [r for r in rows if r["kind"] == "post"]
    assert len(rows) == 140 and len(posts) == 8
    assert all(r["lateness_s"] is not None for r in posts)
    named = stormer("report", "--rehearsal", kept.name, "--storm", str(storm))
    assert named.returncode == 0 and "140 item(s): 140 sent" in named.stdout


@pytest.mark.parametrize("delay", ["0s", "4s"])
def test_a_delay_too_short_to_stage_is_refused_with_the_minimum(storm: Path, delay: str) -> None:
    result = runner.invoke(app, ["rehearse", "--in", delay, "--storm", str(storm)])
    assert result.exit_code == 2
    assert "at least 5s" in result.output and "staged" in result.output
    assert not (storm / ".stormer").exists()


def test_report_without_a_kept_rehearsal_says_how_to_get_one(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from check_helpers import run_main

    code, _, err = run_main(
        monkeypatch, capsys, "report", "--rehearsal", "latest", "-s", str(storm)
    )
    assert code != 0 and "Traceback" not in err
    assert "no rehearsal is kept in .stormer/rehearsals/: run `stormer rehearse`" in err


def test_only_the_newest_rehearsals_are_kept(tmp_path: Path) -> None:
    base = tmp_path / REHEARSALS
    base.mkdir(parents=True)
    for n in range(KEPT + 3):
        (base / f"20200101T0000{n:02d}Z").mkdir()
    newest = _new_folder(tmp_path, datetime(2021, 1, 1, tzinfo=UTC))
    kept = sorted(p.name for p in base.iterdir())
    assert len(kept) == KEPT and kept[-1] == newest.name
    assert "20200101T000000Z" not in kept


T = datetime(2021, 3, 11, 18, 0, tzinfo=UTC)


def item(id: str, platform: str, account: str, text: str, kind: str = "post") -> SimpleNamespace:
    return SimpleNamespace(
        id=id, platform=platform, account=account, text=text, kind=kind, fire_at=T
    )


def landed(platform: str, text: str, after_ms: int = 100) -> dict[str, str]:
    at = T + timedelta(milliseconds=after_ms)
    return {"platform": platform, "text": text, "received_at": at.isoformat()}


def test_every_problem_is_listed_by_platform_and_account() -> None:
    items = [
        item("a", "x", "campaign-x", "one"),
        item("b", "mastodon", "m1", "two"),
        item("c", "mastodon", "m2", "three"),
    ]
    fates = {"a": "dead: 401 Unauthorized", "b": "sent", "c": "sent"}
    got = [landed("mastodon", "two"), landed("mastodon", "two"), landed("mastodon", "three", -50)]
    assert _post_failures(T, items, got, fates) == [
        "post lost 1 of 1: x/campaign-x (outbox: dead: 401 Unauthorized)",
        "post landed 2 times for 1: mastodon/m1 (outbox: sent)",
        "post EARLY on mastodon: received 50 ms before T",
    ]


def test_reminder_problems_name_the_participants_row_never_a_contact(storm: Path) -> None:
    loaded = load_storm(storm)
    first = loaded.participants[0]
    items = [item("r1", "reminder", first.name, "hi", "reminder")] * 2
    inbox = [{"to": str(first.row), "received_at": (T + timedelta(seconds=1)).isoformat()}]
    counts, failures = _judge_reminders(loaded, items, inbox, {"r1": "sent"})
    assert (counts["lost"], counts["duplicates"], counts["early"]) == (1, 0, 0)
    assert failures == [
        f"reminders to the participant of row {first.row}: 1 arrived of 2, 0 EARLY (outbox: sent)"
    ]
    assert all(c not in failures[0] for c in first.contacts)


def test_the_verdict_lists_what_went_wrong_and_says_what_a_rehearsal_proves() -> None:
    r = Rehearsal(
        at=T,
        items=1,
        landed=0,
        early=0,
        duplicates=0,
        lost=1,
        lateness_ms={"p50": 0.0, "p99": 0.0, "max": 0.0},
        states={"dead": 1},
        failures=["post lost 1 of 1: x/campaign-x (outbox: dead: 401)"],
        folder=".stormer/rehearsals/20210311T180000Z",
    )
    lines = r.lines()
    verdict = lines.index("  verdict: PROBLEMS (1):")
    assert lines[verdict + 1] == "    post lost 1 of 1: x/campaign-x (outbox: dead: 401)"
    assert "see above" not in "\n".join(lines)
    assert lines[-2:] == [f"  {p}" for p in PROVES]
    assert "`stormer doctor` and `stormer check --online`" in lines[-1]
    assert "timing and the dispatcher" in lines[-2]


def test_the_crowd_posts_by_hand_around_t_mostly_late_some_early_and_the_same_each_time(
    storm: Path,
) -> None:
    import random

    from stormer.ops.crowd import EARLY_MINUTES, LAST_MINUTE, plan_crowd

    loaded = load_storm(storm)
    crowd = plan_crowd(loaded, 2000, random.Random("seed"))
    minutes = [p.minutes for p in crowd]
    assert minutes == sorted(minutes)
    assert all(-EARLY_MINUTES <= m <= LAST_MINUTE for m in minutes)
    early = sum(m < 0 for m in minutes) / len(minutes)
    assert 0.04 < early < 0.10  # about 7 % break the embargo
    late = sorted(m for m in minutes if m >= 0)
    assert 1.5 < late[len(late) // 2] < 2.5  # median about 2 minutes after T
    assert {p.platform for p in crowd} == {"mastodon", "bluesky"}
    assert all(loaded.hashtag.lower() in p.text.lower() for p in crowd)
    assert crowd == plan_crowd(loaded, 2000, random.Random("seed"))
