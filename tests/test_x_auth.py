"""stormer's X client against the simulator: PKCE login (loopback and pasted), refresh with
rotation at staging, OAuth 1.0a posting, scopes — credentials that hold until T."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from example import REPO
from fixtures_keyring import MemoryKeyring
from platform_fakes import post_item

from stormer.channels.base import Connection, Published
from stormer.channels.x import X
from stormer.channels.x_auth import EXPIRES_AT, SCOPES
from stormer.errors import AuthError, StormerError
from stormer.queue import MediaRef
from stormer.secrets import Secret, resolve, store
from stormer.storm import Account

IMAGE = MediaRef("images/flag-book.png", "A flag over an open book", 800, 418)


class LoopbackX(X):
    loopback_port = 0  # any free port: tests run side by side


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_CLIENT_ID", "stormer-app")
    monkeypatch.delenv("X_TOKEN", raising=False)


def account_on(simulator: str, name: str = "campaign-x") -> Account:
    return Account(
        name=name,
        platform="x",
        langs=("en",),
        base_url=simulator,
        target=None,
        handle=None,
        credentials=(("access_token", "X_TOKEN"), ("client_id", "X_CLIENT_ID")),
        line=None,
    )


def configure(simulator: str, **config: Any) -> None:
    httpx.post(f"{simulator}/_sim/config", json=config, timeout=10).raise_for_status()


def posts(simulator: str) -> list[dict[str, Any]]:
    return httpx.get(f"{simulator}/_sim/posts", timeout=10).json()  # type: ignore[no-any-return]


def authorize_address(said: list[str]) -> str:
    return next(line for text in said for line in text.splitlines() if "oauth2/authorize" in line)


def login(account: Account, browser: str, *, sim_user: str = "") -> tuple[dict[str, str], list]:
    """`stormer login` with a test as the organizer: `browser` is "loopback" (the browser
    comes back to this machine) or "paste" (it cannot: the address is pasted)."""
    said: list[str] = []

    def ask(prompt: str, hidden: bool) -> str:
        assert hidden
        url = authorize_address(said) + (f"&sim_user={sim_user}" if sim_user else "")
        if browser == "loopback":
            page = httpx.get(url, follow_redirects=True, timeout=10)
            assert page.text.startswith("stormer received the authorization")
            return ""
        return httpx.get(url, timeout=10).headers["location"]

    async def main() -> dict[str, str]:
        async with httpx.AsyncClient(timeout=10) as client:
            return await LoopbackX().login(account, client, ask, said.append)

    return asyncio.run(main()), said


def connect(account: Account, saved: list[dict[str, str]]) -> Connection:
    """A connection as the dispatcher makes it: credentials from the keyring, rotated ones
    saved there (`stormer.secrets.store`)."""
    plugin = X()

    def save(values: dict[str, str]) -> None:
        saved.append(values)
        store(account.name, values)

    return Connection(
        account=account,
        client=httpx.AsyncClient(timeout=10),
        credentials=resolve(
            account, plugin.credential_fields_for(account), optional=plugin.kept_credentials
        ),
        media_root=REPO / "posts",
        save_credentials=save,
    )


def refresh_with(simulator: str, refresh_token: str) -> httpx.Response:
    return httpx.post(
        f"{simulator}/2/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": "stormer-app",
        },
        timeout=10,
    )


def test_login_through_the_loopback_listener(
    simulator: str, memory_keyring: MemoryKeyring, app_env: None
) -> None:
    account = account_on(simulator)
    values, said = login(account, "loopback")
    query = parse_qs(urlsplit(authorize_address(said)).query)
    assert query["scope"] == [" ".join(SCOPES)] and query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")
    assert set(values) == {"access_token", "refresh_token", EXPIRES_AT}
    expiry = datetime.fromisoformat(values[EXPIRES_AT].replace("Z", "+00:00"))
    assert timedelta(minutes=119) < expiry - datetime.now(UTC) <= timedelta(hours=2)
    assert said[-1].startswith("accepted: @user")
    store(account.name, values)  # what `stormer login` does with them
    found = resolve(account, ("access_token",), optional=X.kept_credentials)
    assert found["refresh_token"].reveal() == values["refresh_token"]
    assert found["client_id"].reveal() == "stormer-app"  # from the environment, not stored


def test_login_by_pasting_the_address(
    simulator: str, memory_keyring: MemoryKeyring, app_env: None
) -> None:
    values, said = login(account_on(simulator), "paste")
    assert said[-1].startswith("accepted: @user") and values["refresh_token"]


def test_a_pasted_address_of_another_login_is_refused(simulator: str, app_env: None) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            await LoopbackX().login(
                account_on(simulator),
                client,
                lambda prompt, hidden: "http://127.0.0.1:1/callback?state=other&code=c",
                lambda text: None,
            )

    with pytest.raises(StormerError, match="not X's answer to this login"):
        asyncio.run(main())


def items(n: int, fire_at: datetime, media: tuple[MediaRef, ...] = ()) -> list:
    return [
        post_item(
            "x", f"post {i} #FreePalestinianStudents", media, item_id=f"item{i}", fire_at=fire_at
        )
        for i in range(n)
    ]


def test_staging_refreshes_once_a_token_that_would_expire_before_t(
    simulator: str, memory_keyring: MemoryKeyring, app_env: None
) -> None:
    account = account_on(simulator)
    configure(simulator, x_access_ttl_s=600)  # this login's token: 10 minutes
    values, _ = login(account, "paste")
    store(account.name, values)
    configure(simulator, x_access_ttl_s=7200)  # the refreshed one: two hours
    fire_at = datetime.now(UTC) + timedelta(minutes=15)  # T + grace is past the 10 minutes
    saved: list[dict[str, str]] = []

    async def main() -> list[Published]:
        conn = connect(account, saved)
        async with conn.client:
            plugin = X()
            staged = await asyncio.gather(
                *(plugin.stage(item, conn) for item in items(5, fire_at, (IMAGE,)))
            )
            return [await plugin.publish(s, conn) for s in staged]

    published = asyncio.run(main())
    assert len(saved) == 1, "five stagings of one account refresh once"
    (rotated,) = saved
    kept = {f: memory_keyring.items[("stormer", f"{account.name}/{f}")] for f in rotated}
    assert kept == rotated and rotated["refresh_token"] != values["refresh_token"]
    assert datetime.fromisoformat(rotated[EXPIRES_AT].replace("Z", "+00:00")) > fire_at
    refused = refresh_with(simulator, values["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    landed = posts(simulator)
    assert sorted(p["text"] for p in landed) == sorted(i.text for i in items(5, fire_at))
    assert {p["remote_id"] for p in landed} == {p.remote_id for p in published}
    assert all(p["media"][0]["alt"] == IMAGE.alt for p in landed)


def test_a_token_x_refuses_is_refreshed_at_staging(
    simulator: str, memory_keyring: MemoryKeyring, app_env: None
) -> None:
    """Its expiry says it holds, but X answers 401 (revoked here; expired, elsewhere): the
    refresh happens at staging, minutes before T, not at T."""
    account = account_on(simulator)
    values, _ = login(account, "paste")
    store(account.name, values)
    httpx.post(
        f"{simulator}/2/oauth2/revoke",
        data={"token": values["access_token"], "client_id": "stormer-app"},
        timeout=10,
    ).raise_for_status()
    saved: list[dict[str, str]] = []

    async def main() -> Published:
        conn = connect(account, saved)
        async with conn.client:
            (item,) = items(1, datetime.now(UTC) + timedelta(minutes=5))
            staged = await X().stage(item, conn)
            assert len(saved) == 1
            return await X().publish(staged, conn)

    published = asyncio.run(main())
    assert [p["remote_id"] for p in posts(simulator)] == [published.remote_id]


def test_a_refused_refresh_says_how_to_fix_it(
    simulator: str, memory_keyring: MemoryKeyring, app_env: None
) -> None:
    account = account_on(simulator)
    values, _ = login(account, "paste")
    refresh_with(simulator, values["refresh_token"]).raise_for_status()  # rotated elsewhere
    store(account.name, {**values, EXPIRES_AT: "2000-01-01T00:00:00Z"})

    async def main() -> None:
        conn = connect(account, [])
        async with conn.client:
            (item,) = items(1, datetime.now(UTC) + timedelta(minutes=5))
            await X().stage(item, conn)

    with pytest.raises(AuthError) as info:
        asyncio.run(main())
    message = str(info.value)
    assert "run `stormer login campaign-x`" in message and "invalid_request" in message
    assert values["refresh_token"] not in message and posts(simulator) == []


def test_a_token_without_media_write_cannot_upload(simulator: str) -> None:
    """The simulator checks scopes; stormer names the scopes and the fix."""
    with httpx.Client(base_url=simulator, timeout=10) as browser:
        challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 appendix B
        redirect = browser.get(
            "/i/oauth2/authorize",
            params={
                "response_type": "code",
                "client_id": "stormer-app",
                "redirect_uri": "http://127.0.0.1:1/callback",
                "scope": "tweet.read tweet.write users.read",
                "state": "s",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        ).headers["location"]
        token = browser.post(
            "/2/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": parse_qs(urlsplit(redirect).query)["code"][0],
                "client_id": "stormer-app",
                "redirect_uri": "http://127.0.0.1:1/callback",
                "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            },
        ).json()
    assert "refresh_token" not in token  # no offline.access, no refresh token

    async def main() -> None:
        conn = Connection(
            account=account_on(simulator),
            client=httpx.AsyncClient(timeout=10),
            credentials={"access_token": Secret(token["access_token"])},
            media_root=REPO / "posts",
        )
        async with conn.client:
            (item,) = items(1, datetime.now(UTC), (IMAGE,))
            await X().stage(item, conn)

    with pytest.raises(AuthError, match=r"media\.write"):
        asyncio.run(main())


OAUTH1 = {
    "consumer_key": "ck-campaign",
    "consumer_secret": "ck-campaign-secret",  # the simulator's convention: key + "-secret"
    "access_token": "at-campaign",
    "access_token_secret": "at-campaign-secret",
}


def test_oauth1_posts_an_image_with_alt_text_once(simulator: str) -> None:
    account = replace(account_on(simulator), credentials=tuple((f, f.upper()) for f in OAUTH1))
    plugin = X()
    assert plugin.auth_of(account) == "oauth1"
    (item,) = items(1, datetime.now(UTC), (IMAGE,))
    preview = repr(plugin.render(item, account).requests)
    assert "<secret:oauth1_signature>" in preview
    assert not any(value in preview for value in OAUTH1.values())

    async def main() -> tuple[Published, object]:
        conn = Connection(
            account=account,
            client=httpx.AsyncClient(timeout=10),
            credentials={k: Secret(v) for k, v in OAUTH1.items()},
            media_root=REPO / "posts",
        )
        async with conn.client:
            staged = await plugin.stage(item, conn)
            published = await plugin.publish(staged, conn)
            return published, await plugin.reconcile(staged, conn)  # found, not resent

    published, found = asyncio.run(main())
    (post,) = posts(simulator)
    assert post["remote_id"] == published.remote_id and post["media"][0]["alt"] == IMAGE.alt
    assert isinstance(found, Published) and found.remote_id == published.remote_id


def test_oauth1_with_a_wrong_secret_is_refused(simulator: str) -> None:
    account = replace(account_on(simulator), credentials=tuple((f, f.upper()) for f in OAUTH1))

    async def main() -> str:
        conn = Connection(
            account=account,
            client=httpx.AsyncClient(timeout=10),
            credentials={
                k: Secret("wrong" if k == "consumer_secret" else v) for k, v in OAUTH1.items()
            },
        )
        async with conn.client:
            return await X().verify(conn)

    with pytest.raises(AuthError, match="Unauthorized"):
        asyncio.run(main())


def test_check_online_says_how_each_x_credential_lasts(
    simulator: str, memory_keyring: MemoryKeyring, app_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a PKCE login: refreshed by stormer. A pasted token: X documents two hours, and
    stormer cannot know when it was issued. OAuth 1.0a: never expires."""
    from stormer.ops.online import AccountCredential, expiry_problem

    account = account_on(simulator)
    values, _ = login(account, "paste")
    deadline = datetime.now(UTC) + timedelta(hours=5)

    def status_of(acct: Account) -> AccountCredential:
        async def main() -> AccountCredential:
            conn = connect(acct, [])
            async with conn.client:
                identity = await X().verify(conn)
                status = X().credential_status(conn)
            return AccountCredential(
                acct, "X", deadline, identity, status, expiry_problem(acct, status, deadline)
            )

        return asyncio.run(main())

    store(account.name, values)
    logged_in = status_of(account)
    assert logged_in.problem is None and "stormer renews it before T" in logged_in.line()
    assert logged_in.status is not None and logged_in.status.expires_at is not None

    memory_keyring.items.clear()
    monkeypatch.setenv("X_TOKEN", values["access_token"])
    pasted = status_of(account)
    assert pasted.problem is not None and pasted.problem.code == "credentials-may-expire"
    assert "stormer login campaign-x" in pasted.problem.message

    store(account.name, {EXPIRES_AT: "2000-01-01T00:00:00Z"})
    expired = status_of(account)
    assert expired.problem is not None and expired.problem.code == "credentials-expire"
    assert "does NOT hold until T + grace" in expired.line()
