"""`stormer check --online` and `stormer post` end to end, against the simulator."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from example import copy_example, point_accounts_at
from ports import free_port
from typer.testing import CliRunner

from stormer.channels.base import CredentialStatus
from stormer.cli import app
from stormer.ops.online import AccountCredential, expiry_problem
from stormer.storm import Account

runner = CliRunner()


@pytest.fixture
def storm(tmp_path: Path, simulator: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_example(tmp_path / "storm")
    point_accounts_at(root, simulator)
    env = {
        "FPS_MASTODON_TOKEN": "tok-mastodon-SECRET",
        "FPS_MASTODON_FR_TOKEN": "tok-fr",
        "FPS_BLUESKY_APP_PASSWORD": "pw-bsky",
        "FPS_BLUESKY_ES_APP_PASSWORD": "pw-es",
        "FPS_X_TOKEN": "tok-x",
        "FPS_TELEGRAM_BOT_TOKEN": "12345:tok-telegram",
        "FPS_DISCORD_WEBHOOK_URL": f"{simulator}/api/webhooks/1/tok-discord-SECRET",
        "FPS_MATRIX_TOKEN": "tok-matrix",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("keyring.get_password", lambda *args: None)  # no stored logins
    return root


def test_check_online_verifies_every_account(
    storm: Path, simulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(app, ["check", "--online", "--json", "--storm", str(storm)])
    problems = json.loads(result.stdout)
    codes = {p["code"] for p in problems}
    # All eight accounts answered; X's pasted OAuth 2.0 token lives two hours and nothing
    # can renew it (no refresh token: `stormer login` keeps one).
    assert codes == {"storm-in-past", "credentials-may-expire"}, result.stdout
    (may_expire,) = [p for p in problems if p["code"] == "credentials-may-expire"]
    assert "campaign-x" in may_expire["message"] and may_expire["severity"] == "warning"

    monkeypatch.setenv("FPS_X_TOKEN", "invalid-x-SECRET")
    monkeypatch.delenv("FPS_MATRIX_TOKEN")
    result = runner.invoke(app, ["check", "--online", "--json", "--storm", str(storm)])
    assert result.exit_code == 1
    problems = {p["code"]: p for p in json.loads(result.stdout)}
    assert "campaign-x" in problems["credentials-rejected"]["message"]
    assert "FPS_MATRIX_TOKEN" in problems["credentials-missing"]["message"]
    assert "SECRET" not in result.stdout
    assert httpx.get(f"{simulator}/_sim/posts").json() == []  # nothing was posted


def test_check_online_says_how_long_each_credential_lasts(storm: Path) -> None:
    result = runner.invoke(app, ["check", "--online", "--storm", str(storm)])
    lines = [line for line in result.stdout.splitlines() if line.startswith("campaign-")]
    assert any(
        line.startswith("campaign-mastodon (Mastodon, @") and "does not expire" in line
        for line in lines
    ), result.stdout
    assert len([line for line in result.stdout.splitlines() if ": not verified" in line]) == 0


T = datetime(2021, 3, 11, 18, 0, tzinfo=UTC)
ACCOUNT = Account("acct", "x", (), None, None, None, (), 7)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (CredentialStatus("token"), None),  # does not expire
        (CredentialStatus("token", expires_at=T + timedelta(hours=1)), None),
        (CredentialStatus("token", expires_at=T + timedelta(minutes=5)), "credentials-expire"),
        (
            CredentialStatus("token", expires_at=T - timedelta(hours=1), renewal="refresh token"),
            None,
        ),
        (
            CredentialStatus("token", lifetime_unknown=True, lifetime="2 h"),
            "credentials-may-expire",
        ),
    ],
)
def test_a_credential_must_hold_until_the_last_post_plus_grace(
    status: CredentialStatus, code: str | None
) -> None:
    deadline = T + timedelta(minutes=10)
    problem = expiry_problem(ACCOUNT, status, deadline)
    assert (problem and problem.code) == code
    if problem is not None:
        assert "stormer login acct" in problem.message and problem.line == 7
    line = AccountCredential(ACCOUNT, "X", deadline, "@a", status, problem).line()
    assert line.startswith("acct (X, @a): token; ")
    assert ("does NOT hold" in line) == (code == "credentials-expire")


def test_post_sends_one_post_and_prints_its_permalink(storm: Path, simulator: str) -> None:
    post = storm / "posts" / "en-01-right-to-education.md"
    result = runner.invoke(
        app, ["post", "--account", "campaign-mastodon", "--post", str(post), "--storm", str(storm)]
    )
    assert result.exit_code == 0, result.output
    (landed,) = httpx.get(f"{simulator}/_sim/posts").json()
    assert landed["platform"] == "mastodon" and "Article 26" in landed["text"]
    assert landed["media"][0]["alt"].startswith("Black, white and green")
    assert result.stdout.startswith("posted: ") and landed["remote_id"] in result.stdout


def test_post_dry_run_posts_nothing_and_shows_no_secret(storm: Path, simulator: str) -> None:
    post = storm / "posts" / "en-02-birzeit-detentions.md"
    result = runner.invoke(
        app,
        [
            "post",
            "--account",
            "campaign-discord",
            "--post",
            str(post),
            "--dry-run",
            "--storm",
            str(storm),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "credentials accepted" in result.stdout and "SECRET" not in result.stdout
    assert httpx.get(f"{simulator}/_sim/posts").json() == []


def test_post_with_an_unknown_account_is_a_clear_error(storm: Path) -> None:
    result = runner.invoke(
        app, ["post", "--account", "nobody", "--post", "posts/x.md", "--storm", str(storm)]
    )
    assert result.exit_code != 0 and "no authorized account named 'nobody'" in str(result.exception)


def test_post_refuses_a_post_its_platforms_keep_from_the_account(
    storm: Path, simulator: str
) -> None:
    """en-04 is for Mastodon, Telegram, Discord and Matrix only: X never gets it, not even
    as a smoke test (X once answered it with its own "too long")."""
    post = storm / "posts" / "en-04-four-demands-long.md"
    result = runner.invoke(
        app, ["post", "--account", "campaign-x", "--post", str(post), "--storm", str(storm)]
    )
    assert result.exit_code != 0
    message = str(result.exception)
    assert "only for mastodon, telegram, discord, matrix" in message and "campaign-x" in message
    assert httpx.get(f"{simulator}/_sim/posts").json() == []


def test_post_refuses_a_post_over_the_platform_limit_before_any_request(
    storm: Path, simulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No password: had the command connected before checking, it would fail on that instead.
    monkeypatch.delenv("FPS_BLUESKY_APP_PASSWORD")
    post = storm / "posts" / "en-99-too-long.md"
    post.write_text(
        '+++\nlang = "en"\n+++\n'
        + "Students are not criminals. " * 12
        + "#FreePalestinianStudents\n"
    )
    result = runner.invoke(
        app, ["post", "--account", "campaign-bluesky", "--post", str(post), "--storm", str(storm)]
    )
    assert result.exit_code != 0
    assert "cannot go to campaign-bluesky: 360 > 300 (Bluesky limit)" in str(result.exception)
    assert httpx.get(f"{simulator}/_sim/posts").json() == []


def test_check_online_fails_when_no_platform_answered(
    storm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offline, every account is 'could not verify': --online proved nothing and must not
    exit 0 as if all was well."""
    closed = f"http://127.0.0.1:{free_port()}"
    config = storm / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(re.sub(r'base_url = "[^"]*"', f'base_url = "{closed}"', text), "utf-8")
    monkeypatch.setenv("FPS_DISCORD_WEBHOOK_URL", f"{closed}/api/webhooks/1/tok-discord-SECRET")
    result = runner.invoke(app, ["check", "--online", "--json", "--storm", str(storm)])
    codes = [p["code"] for p in json.loads(result.stdout)]
    assert result.exit_code == 1 and "nothing-verified" in codes, result.stdout
