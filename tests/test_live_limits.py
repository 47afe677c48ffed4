"""Limits a server publishes (a Mastodon instance's configuration), read by `check --online`,
kept per server in `.stormer/limits.json`, and used by staging and `preview`: a post that fits
Mastodon's default 500 but not this instance's limit is refused before T, naming both numbers
and where the limit came from."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from example import example_against, schedule_storm
from sqlalchemy import select
from sqlalchemy.orm import Session
from timing import run_worker_until
from typer.testing import CliRunner

from stormer.channels.base import Connection, LiveLimits
from stormer.channels.limits import FILE_NAME, LimitsCache
from stormer.channels.mastodon import Mastodon
from stormer.cli import app
from stormer.dispatch.dispatcher import Dispatcher, Settings
from stormer.outbox.db import make_engine, upgrade
from stormer.outbox.models import Outbox
from stormer.queue import QueueItem
from stormer.storm import Account

runner = CliRunner()
# The example's campaign-mastodon post counts 248, its solidarity-mastodon-fr post 237.
INSTANCE_LIMIT = 240


@pytest.fixture
def storm(tmp_path: Path, simulator: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = example_against(tmp_path / "storm", simulator, monkeypatch)
    httpx.post(
        f"{simulator}/_sim/config", json={"mastodon_max_characters": INSTANCE_LIMIT}
    ).raise_for_status()
    return root


def test_check_online_reads_the_limit_keeps_it_and_preview_names_it(
    storm: Path, simulator: str
) -> None:
    before = runner.invoke(app, ["preview", "--storm", str(storm)])
    assert "Mastodon: limit 500 (Mastodon's default)" in before.stdout

    result = runner.invoke(app, ["check", "--online", "--json", "--storm", str(storm)])
    assert result.exit_code == 1
    over = [p for p in json.loads(result.stdout) if p["code"] == "over-server-limit"]
    source = f"{simulator}/api/v2/instance"
    assert any(
        f"248 > {INSTANCE_LIMIT} (this server's limit, read from {source} on " in p["message"]
        and "campaign-mastodon" in p["message"]
        for p in over
    ), over
    assert httpx.get(f"{simulator}/_sim/posts").json() == []  # nothing was posted

    kept = storm / ".stormer" / FILE_NAME
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(kept.parent.stat().st_mode) == 0o700
    kept_limits = json.loads(kept.read_text())
    # Both Mastodon accounts: one instance, one read (Matrix's media config is kept too).
    (entry,) = [v for k, v in kept_limits.items() if k.startswith("mastodon ")]
    assert sorted(k.split()[0] for k in kept_limits) == ["mastodon", "matrix"]
    assert entry["text_limit"] == INSTANCE_LIMIT and entry["source"] == source
    assert entry["url_length"] == 23 and entry["image_bytes"] == 16 * 1024 * 1024
    assert entry["alt_text_limit"] == 1500

    after = runner.invoke(app, ["preview", "--storm", str(storm)])
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert f"Mastodon: limit {INSTANCE_LIMIT} (read from {source} on {today}" in after.stdout
    assert f"248/{INSTANCE_LIMIT} TOO LONG" in after.stdout
    records = json.loads(runner.invoke(app, ["preview", "--json", "--storm", str(storm)]).stdout)
    mastodon = {r["account"]: r for r in records if r["platform"] == "mastodon"}
    assert mastodon["campaign-mastodon"]["limit"] == INSTANCE_LIMIT
    assert mastodon["campaign-mastodon"]["limit_source"].startswith(f"read from {source} on ")


def test_staging_refuses_a_post_over_the_instance_limit_before_t(
    storm: Path, simulator: str, db_url: str
) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        at = (datetime.now(UTC) + timedelta(minutes=3)).replace(microsecond=0)
        loaded = schedule_storm(storm, engine, at)
        settings = Settings(staging_window=timedelta(minutes=5), poll_seconds=0.5)

        def rows() -> dict[str, Outbox]:
            with Session(engine) as session:
                found = {r.account: r for r in session.scalars(select(Outbox))}
                session.expunge_all()
                return found

        asyncio.run(
            run_worker_until(
                Dispatcher(loaded, engine, settings=settings),
                "staging",
                lambda: all(r.staged_at is not None or r.state == "dead" for r in rows().values()),
            )
        )
        by_account = rows()
        refused = by_account["campaign-mastodon"]
        assert refused.state == "dead", (refused.state, refused.error)
        assert f"248 > {INSTANCE_LIMIT} (this server's limit, read from {simulator}" in (
            refused.error or ""
        )
        assert by_account["solidarity-mastodon-fr"].staged_at is not None  # 237 fits
        assert httpx.get(f"{simulator}/_sim/posts").json() == []  # nothing sent early
        assert (storm / ".stormer" / FILE_NAME).exists()  # read once, kept
    finally:
        engine.dispose()


# --- the cache -------------------------------------------------------------------------------

ACCOUNT = Account(
    name="m",
    platform="mastodon",
    langs=(),
    base_url="https://social.example.org",
    target=None,
    handle=None,
    credentials=(("access_token", "T"),),
    line=None,
)


class Counting(Mastodon):
    """Mastodon whose server publishes a limit of 1000, counting how often it is asked."""

    reads = 0

    async def read_limits(self, conn: Connection) -> LiveLimits | None:
        type(self).reads += 1
        await asyncio.sleep(0)  # let the other callers arrive while this one reads
        return LiveLimits(source="https://social.example.org/api/v2/instance", text_limit=1000)


def test_the_limits_are_read_once_per_server_and_kept_a_day(tmp_path: Path) -> None:
    cache = LimitsCache(tmp_path / ".stormer")
    plugin = Counting()

    async def main() -> list[LiveLimits | None]:
        async with httpx.AsyncClient() as client:
            conn = Connection(account=ACCOUNT, client=client, credentials={})
            return await asyncio.gather(*(cache.read(plugin, conn) for _ in range(20)))

    results = asyncio.run(main())
    assert Counting.reads == 1 and {r.text_limit for r in results if r} == {1000}
    # Another process (a new cache on the same folder) finds them in the file.
    again = LimitsCache(tmp_path / ".stormer")
    kept = again.cached(plugin, ACCOUNT)
    assert kept is not None and kept.text_limit == 1000 and kept.read_at is not None
    # A day later they are stale for staging, still shown by preview with their date.
    data = json.loads(again.path.read_text())
    (key,) = data
    data[key]["read_at"] = (datetime.now(UTC) - timedelta(days=1, minutes=1)).isoformat()
    again.path.write_text(json.dumps(data))
    assert again.cached(plugin, ACCOUNT) is None
    assert again.for_accounts([ACCOUNT])["m"].text_limit == 1000


def test_a_plugin_with_live_limits_measures_and_names_them() -> None:
    limits = LiveLimits(
        source="https://social.example.org/api/v2/instance",
        text_limit=30,
        url_length=40,
        read_at=datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
    )
    plugin = Mastodon().with_limits(limits)
    text = "see https://example.org/a"
    assert Mastodon().length(text) == 4 + 23 and plugin.length(text) == 4 + 40
    item = QueueItem(
        id="i", kind="post", fire_at=datetime.now(UTC), platform="mastodon", account="m",
        lang="en", text=text,
    )  # fmt: skip
    payload = plugin.render(item, ACCOUNT)
    assert payload.problems == [
        "44 > 30 (this server's limit, read from https://social.example.org/api/v2/instance "
        "on 2026-05-01 12:00 UTC)"
    ]
    assert Mastodon().render(item, ACCOUNT).limit_source == "Mastodon's default"
    assert Mastodon.text_limit == 500 and Mastodon.url_length == 23  # the class is untouched
