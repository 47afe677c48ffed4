"""Opening a connection for one account: plugin, credentials, HTTP client, session state.

Session state (a Bluesky session, an X user id) lives in memory for the life of the process;
it holds tokens, so it is never written to the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from stormer.channels import registry
from stormer.secrets import resolve

if TYPE_CHECKING:
    import httpx

    from stormer.channels.base import Connection, Platform
    from stormer.storm import Account, Storm

USER_AGENT = "stormer (+https://example.org/stormer)"
TIMEOUT_SECONDS = 30.0


def client(**kwargs: object) -> httpx.AsyncClient:
    """The HTTP client stormer uses unless a test injects its own transport."""
    import httpx

    return httpx.AsyncClient(timeout=TIMEOUT_SECONDS, headers={"User-Agent": USER_AGENT}, **kwargs)  # type: ignore[arg-type]


def account_named(storm: Storm, name: str) -> Account:
    from stormer.errors import StormerError

    for account in storm.accounts:
        if account.name == name:
            return account
    known = ", ".join(a.name for a in storm.accounts) or "none"
    raise StormerError(f"no authorized account named {name!r} in config.toml (accounts: {known})")


@asynccontextmanager
async def connect(
    storm: Storm, account: Account, http: httpx.AsyncClient | None = None
) -> AsyncIterator[tuple[Platform, Connection]]:
    """The plugin and a Connection for `account`; closes the client it opened."""
    from stormer.channels.base import Connection

    plugin = registry.get(account.platform)
    credentials = resolve(account, plugin.credential_fields)
    own = http is None
    http = http or client()
    try:
        yield (
            plugin,
            Connection(
                account=account,
                client=http,
                credentials=credentials,
                media_root=storm.root / "posts",
            ),
        )
    finally:
        if own:
            await http.aclose()
