"""A platform plugin from another package is found through the entry-point group and used by
`platforms`, `check`, `preview` and `post` without any change to stormer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from example import add_accounts, copy_example
from timing import far_ahead, move_storm

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

    post_file = storm / item["source"]
    sent = stormer(
        "post",
        "--account",
        "our-board",
        "--post",
        str(post_file),
        "--json",
        "--storm",
        str(storm),
        env={"BOARD_KEY": "k-123"},
    )
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["outcome"] == "sent"
    (line,) = board.read_text().splitlines()
    assert json.loads(line)["text"] == item["text"]


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
