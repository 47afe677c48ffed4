"""Matrix access tokens: which one to send, keeping it valid until T + grace, logging in.

An account authenticates in one of two ways (Matrix.credential_fields / alternative_auth):

- `access_token`, pasted or stored by `stormer login`, with the `refresh_token` that login
  returned if the homeserver issues them (spec v1.3,
  https://spec.matrix.org/v1.13/client-server-api/#refreshing-access-tokens). A token without
  one is static: used as it is, never renewed.
- `user` (a full MXID `@name:server` or the localpart) and `password`: stormer logs in itself
  (m.login.password), asking for a refresh token.

Every login stormer makes uses the same device for an account, `device_id_for(account)`:
"STORMER_" and the first 10 hex digits (upper case) of the SHA-256 of the account's name in
config.toml. Transaction ids are scoped to a device
(https://spec.matrix.org/v1.13/client-server-api/#transaction-identifiers), so a send retried
after a restart and a new login still answers the first event instead of posting again. A
login to that device invalidates the tokens it had before ("If the client sets the
device_id, the server will invalidate any access and refresh tokens previously assigned to
that device", #relationship-between-access-tokens-and-devices).

Tokens the homeserver issues are saved at once through `Connection.rotate` (the keyring): a
used refresh token is revoked by the server once its successor's access token is used, so a
successor lost with the process would lock the account out.

Renewals are serialized per account: many items staging at once refresh once.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from stormer.channels.base import account_lock
from stormer.channels.http import Request, Response, classify
from stormer.errors import AuthError

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from stormer.channels.base import Connection
    from stormer.storm import Account

PLATFORM = "matrix"
CLIENT = "/_matrix/client/v3"
# At T a token with less life left than this is renewed before the send, not after a 401.
MARGIN_S = 30.0


def device_id_for(account: Account) -> str:
    """The device every login of stormer's for `account` uses (see the module docstring)."""
    return "STORMER_" + hashlib.sha256(account.name.encode()).hexdigest()[:10].upper()


def _by_password(conn: Connection) -> bool:
    return "password" in conn.credentials and "user" in conn.credentials


def _needs_renewal(conn: Connection, until: float) -> bool:
    """Whether the access token must be renewed to hold until `until` (unix seconds).

    `state["expires_at"]`: absent — not known (a token from an earlier run); None — it never
    expires; a number — when it does. A renewal that could not reach `until` either (the
    server's lifetime is shorter than the wait until T + grace) is not repeated for every
    item: only once the token has used half its life. At T, `token` renews what is left."""
    if "access_token" not in conn.credentials:
        return _by_password(conn)  # a static token is what it is
    renewable = "refresh_token" in conn.credentials or _by_password(conn)
    if not renewable:
        return False
    if "expires_at" not in conn.state:  # learn its lifetime with a refresh, if there is one
        return "refresh_token" in conn.credentials
    expires_at = conn.state["expires_at"]
    if expires_at is None or expires_at >= until:
        return False
    now, lifetime = time.time(), float(conn.state.get("lifetime") or 0.0)
    return now + lifetime >= until or expires_at - now < lifetime / 2


async def token(conn: Connection, until: datetime | None = None) -> str:
    """The access token to send, renewed first if it would expire before `until` (default:
    now plus a margin for the request itself)."""
    deadline = until.timestamp() if until else time.time() + MARGIN_S
    if _needs_renewal(conn, deadline):
        async with account_lock(conn):
            if _needs_renewal(conn, deadline):  # another task may have renewed it meanwhile
                await _renew(conn)
    return conn.secret("access_token")


async def renew_after_refusal(conn: Connection, stale: str) -> str | None:
    """The homeserver refused `stale` (401 M_UNKNOWN_TOKEN): the token to retry with once, or
    None when nothing can be done (a static token that expired or was logged out)."""
    async with account_lock(conn):
        current = conn.credentials.get("access_token")
        if current is not None and current.reveal() != stale:
            return current.reveal()  # renewed by another task since the request was built
        if "refresh_token" not in conn.credentials and not _by_password(conn):
            return None
        await _renew(conn)
        return conn.secret("access_token")


async def _renew(conn: Connection) -> None:
    """Refresh (same device), else log in with the password (same device), else explain."""
    if "refresh_token" in conn.credentials:
        r = await conn.send(
            Request.json(
                "POST",
                f"{_base(conn)}{CLIENT}/refresh",
                {"refresh_token": conn.secret("refresh_token")},
            ),
            platform=PLATFORM,
            mutating=False,
        )
        if r.status == 200:
            _keep(conn, r.json())
            return
        if r.status not in (400, 401, 403):
            raise classify(r, platform=PLATFORM, mutating=False, message=_said(r))
        if not _by_password(conn):
            raise AuthError(
                f"the refresh token of {conn.account.name!r} was refused ({_said(r)}) — log in "
                f"again: stormer login {conn.account.name}",
                platform=PLATFORM,
                status=r.status,
            )
    _keep(conn, await login(conn, conn.secret("user"), conn.secret("password")))


async def login(conn: Connection, user: str, password: str) -> dict[str, Any]:
    """m.login.password to the account's fixed device, asking for a refresh token; the
    homeserver's answer (https://spec.matrix.org/v1.13/client-server-api/#post_matrixclientv3login)."""
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
        "device_id": device_id_for(conn.account),
        "initial_device_display_name": f"stormer ({conn.account.name})",
        "refresh_token": True,
    }
    r = await conn.send(
        Request.json("POST", f"{_base(conn)}{CLIENT}/login", body),
        platform=PLATFORM,
        mutating=False,
    )
    answer = r.json()
    if r.status == 200 and isinstance(answer, dict) and "access_token" in answer:
        return answer
    if r.status == 403:
        raise AuthError(
            f"password login of {user} refused ({_said(r)}): check the user and password of "
            f"{conn.account.name!r}",
            platform=PLATFORM,
            status=r.status,
        )
    raise classify(r, platform=PLATFORM, mutating=False, message=f"login: {_said(r)}")


def _keep(conn: Connection, answer: Any) -> None:
    """Use and save the tokens of a login or refresh answer, and remember their lifetime."""
    if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
        raise AuthError(
            "the homeserver answered a login without an access token", platform=PLATFORM
        )
    values = {"access_token": answer["access_token"]}
    if isinstance(answer.get("refresh_token"), str):  # absent: "the old one can be re-used"
        values["refresh_token"] = answer["refresh_token"]
    conn.rotate(values)
    ms = answer.get("expires_in_ms")
    lifetime = ms / 1000 if isinstance(ms, (int, float)) and ms > 0 else None
    # Without expires_in_ms "the client can assume that the access token will not expire".
    conn.state["expires_at"] = time.time() + lifetime if lifetime else None
    conn.state["lifetime"] = lifetime
    conn.state_changed()


async def call(conn: Connection, build: Callable[[str], Request], *, mutating: bool) -> Response:
    """Send the request `build(token)` makes; after a refused token, once more with a renewed
    one (a 401 created nothing, so the retry cannot post twice)."""
    sent = await token(conn)
    r = await conn.send(build(sent), platform=PLATFORM, mutating=mutating)
    if r.status == 401 and _errcode(r) == "M_UNKNOWN_TOKEN":
        renewed = await renew_after_refusal(conn, sent)
        if renewed is not None:
            r = await conn.send(build(renewed), platform=PLATFORM, mutating=mutating)
    return r


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def _base(conn: Connection) -> str:
    return (conn.account.base_url or "").rstrip("/")


def _errcode(r: Response) -> str:
    body = r.json()
    return str(body.get("errcode") or "") if isinstance(body, dict) else ""


def _said(r: Response) -> str:
    body = r.json()
    if isinstance(body, dict) and body.get("errcode"):
        return f"{body['errcode']}: {body.get('error') or ''}".rstrip(": ")
    return f"HTTP {r.status}"
