"""`stormer check --online` and `doctor`: verify every account's credentials with its
platform (nothing is posted), say whether each will still hold at T + grace, and measure
every post against the limits its server publishes (read now, and kept for staging and
preview: stormer.channels.limits)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from stormer.errors import AuthError, MissingCredential, PlatformError, Problem, Severity
from stormer.settings import GRACE
from stormer.storm import CONFIG_NAME

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from stormer.channels.base import Connection, CredentialStatus, Platform
    from stormer.channels.limits import LimitsCache
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
    # Posts over the limits the account's server publishes (once per server).
    over_limits: tuple[Problem, ...] = ()

    @property
    def problems(self) -> list[Problem]:
        return ([self.problem] if self.problem else []) + list(self.over_limits)

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
    """Every account's credential, verified with its platform, in config order, with its
    posts measured against the limits its server publishes."""
    from stormer.channels import registry
    from stormer.channels.limits import LimitsCache
    from stormer.dispatch.connect import client, connect

    gate = asyncio.Semaphore(concurrency)
    own = http is None
    http = http or client()
    deadline = deadline_of(storm)
    cache = LimitsCache(storm.root / ".stormer")
    measured: set[str] = set()  # servers whose limits were measured against already

    async def one(account: Account) -> AccountCredential:
        title = registry.get(account.platform).title
        checked = AccountCredential(account, title, deadline)
        async with gate:
            try:
                async with connect(storm, account, http) as (plugin, conn):
                    identity = await plugin.verify(conn)
                    status = plugin.credential_status(conn)
                    over = await _within_live_limits(storm, plugin, conn, cache, measured)
            except MissingCredential as e:
                return _with(checked, "error", "credentials-missing", str(e), prefix=False)
            except AuthError as e:
                return _with(checked, "error", "credentials-rejected", str(e))
            except PlatformError as e:
                return _with(checked, "warning", "account-unverified", f"could not verify ({e})")
        problem = expiry_problem(account, status, deadline)
        return AccountCredential(account, title, deadline, identity, status, problem, tuple(over))

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
    will not hold until its last post's time + grace, and one per post over the limits its
    server published."""
    checked = await check_credentials(storm, http=http, concurrency=concurrency)
    return [p for c in checked for p in c.problems] + nothing_verified(checked)


def nothing_verified(checked: list[AccountCredential]) -> list[Problem]:
    """An error when not one account could be verified for want of an answer (offline, a
    proxy, every server down): --online then proved nothing, and must not exit 0."""
    unverified = [c for c in checked if c.problem and c.problem.code == "account-unverified"]
    if not checked or len(unverified) < len(checked):
        return []
    return [
        Problem(
            "error",
            "nothing-verified",
            CONFIG_NAME,
            None,
            f"none of the {len(checked)} account(s) could be verified: no platform answered "
            "(is this machine online?); run `stormer check --online` again once it is",
        )
    ]


async def _within_live_limits(
    storm: Storm, plugin: Platform, conn: Connection, cache: LimitsCache, measured: set[str]
) -> list[Problem]:
    """Every post `conn.account` may carry against its server's published limits, read now
    (and kept); nothing if the server publishes none or was measured for another account."""
    from stormer.channels.limits import live_problems
    from stormer.plan import eligible, single_post

    account = conn.account
    key = cache.key(plugin, account)
    if key in measured:
        return []
    measured.add(key)
    try:
        limits = await cache.read(plugin, conn, refresh=True)
    except PlatformError as e:
        return [
            Problem(
                "warning",
                "limits-unread",
                CONFIG_NAME,
                account.line,
                f"account {account.name!r}: could not read the server's limits ({e}); "
                f"posts are measured against {plugin.title}'s defaults",
            )
        ]
    if limits is None:
        return []
    live = plugin.with_limits(limits)
    media_root = storm.root / "posts"
    problems = []
    for post in storm.posts:
        if not eligible(post, account) or storm.at is None:
            continue
        item = single_post(post, account, id=f"check-{post.file}", fire_at=storm.at)
        for problem in live_problems(live, item, account, lambda p: _size(media_root, p)):
            problems.append(
                Problem(
                    "error",
                    "over-server-limit",
                    post.file,
                    post.text_line,
                    f"{plugin.title} at {plugin.base_url(account)} (account {account.name!r}): "
                    f"{problem}; shorten the post or restrict it with platforms = [...]",
                )
            )
    return problems


def _size(media_root: Path, path: str) -> int:
    try:
        return (media_root / path).stat().st_size
    except OSError:
        return 0  # a missing image is check's own error already
