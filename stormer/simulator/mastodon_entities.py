"""Mastodon's rules and entities, as the simulator applies and renders them.

Written from the docs (https://docs.joinmastodon.org/entities/), independently of stormer's
client: the length counts grapheme clusters with every http(s) URL as 23 characters and a
remote mention `@user@domain` as `@user`.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import regex

VERSION = "4.3.0"
MAX_CHARACTERS = 500
URL_WEIGHT = 23
MAX_MEDIA = 4
IMAGE_LIMIT = 16 * 1024 * 1024
DESCRIPTION_LIMIT = 1500
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
VISIBILITIES = ("public", "unlisted", "private", "direct")

URL = regex.compile(r"(?<![\w@/])https?://[^\s<>\"]+", regex.IGNORECASE)
REMOTE_MENTION = regex.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)@[\w-]+(?:\.[\w-]+)+", regex.IGNORECASE
)
HASHTAG = regex.compile(r"(?<![\w/#])#(\w*[^\W\d_]\w*)")
GRAPHEME = regex.compile(r"\X")


def text_length(text: str) -> int:
    """Mastodon's counter: URLs weigh 23, remote mentions count only `@user`, in graphemes."""

    def url(m: regex.Match[str]) -> str:
        _, tail = _trim_url(m.group())
        return "x" * URL_WEIGHT + tail

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


def configuration() -> dict[str, Any]:
    return {
        "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
        "statuses": {
            "max_characters": MAX_CHARACTERS,
            "max_media_attachments": MAX_MEDIA,
            "characters_reserved_per_url": URL_WEIGHT,
        },
        "media_attachments": {
            "supported_mime_types": [*IMAGE_TYPES, *OTHER_TYPES],
            "description_limit": DESCRIPTION_LIMIT,
            "image_size_limit": IMAGE_LIMIT,
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
