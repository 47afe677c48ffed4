"""`stormer check --online`: verify every account's credentials without posting."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from stormer.errors import AuthError, MissingCredential, PlatformError, Problem
from stormer.storm import CONFIG_NAME

if TYPE_CHECKING:
    import httpx

    from stormer.storm import Account, Storm


async def verify_accounts(
    storm: Storm, *, http: httpx.AsyncClient | None = None, concurrency: int = 8
) -> list[Problem]:
    """One problem per account whose credentials are missing, rejected or unverifiable."""
    from stormer.dispatch.connect import client, connect

    gate = asyncio.Semaphore(concurrency)
    own = http is None
    http = http or client()

    async def one(account: Account) -> Problem | None:
        async with gate:
            try:
                async with connect(storm, account, http) as (plugin, conn):
                    await plugin.verify(conn)
                return None
            except MissingCredential as e:
                return Problem(
                    "error",
                    "credentials-missing",
                    CONFIG_NAME,
                    account.line,
                    str(e).removeprefix(f"{account.platform}: "),
                )
            except AuthError as e:
                return Problem(
                    "error",
                    "credentials-rejected",
                    CONFIG_NAME,
                    account.line,
                    f"account {account.name!r}: {e}",
                )
            except PlatformError as e:
                return Problem(
                    "warning",
                    "account-unverified",
                    CONFIG_NAME,
                    account.line,
                    f"account {account.name!r}: could not verify ({e})",
                )

    try:
        results = await asyncio.gather(*(one(a) for a in storm.accounts))
    finally:
        if own:
            await http.aclose()
    return [p for p in results if p is not None]
