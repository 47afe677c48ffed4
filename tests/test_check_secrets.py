"""`stormer check`: secrets pasted into config.toml are found, and never echoed.

The approach and the helpers: check_helpers.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from check_helpers import (
    CONFIG,
    assert_clean_failure,
    codes,
    edit_config,
    line_of,
    report,
    run_main,
    run_process,
    the_one,
)

# --- secrets -------------------------------------------------------------------------------

WEBHOOK = (
    "https://discord.com/api/webhooks/112233445566778899/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abc"
)


@dataclass(frozen=True)
class SecretCase:
    id: str
    old: str  # config text to replace…
    new: str  # …by this, which holds `secret`
    secret: str
    where: str  # the key path the message names


SECRETS = [
    SecretCase(
        "credentials",
        'credentials = { access_token = "FPS_X_TOKEN", client_id = "FPS_X_CLIENT_ID" }',
        'credentials = { access_token = "abc123realtokenQ9zX7wV", client_id = "FPS_X_CLIENT_ID" }',
        "abc123realtokenQ9zX7wV",
        "accounts.4.credentials.access_token",
    ),
    SecretCase(
        "token-in-storm",
        'hashtag = "#FreePalestinianStudents"',
        'hashtag = "#FreePalestinianStudents"\ntoken = "tok-9f8e7d6c5b4a"',
        "tok-9f8e7d6c5b4a",
        "storm.token",
    ),
    SecretCase(
        "token-in-database",
        "[database]",
        '[database]\ntoken = "tok-1a2b3c4d5e6f"',
        "tok-1a2b3c4d5e6f",
        "database.token",
    ),
    SecretCase(
        "token-in-labels",
        'label = "UTC"',
        'label = "UTC"\nlabels = { token = "tok-labels-77f" }',
        "tok-labels-77f",
        "announce.2.labels.token",
    ),
    SecretCase(
        "api-key-in-account",
        'handle = "fps-campaign.example.org"',
        'handle = "fps-campaign.example.org"\napi_key = "k3y-0987"',
        "k3y-0987",
        "accounts.2.api_key",
    ),
    SecretCase(
        "webhook-credential",
        '"FPS_DISCORD_WEBHOOK_URL"',
        f'"{WEBHOOK}"',
        WEBHOOK,
        "accounts.6.credentials.webhook_url",
    ),
    SecretCase(
        "webhook-kit-url",
        'kit_url = "https://storm.example.org/free-palestinian-students"',
        f'kit_url = "{WEBHOOK}"',
        WEBHOOK,
        "storm.kit_url",
    ),
    SecretCase(
        "webhook-label",
        'label = "Pacific"',
        f'label = "see {WEBHOOK} here"',
        WEBHOOK,
        "announce.0.label",
    ),
    SecretCase(
        "webhook-base-url",
        'target = "@freepalestinianstudents_example"',
        f'target = "@freepalestinianstudents_example"\nbase_url = "{WEBHOOK}"',
        WEBHOOK,
        "accounts.5.base_url",
    ),
    SecretCase(
        "telegram-bot-token",
        'target = "@freepalestinianstudents_example"',
        'target = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"',
        "AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0",
        "accounts.5.target",
    ),
]


@pytest.mark.parametrize("case", SECRETS, ids=lambda c: c.id)
def test_secret_in_config(
    storm: Path,
    case: SecretCase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    edit_config(storm, case.old, case.new)
    secret_line = line_of(storm / CONFIG, case.secret)
    problems = report(storm)
    p = the_one(problems, "secret-in-config")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, secret_line)
    assert p.message.startswith(case.where + " ")
    assert "revoke" in p.message
    assert all(case.secret not in str(q) for q in problems)
    for args in (["check", "--storm", str(storm)], ["check", "--json", "--storm", str(storm)]):
        code, out, err = run_main(monkeypatch, capsys, *args)
        assert code == 1
        assert "secret-in-config" in out + err
        assert case.secret not in out + err
        assert_clean_failure(code, out, err)


def test_secret_never_printed_by_the_real_command(storm: Path) -> None:
    edit_config(storm, '"FPS_DISCORD_WEBHOOK_URL"', f'"{WEBHOOK}"')
    edit_config(storm, '"FPS_X_TOKEN"', '"abc123realtokenQ9zX7wV"')
    for extra in ([], ["--json"]):
        done = run_process("check", *extra, "--storm", str(storm), cwd=storm.parent)
        assert done.returncode == 1
        output = done.stdout + done.stderr
        assert output.count("secret-in-config") == 2
        assert "abc123realtoken" not in output
        assert "AbCdEfGhIjKlMnOpQrStUvWxYz" not in output
        assert_clean_failure(done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("value", ["FPS_X_TOKEN", "keyring:fps-x", "X2"])
def test_named_secrets_are_fine(storm: Path, value: str) -> None:
    edit_config(storm, '"FPS_X_TOKEN"', f'"{value}"')
    assert report(storm) == []


# --- secrets never echoed, wherever they were pasted ------------------------------------------


def test_secret_pasted_into_a_zone_is_not_repeated(storm: Path) -> None:
    hook = "https://discord.com/api/webhooks/123456789/abcdefghijklmnopqrstuvwxyz0123"
    edit_config(storm, 'zone = "Europe/Paris"', f'zone = "{hook}"')
    problems = report(storm)
    assert {"secret-in-config", "unknown-zone"} <= set(codes(problems))
    assert all(hook not in p.message for p in problems)
    assert any("<redacted>" in p.message for p in problems if p.code == "unknown-zone")


def test_database_url_with_password_is_a_secret(storm: Path) -> None:
    edit_config(
        storm, "[database]", '[database]\nurl = "postgresql://stormer:hunter2pass@db/storm"'
    )
    problems = report(storm)
    p = the_one(problems, "secret-in-config")
    assert p.line == line_of(storm / CONFIG, 'url = "postgresql://')
    assert "hunter2pass" not in p.message
