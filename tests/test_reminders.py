"""Participants' reminders: planned once per (participant, offset, contact), written in the
participant's language and on their clock, and delivered through a real SMTP server — one
recipient per message, no other participant's name or address in it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import pytz
from example import copy_example, set_reminder_offsets, set_storm_time
from fixtures_sinks import SmtpSink
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from timing import run_worker_until
from typer.testing import CliRunner

from stormer.cli import app
from stormer.dispatch.dispatcher import Dispatcher, Settings
from stormer.outbox.models import Outbox
from stormer.outbox.schedule import schedule
from stormer.plan import plan
from stormer.preview import with_payloads
from stormer.reminders import ReminderWriter, plan_reminders, storm_calendar, to_html
from stormer.storm import Storm, load_storm
from stormer.timezones import iso_utc

runner = CliRunner()
EXAMPLE_T = datetime(2021, 3, 11, 18, 0, tzinfo=UTC)
ZONES = sorted(z for z in pytz.common_timezones if "/" in z)


def write_participants(root: Path, rows: list[str]) -> None:
    (root / "participants.csv").write_text(
        "name,zone,lang,contact\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )


def local_wall(zone: str, instant: datetime = EXAMPLE_T) -> datetime:
    """The oracle: pytz's own tables, not zoneinfo's, give the wall time in `zone`."""
    tz = pytz.timezone(zone)
    return tz.normalize(pytz.utc.localize(instant.replace(tzinfo=None)).astimezone(tz))


@pytest.fixture
def storm(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "storm", reminders=True)


# --- planning -------------------------------------------------------------------------------


def test_every_participant_contact_and_offset_is_one_item_with_a_stable_id(storm: Path) -> None:
    loaded = load_storm(storm)
    reminders = list(plan_reminders(loaded))
    with_contact = [p for p in loaded.participants if p.contacts]
    assert len(reminders) == 3 * sum(len(p.contacts) for p in with_contact) > 0
    assert {r.fire_at for r in reminders} == {
        EXAMPLE_T - timedelta(hours=24),
        EXAMPLE_T - timedelta(hours=1),
        EXAMPLE_T - timedelta(minutes=10),
    }
    assert len({r.id for r in reminders}) == len(reminders)
    again = [r.id for r in plan_reminders(load_storm(storm))]
    assert again == [r.id for r in reminders]
    # Neither the id nor anything stored says who the contact is.
    for r in reminders:
        stored = json.dumps([r.id, r.account, r.text, r.payload], ensure_ascii=False)
        assert not any(c in stored for p in loaded.participants for c in p.contacts)


def test_a_participant_in_a_zone_sees_that_zones_weekday_date_and_time(storm: Path) -> None:
    write_participants(
        storm,
        [
            "Madrid,Europe/Madrid,es,madrid@example.org",
            "Gaza,Asia/Gaza,ar,gaza@example.org",
            "Auckland,Pacific/Auckland,en,auckland@example.org",
        ],
    )
    texts = {
        r.account: r
        for r in plan_reminders(load_storm(storm))
        if r.fire_at == EXAMPLE_T - timedelta(hours=1)
    }
    assert "jueves, 11 de marzo de 2021, 19:00" in texts["Madrid"].text
    assert "dentro de 1 hora" in texts["Madrid"].text
    assert "الخميس، 11 مارس 2021، الساعة 20:00" in texts["Gaza"].text
    assert "Friday, 12 March 2021, 07:00" in texts["Auckland"].text
    assert texts["Gaza"].lang == "ar"


@settings(max_examples=60, deadline=None)
@given(
    zones=st.lists(st.sampled_from(ZONES), min_size=2, max_size=6, unique=True),
    lang=st.sampled_from(["en", "es", "fr", "it", "ar"]),
    minutes=st.integers(0, 60 * 24 * 365 * 10),
)
def test_local_time_matches_the_pytz_oracle(
    tmp_path_factory: pytest.TempPathFactory, zones: list[str], lang: str, minutes: int
) -> None:
    # Many participants in different zones in one storm: each text has its own zone's time
    # (a cache keyed on aware datetimes once handed every zone the first zone's clock).
    at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    root = tmp_path_factory.mktemp("oracle")
    copy_example(root, at=iso_utc(at), reminders=True)
    write_participants(root, [f"P{i},{z},{lang},p{i}@example.org" for i, z in enumerate(zones)])
    loaded = load_storm(root)
    writer = ReminderWriter(loaded)
    for p in loaded.participants:
        text = writer.text(p, timedelta(hours=1), None).body
        assert f"{local_wall(p.zone, at):%H:%M}" in text, (p.zone, text)


def test_samples_rotate_so_participants_of_one_language_get_different_texts(storm: Path) -> None:
    loaded = load_storm(storm)
    english = [p for p in loaded.posts if p.lang == "en"]
    write_participants(
        storm, [f"Org {i},Europe/London,en,org{i}@example.org" for i in range(2 * len(english))]
    )
    loaded = load_storm(storm)
    samples = [
        r.source for r in plan_reminders(loaded) if r.fire_at == EXAMPLE_T - timedelta(hours=24)
    ]
    assert Counter(samples) == {p.file: 2 for p in english}
    assert all(a != b for a, b in pairwise(samples))
    # Each participant keeps one sample across the three reminders.
    by_person = {}
    for r in plan_reminders(loaded):
        assert by_person.setdefault(r.account, r.source) == r.source


def test_a_language_without_a_template_falls_back_to_english_and_check_warns(storm: Path) -> None:
    write_participants(storm, ["Lisboa,Europe/Lisbon,pt,lisboa@example.org"])
    loaded = load_storm(storm)
    (first, *_) = plan_reminders(loaded)
    assert first.lang == "en" and first.text.startswith("The Free Palestinian Students storm")
    result = runner.invoke(app, ["check", "--json", "--storm", str(storm)])
    codes = [p["code"] for p in json.loads(result.stdout)]
    assert "no-reminder-template" in codes


def test_arabic_html_reads_right_to_left_and_escapes_the_text() -> None:
    page = to_html("مرحبا <b>\nhttps://example.org/a?b=1&c=2", "ar", "عنوان")
    assert '<html lang="ar" dir="rtl">' in page and '<body dir="rtl"' in page
    assert "&lt;b&gt;" in page
    assert '<a href="https://example.org/a?b=1&amp;c=2" dir="ltr">example.org/a</a>' in page
    assert 'dir="ltr"' in to_html("hello", "es", "x").split("<head>")[0]


def test_click_to_post_links_carry_the_sample(storm: Path) -> None:
    loaded = load_storm(storm)
    reminder = next(r for r in plan_reminders(loaded) if r.lang == "en")
    post = next(p for p in loaded.posts if p.file == reminder.source)
    from urllib.parse import parse_qs, urlsplit

    links = [w for w in reminder.text.split() if w.startswith("https://") and "text=" in w]
    hosts = {urlsplit(u).netloc for u in links}
    assert hosts == {"x.com", "bsky.app", "t.me"}
    for url in links:
        assert parse_qs(urlsplit(url).query)["text"] == [post.text]


def test_calendar_event_is_at_the_storm_instant_with_a_ten_minute_alarm(storm: Path) -> None:
    from icalendar import Calendar

    made = datetime(2021, 3, 1, 9, 30, tzinfo=UTC)
    cal = Calendar.from_ical(storm_calendar(load_storm(storm), now=made))
    (event,) = cal.walk("VEVENT")
    assert event.decoded("dtstart") == EXAMPLE_T
    assert event.decoded("dtstamp") == made  # when the file was made, not the event's start
    (alarm,) = event.walk("VALARM")
    assert alarm.decoded("trigger") == -timedelta(minutes=10)


# --- checks and previews -------------------------------------------------------------------------


def test_bad_contacts_and_missing_senders_are_errors_that_never_quote_the_contact(
    storm: Path,
) -> None:
    write_participants(
        storm,
        [
            "Broken,Europe/Paris,fr,not-an-address-secret",
            "Chat,Europe/Paris,fr,tgram://123456789",
        ],
    )
    result = runner.invoke(app, ["check", "--json", "--storm", str(storm)])
    problems = json.loads(result.stdout)
    by_code = {p["code"]: p for p in problems}
    assert by_code["bad-contact"]["line"] == 2
    assert "row 2 (Broken): the contact cannot be used" in by_code["bad-contact"]["message"]
    assert "tgram" in by_code["missing-sender"]["message"]
    assert "not-an-address-secret" not in result.stdout
    assert "123456789" not in result.stdout
    assert result.exit_code == 1


def test_preview_lists_reminders_beside_posts_without_contacts(storm: Path) -> None:
    loaded = load_storm(storm)
    result = runner.invoke(app, ["preview", "--json", "--storm", str(storm)])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert Counter(r["kind"] for r in records) == {
        "post": 8,
        "reminder": len(list(plan_reminders(loaded))),
    }
    contacts = [
        c.split("//")[-1].removeprefix("mailto:") for p in loaded.participants for c in p.contacts
    ]
    assert not any(c in result.stdout for c in contacts)
    human = runner.invoke(app, ["preview", "--storm", str(storm)])
    assert "reminder:email" in human.stdout
    assert not any(c in human.stdout for c in contacts)
    shown = runner.invoke(app, ["preview", "--json", "--show-contacts", "--storm", str(storm)])
    assert any(c in shown.stdout for c in contacts)
    for kind in ("post", "reminder"):
        only = runner.invoke(app, ["preview", "--json", "--kind", kind, "--storm", str(storm)])
        assert {r["kind"] for r in json.loads(only.stdout)} == {kind}


def test_a_late_joiner_gets_only_the_reminders_still_ahead(storm: Path, engine: Engine) -> None:
    at = datetime.now(UTC) + timedelta(minutes=30)
    set_storm_time(storm, iso_utc(at))
    write_participants(storm, ["Early,Europe/Paris,fr,early@example.org"])
    loaded = load_storm(storm)
    with Session(engine) as session, session.begin():
        # As if scheduled two days ago: every reminder was still ahead.
        first = schedule(
            with_payloads(loaded, plan(loaded)),
            session=session,
            storm=loaded.slug,
            now=at - timedelta(days=2),
        )
    assert len([i for i in first.added if i]) == 8 + 3
    write_participants(
        storm, ["Early,Europe/Paris,fr,early@example.org", "Late,Europe/Paris,fr,late@example.org"]
    )
    loaded = load_storm(storm)
    with Session(engine) as session, session.begin():
        second = schedule(
            with_payloads(loaded, plan(loaded)),
            session=session,
            storm=loaded.slug,
            now=datetime.now(UTC),
        )
    with Session(engine) as session:
        late = session.scalars(select(Outbox).where(Outbox.account == "Late")).all()
        early = session.scalars(select(Outbox).where(Outbox.account == "Early")).all()
    assert [r.fire_at for r in late] == [at - timedelta(minutes=10)]
    assert len(second.too_late) == 2
    assert len(early) == 3 and {r.state for r in early} == {"pending"}


# --- delivery through a real SMTP server ----------------------------------------------------


def smtp_storm(
    root: Path, sink: SmtpSink, at: datetime, rows: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_example(root, at=iso_utc(at), reminders=True)
    set_reminder_offsets(root, ["2s"])
    write_participants(root, rows)
    monkeypatch.setenv(
        "FPS_SMTP_URL",
        f"mailto://127.0.0.1:{sink.port}"
        "?from=Storm%20team%20<storm@example.org>"
        "&to=organizer-must-not-get-this@example.org",
    )


def schedule_reminders(loaded: Storm, engine: Engine) -> None:
    """Schedule the storm's reminders as if a minute before T. The tests set T a few seconds
    ahead, as their messages name it; loading and planning on a loaded machine can outlast
    that, and a reminder whose time has passed when it is scheduled is not added (one
    scheduled in time and sent late, within the grace, is what happens then)."""
    items = [i for i in with_payloads(loaded, plan(loaded)) if i.kind == "reminder"]
    assert loaded.at is not None
    with Session(engine) as session, session.begin():
        schedule(items, session=session, storm=loaded.slug, now=loaded.at - timedelta(minutes=1))


def run_reminders(root: Path, engine: Engine) -> None:
    loaded = load_storm(root)
    only_reminders = replace(loaded, accounts=[])
    schedule_reminders(loaded, engine)
    dispatcher = Dispatcher(
        only_reminders,
        engine,
        settings=Settings(
            staging_window=timedelta(minutes=5), grace=timedelta(minutes=2), poll_seconds=0.5
        ),
    )
    asyncio.run(asyncio.wait_for(dispatcher.run(until_done=True), 60))


def text_of(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())


PEOPLE = [
    ("Madrid students", "Europe/Madrid", "es", "madrid@uni.example.org"),
    ("Gaza students", "Asia/Gaza", "ar", "gaza@uni.example.org"),
    ("Auckland students", "Pacific/Auckland", "en", "auckland@uni.example.org"),
    ("Paris students", "Europe/Paris", "fr", "mailto:paris@uni.example.org"),
]


def test_each_participant_gets_one_message_of_their_own_in_their_language(
    tmp_path: Path,
    smtp: SmtpSink,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    at = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
    root = tmp_path / "storm"
    smtp_storm(root, smtp, at, [",".join(p) for p in PEOPLE], monkeypatch)
    caplog.set_level(logging.DEBUG)  # Apprise logs every recipient at INFO and DEBUG
    run_reminders(root, engine)
    ours = [
        r.getMessage()
        for r in caplog.records
        if r.name.split(".")[0] in ("stormer", "apprise", "httpx", "aiohttp")
    ]
    assert any("Sent Email to <contact>" in line for line in ours)
    for _, _, _, contact in PEOPLE:
        assert not any(contact.removeprefix("mailto:") in line for line in ours)

    assert len(smtp.messages) == len(PEOPLE)
    by_recipient = {m["To"]: m for m in smtp.messages}
    for name, zone, lang, contact in PEOPLE:
        address = contact.removeprefix("mailto:")
        message = by_recipient[address]
        # One recipient alone: no Cc/Bcc, nobody else's name or address anywhere in it.
        assert message.get_all("To") == [address] and message["Cc"] is None
        raw = message.as_string() + text_of(message, "plain") + text_of(message, "html")
        for other, _, _, other_contact in PEOPLE:
            if other != name:
                assert other not in raw and other_contact.removeprefix("mailto:") not in raw
        assert "organizer-must-not-get-this" not in raw
        plain = text_of(message, "plain")
        assert f"{local_wall(zone, at):%H:%M}" in plain
        html_part = text_of(message, "html")
        assert (
            f'lang="{lang}" dir="rtl"' if lang == "ar" else f'lang="{lang}" dir="ltr"'
        ) in html_part
        calendar = [
            p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"
        ]
        assert len(calendar) == 1
        from icalendar import Calendar

        (event,) = Calendar.from_ical(calendar[0].get_payload(decode=True)).walk("VEVENT")
        assert event.decoded("dtstart") == at
    assert "dentro de 2 segundos" in text_of(by_recipient["madrid@uni.example.org"], "plain")

    with Session(engine) as session:
        states = Counter(session.scalars(select(Outbox.state)).all())
    assert states == {"sent": len(PEOPLE)}


def test_an_unreachable_mail_server_is_retried_not_lost_and_never_sent_twice(
    tmp_path: Path,
    smtp: SmtpSink,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ports import free_port

    at = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    root = tmp_path / "storm"
    smtp_storm(root, smtp, at, [",".join(PEOPLE[0])], monkeypatch)
    monkeypatch.setenv("FPS_SMTP_URL", f"mailto://127.0.0.1:{free_port()}?from=storm@example.org")
    loaded = load_storm(root)
    schedule_reminders(loaded, engine)
    dispatcher = Dispatcher(
        replace(loaded, accounts=[]),
        engine,
        settings=Settings(poll_seconds=0.5, grace=timedelta(minutes=2), attempts=2),
    )

    def the_reminder() -> Outbox:
        with Session(engine) as session:
            (row,) = session.scalars(select(Outbox)).all()
            return row

    # Nobody listens: every attempt fails; the item waits for a retry, it is not dropped (the
    # worker, told to run until every item is final, keeps running).
    asyncio.run(
        run_worker_until(
            dispatcher, "the attempt", lambda: the_reminder().state == "failed", until_done=True
        )
    )
    row = the_reminder()
    assert row.state == "failed" and row.next_attempt_at is not None
    assert "uni.example.org" not in (row.error or "")
    assert smtp.messages == []


def test_an_address_the_mail_server_refuses_is_dead_at_once_with_its_reason(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiosmtpd.controller import Controller
    from ports import free_port

    sink = SmtpSink(free_port())
    refused = "nobody@uni.example.org"

    class RefuseOne:
        async def handle_RCPT(self, server, session, envelope, address, options):
            if address == refused:
                return "550 5.1.1 No such mailbox here"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            from email import message_from_bytes, policy

            sink.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    controller = Controller(RefuseOne(), hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        at = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
        root = tmp_path / "storm"
        smtp_storm(
            root,
            sink,
            at,
            [
                "Madrid students,Europe/Madrid,es,madrid@uni.example.org",
                f"Nobody,Europe/Madrid,es,{refused}",
            ],
            monkeypatch,
        )
        run_reminders(root, engine)
    finally:
        controller.stop()
    assert [m["To"] for m in sink.messages] == ["madrid@uni.example.org"]
    with Session(engine) as session:
        rows = {r.account: r for r in session.scalars(select(Outbox))}
    assert rows["Madrid students"].state == "sent"
    dead = rows["Nobody"]
    assert dead.state == "dead" and dead.attempts == 1
    assert "refused the address (550 5.1.1 No such mailbox here)" in (dead.error or "")
    assert refused not in (dead.error or "")
    monkeypatch.setenv("STORMER_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    report = runner.invoke(app, ["report", "--json", "--storm", str(root)])
    assert report.exit_code in (0, 1), report.output
    (row,) = [r for r in json.loads(report.stdout)["rows"] if r["account"] == "Nobody"]
    assert row["state"] == "dead" and "550" in row["error"]
    assert row["platform"] == "reminder:email"
    assert refused not in report.stdout


def test_a_matrix_participant_gets_a_direct_message_from_the_organizers_account(
    tmp_path: Path, synapse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a real Synapse: Apprise, as the organizer's account, opens a direct room with
    the participant alone and posts the reminder in the participant's language."""
    import httpx

    from stormer.outbox.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.db'}")  # the SMTP tests do both
    upgrade(engine)

    bot, bot_password = synapse.register("storm-bot")
    person, person_password = synapse.register("student")
    at = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    root = copy_example(tmp_path / "storm", at=iso_utc(at), reminders=True)
    set_reminder_offsets(root, ["3s"])
    write_participants(root, [f"Gaza students,Asia/Gaza,ar,matrix:{person}"])
    config = root / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            'senders = { mailto = "FPS_SMTP_URL" }',
            'senders = { mailto = "FPS_SMTP_URL", matrix = "FPS_MATRIX_BOT_URL" }',
        ),
        encoding="utf-8",
    )
    host = synapse.url.removeprefix("http://")
    localpart = bot.split(":")[0].removeprefix("@")
    monkeypatch.setenv("FPS_MATRIX_BOT_URL", f"matrix://{localpart}:{bot_password}@{host}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # Apprise's login cache
    run_reminders(root, engine)

    with Session(engine) as session:
        (row,) = session.scalars(select(Outbox)).all()
    assert row.state == "sent", row.error
    token = synapse.login(person, person_password)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=synapse.url, headers=auth, timeout=30) as client:
        invited = client.get("/_matrix/client/v3/sync").raise_for_status().json()["rooms"]
        (room,) = invited["invite"]
        client.post(f"/_matrix/client/v3/rooms/{room}/join", json={}).raise_for_status()
        members = client.get(f"/_matrix/client/v3/rooms/{room}/joined_members")
        assert set(members.raise_for_status().json()["joined"]) == {bot, person}
        events = (
            client.get(
                f"/_matrix/client/v3/rooms/{room}/messages", params={"dir": "b", "limit": 50}
            )
            .raise_for_status()
            .json()
        )
    texts = [e["content"].get("body", "") for e in events["chunk"] if e["type"] == "m.room.message"]
    assert len(texts) == 1
    assert f"{local_wall('Asia/Gaza', at):%H:%M}" in texts[0]
    assert "#FreePalestinianStudents" in texts[0] and "تبدأ الحملة الإلكترونية" in texts[0]


def test_an_address_in_the_zone_column_is_never_echoed(storm: Path) -> None:
    write_participants(storm, ["Shifted,gaza-students@uni.example.org,ar,"])
    result = runner.invoke(app, ["check", "--storm", str(storm)])
    assert "row 2 (Shifted): the zone column holds what looks like a contact" in result.stdout
    assert "gaza-students" not in result.stdout


def test_a_worker_killed_while_sending_a_reminder_leaves_it_unconfirmed_not_resent(
    tmp_path: Path,
    smtp: SmtpSink,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Apprise cannot ask whether a message arrived: a reminder whose worker died after the
    attempt was recorded is never sent again blindly; the organizer sees it unconfirmed."""
    from stormer.outbox import claims

    at = (datetime.now(UTC) + timedelta(seconds=30)).replace(microsecond=0)
    root = tmp_path / "storm"
    smtp_storm(root, smtp, at, [",".join(PEOPLE[0])], monkeypatch)
    set_reminder_offsets(root, ["25s"])
    loaded = load_storm(root)
    schedule_reminders(loaded, engine)
    # A worker that claimed it and recorded the attempt, then died (its lease ran out).
    now = datetime.now(UTC)
    (claimed,) = claims.claim_due(
        engine=engine,
        storm=loaded.slug,
        worker="dead-worker",
        now=now,
        horizon=timedelta(minutes=5),
        limit=10,
        lease=timedelta(milliseconds=1),
    )
    claims.record_attempt(
        engine=engine, ids=[claimed.id], worker="dead-worker", now=now - timedelta(seconds=1)
    )  # the lease was still live then
    dispatcher = Dispatcher(
        replace(loaded, accounts=[]),
        engine,
        settings=Settings(poll_seconds=0.5, grace=timedelta(minutes=2)),
    )
    asyncio.run(asyncio.wait_for(dispatcher.run(until_done=True), 30))
    with Session(engine) as session:
        (row,) = session.scalars(select(Outbox)).all()
    assert row.state == "unconfirmed" and row.attempts == 1
    assert "no way to check: the participant may have it already; ask them" in (row.error or "")
    assert smtp.messages == []  # not sent a second time


def test_the_example_storms_reminders_through_smtp_say_each_local_time(
    tmp_path: Path, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 2021 storm itself (18:00 UTC): a Madrid participant reads 19:00 in Spanish, Gaza
    20:00 in Arabic, Auckland the next morning, a Friday — delivered through a real SMTP
    server by the channel the dispatcher uses."""
    from stormer.channels.reminder import ReminderChannel, ReminderConnection
    from stormer.notify.sender import resolve_senders

    root = tmp_path / "storm"
    smtp_storm(root, smtp, EXAMPLE_T, [",".join(p) for p in PEOPLE[:3]], monkeypatch)
    set_reminder_offsets(root, ["1h"])
    loaded = load_storm(root)
    senders, missing = resolve_senders(loaded.reminder_senders)
    assert not missing
    channel = ReminderChannel()
    conn = ReminderConnection(storm=loaded, senders=senders, workdir=tmp_path / "work")

    async def send_all() -> None:
        for item in plan_reminders(loaded):
            await channel.publish(await channel.stage(item, conn), conn)

    asyncio.run(send_all())
    got = {m["To"]: text_of(m, "plain") for m in smtp.messages}
    assert len(smtp.messages) == 3
    assert "jueves, 11 de marzo de 2021, 19:00" in got["madrid@uni.example.org"]
    assert "الخميس، 11 مارس 2021، الساعة 20:00" in got["gaza@uni.example.org"]
    assert "Friday, 12 March 2021, 07:00" in got["auckland@uni.example.org"]
    subjects = {m["To"]: m["Subject"] for m in smtp.messages}
    assert "19:00" in subjects["madrid@uni.example.org"]


def test_status_tells_posts_from_reminders(
    storm: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_storm_time(storm, "2031-03-13T18:00:00Z")
    monkeypatch.setenv("STORMER_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    assert runner.invoke(app, ["schedule", "--storm", str(storm)]).exit_code == 0
    reminders = len(list(plan_reminders(load_storm(storm))))
    doc = json.loads(runner.invoke(app, ["status", "--json", "--storm", str(storm)]).stdout)
    assert doc["kinds"] == {"post": 8, "reminder": reminders}
    human = runner.invoke(app, ["status", "--storm", str(storm)]).stdout
    assert f"({8} posts, {reminders} reminders)" in human


def test_a_storm_without_a_kit_page_still_writes_reminders(storm: Path) -> None:
    # Telegram's share link needs a URL to share: without a kit page there is none, and the
    # templates must not stumble over the missing link (bench/preview_big.py found it).
    config = storm / "config.toml"
    config.write_text(
        "\n".join(
            line
            for line in config.read_text(encoding="utf-8").splitlines()
            if not line.startswith("kit_url")
        ),
        encoding="utf-8",
    )
    reminders = list(plan_reminders(load_storm(storm)))
    for_x = [r for r in reminders if r.source != LONG]  # the long post is kept off X
    assert for_x and all("https://x.com/intent/post?" in r.text for r in for_x)
    assert not any("t.me/share" in r.text for r in reminders)
    # The long post names no platform with a link left: no links, and no headline for them.
    long = next(r for r in reminders if r.source == LONG and r.lang == "en")
    assert "https://" not in long.text.split("#FreePalestinianStudents\n", 1)[1]
    assert "one click" not in long.text


LONG = "posts/en-04-four-demands-long.md"  # platforms = mastodon, telegram, discord, matrix


def test_a_sample_gets_links_only_for_the_platforms_it_allows(storm: Path) -> None:
    reminders = [r for r in plan_reminders(load_storm(storm)) if r.source == LONG]
    assert reminders
    for r in reminders:  # Telegram's share link carries it; X and Bluesky are not its own
        assert "t.me/share" in r.text
        assert "x.com/intent" not in r.text and "bsky.app/intent" not in r.text
