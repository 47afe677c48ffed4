"""Credentials: `stormer login` flows, the keyring before the environment, secrets kept out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import ClassVar

import httpx
import keyring
import pytest
from fixtures_keyring import MemoryKeyring

from stormer.channels.mastodon import Mastodon
from stormer.channels.telegram import Telegram
from stormer.errors import AuthError, StormerError
from stormer.secrets import resolve, store
from stormer.storm import Account

MASTODON = Account(
    name="campaign-mastodon",
    platform="mastodon",
    langs=(),
    base_url="https://social.example.org",
    target=None,
    handle=None,
    credentials=(("access_token", "FPS_MASTODON_TOKEN"),),
    line=None,
)


def fake_mastodon(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/api/v1/apps":
        body = json.loads(request.content)
        assert body["redirect_uris"] == "urn:ietf:wg:oauth:2.0:oob"
        assert "write:statuses" in body["scopes"] and "write:media" in body["scopes"]
        return httpx.Response(200, json={"client_id": "cid", "client_secret": "csecret"})
    if request.url.path == "/oauth/token":
        body = json.loads(request.content)
        if body["code"] != "the-code" or body["client_secret"] != "csecret":
            return httpx.Response(400, json={"error": "invalid_grant"})
        return httpx.Response(200, json={"access_token": "tok-from-oauth"})
    if request.url.path == "/api/v1/accounts/verify_credentials":
        if request.headers["Authorization"] != "Bearer tok-from-oauth":
            return httpx.Response(401, json={"error": "The access token is invalid"})
        return httpx.Response(200, json={"acct": "campaign"})
    return httpx.Response(404)


def login(plugin, account, transport, answers):  # type: ignore[no-untyped-def]
    said: list[str] = []
    asked: list[str] = []

    def ask(prompt: str, hidden: bool) -> str:
        assert hidden, "credentials are typed without echo"
        asked.append(prompt)
        return answers.pop(0)

    async def main():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.MockTransport(transport)) as client:
            return await plugin.login(account, client, ask, said.append)

    return asyncio.run(main()), said, asked


def test_mastodon_oauth_out_of_band(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    values, said, _ = login(Mastodon(), MASTODON, fake_mastodon, ["the-code"])
    assert values == {"access_token": "tok-from-oauth"}
    assert "https://social.example.org/oauth/authorize?client_id=cid" in said[0]
    assert said[-1] == "accepted: @campaign"
    store(MASTODON.name, values)
    # The keyring now wins over the environment variable named in config.
    monkeypatch.setenv("FPS_MASTODON_TOKEN", "tok-from-env")
    assert resolve(MASTODON, ("access_token",))["access_token"].reveal() == "tok-from-oauth"


def test_a_wrong_code_is_refused(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(StormerError, match="invalid_grant"):
        login(Mastodon(), MASTODON, fake_mastodon, ["wrong"])
    assert memory_keyring.items == {}


def test_pasted_token_is_verified_before_it_is_kept(memory_keyring: MemoryKeyring) -> None:
    account = Account(
        name="tg",
        platform="telegram",
        langs=(),
        base_url=None,
        target="@c",
        handle=None,
        credentials=(("bot_token", "TG"),),
        line=None,
    )

    def fake_telegram(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/bot123:good/getMe":
            return httpx.Response(
                200, json={"ok": True, "result": {"username": "stormbot", "id": 1, "is_bot": True}}
            )
        return httpx.Response(
            401, json={"ok": False, "error_code": 401, "description": "Unauthorized"}
        )

    values, _, asked = login(Telegram(), account, fake_telegram, ["123:good"])
    assert values == {"bot_token": "123:good"} and "bot token" in asked[0]
    with pytest.raises(AuthError) as info:
        login(Telegram(), account, fake_telegram, ["123:SECRET-bad"])
    assert "SECRET" not in str(info.value)


def test_no_keyring_means_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from keyring.backends.fail import Keyring as FailKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())
    try:
        with pytest.raises(StormerError, match="environment variable"):
            store("acct", {"access_token": "x"})
        monkeypatch.setenv("FPS_MASTODON_TOKEN", "tok-env")
        assert resolve(MASTODON, ("access_token",))["access_token"].reveal() == "tok-env"
    finally:
        keyring.set_keyring(previous)


# --- credentials a platform rotates, and alternative ways to log in ------------------------


class TwoWays(Mastodon):
    """A platform with a default token, an alternative login and a kept refresh token."""

    alternative_auth: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "password": ("username", "password")
    }
    kept_credentials = ("refresh_token",)


def test_an_account_uses_the_alternative_whose_fields_it_names() -> None:
    from dataclasses import replace

    plugin = TwoWays()
    assert plugin.credential_fields_for(MASTODON) == ("access_token",)
    by_password = replace(MASTODON, credentials=(("username", "U"), ("password", "P")))
    assert plugin.auth_of(by_password) == "password"
    assert plugin.credential_fields_for(by_password) == ("username", "password")
    partly = replace(MASTODON, credentials=(("password", "P"), ("access_token", "T")))
    assert plugin.credential_fields_for(partly) == ("access_token",)  # not all of "password"


def test_a_kept_credential_is_resolved_when_set_and_never_required(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FPS_MASTODON_TOKEN", "tok-mastodon-kept-1")
    found = resolve(MASTODON, ("access_token",), optional=("refresh_token",))
    assert set(found) == {"access_token"}
    store(MASTODON.name, {"refresh_token": "refresh-kept-1"})
    found = resolve(MASTODON, ("access_token",), optional=("refresh_token",))
    assert found["refresh_token"].reveal() == "refresh-kept-1"
    monkeypatch.delenv("FPS_MASTODON_TOKEN")
    with pytest.raises(AuthError, match="FPS_MASTODON_TOKEN"):
        resolve(MASTODON, ("access_token",), optional=("refresh_token",))


def test_a_rotated_credential_is_used_and_saved_at_once(memory_keyring: MemoryKeyring) -> None:
    from stormer.channels.base import Connection
    from stormer.secrets import Secret

    conn = Connection(
        account=MASTODON,
        client=httpx.AsyncClient(),
        credentials={"refresh_token": Secret("refresh-kept-1")},
        save_credentials=lambda values: store(MASTODON.name, values),
    )
    conn.rotate({"refresh_token": "refresh-rotated-2", "access_token": "access-rotated-2"})
    assert (
        conn.secret("refresh_token") == "refresh-rotated-2"
        and conn.secret("access_token") == "access-rotated-2"
    )
    assert (
        memory_keyring.items[("stormer", "campaign-mastodon/refresh_token")] == "refresh-rotated-2"
    )
    assert "access-rotated-2" not in repr(conn)


# --- `stormer login` for Mastodon, end to end against the simulator ------------------------


def _mastodon_storm(tmp_path, simulator: str):  # type: ignore[no-untyped-def]
    from example import copy_example, point_accounts_at

    root = copy_example(tmp_path / "storm")
    point_accounts_at(root, simulator)
    return root


def _code_from(page: str) -> str:
    """What the organizer copies from the page the instance shows after authorizing."""
    import re

    found = re.search(r"<code>([^<]+)</code>", page)
    assert found, page
    return found.group(1)


def test_stormer_login_mastodon_against_the_simulator(
    memory_keyring: MemoryKeyring, tmp_path, simulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from stormer.cli import app

    storm = _mastodon_storm(tmp_path, simulator)
    pasted: list[str] = []

    def browser(prompt: str, hide_input: bool = False) -> str:
        """The organizer: opens the address stormer printed, authorizes, pastes the code."""
        assert hide_input and "authorization code" in prompt
        (address,) = [line for line in printed if line.startswith(f"{simulator}/oauth/authorize")]
        page = httpx.get(address, timeout=10)
        assert page.status_code == 200
        pasted.append(_code_from(page.text))
        return pasted[-1]

    printed: list[str] = []
    monkeypatch.setattr(
        "builtins.print", lambda *a, **k: printed.extend(" ".join(map(str, a)).splitlines())
    )
    monkeypatch.setattr("typer.prompt", browser)
    result = CliRunner().invoke(app, ["login", "campaign-mastodon", "--storm", str(storm)])
    assert result.exit_code == 0, (result.output, printed)
    assert any(line.startswith("accepted: @") for line in printed)
    token = memory_keyring.items[("stormer", "campaign-mastodon/access_token")]
    assert token and token not in "\n".join(printed) and pasted[0] not in "\n".join(printed)
    # The token the simulator issued carries the scopes stormer asked for: it can post.
    answer = httpx.post(
        f"{simulator}/api/v1/statuses",
        headers={"Authorization": f"Bearer {token}"},
        data={"status": "hello"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_a_failed_login_step_names_the_step_and_the_url() -> None:
    def no_apps(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="<html>Not Found</html>")

    with pytest.raises(StormerError) as info:
        login(Mastodon(), MASTODON, no_apps, [])
    assert str(info.value) == (
        "mastodon: registering the app at https://social.example.org/api/v1/apps failed: HTTP 404"
    )

    def refusing_token(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/apps":
            return httpx.Response(200, json={"client_id": "cid", "client_secret": "cs"})
        return httpx.Response(
            400, json={"error": "invalid_grant", "error_description": "The grant is invalid."}
        )

    with pytest.raises(StormerError) as info:
        login(Mastodon(), MASTODON, refusing_token, ["bad-code"])
    # (Only up to /oauth/: an earlier test made "tok" a known secret, redacted everywhere.)
    assert "exchanging the authorization code at https://social.example.org/oauth/" in str(
        info.value
    )
    assert "failed: HTTP 400 invalid_grant The grant is invalid." in str(info.value)
