"""`stormer login` for an X account: OAuth 2.0 Authorization Code with PKCE
(https://docs.x.com/fundamentals/authentication/oauth-2-0/user-access-token).

The organizer opens X's consent page in a browser and authorizes stormer; X sends the browser
back to a loopback listener on this machine with the code, or — when the browser runs
elsewhere and cannot reach it — the organizer pastes the address the browser ended on.
"""

from __future__ import annotations

import asyncio
import secrets as random_tokens
from typing import TYPE_CHECKING

from stormer.channels.base import Connection
from stormer.channels.http import send
from stormer.channels.x_auth import (
    TOKEN_PATH,
    Loopback,
    authorize_url,
    code_from,
    oauth_error,
    pkce_pair,
    token_request,
    tokens_from,
)
from stormer.errors import AuthError, StormerError

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from stormer.channels.base import Platform
    from stormer.storm import Account


async def login_pkce(
    plugin: Platform,
    account: Account,
    client: httpx.AsyncClient,
    ask: Callable[[str, bool], str],
    say: Callable[[str], None],
    *,
    port: int,
    consent_page: str,
) -> dict[str, str]:
    """The organizer authorizes stormer in a browser; the code comes back to the loopback
    listener, or is pasted. Returns the tokens (and the app's client id and secret, when they
    were asked for here rather than named in config.toml)."""
    from stormer.secrets import Secret, resolve

    app = {
        k: v.reveal()
        for k, v in resolve(account, (), optional=("client_id", "client_secret")).items()
    }
    asked: dict[str, str] = {}
    if "client_id" not in app:
        asked["client_id"] = ask(
            "OAuth 2.0 client ID of your X app (developer console, Keys and tokens)", True
        ).strip()
        client_secret = ask("its client secret (press Enter for a public client)", True).strip()
        if client_secret:
            asked["client_secret"] = client_secret
        app.update(asked)
    verifier, challenge = pkce_pair()
    state = random_tokens.token_urlsafe(24)
    listener = Loopback(port)
    try:
        await listener.__aenter__()
        listening = True
    except OSError:
        listening = False  # the port is taken: the address is pasted instead
    try:
        say(
            "Open this address in a browser, log in as the account's owner and authorize "
            "stormer:\n"
            + authorize_url(
                consent_page,
                client_id=app["client_id"],
                redirect_uri=listener.redirect_uri,
                state=state,
                challenge=challenge,
            )
        )
        answer = await asyncio.to_thread(
            ask,
            "press Enter once the browser says stormer received the authorization; if the "
            f"page did not load, paste the address it shows (it begins {listener.redirect_uri})",
            True,
        )
    finally:
        if listening:
            await listener.__aexit__()
    code = _code(answer, state, listener.query, account.name)
    r = await send(
        client,
        token_request(
            f"{plugin.base_url(account)}{TOKEN_PATH}",
            {
                "code": code,
                "grant_type": "authorization_code",
                "redirect_uri": listener.redirect_uri,
                "code_verifier": verifier,
            },
            app["client_id"],
            app.get("client_secret"),
        ),
        platform=plugin.name,
        mutating=False,
    )
    if r.status != 200:
        raise AuthError(
            f"X refused the authorization ({oauth_error(r)}): run `stormer login "
            f"{account.name}` again and paste the address within a minute",
            platform=plugin.name,
            status=r.status,
        )
    tokens = tokens_from(r, plugin.name)
    if "refresh_token" not in tokens:
        say(
            "X granted no refresh token (the app lacks offline.access): the access token "
            "lasts two hours, so log in again shortly before the storm"
        )
    conn = Connection(
        account=account,
        client=client,
        credentials={
            k: Secret(v, redact=k not in plugin.public_credentials) for k, v in tokens.items()
        },
    )
    say(f"accepted: {await plugin.verify(conn)}")
    return {**tokens, **asked}


def _code(answer: str, state: str, arrived: dict[str, str] | None, account: str) -> str:
    """The authorization code: pasted, or received by the loopback listener."""
    retry = f"run `stormer login {account}` again"
    if answer.strip():
        code = code_from(answer, state)
        if code is None:
            raise StormerError(f"that address is not X's answer to this login: {retry}")
        return code
    if arrived is None:
        raise StormerError(
            f"the browser did not come back to this machine: {retry}, and paste the address "
            "the browser shows after you authorize"
        )
    if arrived.get("state") != state:
        raise StormerError(f"the answer that arrived is not for this login: {retry}")
    if "code" not in arrived:
        raise StormerError(f"X did not authorize stormer ({arrived.get('error')}): {retry}")
    return arrived["code"]
