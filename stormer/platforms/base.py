"""The platform plugin interface.

A platform plugin is a subclass of `Platform` registered under the entry-point group
`stormer.platforms` (the built-ins are registered the same way, in stormer's pyproject.toml):

    [project.entry-points."stormer.platforms"]
    myplatform = "my_package.module:MyPlatform"

What a platform *is* — its limits, credential fields, idempotency — is class-level data;
its behaviour is `length` and `render` (pure, used by check and preview) and, for sending,
`stage`/`publish`/`confirm` (added with the platform clients).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from ..queue import QueueItem
    from ..storm import Account

Idempotency = Literal["key", "record-key", "transaction-id", "read-back", "none"]


def secret(name: str) -> str:
    """Placeholder for a credential in a rendered request: the real value never appears in
    previews, logs or reports; the sender substitutes it at the last moment."""
    return f"<secret:{name}>"


def staged(kind: str, path: str) -> str:
    """Placeholder for what staging returns for a media file (an id, a blob, an mxc URI)."""
    return f"<staged:{kind}:{path}>"


@dataclass(frozen=True, slots=True)
class Payload:
    """The exact request(s) a platform would receive at T for one queue item."""

    requests: list[dict[str, Any]]
    length: int
    limit: int
    problems: list[str] = field(default_factory=list)


class Platform(ABC):
    """Base class of every platform plugin. Subclasses set the class-level data and `length`.

    Class attributes:
        name: the identifier used in config.toml (`platform = "mastodon"`).
        title: the platform's name for people.
        text_limit: the maximum `length` of a post's text.
        media_text_limit: the limit when the post carries media, if different (Telegram: 1024).
        max_images: images allowed in one post.
        credential_fields: the secrets an account needs, each named in config by an
            environment variable or keyring entry (`credentials = { access_token = "ENV" }`).
        target_field: what `target` means for an account ("chat", "room"), if it needs one.
        idempotency: how a retried send is kept from posting twice.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    text_limit: ClassVar[int]
    media_text_limit: ClassVar[int | None] = None
    max_images: ClassVar[int] = 4
    credential_fields: ClassVar[tuple[str, ...]] = ()
    target_field: ClassVar[str | None] = None
    idempotency: ClassVar[Idempotency] = "none"
    default_base_url: ClassVar[str | None] = None

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
            problems.append(f"{length} > {limit} ({self.title} limit)")
        if len(item.media) > self.max_images:
            problems.append(f"{len(item.media)} images > {self.max_images} allowed on {self.title}")
        return Payload(self.build_requests(item, account), length, limit, problems)
