"""`stormer check`: accounts (credentials, targets, handles, base URLs, posts for each).

The approach and the helpers: check_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from check_helpers import (
    CONFIG,
    account_line,
    add_account,
    codes,
    edit_config,
    load,
    report,
    the_one,
)

# --- accounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "old", "new", "fragment"),
    [
        (
            "campaign-x",
            '\ncredentials = { access_token = "FPS_X_TOKEN", client_id = "FPS_X_CLIENT_ID" }',
            "",
            "account 'campaign-x' (X) needs credentials.access_token",
        ),
        (
            "campaign-bluesky",
            '{ app_password = "FPS_BLUESKY_APP_PASSWORD" }',
            '{ password = "FPS_BLUESKY_APP_PASSWORD" }',
            "account 'campaign-bluesky' (Bluesky) needs credentials.app_password",
        ),
        (
            "campaign-discord",
            '\ncredentials = { webhook_url = "FPS_DISCORD_WEBHOOK_URL" }',
            "",
            "account 'campaign-discord' (Discord) needs credentials.webhook_url",
        ),
    ],
    ids=["x-none", "bluesky-wrong-field", "discord-none"],
)
def test_missing_credential(storm: Path, account: str, old: str, new: str, fragment: str) -> None:
    edit_config(storm, old, new)
    problems = report(storm)
    p = the_one(problems, "missing-credential")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, account_line(storm, account))
    assert p.message.startswith(fragment)
    assert codes(problems) == ["missing-credential"]


@pytest.mark.parametrize(
    ("account", "old", "what"),
    [
        ("campaign-telegram", '\ntarget = "@freepalestinianstudents_example"', "chat"),
        ("campaign-matrix", '\ntarget = "!freepalestinianstudents:matrix.example.org"', "room"),
    ],
)
def test_missing_target(storm: Path, account: str, old: str, what: str) -> None:
    edit_config(storm, old, "")
    problems = report(storm)
    p = the_one(problems, "missing-target")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, account_line(storm, account))
    assert p.message.endswith(f"needs target = the {what} to post to")
    assert codes(problems) == ["missing-target"]


def test_missing_handle(storm: Path) -> None:
    edit_config(storm, '\nhandle = "fps-campaign.example.org"', "")
    p = the_one(report(storm), "missing-handle")
    assert (p.severity, p.file, p.line) == (
        "error",
        CONFIG,
        account_line(storm, "campaign-bluesky"),
    )


def test_missing_base_url(storm: Path) -> None:
    edit_config(storm, '\nbase_url = "https://matrix.example.org"', "")
    problems = report(storm)
    p = the_one(problems, "missing-base-url")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, account_line(storm, "campaign-matrix"))
    assert codes(problems) == ["missing-base-url"]


def test_account_without_posts(storm: Path) -> None:
    line = add_account(storm, "campaign-x-de", "x", langs=["de"])
    problems = report(storm)
    p = the_one(problems, "account-without-posts")
    assert (p.severity, p.file, p.line) == ("warning", CONFIG, line)
    assert codes(problems) == ["account-without-posts"]


def test_duplicate_account(storm: Path) -> None:
    line = add_account(storm, "campaign-x", "x", langs=["en"])
    p = the_one(report(storm), "duplicate-account")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, line)


def test_unauthorized_account_is_skipped(storm: Path) -> None:
    add_account(storm, "campaign-x-2", "x", langs=["en"], extra="authorized = false\n")
    assert report(storm) == []
    assert "campaign-x-2" not in [a.name for a in load(storm).accounts]
