"""A platform plugin from another package is found through the entry-point group and used by
`platforms`, `check`, `preview`, `doctor`, `post` and `run` without any change to stormer, with
what it declares about itself (limits, rules, gate and pace) honoured everywhere."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from example import add_accounts, copy_example, schedule_storm, write_own_posts
from fixtures_sim import png_bytes
from timing import far_ahead, move_storm

from stormer.channels import registry
from stormer.channels.base import Platform

PLUGIN_SITE = Path(__file__).parent / "plugins" / "site"  # holds the plugin's dist-info


def stormer(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(PLUGIN_SITE), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "stormer", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


def add_fileboard_account(storm: Path, board: Path, lang: str = "it") -> None:
    add_accounts(
        storm,
        f'''
[[accounts]]
name = "our-board"
platform = "fileboard"
base_url = "file://{board}"
langs = ["{lang}"]
credentials = {{ board_key = "BOARD_KEY" }}
''',
    )


def test_plugin_is_listed() -> None:
    result = stormer("platforms", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["fileboard"]["text_limit"] == 120
    assert plugins["fileboard"]["credentials"] == ["board_key"]
    assert {"mastodon", "bluesky", "x", "telegram", "discord", "matrix"} <= set(plugins)


def test_plugin_is_used_by_check_preview_and_post(tmp_path: Path) -> None:
    storm = copy_example(tmp_path / "storm")
    board = tmp_path / "board.jsonl"
    add_fileboard_account(storm, board)

    # Without the plugin installed the platform is unknown...
    plain = subprocess.run(
        [sys.executable, "-m", "stormer", "check", "--json", "--storm", str(storm)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "unknown-platform" in {p["code"] for p in json.loads(plain.stdout)}

    # ...with it, check applies the plugin's own 120-character limit to the Italian posts.
    checked = stormer("check", "--json", "--storm", str(storm))
    problems = json.loads(checked.stdout)
    too_long = [p for p in problems if p["code"] == "too-long"]
    assert too_long and all("Fileboard" in p["message"] for p in too_long)
    assert all(p["file"].startswith("posts/it-") for p in too_long)

    preview = json.loads(stormer("preview", "--json", "--storm", str(storm)).stdout)
    (item,) = [i for i in preview if i["platform"] == "fileboard"]
    assert item["limit"] == 120 and item["payload"][0]["method"] == "APPEND"
    assert item["payload"][0]["headers"] == {"Board-Key": "<secret:board_key>"}

    # `post` applies the plugin's limit too: the planned Italian post is too long to send...
    def post(path: Path) -> subprocess.CompletedProcess[str]:
        args = ["post", "--account", "our-board", "--post", str(path), "--json"]
        return stormer(*args, "--storm", str(storm), env={"BOARD_KEY": "k-123"})

    refused = post(storm / item["source"])
    assert refused.returncode != 0 and "> 120 (Fileboard limit)" in refused.stderr
    assert not board.exists()
    # ...and one that fits goes out through the plugin.
    short = storm / "posts" / "it-99-short.md"
    text = "Liberate gli studenti palestinesi. #FreePalestinianStudents"
    short.write_text(f'+++\nlang = "it"\nplatforms = ["fileboard"]\n+++\n{text}\n')
    sent = post(short)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["outcome"] == "sent"
    (line,) = board.read_text().splitlines()
    assert json.loads(line)["text"] == text


def test_plugin_is_fired_by_run(tmp_path: Path) -> None:
    """`stormer run` stages and fires the plugin's item like any built-in's."""
    from datetime import UTC, datetime, timedelta

    from stormer.outbox.db import make_engine
    from stormer.timezones import iso_utc

    storm, board = tmp_path / "storm", tmp_path / "board.jsonl"
    start = far_ahead()
    env = {
        "BOARD_KEY": "k-1",
        "STORMER_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    assert (
        stormer("init", str(storm), "--hashtag", "#FreeThem", "--at", iso_utc(start)).returncode
        == 0
    )
    write_own_posts(storm, "#FreeThem")
    add_fileboard_account(storm, board, "en")
    assert stormer("schedule", "--storm", str(storm), env=env).returncode == 0
    # T only now, when starting `stormer schedule` (seconds on a loaded machine) is behind us.
    engine = make_engine(env["STORMER_DATABASE_URL"])
    try:
        assert move_storm(engine, storm, start, datetime.now(UTC) + timedelta(seconds=2)) == 1
    finally:
        engine.dispose()
    ran = stormer("run", "--until-done", "--poll", "0.5", "--storm", str(storm), env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (line,) = board.read_text().splitlines()
    assert "#FreeThem" in json.loads(line)["text"]


# --- what the plugin declares, honoured in this process -------------------------------------


@pytest.fixture
def fileboard(monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """The plugin installed in this process (its dist-info on sys.path), as `registry` finds
    it; uninstalled again afterwards."""
    monkeypatch.syspath_prepend(str(PLUGIN_SITE))
    registry.installed.cache_clear()
    registry.get.cache_clear()
    yield registry.get("fileboard")
    registry.installed.cache_clear()
    registry.get.cache_clear()


def board_storm(root: Path, accounts: str, at: str | None = None) -> Path:
    """The example storm with only the fileboard `accounts` (their TOML) in it."""
    storm = copy_example(root, at=at)
    config = storm / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        re.sub(r"(?ms)^\[\[accounts\]\].*?(?=^\[reminders\])", "", text), encoding="utf-8"
    )
    add_accounts(storm, accounts)
    return storm


def board_account(name: str, lang: str, board: Path | None) -> str:
    base_url = f'base_url = "file://{board}"\n' if board else ""
    return (
        f'[[accounts]]\nname = "{name}"\nplatform = "fileboard"\n{base_url}'
        f'langs = ["{lang}"]\ncredentials = {{ board_key = "BOARD_KEY" }}\n'
    )


def test_check_applies_the_plugins_rules(fileboard: Platform, tmp_path: Path) -> None:
    from stormer.ops.checks import check
    from stormer.storm import load_storm

    # Three Italian boards share two Italian samples: some post the same text.
    accounts = [board_account(f"board-{n}", "it", tmp_path / f"{n}.jsonl") for n in "abc"]
    storm = board_storm(
        tmp_path / "storm", "\n".join([*accounts, board_account("nowhere", "it", None)])
    )
    problems = check(load_storm(storm, known_platforms=set(registry.installed())))

    same = [p for p in problems if p.code == "same-text-many-accounts"]
    assert fileboard.same_text_forbidden
    assert same and all(p.severity == "error" for p in same)  # a warning on Mastodon
    assert all("Fileboard's rules forbid this" in p.message for p in same)
    (no_url,) = [p for p in problems if p.code == "missing-base-url"]
    assert no_url.message.startswith("account 'nowhere' (Fileboard) needs base_url")
    too_long = [p for p in problems if p.code == "too-long"]
    assert too_long and all(p.message.startswith("Fileboard: ") for p in too_long)
    assert all(f"> {fileboard.text_limit} " in p.message for p in too_long)


def test_doctor_measures_images_against_the_plugins_limit(
    fileboard: Platform, tmp_path: Path
) -> None:
    from stormer.ops.doctor import media_finding
    from stormer.storm import load_storm

    storm = board_storm(tmp_path / "storm", board_account("board", "en", tmp_path / "b.jsonl"))
    # en-01 carries flag-book.png: under every built-in's limit, over the board's 0.3 MB.
    (storm / "posts" / "images" / "flag-book.png").write_bytes(png_bytes(padding=400_000))
    assert fileboard.image_limits.max_bytes == 300_000
    found = media_finding(load_storm(storm))
    assert found.severity == "error"
    assert "images/flag-book.png is 0.4 MB, over Fileboard's 0.3 MB" in found.message


def test_dispatch_gates_the_plugin_as_it_declares(fileboard: Platform) -> None:
    from stormer.channels.mastodon import Mastodon
    from stormer.dispatch.pacing import Gates

    async def gates() -> None:
        limits = Gates(per_account=2)
        board = limits.platform(fileboard)
        for _ in range(fileboard.concurrency):  # one writer at a time
            await board.acquire()
        assert board.locked()
        wide = limits.platform(Mastodon())
        for _ in range(fileboard.concurrency):
            await wide.acquire()
        assert not wide.locked()  # Mastodon's gate is its own, and wider
        pacer = limits.pacer("board", fileboard)
        assert pacer is not None and (pacer.n, pacer.period) == fileboard.pace
        assert limits.pacer("campaign-mastodon", Mastodon()) is None

    asyncio.run(gates())


def test_run_paces_the_plugins_posts(fileboard: Platform, tmp_path: Path) -> None:
    """Three posts from one board at one instant: two at T, the third when the board's pace
    (two a second) lets it — never before T."""

    from stormer.dispatch.dispatcher import Dispatcher, Settings
    from stormer.outbox.db import make_engine, upgrade
    from stormer.secrets import Secret

    board = tmp_path / "board.jsonl"
    storm_dir = board_storm(tmp_path / "storm", board_account("board", "en", board))
    config = storm_dir / "config.toml"
    config.write_text(config.read_text().replace("posts_per_account = 1", "posts_per_account = 3"))
    at = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(engine)
    try:
        storm = schedule_storm(storm_dir, engine, at)
        settings = Settings(staging_window=timedelta(minutes=5), poll_seconds=0.5)
        dispatcher = Dispatcher(
            storm,
            engine,
            settings=settings,
            credentials=lambda account, fields, optional=(), public=(): {
                "board_key": Secret("k-1")
            },
        )
        asyncio.run(asyncio.wait_for(dispatcher.run(until_done=True), 60))
    finally:
        engine.dispose()
    written = sorted(json.loads(line)["at"] for line in board.read_text().splitlines())
    assert len(written) == 3 and written[0] >= at.timestamp()
    n, period = fileboard.pace or (0, 0.0)
    assert n == 2 and written[2] - written[0] >= period - 0.05  # the third waited its turn
