"""Participants' privacy over a whole storm (issue 12, "what must be true" item 2).

A storm with one participant per contact form stormer reaches through a local server —
a bare e-mail address, `mailto:`, `mailto://` (the organizer's SMTP sender, here a local SMTP
server) and a participant's own Apprise `json://` webhook (its distinctive host reached
through a local HTTP proxy that keeps what it receives) — is scheduled and run to the end
in-process against the simulator, posts and reminders. Then every command an organizer reads
runs on it, with every logger at DEBUG.

No participant's contact, nor its host, is anywhere but in the one message sent to that
participant: not in the logs, the commands' output, the SQLite file (its -wal and -shm
included: the outbox keeps a hash), nor any file under .stormer/. The outbox files are 0600
and the folders stormer made 0700.

A Matrix contact (`matrix:@…`, sent by the organizer's account) is reached on a real
Synapse, in a test of its own (skipped where that peer is not installed). A Telegram chat
(`tgram://CHAT`, sent by the organizer's bot) is not here: Apprise sends it to
https://api.telegram.org and cannot be pointed at a local server without patching it.
"""

from __future__ import annotations

import asyncio
import logging
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from example import (
    CREDENTIALS,
    copy_example,
    point_accounts_at,
    set_reminder_offsets,
    set_storm_time,
)
from fixtures_keyring import MemoryKeyring
from fixtures_sinks import JsonSink, SmtpSink
from sqlalchemy import select
from sqlalchemy.orm import Session
from timing import PATIENCE, far_ahead
from typer.testing import CliRunner

from stormer.cli import app
from stormer.dispatch.dispatcher import Dispatcher, Settings
from stormer.outbox.db import database_url, make_engine, upgrade
from stormer.outbox.models import Outbox
from stormer.outbox.schedule import schedule
from stormer.plan import plan
from stormer.preview import with_payloads
from stormer.storm import load_storm
from stormer.timezones import iso_utc

runner = CliRunner()

# name, zone, lang, contact as participants.csv writes it; the address and host looked for.
PROBES = [
    ("Probe One", "Europe/Madrid", "es", "probe-1@privacy-probe-1.example.net"),
    ("Probe Two", "Asia/Gaza", "ar", "mailto:probe-2@privacy-probe-2.example.net"),
    ("Probe Three", "Europe/Paris", "fr", "mailto://probe-3@privacy-probe-3.example.net"),
    ("Probe Four", "Europe/London", "en", "json://privacy-probe-4.example.net/hook-probe-4"),
]
COMMANDS = [
    ["status"],
    ["status", "--json"],
    ["report"],
    ["report", "--json"],
    ["report", "--csv"],
    ["doctor", "--json"],
    ["preview"],
    ["preview", "--json"],
    ["participants", "list"],
    ["check"],
]


def secrets_of(contact: str) -> tuple[str, str]:
    """The address a participant is reached at (no scheme) and its host."""
    address = contact.split("//", 1)[-1].removeprefix("mailto:")
    host = address.split("@")[-1].split("/")[0]
    return address, host


def leaks(data: str | bytes, where: str, skip: str | None = None) -> list[str]:
    raw = data.encode() if isinstance(data, str) else data
    found = []
    for _, _, _, contact in PROBES:
        if contact == skip:
            continue
        found += [f"{s} in {where}" for s in secrets_of(contact) if s.encode() in raw]
    return found


def db_files(root: Path) -> list[Path]:
    return sorted(root.glob("stormer.db*"))


def test_no_contact_leaves_its_own_message(
    tmp_path: Path,
    simulator: str,
    smtp: SmtpSink,
    json_sink: JsonSink,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, everything it says
    root = copy_example(tmp_path / "storm", reminders=True)
    point_accounts_at(root, simulator)
    set_reminder_offsets(root, ["3s"])
    (root / "participants.csv").write_text(
        "name,zone,lang,contact\n" + "".join(",".join(p) + "\n" for p in PROBES),
        encoding="utf-8",
    )
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FPS_X_CLIENT_ID", "stormer-app")
    monkeypatch.setenv("FPS_DISCORD_WEBHOOK_URL", f"{simulator}/api/webhooks/7/tok-d")
    monkeypatch.setenv("FPS_SMTP_URL", f"mailto://127.0.0.1:{smtp.port}?from=storm@example.org")
    monkeypatch.delenv("STORMER_DATABASE_URL", raising=False)  # SQLite beside config.toml
    # The webhook's host is not resolvable: Apprise (requests) reaches it through a local
    # proxy, the JSON sink, which keeps the request; local servers are reached directly.
    for proxy in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(proxy, f"http://127.0.0.1:{json_sink.port}")
    for direct in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(direct, "127.0.0.1,localhost")

    # `stormer schedule` as the organizer runs it, an hour ahead, into a database of its own
    # (scanned with the rest): on a loaded machine the command could outlast the few seconds
    # before the T of the run below.
    set_storm_time(root, iso_utc(far_ahead()))
    ahead = tmp_path / "scheduled-ahead.db"
    monkeypatch.setenv("STORMER_DATABASE_URL", f"sqlite:///{ahead}")
    scheduled = runner.invoke(app, ["schedule", "--storm", str(root)])
    assert scheduled.exit_code == 0, scheduled.output
    outputs = {"schedule": scheduled.output}
    monkeypatch.delenv("STORMER_DATABASE_URL")

    at = (datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0)
    set_storm_time(root, iso_utc(at))
    storm = load_storm(root)
    assert storm.at == at
    engine = make_engine(database_url(None, root))
    try:
        upgrade(engine)
        with Session(engine) as session, session.begin():
            # As if a minute before T: loading and planning on a loaded machine may outlast
            # the few seconds before the reminders' time; they are then sent late, in grace.
            schedule(
                with_payloads(storm, plan(storm)),
                session=session,
                storm=storm.slug,
                now=at - timedelta(minutes=1),
            )
        settings = Settings(
            staging_window=timedelta(seconds=8),
            grace=timedelta(seconds=60),
            poll_seconds=0.5,
            lead_seconds=0.5,
        )
        asyncio.run(
            asyncio.wait_for(
                Dispatcher(storm, engine, settings=settings).run(until_done=True),
                PATIENCE.total_seconds(),
            )
        )
        with Session(engine) as session:
            rows = list(session.scalars(select(Outbox)))
        assert {(r.kind, r.state) for r in rows} == {("post", "sent"), ("reminder", "sent")}, [
            (r.account, r.state, r.error) for r in rows if r.state != "sent"
        ]
        assert sum(r.kind == "reminder" for r in rows) == len(PROBES)
        # The database while the worker's connections are open: its -wal and -shm too.
        while_open = {p: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in db_files(root)}
        assert len(while_open) == 3, sorted(while_open)
    finally:
        engine.dispose()

    for command in COMMANDS:
        result = runner.invoke(app, [*command, "--storm", str(root)])
        assert result.output.strip(), (command, result.exception)
        outputs[" ".join(command)] = result.output + repr(result.exception)

    # The scan finds them where they belong: `preview --json --show-contacts` shows each.
    shown = runner.invoke(app, ["preview", "--json", "--show-contacts", "--storm", str(root)])
    assert len(leaks(shown.output, "the shown contacts")) == 2 * len(PROBES), shown.output

    # Each participant's contact is in the one message sent to them, and in no other.
    messages: dict[str, str] = {}
    for message in smtp.messages:
        (to,) = message.get_all("To")
        assert to not in messages, f"{to} got two messages"
        messages[to] = message.as_string()
    for headers, body in json_sink.received:
        host = headers["Host"]
        assert host not in messages, f"{host} got two messages"
        messages[host] = repr(headers) + repr(body)
    assert len(messages) == len(PROBES)
    found: list[str] = []
    for _, _, _, contact in PROBES:
        address, host = secrets_of(contact)
        (mine,) = [m for key, m in messages.items() if key in (address, host)]
        assert address.split("/")[0] in mine
        found += leaks(mine, f"the message to {host}", skip=contact)

    # And nowhere else: logs, commands, the database, .stormer/.
    found += leaks(caplog.text, "the logs")
    for record in caplog.records:
        found += leaks(repr(record.args) + str(record.exc_text), f"log record {record.name}")
    for command, output in outputs.items():
        found += leaks(output, f"stormer {command}")
    folder = root / ".stormer"
    made = (
        db_files(root)
        + sorted(tmp_path.glob(f"{ahead.name}*"))
        + ([folder, *sorted(folder.rglob("*"))] if folder.exists() else [])
    )
    for path in made:
        if path.is_file():
            found += leaks(path.read_bytes(), str(path.relative_to(tmp_path)))
    for path, (data, _) in while_open.items():
        found += leaks(data, f"{path.name} while open")
    assert found == []
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # they were captured

    # What stormer made is the organizer's alone, the database's -wal and -shm included.
    assert {p.name: mode for p, (_, mode) in while_open.items()} == dict.fromkeys(
        ("stormer.db", "stormer.db-shm", "stormer.db-wal"), 0o600
    )
    assert root.joinpath("stormer.db").is_file() and ahead.is_file()
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in made}
    wanted = {str(p.relative_to(tmp_path)): 0o700 if p.is_dir() else 0o600 for p in made}
    assert modes == wanted


def test_a_matrix_contact_is_only_in_its_direct_message(
    tmp_path: Path,
    synapse: Any,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A `matrix:@…` contact, reached by the organizer's account on a real Synapse (the
    `matrix` sender): its user id is in the direct message's room alone, not in the logs,
    the commands' output or the database. (Synapse's server name is `localhost`: the user
    id, with its random localpart, is what is looked for.)"""
    caplog.set_level(logging.DEBUG)
    bot, bot_password = synapse.register("storm-bot")
    person, person_password = synapse.register("privacy-probe-5")
    at = (datetime.now(UTC) + timedelta(seconds=8)).replace(microsecond=0)
    root = copy_example(tmp_path / "storm", at=iso_utc(at), reminders=True)
    set_reminder_offsets(root, ["3s"])
    (root / "participants.csv").write_text(
        f"name,zone,lang,contact\nProbe Five,Asia/Gaza,ar,matrix:{person}\n", encoding="utf-8"
    )
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
    monkeypatch.setenv("FPS_SMTP_URL", "mailto://127.0.0.1:9?from=storm@example.org")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # Apprise's login cache
    monkeypatch.delenv("STORMER_DATABASE_URL", raising=False)
    storm = load_storm(root)
    engine = make_engine(database_url(None, root))
    try:
        upgrade(engine)
        reminders = [i for i in with_payloads(storm, plan(storm)) if i.kind == "reminder"]
        with Session(engine) as session, session.begin():
            schedule(reminders, session=session, storm=storm.slug, now=at - timedelta(minutes=1))
        dispatcher = Dispatcher(
            replace(storm, accounts=[]),
            engine,
            settings=Settings(grace=timedelta(seconds=60), poll_seconds=0.5),
        )
        asyncio.run(asyncio.wait_for(dispatcher.run(until_done=True), PATIENCE.total_seconds()))
        with Session(engine) as session:
            (row,) = session.scalars(select(Outbox)).all()
        assert row.state == "sent", row.error
        while_open = b"".join(p.read_bytes() for p in db_files(root))
    finally:
        engine.dispose()

    where = {
        f"stormer {' '.join(c)}": runner.invoke(app, [*c, "--storm", str(root)]).output
        for c in COMMANDS
    }
    where["the logs"] = caplog.text
    where["the database while open"] = while_open.decode("latin-1")
    for path in [*db_files(root), *sorted((root / ".stormer").rglob("*"))]:
        if path.is_file():
            where[path.name] = path.read_bytes().decode("latin-1")
    assert [w for w, text in where.items() if person in text] == []
    # Where it is: the participant was invited to the direct room the reminder went to.
    token = synapse.login(person, person_password)
    sync = httpx.get(
        f"{synapse.url}/_matrix/client/v3/sync",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert len(sync.raise_for_status().json()["rooms"]["invite"]) == 1
