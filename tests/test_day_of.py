"""A day-of rehearsal of expiry (issue 11, item 7): a storm scheduled hours after the
organizer logged in, with tokens that expire long before T.

The day, scaled down: one second here stands for six minutes there.

    on the day                          here
    X and Bluesky access tokens: 2 h    20 s  (SimConfig x_access_ttl_s, bluesky_access_ttl_s)
    T: 3 h after the X login            30 s  (10 s after the login's token expired)
    a second post per account: T + 3 h  T + 30 s  (post_interval)
    staging window (stormer: 10 min)    8 s   — longer than scale, for a loaded machine
    grace (stormer: 10 min)             6 s

So when the first post is staged (8 s before T), the access token X issued at login has
already expired; it must be refreshed then, before T, and the rotated pair saved in the
keyring. When the second post is staged, the X token of that refresh and the Bluesky
sessions opened at the first staging have expired too. `bluesky_session.FRESH_S` ("a token
obtained within the last minute is as fresh as a refresh could make it") is scaled with the
rest: at 60 s it would cover the whole interval between the two stagings here, which on the
day is three hours — the second staging of a text-only post would leave its expired session
alone, and the burst at T + interval would meet `ExpiredToken` and refresh then (this test
fails so).

Every account posts at T (X logged in with PKCE, Bluesky with app passwords, Mastodon,
Telegram, Discord and Matrix with static tokens): each post once, none before its time, none
lost. The simulator, wrapped in a recorder, says when each token was refreshed and that no
request ever met an expired token. No token value is in the SQLite database (WAL
included), in any log record, or in `stormer status` and `stormer report`.

And the day it goes wrong: X refuses the refresh at staging (the refresh token was rotated
elsewhere). The item fails staging with an error naming `stormer login campaign-x`, the
watchdog alerts the organizer before T with that fix in it, and nothing is posted for the
account, neither at T nor late.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import keyring
import pytest
from example import CREDENTIALS, copy_example, point_accounts_at, schedule_storm
from fixtures_sinks import SmtpSink
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from test_login import MemoryKeyring
from test_x_auth import login, refresh_with
from timing import PATIENCE, far_ahead, move_storm, wait_until
from typer.testing import CliRunner

from stormer.channels import bluesky_session
from stormer.cli import app
from stormer.dispatch.dispatcher import Dispatcher, Settings
from stormer.ops.alerts import Alerted, Watch, watch
from stormer.outbox.db import database_url, make_engine, upgrade
from stormer.outbox.models import Outbox
from stormer.secrets import KEYRING_SERVICE, store
from stormer.simulator import create_app
from stormer.simulator.background import SimServer, serve_simulator
from stormer.storm import Storm

X_ACCOUNT = "campaign-x"
X_TOKEN_PATH = "/2/oauth2/token"
TTL = timedelta(seconds=20)  # two hours
DAY = Settings(
    staging_window=timedelta(seconds=8),
    grace=timedelta(seconds=6),
    poll_seconds=0.5,
    lead_seconds=0.5,
)
INTERVAL = timedelta(seconds=30)  # three hours
runner = CliRunner()


# --- the simulator, recorded -------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request the simulator received: when, and how it was answered."""

    at: datetime
    method: str
    path: str
    status: int
    form: dict[str, str]  # a form-encoded request (X's token endpoint), else {}
    answer: Any  # the JSON answer of an endpoint that issues tokens, or of a refusal


ISSUING = (X_TOKEN_PATH, "com.atproto.server.createSession", "com.atproto.server.refreshSession")


class Recorder:
    """ASGI middleware around the simulator: every request, stamped when it arrived."""

    def __init__(self, app: ASGIApp, calls: list[Call]) -> None:
        self.app = app
        self.calls = calls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        at = datetime.now(UTC)
        request, answer, status = bytearray(), bytearray(), [0]

        async def receiving() -> Message:
            message = await receive()
            request.extend(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                answer.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        finally:
            path = scope["path"]
            kept = path.endswith(ISSUING) or status[0] >= 400
            self.calls.append(
                Call(
                    at,
                    scope["method"],
                    path,
                    status[0],
                    dict(parse_qsl(request.decode("latin-1"))) if path == X_TOKEN_PATH else {},
                    _json(bytes(answer)) if kept else None,
                )
            )


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


@dataclass
class Recorded:
    url: str
    calls: list[Call] = field(default_factory=list)

    def to(self, path_end: str, **form: str) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.path.endswith(path_end) and all(c.form.get(k) == v for k, v in form.items())
        ]


@pytest.fixture(scope="module")
def recorder_server() -> Iterator[tuple[SimServer, list[Call]]]:
    calls: list[Call] = []
    simulator = create_app()
    simulator.add_middleware(Recorder, calls=calls)
    running = serve_simulator(simulator)
    try:
        yield running, calls
    finally:
        running.stop()


@pytest.fixture
def recorded(recorder_server: tuple[SimServer, list[Call]]) -> Recorded:
    running, calls = recorder_server
    with httpx.Client(base_url=running.url, timeout=10) as client:
        client.post("/_sim/reset").raise_for_status()
        client.post("/_sim/config", json={}).raise_for_status()
    calls.clear()
    return Recorded(running.url, calls)


def configure(sim: Recorded, **config: Any) -> None:
    httpx.post(f"{sim.url}/_sim/config", json=config, timeout=10).raise_for_status()


def landed(sim: Recorded) -> list[dict[str, Any]]:
    return httpx.get(f"{sim.url}/_sim/posts", timeout=10).json()  # type: ignore[no-any-return]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- the keyring, recorded -----------------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    at: datetime
    name: str  # "<account>/<field>"
    value: str


class RecordingKeyring(MemoryKeyring):
    """A test keyring backend that also remembers when each value was written."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[Write] = []

    def set_password(self, service: str, username: str, password: str) -> None:
        self.writes.append(Write(datetime.now(UTC), username, password))
        super().set_password(service, username, password)


@pytest.fixture
def recording_keyring() -> Iterator[RecordingKeyring]:
    previous = keyring.get_keyring()
    backend = RecordingKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


# --- the storm -----------------------------------------------------------------------------------


@pytest.fixture
def storm_dir(
    tmp_path: Path,
    recorded: Recorded,
    recording_keyring: RecordingKeyring,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The example storm against the recorded simulator; X's credentials come from the
    keyring (`stormer login`), the app's client id from the environment."""
    root = copy_example(tmp_path / "storm")
    point_accounts_at(root, recorded.url)
    # The example's X account names its app's client id, as `stormer login` needs.
    assert 'client_id = "FPS_X_CLIENT_ID"' in (root / "config.toml").read_text(encoding="utf-8")
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FPS_X_TOKEN")  # the X token is the one in the keyring, or none
    monkeypatch.setenv("FPS_X_CLIENT_ID", "stormer-app")
    monkeypatch.setenv("FPS_DISCORD_WEBHOOK_URL", webhook_url(recorded))
    monkeypatch.delenv("STORMER_DATABASE_URL", raising=False)  # SQLite beside config.toml
    return root


def webhook_url(recorded: Recorded) -> str:
    return f"{recorded.url}/api/webhooks/7/tok-d"


def edit(root: Path, old: str, new: str) -> None:
    config = root / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert old in text
    config.write_text(text.replace(old, new, 1), encoding="utf-8")


def migrated(engine: Engine) -> Engine:
    upgrade(engine)
    return engine


def schedule_far_ahead(root: Path, engine: Engine) -> tuple[Storm, datetime]:
    """Schedule the storm an hour ahead (loading and planning are slow on a loaded machine:
    not on the clock); `move_storm` brings T close once the organizer has logged in."""
    start = far_ahead()
    return schedule_storm(root, engine, start), start


def x_login(recorded: Recorded, storm: Storm) -> tuple[dict[str, str], datetime]:
    """`stormer login campaign-x` (PKCE, the address pasted) with the tokens kept in the
    keyring, as the command does; returns them and when the simulator's access token expires."""
    (account,) = (a for a in storm.accounts if a.name == X_ACCOUNT)
    values, _ = login(account, "paste")
    store(account.name, values)
    (issued,) = recorded.to(X_TOKEN_PATH, grant_type="authorization_code")
    return values, issued.at + timedelta(seconds=issued.answer["expires_in"])


def rows(engine: Engine) -> list[Outbox]:
    with Session(engine) as session:
        found = list(session.scalars(select(Outbox).order_by(Outbox.fire_at, Outbox.account)))
        session.expunge_all()
        return found


def assert_posted_once_on_time(items: list[Outbox], posts: list[dict[str, Any]]) -> None:
    """Each row landed once (by platform and text: Matrix images are extra events), never
    before its fire time, and the outbox says `sent` once."""
    for row in items:
        same = [p for p in posts if p["platform"] == row.platform and p["text"] == row.text]
        assert len(same) == 1, (row.account, row.fire_at, row.state, row.error)
        assert instant(same[0]["received_at"]) >= row.fire_at, f"{row.account} posted early"
        assert (row.state, row.attempts) == ("sent", 1), (row.account, row.error)
        assert row.remote_id in {p["remote_id"] for p in posts}


def tokens_issued(recorded: Recorded) -> set[str]:
    """Every token the simulator handed out: X's access and refresh tokens, Bluesky's JWTs."""
    found: set[str] = set()
    for call in recorded.calls:
        if call.path.endswith(ISSUING) and isinstance(call.answer, dict):
            keys = ("access_token", "refresh_token", "accessJwt", "refreshJwt")
            found |= {call.answer[k] for k in keys if isinstance(call.answer.get(k), str)}
    return found


def leaked(secrets: set[str], text: str | bytes, where: str) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [f"{s[:12]}… in {where}" for s in sorted(secrets) if s.encode() in data]


def when(*calls: Call, t: datetime) -> list[str]:
    """What an assertion on the time of `calls` shows: each relative to T."""
    return [f"{c.path} {c.status} at T{(c.at - t).total_seconds():+.1f} s" for c in calls]


def refused_for_its_token(call: Call) -> bool:
    answer = call.answer if isinstance(call.answer, dict) else {}
    return call.status == 401 or answer.get("error") == "ExpiredToken"


# --- the day -------------------------------------------------------------------------------------


def test_every_account_posts_at_t_hours_after_the_tokens_of_the_login_expired(
    storm_dir: Path,
    recorded: Recorded,
    recording_keyring: RecordingKeyring,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, everything it says
    monkeypatch.setattr(bluesky_session, "FRESH_S", 1.0)  # 60 s on the day (see above)
    configure(recorded, x_access_ttl_s=TTL.seconds, bluesky_access_ttl_s=TTL.seconds)
    edit(storm_dir, "posts_per_account = 1", "posts_per_account = 2")
    edit(storm_dir, 'post_interval = "0s"', f'post_interval = "{INTERVAL.seconds}s"')
    engine = migrated(make_engine(database_url(None, storm_dir)))
    try:
        storm, start = schedule_far_ahead(storm_dir, engine)
        login_values, login_expiry = x_login(recorded, storm)
        t1 = (login_expiry + timedelta(seconds=11)).replace(microsecond=0)  # ≥ 10 s after
        t2 = t1 + INTERVAL
        move_storm(engine, storm_dir, start, t1)
        asyncio.run(
            asyncio.wait_for(
                Dispatcher(replace(storm, at=t1), engine, settings=DAY).run(until_done=True),
                PATIENCE.total_seconds(),
            )
        )

        # Every account posted at T, and again at T + interval: once each, none early.
        sent = rows(engine)
        assert len(sent) == 2 * len(storm.accounts)
        assert {r.account for r in sent} == {a.name for a in storm.accounts}
        assert sorted({r.fire_at for r in sent}) == [t1, t2]
        assert_posted_once_on_time(sent, landed(recorded))

        # X: the login's token had expired when the first staging found it, and was refreshed
        # then, before T; the token of that refresh had expired by the second staging.
        first, second = recorded.to(X_TOKEN_PATH, grant_type="refresh_token")
        assert first.status == second.status == 200
        assert login_expiry <= first.at < t1, when(first, t=t1)
        assert first.at + timedelta(seconds=first.answer["expires_in"]) <= second.at < t2, when(
            second, t=t2
        )
        # Bluesky: one session per account at the first staging; each expired before the
        # second staging, which refreshed it (once), before T + interval.
        logins = recorded.to("com.atproto.server.createSession")
        refreshes = recorded.to("com.atproto.server.refreshSession")
        assert len(logins) == len(refreshes) == 2
        assert all(t1 - DAY.staging_window <= c.at < t1 and c.status == 200 for c in logins), when(
            *logins, t=t1
        )
        expired_by = max(c.at for c in logins) + TTL
        assert all(expired_by <= c.at < t2 and c.status == 200 for c in refreshes), when(
            *refreshes, t=t2
        )
        # So no request ever went out with a token the platform refused (at T least of all).
        assert [c for c in recorded.calls if refused_for_its_token(c)] == []

        # The rotated pair is in the keyring, saved at each refresh (before T); the login's
        # refresh token is spent, and only the last access token is good.
        kept = {
            f: recording_keyring.items[(KEYRING_SERVICE, f"{X_ACCOUNT}/{f}")]
            for f in ("access_token", "refresh_token")
        }
        assert kept == {f: second.answer[f] for f in kept}
        assert kept["refresh_token"] != login_values["refresh_token"]
        rotations = [w for w in recording_keyring.writes if w.name == f"{X_ACCOUNT}/refresh_token"]
        assert [w.value for w in rotations] == [
            login_values["refresh_token"],
            first.answer["refresh_token"],
            second.answer["refresh_token"],
        ]
        assert first.at <= rotations[1].at < t1 and second.at <= rotations[2].at < t2
        refused = refresh_with(recorded.url, login_values["refresh_token"])
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
        for token, status in ((login_values["access_token"], 401), (kept["access_token"], 200)):
            me = httpx.get(
                f"{recorded.url}/2/users/me",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert me.status_code == status

        # No token, old or new, in the database, the logs, or what the organizer reads.
        issued = tokens_issued(recorded)
        assert len(issued) == 3 * 2 + 4 * 2  # X: login + 2 refreshes; Bluesky: 2 accounts × 2
        static = set(CREDENTIALS.values()) - {CREDENTIALS["FPS_X_TOKEN"]}
        secrets = issued | static | {webhook_url(recorded)}
        database = b"".join(p.read_bytes() for p in sorted(storm_dir.glob("stormer.db*")))
        found = leaked(secrets, database, "the database")
        found += leaked(secrets, caplog.text, "the logs")  # messages and tracebacks
        for command in ("status", "report"):
            result = runner.invoke(app, [command, "--storm", str(storm_dir)])
            assert result.exit_code == 0, result.output
            found += leaked(secrets, result.output, f"stormer {command}")
        assert found == []
        assert any(r.levelno == logging.DEBUG for r in caplog.records)  # they were captured
    finally:
        engine.dispose()
    database = b"".join(p.read_bytes() for p in sorted(storm_dir.glob("stormer.db*")))
    assert leaked(secrets, database, "the database, closed") == []


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_a_refresh_refused_at_staging_alerts_the_organizer_before_t(
    storm_dir: Path,
    recorded: Recorded,
    recording_keyring: RecordingKeyring,
    smtp: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The refresh token in the keyring was rotated elsewhere (another machine ran the storm,
    or a script refreshed it): X refuses it at staging. The organizer hears it from the
    watchdog before T, with the command that fixes it; the account posts nothing, and not
    late either. Scaled as above: tokens of 20 s, T just after the login's token expired,
    staging window 10 s, grace 5 s, the watchdog's `unstaged_before` 5 s (5 min on the day)."""
    before = timedelta(seconds=5)  # [alerts] unstaged_before
    with (storm_dir / "config.toml").open("a", encoding="utf-8") as f:
        f.write(f'\n[alerts]\napprise = ["FPS_ALERT_URL"]\nunstaged_before = "{before.seconds}s"\n')
    monkeypatch.setenv("FPS_ALERT_URL", smtp.url())
    settings = replace(
        DAY,
        staging_window=timedelta(seconds=10),
        grace=timedelta(seconds=5),
        retry_after_staging_failure=timedelta(seconds=2),
    )
    configure(recorded, x_access_ttl_s=TTL.seconds)
    engine = migrated(make_engine(database_url(None, storm_dir)))
    try:
        storm, start = schedule_far_ahead(storm_dir, engine)
        login_values, login_expiry = x_login(recorded, storm)
        assert refresh_with(recorded.url, login_values["refresh_token"]).status_code == 200
        refreshed_elsewhere = datetime.now(UTC)
        # T + grace is past the login's token: staging must refresh it, and cannot.
        at = (login_expiry + timedelta(seconds=1)).replace(microsecond=0)
        move_storm(engine, storm_dir, start, at)
        storm = replace(storm, at=at)

        def x_row() -> Outbox:
            (row,) = (r for r in rows(engine) if r.account == X_ACCOUNT)
            return row

        async def the_day() -> tuple[datetime, Watch]:
            dispatcher = Dispatcher(storm, engine, settings=settings)
            worker = asyncio.create_task(dispatcher.run(until_done=True))
            seen: list[Outbox] = []

            def staging_failed() -> bool:
                seen.append(x_row())
                return seen[-1].state == "failed"

            await asyncio.to_thread(
                wait_until,
                "X's staging to fail",
                staging_failed,
                seen=lambda: (seen[-1].state, seen[-1].error),
            )
            error = seen[-1].error
            assert error is not None and f"run `stormer login {X_ACCOUNT}`" in error
            # The watchdog's cron run once T − unstaged_before has come.
            await asyncio.sleep(max(0.0, (at - before - datetime.now(UTC)).total_seconds()))
            now = datetime.now(UTC)
            found = await asyncio.to_thread(watch, storm, engine, now=now)
            await asyncio.wait_for(worker, PATIENCE.total_seconds())
            return now, found

        watched_at, found = asyncio.run(the_day())
        assert watched_at < at, "the watchdog ran too late to tell anything before T"
        assert found.alerted == Alerted.SENT, found
        fix = f"stormer login {X_ACCOUNT}"
        assert found.message is not None
        (line,) = [line for line in found.message.splitlines() if "failed staging" in line]
        # Being retried (the worker lives): said so, with when it is tried next.
        assert line.startswith("  - 1 failed staging, being retried by a live worker: ")
        assert fix in line and f"({X_ACCOUNT}); next attempt at " in line
        (message,) = smtp.messages
        assert fix in body_of(message)
        assert login_values["refresh_token"] not in body_of(message)

        # Nothing for X: every refresh was refused, no post sent, the item missed after the
        # grace (never sent late). Every other account posted at T.
        tries = recorded.to(X_TOKEN_PATH, grant_type="refresh_token")
        assert tries[0].at < refreshed_elsewhere and len(tries) >= 2
        assert {c.status for c in tries[1:]} == {400}
        assert recorded.to("/2/tweets") == []
        assert x_row().state == "missed"
        others = [r for r in rows(engine) if r.account != X_ACCOUNT]
        assert len(others) == len(storm.accounts) - 1
        assert_posted_once_on_time(others, landed(recorded))
        assert [p for p in landed(recorded) if p["platform"] == "x"] == []
    finally:
        engine.dispose()
