"""The channel interface: what every channel an item goes through implements, and the
platform plugin interface built on it.

A `Channel` is where the dispatcher sends an item: a platform, for a post (`Platform`, one
plugin per platform), or the reminder channel, for a participant's reminder
(stormer.channels.reminder). The dispatcher knows channels through this interface only:

- class data: what the channel *is* — its name, its idempotency, how many requests may be in
  flight at once (`concurrency`), its pace per account, where the organizer looks when an
  outcome is unknown, and what previews and reports may show of its items;
- `stage(item, conn) -> Staged`: before T, do everything that can be done early (log in,
  upload media, look up the recipient), so that at T only the final request(s) remain;
- `publish(staged, conn) -> Published`: at T, send, and say where the item landed;
- `reconcile(staged, conn) -> Published | NOT_POSTED | None`: after OutcomeUnknown, find out
  whether the item landed, using the channel's own idempotency or a read-back — never by
  resending a request that could post twice. NOT_POSTED: it is not there (safe to send
  again); None: cannot know (the item becomes unconfirmed);
- `confirm(published, conn) -> Published`: optional read-back, fills in the permalink.

Each channel has its own connection type (`conn`): a platform gets a `Connection` per
account, the reminder channel a `ReminderConnection` per storm.

A platform plugin is a subclass of `Platform` registered under the entry-point group
`stormer.platforms` (the built-ins are registered the same way, in stormer's pyproject.toml):

    [project.entry-points."stormer.platforms"]
    myplatform = "my_package.module:MyPlatform"

What a platform *is* — its limits, credential fields, idempotency, gate and pace — is
class-level data; its behaviour is `length` and `render` (pure, used by check and preview)
and, besides the channel methods, `verify(conn)` (are the credentials good? used by
`check --online` and staging) and `parse(staged, index, response) -> Published` (read the
platform's answer, sans-I/O; the default `publish` sends each request and parses it).

Plugins receive everything through `Connection` (an injected httpx.AsyncClient, the account,
its credentials as Secrets, and session state the caller keeps) and raise the errors of
stormer.errors: AuthError, RateLimited, Transient, OutcomeUnknown, Rejected. They know no
terminal, no database and no dispatcher.
"""

from __future__ import annotations

import asyncio
import dataclasses
import string
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, Self, TypeVar
from urllib.parse import quote

from stormer.queue import Payload
from stormer.settings import GRACE

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import httpx

    from stormer.channels.http import Request, Response
    from stormer.channels.search import Pages, Wait
    from stormer.queue import QueueItem
    from stormer.secrets import Secret
    from stormer.storm import Account

Idempotency = Literal["key", "record-key", "transaction-id", "read-back", "none"]


class Sender(Protocol):
    async def __call__(self, request: Request, *, platform: str, mutating: bool) -> Response: ...


def secret(name: str) -> str:
    """Placeholder for a credential in a rendered request: the real value never appears in
    previews, logs or reports; the sender substitutes it at the last moment."""
    return f"<secret:{name}>"


def staged(kind: str, path: str) -> str:
    """Placeholder for what staging returns for a media file (an id, a blob, an mxc URI)."""
    return f"<staged:{kind}:{path}>"


@dataclass
class Connection:
    """What a plugin gets to talk to one account, handed in by the caller.

    `state` is per-account session data the caller keeps between calls (a Bluesky session,
    an X user id), in memory only; a plugin that changes it calls `state_changed()` at once.

    A credential the platform rotates (X's and Matrix's refresh tokens: the old one stops
    working the moment a new one is issued) goes through `rotate`, which saves it where
    `save_credentials` says (the keyring) before anything else can fail: a rotated token
    lost with the process would lock the account out of the next run.

    `grace` is how late an item may still be sent: what staging prepares for an item (an
    access token above all) must hold until `holds_until(item)`."""

    account: Account
    client: httpx.AsyncClient
    credentials: dict[str, Secret]
    state: dict[str, Any] = field(default_factory=dict, repr=False)  # holds session tokens
    on_state_change: Callable[[dict[str, Any]], None] | None = None
    media_root: Path | None = None  # the storm's posts/ folder: MediaRef paths are inside it
    # How requests go out. By default through `client` (httpx); the dispatcher swaps in its
    # own engine for the burst. Plugins always send through `send`, never through `client`.
    sender: Sender | None = field(default=None, repr=False)
    save_credentials: Callable[[dict[str, str]], None] | None = field(default=None, repr=False)
    public_credentials: tuple[str, ...] = ()  # the plugin's: not masked in logs (`rotate`)
    grace: timedelta = GRACE

    async def send(self, request: Request, *, platform: str, mutating: bool) -> Response:
        """Send `request`; failures become Transient (never arrived) or OutcomeUnknown."""
        if self.sender is not None:
            return await self.sender(request, platform=platform, mutating=mutating)
        from stormer.channels.http import send

        return await send(self.client, request, platform=platform, mutating=mutating)

    def media_bytes(self, path: str) -> bytes:
        if self.media_root is None:
            raise ValueError("this connection has no media folder")
        return (self.media_root / path).read_bytes()

    def secret(self, name: str) -> str:
        from stormer.errors import AuthError

        if name not in self.credentials:
            raise AuthError(
                f"account {self.account.name!r} has no {name}", platform=self.account.platform
            )
        return self.credentials[name].reveal()

    def state_changed(self) -> None:
        if self.on_state_change is not None:
            self.on_state_change(self.state)

    def rotate(self, values: dict[str, str]) -> None:
        """The platform issued new credentials (by field name): use them from now on, and
        save them at once (`save_credentials`), before anything else can fail."""
        from stormer.secrets import Secret

        for name, value in values.items():
            self.credentials[name] = Secret(value, redact=name not in self.public_credentials)
        if self.save_credentials is not None:
            self.save_credentials(values)

    def holds_until(self, item: QueueItem) -> datetime:
        """The instant until which what is staged for `item` must stay valid: its fire time
        plus the grace in which it may still be sent."""
        return item.fire_at + self.grace


_account_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]]
_account_locks = weakref.WeakKeyDictionary()


def account_lock(conn: Connection) -> asyncio.Lock:
    """One lock per account (and event loop), for what must happen once however many items
    of the account stage at the same time: a token refresh, whose old refresh token the
    platform revokes."""
    locks = _account_locks.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(f"{conn.account.platform}:{conn.account.name}", asyncio.Lock())


@dataclass
class Staged:
    """An item ready to fire: the final request(s), built with real ids and credentials."""

    item: QueueItem
    requests: list[Request]
    data: dict[str, Any] = field(default_factory=dict)  # media ids, record key, user id…


class NotPosted:
    """What `reconcile` returns when the platform answered that the post is NOT there: it
    never landed, so sending it again is safe. (None means "cannot know".)"""

    _instance: NotPosted | None = None

    def __new__(cls) -> NotPosted:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_POSTED"


NOT_POSTED = NotPosted()


@dataclass(frozen=True, slots=True)
class CredentialStatus:
    """What an account's credential is and how long it lasts, as `check --online` and
    `doctor` show it (`Platform.credential_status`, after `verify`).

    A credential holds until T + grace when it does not expire, expires after that, or when
    stormer renews it on its own before T (`renewal` says how: a refresh token, a new session
    from an app password)."""

    kind: str  # for people: "OAuth 2.0 user token", "app password"
    expires_at: datetime | None = None  # when the credential in hand stops working, if known
    renewal: str | None = None  # how stormer renews it before T; None: it cannot
    # It expires, but when is not known (a pasted X OAuth 2.0 token: two hours from its
    # issue, which stormer did not see). `lifetime` says what the platform documents.
    lifetime_unknown: bool = False
    lifetime: str | None = None


@dataclass(frozen=True, slots=True)
class LiveLimits:
    """Limits a server publishes about itself (a Mastodon instance's configuration, a Matrix
    homeserver's media config), read by `Platform.read_limits`. None: the server says
    nothing about it, and the plugin's class data stands."""

    source: str  # where they were read (a URL): previews and checks name it
    text_limit: int | None = None
    url_length: int | None = None  # what one link counts for in the text
    image_bytes: int | None = None
    alt_text_limit: int | None = None
    read_at: datetime | None = None  # when (stormer.channels.limits stamps it)

    def origin(self) -> str:
        """Where these limits come from, for people: the URL, and when they were read."""
        when = f" on {self.read_at:%Y-%m-%d %H:%M} UTC" if self.read_at else ""
        return f"read from {self.source}{when}"


# The limits a server may publish (`with_limits` puts them over the class data: text_limit,
# url_length, image_limits.max_bytes and .alt_chars).
LIVE_FIELDS = ("text_limit", "url_length", "image_bytes", "alt_text_limit")


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """What a platform accepts of one image, as its documentation says (`source`; the
    alt-text limit at `alt_source` when another page gives it). None: not limited, or not
    known; not checked. `stormer check` measures every image against the limits of each
    platform its post goes to, and `check --fix-images` re-encodes a copy within them.

    A server that publishes its own byte limit (`LiveLimits.image_bytes`: a Mastodon
    instance, a Matrix homeserver) overrides `max_bytes` where it is read."""

    source: str = ""
    max_bytes: int | None = None
    max_width: int | None = None  # pixels
    max_height: int | None = None
    max_pixels: int | None = None  # width × height
    max_sides: int | None = None  # width + height (Telegram's "in total")
    max_aspect: float | None = None  # the longer side over the shorter one
    formats: frozenset[str] | None = None  # MIME types accepted; None: any image
    alt_chars: int | None = None  # the longest alt text, in characters
    alt_source: str | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """Where a post landed."""

    remote_id: str
    permalink: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


ConnT = TypeVar("ConnT")


class Channel(ABC, Generic[ConnT]):
    """Where the dispatcher sends an item, through the connection type `ConnT`.

    Class attributes (defaults here; a channel sets what differs):
        name: the identifier items carry (`platform = "mastodon"` in config.toml).
        title: the channel's name for people.
        idempotency: how a retried send is kept from posting twice.
        idempotency_window: how long, in seconds, the channel remembers an idempotency key,
            if it forgets it: after a crash the dispatcher reconciles (which may mean sending
            again with the same key) only until 5 minutes before the window ends.
        concurrency: requests in flight at once across all accounts of the channel (the
            dispatcher's gate for it).
        pace: (n, seconds): at most n items per that many seconds from one account, where the
            channel's limit is known but only announced by a 429 (Telegram, Discord).
        where_to_look: where the organizer can see whether an item whose outcome is unknown
            arrived (ends the error of an `unconfirmed` item).
        private: whether items go to private people (participants): reports then mask
            anything shaped like an address in the item's name and error, and show no
            permalink.

    Methods raise the errors of stormer.errors: AuthError (MissingCredential) when the
    credentials are wrong or missing, RateLimited (wait, then the same request again),
    Transient (did not take effect: retry), OutcomeUnknown (may have landed: reconcile
    first), Rejected (never: the item is dead).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    idempotency: ClassVar[Idempotency] = "none"
    idempotency_window: ClassVar[float | None] = None
    # A gate held through the server's latency caps a platform at gate / latency posts per
    # second across all its accounts (bench/burst.py measured Discord at 10: p99 30 s for
    # 1,666 webhooks), so the built-ins' are wide (1000); each account's own gate and the
    # platforms' 429s with Retry-After bound the rest. 100 for a channel that says nothing.
    concurrency: ClassVar[int] = 100
    pace: ClassVar[tuple[int, float] | None] = None
    where_to_look: ClassVar[str] = "look at the account"
    private: ClassVar[bool] = False

    @classmethod
    def label(cls, platform: str, payload: Mapping[str, Any] | None) -> str:
        """What previews and reports show as the "platform" of an item of this channel, from
        the item's `platform` and `payload` (never an address)."""
        return platform

    @abstractmethod
    async def stage(self, item: QueueItem, conn: ConnT) -> Staged:
        """Before T: everything that can be done early for `item` (log in, upload media and
        wait for their processing, find the recipient), ending with the final request(s).

        Raises AuthError, RateLimited or Transient when it may work later (staging is tried
        again before T), Rejected when it never will."""

    @abstractmethod
    async def publish(self, staged: Staged, conn: ConnT) -> Published:
        """At T: send what `stage` prepared; return where the item landed.

        Raises RateLimited or Transient (safe to send again), OutcomeUnknown (it may have
        landed: `reconcile` before anything else), AuthError or Rejected (final)."""

    async def reconcile(self, staged: Staged, conn: ConnT) -> Published | NotPosted | None:
        """After OutcomeUnknown: did the item land? Return it; NOT_POSTED if the channel
        says it is not there; None if the channel offers no way to know (the organizer
        decides). Must never post twice. By default: None."""
        return None

    async def confirm(self, published: Published, conn: ConnT) -> Published:
        """Read the item back and fill in its permalink; by default trust the answer."""
        return published


class Platform(Channel[Connection]):
    """Base class of every platform plugin. Subclasses set the class-level data and `length`.

    Class attributes:
        name: the identifier used in config.toml (`platform = "mastodon"`).
        title: the platform's name for people.
        text_limit: the maximum `length` of a post's text.
        media_text_limit: the limit when the post carries media, if different (Telegram: 1024).
        max_images: images allowed in one post.
        alt_text: whether images carry a description (Telegram's Bot API has none).
        image_limits: what the platform accepts of one image (`ImageLimits`: bytes,
            dimensions, aspect ratio, formats, alt-text length, each from its documentation);
            `stormer check` and `stormer doctor` measure every image against them.
        credential_fields: the secrets an account needs, each named in config by an
            environment variable or keyring entry (`credentials = { access_token = "ENV" }`).
        credential_kind: what the default credential is, for people ("bot token"), as
            `check --online` shows it.
        alternative_auth: other ways to authenticate, by name, each with the secrets it
            needs instead (X: OAuth 1.0a user context); an account that names all the
            fields of one uses it (`credential_fields_for`).
        public_credentials: credential fields that are not secret (a user name, an OAuth
            client id, a token's expiry): never printed, but not masked in every log line.
        kept_credentials: secrets used when present and never required (a refresh token,
            which `stormer login` stores and the plugin rotates through `Connection.rotate`).
        target_field: what `target` means for an account ("chat", "room"), if it needs one.
        handle_example: if an account needs `handle` (Bluesky logs in with it), an example
            value for `check` to show when it is missing.
        default_base_url: the server when an account names none; None: each account must set
            `base_url` (a Mastodon instance, a Matrix homeserver)…
        needs_base_url: …unless the platform needs no server address at all (a Discord
            webhook URL, a credential, names its server).
        same_text_forbidden: whether the platform's rules forbid several accounts posting the
            same or nearly the same text (`check` makes it an error instead of a warning).
        no_hashtag_search: why `stormer impact` cannot count this platform's posts under a
            hashtag; None for a platform with a search (`hashtag_posts`).
        look_by_hand: the web page where a person can see whether a post arrived, for an
            item whose outcome nobody could confirm: a template over `{base_url}`,
            `{handle}`, `{target}`, `{tag}` and `{phrase}` (the post's opening words in
            quotes), all URL-quoted; None where there is no such page (`look_by_hand_at`).
        and those of every channel (`Channel`): idempotency, idempotency_window,
        concurrency, pace.
    """

    text_limit: ClassVar[int]
    media_text_limit: ClassVar[int | None] = None
    max_images: ClassVar[int] = 4
    alt_text: ClassVar[bool] = True  # whether the platform carries an image description
    image_limits: ClassVar[ImageLimits] = ImageLimits()  # nothing known: nothing checked
    credential_fields: ClassVar[tuple[str, ...]] = ()
    credential_kind: ClassVar[str | None] = None  # what they are, for people ("bot token")
    alternative_auth: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    kept_credentials: ClassVar[tuple[str, ...]] = ()
    public_credentials: ClassVar[tuple[str, ...]] = ()
    target_field: ClassVar[str | None] = None
    handle_example: ClassVar[str | None] = None
    default_base_url: ClassVar[str | None] = None
    needs_base_url: ClassVar[bool] = True
    same_text_forbidden: ClassVar[bool] = False
    no_hashtag_search: ClassVar[str | None] = "stormer cannot search it"
    look_by_hand: ClassVar[str | None] = None
    # The limits this plugin's server published, in place of the class data (`with_limits`).
    live: LiveLimits | None = None

    def with_limits(self, limits: LiveLimits | None) -> Self:
        """This plugin measuring against the limits its server published (`read_limits`)
        where it named them, and its class data elsewhere; itself when there are none."""
        if limits is None:
            return self
        import copy

        measured = copy.copy(self)
        measured.live = limits
        for name in ("text_limit", "url_length"):
            if getattr(limits, name) is not None:
                setattr(measured, name, getattr(limits, name))
        image = self.image_limits
        if limits.image_bytes is not None:
            image = dataclasses.replace(image, max_bytes=limits.image_bytes, source=limits.origin())
        if limits.alt_text_limit is not None:
            image = dataclasses.replace(
                image, alt_chars=limits.alt_text_limit, alt_source=limits.origin()
            )
        if image is not self.image_limits:
            # An instance attribute over the class data, as text_limit above.
            measured.image_limits = image  # type: ignore[misc]
        return measured

    def limit_origin(self) -> str:
        """Where the text limit comes from, for people: the server, or the class data."""
        if self.live is not None and self.live.text_limit is not None:
            return self.live.origin()
        return f"{self.title}'s default"

    @abstractmethod
    def length(self, text: str) -> int:
        """The length of `text` as this platform counts it against `limit`."""

    def limit(self, *, with_media: bool) -> int:
        """The text limit for a post with or without media."""
        if with_media and self.media_text_limit is not None:
            return self.media_text_limit
        return self.text_limit

    def base_url(self, account: Account) -> str:
        return (account.base_url or self.default_base_url or "").rstrip("/")

    def auth_of(self, account: Account) -> str | None:
        """The name of the alternative authentication `account` uses (all its fields are
        named in config.toml), or None for the platform's default (`credential_fields`)."""
        named = {name for name, _ in account.credentials}
        for method, fields in self.alternative_auth.items():
            if set(fields) <= named:
                return method
        return None

    def credential_fields_for(self, account: Account) -> tuple[str, ...]:
        """The secrets `account` needs, by the way it authenticates (`auth_of`)."""
        method = self.auth_of(account)
        return self.credential_fields if method is None else self.alternative_auth[method]

    @abstractmethod
    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        """The final request(s) sent at T, with `secret()` and `staged()` placeholders."""

    def render(self, item: QueueItem, account: Account) -> Payload:
        """Pure: the payload for `item` from `account`, its length against the limit, and
        any problem with it. Never touches the network."""
        length = self.length(item.text)
        limit = self.limit(with_media=bool(item.media))
        problems = []
        if length > limit:
            whose = f"{self.title} limit"
            if self.live is not None and self.live.text_limit is not None:
                whose = f"this server's limit, {self.live.origin()}"
            problems.append(f"{length} > {limit} ({whose})")
        if len(item.media) > self.max_images:
            problems.append(f"{len(item.media)} images > {self.max_images} allowed on {self.title}")
        return Payload(
            self.build_requests(item, account), length, limit, problems, self.limit_origin()
        )

    # --- sending: implemented by each platform client --------------------------------------

    async def login(
        self,
        account: Account,
        client: httpx.AsyncClient,
        ask: Callable[[str, bool], str],
        say: Callable[[str], None],
    ) -> dict[str, str]:
        """Obtain credentials interactively and check them; return them by field name.

        `ask(prompt, hidden)` reads an answer, `say(text)` shows one. By default: ask for
        each credential field (hidden) and verify. Platforms with an OAuth flow override it."""
        from stormer.secrets import Secret

        values = {
            f: ask(f"{f.replace('_', ' ')} for {account.name}", True).strip()
            for f in self.credential_fields_for(account)
        }
        conn = Connection(
            account=account,
            client=client,
            credentials={
                k: Secret(v, redact=k not in self.public_credentials)
                for k, v in values.items()
                if v
            },
        )
        say(f"accepted: {await self.verify(conn)}")
        return values

    async def read_limits(self, conn: Connection) -> LiveLimits | None:
        """The limits the account's server publishes, if the platform has such a thing;
        None (the default): the class data are the limits."""
        return None

    def hashtag_posts(
        self, conn: Connection, hashtag: str, since: datetime, until: datetime, *, wait: Wait
    ) -> Pages:
        """The public posts under `hashtag` created in [since, until), as this account can
        read them, a page at a time (`stormer impact`); rate limits are waited out through
        `wait`. Raises SearchUnavailable, with `no_hashtag_search`, where there is no search."""
        from stormer.channels.search import SearchUnavailable

        raise SearchUnavailable(str(self.no_hashtag_search))

    def look_by_hand_at(self, account: Account, text: str, hashtag: str) -> str | None:
        """Where the organizer can look for `account`'s post of `text` by hand (an
        `unconfirmed` item): `look_by_hand` filled in, or None when it has no template or
        needs a field the account does not set."""
        if self.look_by_hand is None:
            return None
        fields = {
            "base_url": self.base_url(account),
            "handle": account.handle,
            "target": account.target,
            "tag": hashtag.lstrip("#"),
            "phrase": f'"{words}"' if (words := opening_words(text)) else None,
        }
        needed = {name for _, name, _, _ in string.Formatter().parse(self.look_by_hand) if name}
        if any(not fields[name] for name in needed):
            return None
        quoted = {
            name: value if name == "base_url" else quote(str(value), safe="@:!")
            for name, value in fields.items()
        }
        return self.look_by_hand.format(**quoted)

    def credential_status(self, conn: Connection) -> CredentialStatus:
        """What `conn`'s credential is and how long it lasts, once `verify` accepted it. By
        default: the credential fields, which do not expire unless revoked. A platform whose
        tokens expire or are refreshed says so."""
        if self.auth_of(conn.account) is None and self.credential_kind:
            return CredentialStatus(kind=self.credential_kind)
        return CredentialStatus(kind=" + ".join(self.credential_fields_for(conn.account)))

    async def verify(self, conn: Connection) -> str:
        """Check the credentials without posting; return who they belong to (a handle).

        Raises AuthError when they are wrong."""
        raise NotImplementedError(f"{self.title}: verify is not implemented")

    async def stage(self, item: QueueItem, conn: Connection) -> Staged:
        """See `Channel.stage`: log in if needed, upload media (waiting for processing), and
        build the final request(s). A plugin that only renders (check, preview) may leave
        it out."""
        raise NotImplementedError(f"{self.title}: stage is not implemented")

    def parse(self, staged: Staged, index: int, response: Response) -> Published:
        """Read the answer to `staged.requests[index]`; raise the platform's error if it
        failed (sans-I/O: no network here)."""
        raise NotImplementedError(f"{self.title}: parse is not implemented")

    async def publish(self, staged: Staged, conn: Connection) -> Published:
        """Send the final request(s) and return where the post landed (the first request's
        answer: the text). Every request is idempotent on its own where the platform allows,
        so a retry after a partial failure does not post the first part twice."""
        first: Published | None = None
        for index, request in enumerate(staged.requests):
            response = await conn.send(request, platform=self.name, mutating=True)
            published = self.parse(staged, index, response)
            first = first or published
        assert first is not None, "a staged item has at least one request"
        return first


def opening_words(text: str, *, most: int = 8) -> str:
    """The first run of plain words of `text` (at most `most`), between links, hashtags and
    mentions: a phrase a search box finds as it is, since those tokens are often rewritten
    (t.co links, linked tags)."""
    words: list[str] = []
    for word in text.split():
        plain = word[0] not in "#@" and "://" not in word
        if plain:
            words.append(word)
        if (words and not plain) or len(words) == most:
            break
    return " ".join(words)
