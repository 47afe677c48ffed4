"""Opening a connection for one account: plugin, credentials, HTTP client, session state;
and the dispatcher's `Routes`: the channel and connection each item goes through.

Session state (a Bluesky session, an X user id) lives in memory for the life of the process;
it holds tokens, so it is never written to the database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Generic, Protocol, TypeAlias

from stormer.channels import registry
from stormer.channels.base import Channel, Connection, ConnT, NotPosted, Published, Staged
from stormer.channels.limits import LimitsCache
from stormer.dispatch.sending import SendResult, send_staged
from stormer.errors import Rejected
from stormer.secrets import resolve, store
from stormer.settings import GRACE

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from stormer.channels.base import Platform, Sender
    from stormer.channels.reminder import ReminderConnection
    from stormer.queue import QueueItem
    from stormer.secrets import Secret
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
    storm: Storm,
    account: Account,
    http: httpx.AsyncClient | None = None,
    *,
    credentials_of: Credentials = resolve,
    save: Save = store,
) -> AsyncIterator[tuple[Platform, Connection]]:
    """The plugin and a Connection for `account`, with the credentials `credentials_of`
    gives, rotated ones kept by `save` (the organizer's, in the keyring; a rehearsal's
    made-up ones, nowhere); closes the client it opened."""
    plugin = registry.get(account.platform)
    credentials = credentials_of(
        account,
        plugin.credential_fields_for(account),
        optional=plugin.kept_credentials,
        public=plugin.public_credentials,
    )
    own = http is None
    http = http or client()
    try:
        yield plugin, _connection(storm, account, http, credentials, save=save)
    finally:
        if own:
            await http.aclose()


def _connection(
    storm: Storm,
    account: Account,
    http: httpx.AsyncClient,
    credentials: dict[str, Secret],
    sender: Sender | None = None,
    *,
    save: Save,
    grace: timedelta = GRACE,
) -> Connection:
    return Connection(
        account=account,
        client=http,
        credentials=credentials,
        media_root=storm.root / "posts",
        sender=sender,
        save_credentials=partial(save, account.name),
        public_credentials=registry.get(account.platform).public_credentials,
        grace=grace,
    )


@dataclass(frozen=True, slots=True)
class Route(Generic[ConnT]):
    """A channel with the connection it sends through: an account's platform, or the
    participants' reminders. What the dispatcher does to an item, it does through its route."""

    channel: Channel[ConnT]
    conn: ConnT

    async def stage(self, item: QueueItem) -> Staged:
        return await self.channel.stage(item, self.conn)

    async def reconcile(self, staged: Staged) -> Published | NotPosted | None:
        return await self.channel.reconcile(staged, self.conn)

    async def send(self, staged: Staged, *, attempts: int) -> SendResult:
        """Publish, retrying what is safe to retry and reconciling what is unknown."""
        return await send_staged(self.channel, staged, self.conn, attempts=attempts)


AnyRoute: TypeAlias = "Route[Connection] | Route[ReminderConnection]"  # one per kind of channel


class Credentials(Protocol):
    """Where an account's credentials come from (`stormer.secrets.resolve`, or a
    rehearsal's made-up ones)."""

    def __call__(
        self,
        account: Account,
        fields: tuple[str, ...],
        *,
        optional: tuple[str, ...] = (),
        public: tuple[str, ...] = (),
    ) -> dict[str, Secret]: ...


# Where an account's rotated credentials go (`stormer.secrets.store`: the keyring).
Save: TypeAlias = "Callable[[str, dict[str, str]], None]"


class Routes:
    """The route of each item, made the first time it is needed and kept: an account's
    plugin with its connection (credentials resolved then), the reminder channel with the
    organizer's senders. `credentials` resolves an account's (a rehearsal hands in the
    simulator's), `save` keeps those the platform rotates, `grace` is how late an item may
    still be sent. Routes are made once `open` has handed in the HTTP client and the sender
    (the dispatcher's burst engine) they send through."""

    def __init__(
        self,
        storm: Storm,
        *,
        credentials: Credentials = resolve,
        save: Save = store,
        grace: timedelta = GRACE,
        limits_folder: Path | None = None,
    ) -> None:
        self._storm = storm
        self._credentials = credentials
        self._save = save
        self._grace = grace
        self._accounts = {a.name: a for a in storm.accounts}
        self._through: tuple[httpx.AsyncClient, Sender | None] | None = None
        self._routes: dict[str, Route[Connection]] = {}
        self._reminders: Route[ReminderConnection] | None = None
        # The limits each account's server publishes, read once per server (staging); kept in
        # the storm's .stormer/ unless told elsewhere (a rehearsal's are the simulator's).
        self.limits = LimitsCache(limits_folder or storm.root / ".stormer")

    def open(self, http: httpx.AsyncClient, sender: Sender | None) -> None:
        self._through = (http, sender)

    def of(self, kind: str, account: str) -> AnyRoute:
        """The route of an item of `kind` from (or, for a reminder, to) `account`.

        Raises Rejected when the account is no longer in config.toml, MissingCredential
        when its credentials are not set, UnknownPlatform when its plugin is gone."""
        if kind == "reminder":
            return self._reminder_route()
        if account not in self._routes:
            found = self._accounts.get(account)
            if found is None:
                raise Rejected(f"account {account!r} is no longer in config.toml")
            if self._through is None:
                raise RuntimeError("Routes.open comes before the first route")
            plugin = registry.get(found.platform)
            http, sender = self._through
            credentials = self._credentials(
                found,
                plugin.credential_fields_for(found),
                optional=plugin.kept_credentials,
                public=plugin.public_credentials,
            )
            conn = _connection(
                self._storm, found, http, credentials, sender, save=self._save, grace=self._grace
            )
            self._routes[account] = Route(plugin, conn)
        return self._routes[account]

    def _reminder_route(self) -> Route[ReminderConnection]:
        if self._reminders is None:
            from stormer.channels.reminder import ReminderChannel, ReminderConnection
            from stormer.notify.sender import resolve_senders

            senders, _missing = resolve_senders(self._storm.reminder_senders)  # check says
            conn = ReminderConnection(
                storm=self._storm, senders=senders, workdir=self._storm.root / ".stormer"
            )
            self._reminders = Route(ReminderChannel(), conn)
        return self._reminders
