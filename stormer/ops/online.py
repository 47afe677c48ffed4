"""`stormer check --online` and `doctor`: verify every account's credentials with its
platform (nothing is posted), and say whether each will still hold at T + grace."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from stormer.errors import AuthError, MissingCredential, PlatformError, Problem, Severity
from stormer.settings import GRACE
from stormer.storm import CONFIG_NAME

if TYPE_CHECKING:
    import httpx

    from stormer.channels.base import CredentialStatus
    from stormer.storm import Account, Storm


@dataclass(frozen=True, slots=True)
class AccountCredential:
    """One account's credential as its platform answered: who it is and how long it lasts
    (`status`), or what is wrong (`problem`, which may also come with a status: accepted
    now, but not lasting until `deadline`)."""

    account: Account
    title: str  # the platform's name for people
    deadline: datetime | None  # the account's last post time + grace: it must hold until then
    identity: str | None = None
    status: CredentialStatus | None = None
    problem: Problem | None = None

    def line(self) -> str:
        """One line for people: the account, its credential, and whether it lasts."""
        head = f"{self.account.name} ({self.title}"
        head += f", {self.identity})" if self.identity else ")"
        if self.status is None:
            return f"{head}: not verified"
        return f"{head}: {self.status.kind}; {_lasting(self.status, self.deadline)}"


def deadline_of(storm: Storm) -> datetime | None:
    """Until when every account's credential must hold: its last post's time plus the grace
    in which it may still be sent."""
    if storm.at is None:
        return None
    return storm.at + max(storm.posts_per_account - 1, 0) * storm.post_interval + GRACE


def _when(instant: datetime) -> str:
    from stormer.timezones import iso_utc

    return iso_utc(instant)


def _lasting(status: CredentialStatus, deadline: datetime | None) -> str:
    if status.renewal:
        return f"stormer renews it before T ({status.renewal})"
    if status.lifetime_unknown:
        return f"expires at a time stormer cannot know ({status.lifetime})"
    if status.expires_at is None:
        return "does not expire unless revoked"
    holds = deadline is None or status.expires_at >= deadline
    verdict = "holds until T + grace" if holds else "does NOT hold until T + grace"
    return f"expires {_when(status.expires_at)}: {verdict}"


def expiry_problem(
    account: Account, status: CredentialStatus, deadline: datetime | None
) -> Problem | None:
    """An error when the credential will stop working before `deadline` and stormer cannot
    renew it; a warning when it expires at a time nobody knows."""
    fix = f"run `stormer login {account.name}`"
    if status.renewal:
        return None
    if status.lifetime_unknown:
        return Problem(
            "warning",
            "credentials-may-expire",
            CONFIG_NAME,
            account.line,
            f"account {account.name!r}: its {status.kind} expires ({status.lifetime}) and "
            f"stormer cannot renew it: {fix}, which keeps a refresh token",
        )
    if status.expires_at is not None and deadline is not None and status.expires_at < deadline:
        return Problem(
            "error",
            "credentials-expire",
            CONFIG_NAME,
            account.line,
            f"account {account.name!r}: its {status.kind} expires {_when(status.expires_at)}, "
            f"before its last post's time + grace ({_when(deadline)}), and stormer cannot "
            f"renew it: {fix}",
        )
    return None


async def check_credentials(
    storm: Storm, *, http: httpx.AsyncClient | None = None, concurrency: int = 8
) -> list[AccountCredential]:
    """Every account's credential, verified with its platform, in config order."""
    from stormer.channels import registry
    from stormer.dispatch.connect import client, connect

    gate = asyncio.Semaphore(concurrency)
    own = http is None
    http = http or client()
    deadline = deadline_of(storm)

    async def one(account: Account) -> AccountCredential:
        title = registry.get(account.platform).title
        checked = AccountCredential(account, title, deadline)
        async with gate:
            try:
                async with connect(storm, account, http) as (plugin, conn):
                    identity = await plugin.verify(conn)
                    status = plugin.credential_status(conn)
            except MissingCredential as e:
                return _with(checked, "error", "credentials-missing", str(e), prefix=False)
            except AuthError as e:
                return _with(checked, "error", "credentials-rejected", str(e))
            except PlatformError as e:
                return _with(checked, "warning", "account-unverified", f"could not verify ({e})")
        problem = expiry_problem(account, status, deadline)
        return AccountCredential(account, title, deadline, identity, status, problem)

    try:
        return list(await asyncio.gather(*(one(a) for a in storm.accounts)))
    finally:
        if own:
            await http.aclose()


def _with(
    checked: AccountCredential, severity: Severity, code: str, message: str, *, prefix: bool = True
) -> AccountCredential:
    account = checked.account
    text = (
        f"account {account.name!r}: {message}"
        if prefix
        else message.removeprefix(f"{account.platform}: ")
    )
    problem = Problem(severity, code, CONFIG_NAME, account.line, text)
    return AccountCredential(account, checked.title, checked.deadline, problem=problem)


async def verify_accounts(
    storm: Storm, *, http: httpx.AsyncClient | None = None, concurrency: int = 8
) -> list[Problem]:
    """One problem per account whose credentials are missing, rejected, unverifiable, or
    will not hold until its last post's time + grace."""
    checked = await check_credentials(storm, http=http, concurrency=concurrency)
    return [c.problem for c in checked if c.problem is not None]
