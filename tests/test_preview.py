"""The dry run: every item, in firing order, with exact payloads — and no network, no writes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from example import add_accounts, copy_example
from typer.testing import CliRunner

from stormer.channels.bluesky import record_key
from stormer.cli import app
from stormer.plan import plan
from stormer.storm import load_storm

runner = CliRunner()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("preview tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def preview_json(storm: Path, *extra: str) -> list[dict]:  # type: ignore[type-arg]
    result = runner.invoke(app, ["preview", "--json", "--storm", str(storm), *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_preview_lists_every_item_with_payload_offline(tmp_path: Path, no_network: None) -> None:
    storm = copy_example(tmp_path / "storm")
    before = snapshot(tmp_path)
    items = preview_json(storm)
    assert snapshot(tmp_path) == before, "preview must write nothing"
    assert len(items) == 8  # one post per authorized account
    assert {i["platform"] for i in items} == {
        "mastodon",
        "bluesky",
        "x",
        "telegram",
        "discord",
        "matrix",
    }
    keys = {
        "id",
        "kind",
        "fire_at",
        "platform",
        "account",
        "lang",
        "text",
        "length",
        "limit",
        "media",
        "payload",
    }
    for item in items:
        assert keys <= set(item)
        assert item["kind"] == "post" and item["fire_at"] == "2021-03-11T18:00:00Z"
        assert item["length"] <= item["limit"]
        assert "#FreePalestinianStudents" in item["text"]
    assert [i["fire_at"] for i in items] == sorted(i["fire_at"] for i in items)


def test_payloads_are_exact_and_carry_no_secret(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FPS_MASTODON_TOKEN", "supersecret-mastodon-token")
    monkeypatch.setenv("FPS_DISCORD_WEBHOOK_URL", "https://discord.com/api/webhooks/1/abcdefg")
    storm = copy_example(tmp_path / "storm")
    result = runner.invoke(app, ["preview", "--json", "--storm", str(storm)])
    assert "supersecret" not in result.stdout and "abcdefg" not in result.stdout
    items = {i["account"]: i for i in json.loads(result.stdout)}

    mastodon = items["campaign-mastodon"]["payload"][0]
    assert mastodon["url"] == "https://social.example.org/api/v1/statuses"
    assert mastodon["headers"]["Idempotency-Key"] == f"stormer-{items['campaign-mastodon']['id']}"
    assert mastodon["json"]["status"] == items["campaign-mastodon"]["text"]

    bsky_item = items["campaign-bluesky"]
    bsky = bsky_item["payload"][0]["json"]
    assert bsky["swapRecord"] is None and bsky["collection"] == "app.bsky.feed.post"
    record = bsky["record"]
    raw = record["text"].encode()
    tags = [
        f for f in record["facets"] if f["features"][0]["$type"] == "app.bsky.richtext.facet#tag"
    ]
    assert tags and all(
        raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode() == "#FreePalestinianStudents"
        for f in tags
    )

    telegram = items["campaign-telegram"]["payload"][0]
    assert telegram["url"].startswith("https://api.telegram.org/bot<secret:bot_token>/send")
    assert telegram["json"]["chat_id"] == "@freepalestinianstudents_example"

    discord = items["campaign-discord"]["payload"][0]
    assert discord["url"] == "<secret:webhook_url>?wait=true"

    matrix = items["campaign-matrix"]["payload"]
    assert matrix[0]["method"] == "PUT"
    assert matrix[0]["url"].endswith(
        f"/send/m.room.message/stormer-{items['campaign-matrix']['id']}-0"
    )


def test_ids_and_record_keys_are_deterministic(tmp_path: Path) -> None:
    storm = copy_example(tmp_path / "storm")
    first = preview_json(storm)
    second = preview_json(storm)
    assert first == second
    # Editing a post's text keeps every id (so the outbox updates instead of adding).
    post = next((storm / "posts").glob("en-01*.md"))
    post.write_text(
        post.read_text(encoding="utf-8").replace("Article 26", "Article 26 (UDHR)"),
        encoding="utf-8",
    )
    assert [i["id"] for i in preview_json(storm)] == [i["id"] for i in first]


def test_bluesky_record_key_is_a_valid_tid_near_the_storm() -> None:
    from datetime import UTC, datetime

    at = datetime(2021, 3, 11, 18, tzinfo=UTC)
    key = record_key("0123456789abcdef", at, 7)
    import re

    assert re.fullmatch(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}", key)
    assert key == record_key("0123456789abcdef", at, 7)
    assert key != record_key("0123456789abcdef", at, 8)
    value = 0
    for ch in key:
        value = value * 32 + "234567abcdefghijklmnopqrstuvwxyz".index(ch)
    # The item's seq (7) µs before the storm's instant: never after it.
    assert int(at.timestamp()) * 1_000_000 - (value >> 10) == 7


def test_limit_option(tmp_path: Path) -> None:
    storm = copy_example(tmp_path / "storm")
    assert len(preview_json(storm, "--limit", "3")) == 3
    assert preview_json(storm, "--limit", "0") == []
    # Found by test_cli_fuzz: a limit over sys.maxsize reached islice() (exit 70, "a bug").
    result = runner.invoke(app, ["preview", "--storm", str(storm), "--limit", "9" * 20])
    assert result.exit_code == 2
    assert "'--limit'" in result.output and "less than or equal to" in result.output


def test_rotation_gives_accounts_on_one_platform_different_texts(tmp_path: Path) -> None:
    storm = copy_example(tmp_path / "storm")
    extra = "".join(
        f"""
[[accounts]]
name = "x-extra-{n}"
platform = "x"
langs = ["en"]
credentials = {{ access_token = "X_EXTRA_{n}" }}
"""
        for n in range(2)
    )
    add_accounts(storm, extra)
    items = [i for i in plan(load_storm(storm)) if i.platform == "x"]
    assert len(items) == 3
    assert len({i.text for i in items}) == 3  # three English samples fit X: one each


def test_human_preview_is_a_table(tmp_path: Path) -> None:
    storm = copy_example(tmp_path / "storm")
    result = runner.invoke(app, ["preview", "--storm", str(storm)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "8 queued item(s)" in result.stdout and "campaign-x" in result.stdout


def test_show_contacts_shows_each_address_in_the_table_too(tmp_path: Path) -> None:
    storm = copy_example(tmp_path / "storm", reminders=True)
    address = "contact@samidoun-es.example.org"
    assert address in (storm / "participants.csv").read_text(encoding="utf-8")
    args = ["preview", "--kind", "reminder", "--storm", str(storm)]
    hidden = runner.invoke(app, args)
    assert hidden.exit_code == 0, hidden.output
    assert "@" not in hidden.stdout.split("\n", 1)[1]  # no address by default
    shown = runner.invoke(app, [*args, "--show-contacts"])
    assert shown.exit_code == 0, shown.output
    line = next(line for line in shown.stdout.splitlines() if "Samidoun Palestinian" in line)
    assert line.split()[2:6] == ["reminder:email", "to", address, "Samidoun"]


def test_with_a_limit_the_day_in_the_title_is_that_of_the_items_shown(tmp_path: Path) -> None:
    # Reminders go out the day before T: the first two items are on another day than the posts.
    storm = copy_example(tmp_path / "storm", reminders=True)
    result = runner.invoke(app, ["preview", "-n", "2", "--storm", str(storm)])
    assert result.exit_code == 0, result.output
    total = len(plan(load_storm(storm)))
    title = f"Free Palestinian Students: {total} queued item(s); the 2 shown on 2021-03-10, "
    assert result.stdout.startswith(title + "times in UTC\n")
