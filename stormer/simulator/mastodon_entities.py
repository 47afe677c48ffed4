"""Mastodon's rules and entities, as the simulator applies and renders them.

Written from the docs (https://docs.joinmastodon.org/entities/), independently of stormer's
client: the length counts grapheme clusters with every http(s) URL as
`characters_reserved_per_url` (23 by default) and a remote mention `@user@domain` as `@user`.
The instance's limits come from the simulator's config (`SimConfig.mastodon_*`).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import regex

from .state import Media, Post

if TYPE_CHECKING:
    from .faults import SimConfig
    from .state import Sim

# 4.4.0: the first version whose configuration has `description_limit`
# (https://docs.joinmastodon.org/entities/Instance/#description_limit).
VERSION = "4.4.0"
# "At most 4 images per post" (https://docs.joinmastodon.org/user/posting/#attachments);
# `max_media_attachments` 4 in https://docs.joinmastodon.org/entities/Instance/#statuses.
MAX_MEDIA = 4
# supported_mime_types, as the example in https://docs.joinmastodon.org/entities/Instance/
IMAGE_TYPES = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/heic",
    "image/heif",
    "image/webp",
    "image/avif",
)
OTHER_TYPES = (
    "video/webm",
    "video/mp4",
    "video/quicktime",
    "video/ogg",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/mpeg",
    "audio/mp3",
    "audio/ogg",
    "audio/flac",
)
# https://docs.joinmastodon.org/methods/statuses/#form-data-parameters (visibility)
VISIBILITIES = ("public", "unlisted", "private", "direct")

# "All links are counted as 23 characters, no matter how long" (the instance's
# characters_reserved_per_url), links starting with http:// or https://; a remote mention counts
# only its @user (https://docs.joinmastodon.org/user/posting/#text), in grapheme clusters
# (Mastodon's StatusLengthValidator counts `each_grapheme_cluster`).
URL = regex.compile(r"(?<![\w@/])https?://[^\s<>\"]+", regex.IGNORECASE)
REMOTE_MENTION = regex.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)@[\w-]+(?:\.[\w-]+)+", regex.IGNORECASE
)
HASHTAG = regex.compile(r"(?<![\w/#])#(\w*[^\W\d_]\w*)")
GRAPHEME = regex.compile(r"\X")


def text_length(text: str, url_weight: int) -> int:
    """Mastodon's counter: URLs weigh `url_weight`, remote mentions count only `@user`, in
    graphemes."""

    def url(m: regex.Match[str]) -> str:
        _, tail = _trim_url(m.group())
        return "x" * url_weight + tail

    counted = REMOTE_MENTION.sub(lambda m: "@" + m.group(1), URL.sub(url, text))
    return len(GRAPHEME.findall(counted))


def _trim_url(link: str) -> tuple[str, str]:
    """Trailing punctuation belongs to the sentence, not the link (`)` only if unmatched)."""
    end = len(link)
    while end > 0 and link[end - 1] in ".,:;!?'\")]}\u201d\u2019":
        if link[end - 1] == ")" and link[:end].count("(") >= link[:end].count(")"):
            break
        end -= 1
    return link[:end], link[end:]


@dataclass
class Account:
    id: str
    username: str


@dataclass
class Attachment:
    id: str
    owner: str
    size: int
    mime: str
    description: str | None
    ready_at: float
    width: int | None
    height: int | None
    status_id: str | None = None


@dataclass
class Status:
    id: str
    account: Account
    text: str
    spoiler_text: str
    visibility: str
    language: str | None
    sensitive: bool
    created_at: datetime
    media: list[Attachment] = field(default_factory=list)


@dataclass
class Scheduled:
    """A status to publish later (https://docs.joinmastodon.org/entities/ScheduledStatus/)."""

    id: str
    scheduled_at: datetime
    draft: Status  # published as it is, with a new id, at scheduled_at
    base: str  # the instance's address, for the URL of the status once published


@dataclass
class State:
    """Everything the simulated instance keeps (a space of the simulator's store)."""

    media: dict[str, Attachment] = field(default_factory=dict)
    statuses: dict[str, Status] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    scheduled: dict[str, Scheduled] = field(default_factory=dict)


def mastodon_state(sim: Sim) -> State:
    return sim.store.space("mastodon", State)


def record_status(sim: Sim, base: str, status: Status) -> dict[str, Any]:
    """Keep a new status (its media attached to it), log it as a post; its entity."""
    for item in status.media:
        item.status_id = status.id
    mastodon_state(sim).statuses[status.id] = status
    body = status_json(base, status)
    sim.store.add(
        Post(
            platform="mastodon",
            account=status.account.username,
            text=status.text,
            remote_id=status.id,
            received_at=status.created_at,
            url=body["url"],
            media=[Media(size=m.size, mime=m.mime, alt=m.description) for m in status.media],
        )
    )
    return body


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def account_json(base: str, account: Account, statuses: int = 0) -> dict[str, Any]:
    return {
        "id": account.id,
        "username": account.username,
        "acct": account.username,
        "display_name": account.username,
        "locked": False,
        "bot": True,
        "discoverable": True,
        "group": False,
        "created_at": "2024-01-01T00:00:00.000Z",
        "note": "",
        "url": f"{base}/@{account.username}",
        "uri": f"{base}/users/{account.username}",
        "avatar": f"{base}/avatars/original/missing.png",
        "avatar_static": f"{base}/avatars/original/missing.png",
        "header": f"{base}/headers/original/missing.png",
        "header_static": f"{base}/headers/original/missing.png",
        "followers_count": 0,
        "following_count": 0,
        "statuses_count": statuses,
        "last_status_at": None,
        "emojis": [],
        "fields": [],
    }


def media_json(base: str, item: Attachment, now: float) -> dict[str, Any]:
    kind = item.mime.split("/")[0]
    kind = {
        "image": "gifv" if item.mime == "image/gif" else "image",
        "video": "video",
        "audio": "audio",
    }.get(kind, "unknown")
    ready = now >= item.ready_at
    meta: dict[str, Any] = {}
    if item.width and item.height:
        meta["original"] = {
            "width": item.width,
            "height": item.height,
            "size": f"{item.width}x{item.height}",
            "aspect": item.width / item.height,
        }
    return {
        "id": item.id,
        "type": kind,
        "url": f"{base}/system/media_attachments/files/{item.id}/original" if ready else None,
        "preview_url": f"{base}/system/media_attachments/files/{item.id}/small",
        "remote_url": None,
        "preview_remote_url": None,
        "text_url": None,
        "meta": meta,
        "description": item.description,
        "blurhash": None,
    }


def status_json(base: str, status: Status) -> dict[str, Any]:
    user = status.account.username
    paragraphs = html.escape(status.text).split("\n\n")
    content = "".join(f"<p>{p.replace(chr(10), '<br />')}</p>" for p in paragraphs)
    now = time.time()
    return {
        "id": status.id,
        "created_at": iso(status.created_at),
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "sensitive": status.sensitive,
        "spoiler_text": status.spoiler_text,
        "visibility": status.visibility,
        "language": status.language,
        "uri": f"{base}/users/{user}/statuses/{status.id}",
        "url": f"{base}/@{user}/{status.id}",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "edited_at": None,
        "favourited": False,
        "reblogged": False,
        "muted": False,
        "bookmarked": False,
        "pinned": False,
        "content": content,
        "reblog": None,
        "application": {"name": "stormer simulator", "website": None},
        "account": account_json(base, status.account),
        "media_attachments": [media_json(base, m, now) for m in status.media],
        "mentions": [],
        "emojis": [],
        "card": None,
        "poll": None,
        "filtered": [],
        "tags": [
            {"name": t.lower(), "url": f"{base}/tags/{t.lower()}"}
            for t in dict.fromkeys(HASHTAG.findall(status.text))
        ],
    }


def human_size(size: int) -> str:
    """Rails' number_to_human_size (base 1024, three significant digits, insignificant zeros
    dropped), which Paperclip's size validation message shows: 16777216 → "16 MB"."""
    if size < 1024:
        return f"{size} Bytes"
    value, unit = float(size), "Bytes"
    for name in ("KB", "MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, name
    decimals = max(0, 3 - len(str(int(value))))
    shown = f"{value:.{decimals}f}"
    return f"{shown.rstrip('0').rstrip('.') if '.' in shown else shown} {unit}"


def configuration(config: SimConfig) -> dict[str, Any]:
    """The instance's configuration (https://docs.joinmastodon.org/entities/Instance/#configuration),
    with the limits the simulator was told to have."""
    return {
        "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
        "statuses": {
            "max_characters": config.mastodon_max_characters,
            "max_media_attachments": MAX_MEDIA,
            "characters_reserved_per_url": config.mastodon_characters_reserved_per_url,
        },
        "media_attachments": {
            "supported_mime_types": [*IMAGE_TYPES, *OTHER_TYPES],
            "description_limit": config.mastodon_description_limit,
            "image_size_limit": config.mastodon_image_size_limit,
            "image_matrix_limit": 33177600,
            "video_size_limit": 103809024,
            "video_frame_rate_limit": 120,
            "video_matrix_limit": 8294400,
        },
        "polls": {
            "max_options": 4,
            "max_characters_per_option": 50,
            "min_expiration": 300,
            "max_expiration": 2629746,
        },
        "translation": {"enabled": False},
    }


def instance_v1_json(base: str, domain: str, config: SimConfig, statuses: int) -> dict[str, Any]:
    """A V1::Instance (https://docs.joinmastodon.org/entities/V1_Instance/)."""
    return {
        "uri": domain,
        "title": "stormer simulator",
        "short_description": "",
        "description": "",
        "email": "",
        "version": VERSION,
        "urls": {},
        "languages": ["en"],
        "registrations": False,
        "approval_required": False,
        "invites_enabled": False,
        "stats": {"user_count": 0, "status_count": statuses, "domain_count": 0},
        "thumbnail": f"{base}/thumbnail.png",
        "contact_account": None,
        "rules": [],
        "configuration": configuration(config),
    }


def instance_v2_json(domain: str, config: SimConfig) -> dict[str, Any]:
    """An Instance (https://docs.joinmastodon.org/entities/Instance/)."""
    return {
        "domain": domain,
        "title": "stormer simulator",
        "version": VERSION,
        "source_url": "https://github.com/mastodon/mastodon",
        "description": "",
        "usage": {"users": {"active_month": 0}},
        "thumbnail": {"url": None},
        "languages": ["en"],
        "configuration": {"urls": {}, **configuration(config)},
        "registrations": {"enabled": False, "approval_required": False, "message": None},
        "api_versions": {"mastodon": 2},
        "contact": {"email": "", "account": None},
        "rules": [],
    }
