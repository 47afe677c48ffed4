"""The fault matrix, platform side (issue 15, item 4): a whole storm (six platforms, eight
accounts) on SQLite and on PostgreSQL, one fault injected by the simulator once everything is
staged, and the outcome counted from the simulator's record against the outbox
(faults_count.py): early, duplicates, lost, and each item's final state.

Telegram and Discord webhooks offer no idempotency and no read-back: where a fault leaves an
outcome unknown there, the item ends `unconfirmed` with where to look, and the count says
whether the post is in fact there."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from faults_count import instant, landed
from faults_proxy import ResetProxy
from faults_run import CANNOT_ASK, SETTINGS, configure, run_storm, storm_folder
from fixtures_workers import staging_time

from stormer.outbox.db import make_engine, upgrade

ALL = ("mastodon", "bluesky", "x", "telegram", "discord", "matrix")


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def test_a_429_storm_lands_every_post_once_after_retry_after(
    tmp_path: Path, simulator: str, engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three posts per account at T, and from T every account may make one request per 2 s
    on every platform: two of each account's three posts meet the platform's 429 with its
    Retry-After (or its body's retry_after), wait it out and land, once each."""
    root = storm_folder(tmp_path, simulator, monkeypatch, posts_per_account=3)
    window = 2.0

    def storm_of_429s(at: object) -> None:
        configure(simulator, rate_limit={p: {"limit": 1, "window_s": window} for p in ALL})

    run = run_storm(root, engine, simulator, at_t=storm_of_429s)
    run.tally.assert_promise()
    assert run.tally.states == {"sent": 24}, run.tally.summary()
    # Each account's posts landed a window apart at least: the 429s were met, and waited out.
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    for post in landed(simulator):
        if post["text"]:
            times[post["platform"], post["account"]].append(
                instant(post["received_at"]).timestamp()
            )
    assert len(times) == 8 and all(len(t) == 3 for t in times.values()), times
    for spread in times.values():
        spread.sort()
        assert spread[2] - spread[0] >= 2 * window - 0.1, spread


def test_a_5xx_burst_at_t(
    tmp_path: Path, simulator: str, engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each platform answers its first three post requests from T with a 503. Nothing was
    created, but a 5xx may come from a proxy after the platform acted: each is reconciled.
    Where the platform can be asked, it says "not there" and the post is sent again, once;
    Telegram and Discord cannot be asked: `unconfirmed`, with where to look — and the count
    shows that those posts are not there (the organizer must send them by hand)."""
    root = storm_folder(tmp_path, simulator, monkeypatch)
    run = run_storm(root, engine, simulator, at_t=lambda at: configure(simulator, error_burst=3))
    run.tally.assert_promise(unconfirmed_on=CANNOT_ASK)
    assert run.tally.states == {"sent": 6, "unconfirmed": 2}, run.tally.summary()
    assert sorted(run.tally.unconfirmed_not_landed) == [
        "discord/campaign-discord",
        "telegram/campaign-telegram",
    ]
    assert all("before sending it again" in (r.error or "") for r in run.rows if r.error)


def test_read_timeouts_after_the_post_was_created(
    tmp_path: Path, simulator: str, engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every platform creates the first two posts it receives from T, then holds the answer
    past the worker's request timeout (3 s here): the outcome is unknown. Reconciling finds
    each post (Mastodon's Idempotency-Key, Bluesky's record key, X and Matrix by reading
    back): sent, once. Telegram and Discord: `unconfirmed`, and in fact landed."""
    root = storm_folder(tmp_path, simulator, monkeypatch)

    def hang(at: object) -> None:
        configure(simulator, ambiguous_burst=2, ambiguous_mode="hang", timeout_s=10.0)

    settings = replace(SETTINGS, request_timeout=3.0)
    run = run_storm(root, engine, simulator, at_t=hang, settings=settings)
    run.tally.assert_promise(unconfirmed_on=CANNOT_ASK)
    assert run.tally.states == {"sent": 6, "unconfirmed": 2}, run.tally.summary()
    assert sorted(run.tally.unconfirmed_landed) == [
        "discord/campaign-discord",
        "telegram/campaign-telegram",
    ]


@pytest.mark.parametrize("done", ["before T", "after T"])
def test_slow_media_processing(
    tmp_path: Path,
    simulator: str,
    engine,
    monkeypatch: pytest.MonkeyPatch,
    done: str,
) -> None:
    """Mastodon processes each image for a while (202, then 206 until done: the status
    cannot be created before). Staging waits for it. Done 2 s after the upload, before T:
    the status goes at T with its image. Done only seconds after T: the item is staged
    then and goes at once, late — never early, never without its image, once."""
    root = storm_folder(tmp_path, simulator, monkeypatch)
    # After T even if the machine gets busier and T is set further ahead (staging_time()).
    processing = 2.0 if done == "before T" else 1.5 * staging_time().total_seconds() + 4
    configure(simulator, media_processing_s=processing)
    run = run_storm(root, engine, simulator, staged_before_t=done == "before T")
    run.tally.assert_promise()
    assert run.tally.states == {"sent": 8}, run.tally.summary()
    mastodon = [p for p in landed(simulator) if p["platform"] == "mastodon"]
    with_media = [r for r in run.rows if r.platform == "mastodon" and r.media]
    assert with_media, "no Mastodon post carries an image: the cell tests nothing"
    assert sum(len(p["media"]) for p in mastodon) == sum(len(r.media) for r in with_media)
    for row in with_media:
        assert row.staged_at is not None
        if done == "before T":
            assert row.staged_at < row.fire_at
        else:
            assert row.staged_at > row.fire_at and row.sent_at is not None
            print(f"{row.account}: staged T+{(row.staged_at - row.fire_at).total_seconds():.1f} s")


@pytest.mark.parametrize("platform", ["telegram", "mastodon"])
def test_a_token_revoked_at_t(
    tmp_path: Path,
    simulator: str,
    engine,
    monkeypatch: pytest.MonkeyPatch,
    platform: str,
) -> None:
    """One account's token is revoked after staging, just before T (@BotFather's /revoke;
    Mastodon's POST /oauth/revoke): its two items are `dead`, each with the platform's reason
    and what to do; every other account posts at T, once, unaffected."""
    root = storm_folder(tmp_path, simulator, monkeypatch, posts_per_account=2)
    account = {"telegram": "campaign-telegram", "mastodon": "campaign-mastodon"}[platform]

    def revoke(at: object) -> None:
        if platform == "telegram":
            r = httpx.post(f"{simulator}/_sim/telegram/revoke", json={"token": "12345:tok-t"})
        else:
            app = httpx.post(
                f"{simulator}/api/v1/apps",
                data={"client_name": "organizer", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"},
            ).json()
            r = httpx.post(
                f"{simulator}/oauth/revoke",
                data={
                    "client_id": app["client_id"],
                    "client_secret": app["client_secret"],
                    "token": "tok-m",
                },
            )
        r.raise_for_status()

    run = run_storm(root, engine, simulator, at_t=revoke)
    run.tally.assert_promise()
    ours = f"{platform}/{account}"
    assert run.tally.states == {"sent": 14, "dead": 2}, run.tally.summary()
    assert set(run.tally.dead) == {ours}
    reason = run.tally.dead[ours]
    assert "check this account's" in reason, reason
    assert "tok-" not in reason  # the revoked token is not in the message
    others = [r for r in run.rows if r.account != account]
    assert {r.state for r in others} == {"sent"}
    assert all(r.attempts == 1 for r in others)


def test_a_bluesky_session_expiring_mid_storm(
    tmp_path: Path, simulator: str, engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bluesky access tokens live 3 s (two hours on the day), and each Bluesky account posts
    at T, T + 3 s and T + 6 s on the session staging opened: a token obtained before T has
    expired by T + 3 s at the latest. The PDS answers `ExpiredToken` (nothing written); the
    worker refreshes the session and sends again: every post once, none lost. (Through the
    proxy, unarmed, which records what each request was answered.)"""
    proxy = ResetProxy(simulator)
    proxy.start()
    try:
        root = storm_folder(tmp_path, proxy.url, monkeypatch, posts_per_account=3)
        config = root / "config.toml"
        config.write_text(
            config.read_text(encoding="utf-8").replace(
                'post_interval = "0s"', 'post_interval = "3s"'
            ),
            encoding="utf-8",
        )
        configure(simulator, bluesky_access_ttl_s=3.0)
        run = run_storm(root, engine, simulator)
    finally:
        proxy.stop()
    run.tally.assert_promise()
    assert run.tally.states == {"sent": 24}, run.tally.summary()
    bluesky = [r for r in run.rows if r.platform == "bluesky"]
    assert len(bluesky) == 6 and all(r.attempts == 1 for r in bluesky)
    expired = [a for a in proxy.answers if a[0].endswith(".putRecord") and a[2] == "ExpiredToken"]
    refreshed = [a for a in proxy.answers if a[0].endswith(".refreshSession") and a[1] == 200]
    assert expired, "no post met an expired session: the cell tested nothing"
    assert refreshed, proxy.answers
    print(f"bluesky: {len(expired)} ExpiredToken answer(s), {len(refreshed)} refresh(es)")
