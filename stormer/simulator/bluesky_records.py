"""Bluesky repositories in memory: blobs, records, and the record rules a PDS enforces.

`app.bsky.feed.post` is checked against its lexicon (text ≤ 300 graphemes and ≤ 3000 UTF-8
bytes, `createdAt` required, facet byte ranges inside the text, ≤ 4 images each with `alt`
and a blob this account uploaded); its record key must be a TID.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import regex

from ._web import json, received_at, sim
from .media import sniff
from .state import Media, Post

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

POST = "app.bsky.feed.post"
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
RECORD_KEY = re.compile(r"^[A-Za-z0-9._:~-]{1,512}$")
NSID = re.compile(r"^[a-zA-Z](?:[a-zA-Z0-9-]{0,62})(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,62})?)+$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$")
SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"
GRAPHEME = regex.compile(r"\X")
MAX_GRAPHEMES, MAX_BYTES, MAX_IMAGES, MAX_IMAGE_BYTES = 300, 3000, 4, 2_000_000


def cid(codec: int, data: bytes) -> str:
    """A CIDv1 (sha2-256), base32: codec 0x55 for raw blobs, 0x71 for records."""
    raw = bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def record_cid(value: Any) -> str:
    # Over canonical JSON, not DAG-CBOR: same content, same cid, which is what retries need.
    return cid(0x71, orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


@dataclass
class Blob:
    cid: str
    size: int
    mime: str


@dataclass
class Entry:
    value: dict[str, Any]
    cid: str
    post: Post | None = None


@dataclass
class Repos:
    records: dict[str, dict[str, dict[str, Entry]]] = field(default_factory=dict)
    blobs: dict[str, dict[str, Blob]] = field(default_factory=dict)
    last_tid: int = 0

    def add_blob(self, did: str, data: bytes, content_type: str | None) -> dict[str, Any]:
        mime = (content_type or "").split(";")[0].strip().lower()
        if mime in ("", "*/*", "application/octet-stream"):
            mime = sniff(data)[0]
        blob = Blob(cid(0x55, data), len(data), mime)
        self.blobs.setdefault(did, {})[blob.cid] = blob
        return {"$type": "blob", "ref": {"$link": blob.cid}, "mimeType": mime, "size": blob.size}

    def get(self, did: str, collection: str, rkey: str) -> Entry | None:
        return self.records.get(did, {}).get(collection, {}).get(rkey)

    def count(self, did: str, collection: str) -> int:
        return len(self.records.get(did, {}).get(collection, {}))

    def list(
        self, did: str, collection: str, limit: int, cursor: str | None, reverse: bool
    ) -> tuple[list[tuple[str, Entry]], str | None]:
        rows = sorted(self.records.get(did, {}).get(collection, {}).items(), reverse=not reverse)
        if cursor:
            rows = [r for r in rows if (r[0] > cursor if reverse else r[0] < cursor)]
        page = rows[:limit]
        return page, page[-1][0] if len(rows) > limit else None

    def next_tid(self) -> str:
        """Microseconds since the epoch << 10 | clock id, in base32-sortable; never repeats."""
        value = max(int(time.time() * 1_000_000) << 10, self.last_tid + 1)
        self.last_tid = value
        return "".join(SORTABLE[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def _invalid(message: str, name: str = "InvalidRequest") -> Response:
    return json({"error": name, "message": message}, 400)


def write(request: Request, repos: Repos, did: str, handle: str, body: Any, put: bool) -> Response:
    """createRecord (put=False) or putRecord (put=True) for the authenticated `did`."""
    if not isinstance(body, dict):
        return _invalid("Request body must be a JSON object")
    for key in ("repo", "collection", "record", *(("rkey",) if put else ())):
        if key not in body:
            return _invalid(f'Input must have the property "{key}"')
    collection, record = body["collection"], body["record"]
    if body["repo"] not in (did, handle):
        return json({"error": "AuthenticationRequired", "message": "Authentication Required"}, 401)
    if not isinstance(collection, str) or not NSID.match(collection):
        return _invalid("Input/collection must be a valid nsid")
    if not isinstance(record, dict):
        return _invalid("Input/record must be an object")
    rkey = body.get("rkey")
    if rkey is None and not put:
        rkey = repos.next_tid()
    if not isinstance(rkey, str) or not RECORD_KEY.match(rkey) or rkey in (".", ".."):
        return _invalid("Input/rkey must be a valid Record Key")
    record = {**record, "$type": record.get("$type", collection)}
    if record["$type"] != collection:
        return _invalid(f"Invalid $type: expected {collection}, got {record['$type']}")
    validated = collection == POST and body.get("validate") is not False
    images: list[Media] = []
    if collection == POST:
        if not TID.match(rkey):
            return _invalid(f"Invalid record key for {POST}: must be a TID")
        if validated and (problem := check_post(record)):
            return _invalid(f"Invalid {POST} record: {problem}")
        found = _images(repos, did, record)
        if isinstance(found, str):
            return _invalid(f"Could not find blob: {found}", "BlobNotFound")
        images = found

    new_cid = record_cid(record)
    uri = f"at://{did}/{collection}/{rkey}"
    answer: dict[str, Any] = {
        "uri": uri,
        "cid": new_cid,
        "validationStatus": "valid" if validated else "unknown",
    }
    existing = repos.get(did, collection, rkey)
    if existing is not None and not put:
        # What the reference PDS does today ("There is already a value at key").
        return json({"error": "InternalServerError", "message": "Internal Server Error"}, 500)
    if existing is not None and existing.cid == new_cid:
        return json(answer)  # an identical write is a no-op
    if put and "swapRecord" in body and (existing.cid if existing else None) != body["swapRecord"]:
        return _invalid(f"Record was at {existing.cid if existing else 'null'}", "InvalidSwap")
    answer["commit"] = {
        "cid": record_cid({"commit": uri, "at": time.time_ns()}),
        "rev": repos.next_tid(),
    }
    if existing is not None:  # putRecord update
        existing.value, existing.cid = record, new_cid
        if existing.post is not None:
            existing.post.text, existing.post.media = record.get("text", ""), images
        return json(answer)
    entry = Entry(record, new_cid)
    repos.records.setdefault(did, {}).setdefault(collection, {})[rkey] = entry
    if collection == POST:
        entry.post = sim(request).store.add(
            Post(
                platform="bluesky",
                account=handle,
                text=str(record.get("text", "")),
                remote_id=uri,
                received_at=received_at(request),
                media=images,
                url=f"https://bsky.app/profile/{handle}/post/{rkey}",
            )
        )
    return json(answer)


def check_post(record: dict[str, Any]) -> str | None:
    """The first lexicon violation of an app.bsky.feed.post record, or None."""
    text = record.get("text")
    if text is None:
        return 'Record must have the property "text"'
    if not isinstance(text, str):
        return "Record/text must be a string"
    if "createdAt" not in record:
        return 'Record must have the property "createdAt"'
    if not _datetime(record["createdAt"]):
        return "Record/createdAt must be an valid atproto datetime (both RFC-3339 and ISO-8601)"
    if len(GRAPHEME.findall(text)) > MAX_GRAPHEMES:
        return f"Record/text must not be longer than {MAX_GRAPHEMES} graphemes"
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        return f"Record/text must not be longer than {MAX_BYTES} characters"
    langs = record.get("langs")
    if langs is not None and (not isinstance(langs, list) or len(langs) > 3):
        return "Record/langs must be an array of at most 3 elements"
    return _check_facets(record.get("facets"), size) or _check_embed(record.get("embed"))


def _datetime(value: Any) -> bool:
    if not isinstance(value, str) or not DATETIME.match(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_facets(facets: Any, size: int) -> str | None:
    if facets is None:
        return None
    if not isinstance(facets, list):
        return "Record/facets must be an array"
    for i, facet in enumerate(facets):
        where = f"Record/facets/{i}"
        index = facet.get("index") if isinstance(facet, dict) else None
        if not isinstance(index, dict):
            return f'{where} must have the property "index"'
        start, end = _count(index.get("byteStart")), _count(index.get("byteEnd"))
        if start is None or end is None:
            return f"{where}/index byteStart and byteEnd must be integers ≥ 0"
        if start > end or end > size:
            return f"{where}/index [{start}, {end}) is not within the text ({size} bytes)"
        features = facet.get("features")
        if not isinstance(features, list) or not features:
            return f'{where} must have the property "features"'
        for j, feature in enumerate(features):
            if problem := _check_feature(feature, f"{where}/features/{j}"):
                return problem
    return None


def _count(value: Any) -> int | None:
    """A byte offset, or None if the value is not an integer ≥ 0."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None


def _check_feature(feature: Any, where: str) -> str | None:
    kind = feature.get("$type") if isinstance(feature, dict) else None
    needs = {
        "app.bsky.richtext.facet#link": "uri",
        "app.bsky.richtext.facet#mention": "did",
        "app.bsky.richtext.facet#tag": "tag",
    }.get(kind or "")
    if needs and not isinstance(feature.get(needs), str):
        return f'{where} must have the property "{needs}"'
    if needs == "did" and not feature["did"].startswith("did:"):
        return f"{where}/did must be a valid did"
    if needs == "tag":
        tag = feature["tag"]
        if len(tag.encode()) > 640 or len(GRAPHEME.findall(tag)) > 64:
            return f"{where}/tag must not be longer than 64 graphemes"
    return None


def _embedded_images(embed: Any) -> list[Any] | None:
    if not isinstance(embed, dict):
        return None
    if embed.get("$type") == "app.bsky.embed.images":
        images = embed.get("images")
        return images if isinstance(images, list) else []
    if embed.get("$type") == "app.bsky.embed.recordWithMedia":
        return _embedded_images(embed.get("media"))
    return None


def _check_embed(embed: Any) -> str | None:
    images = _embedded_images(embed)
    if images is None:
        return None
    if len(images) > MAX_IMAGES:
        return f"Record/embed/images must not have more than {MAX_IMAGES} elements"
    for i, image in enumerate(images):
        where = f"Record/embed/images/{i}"
        if not isinstance(image, dict):
            return f"{where} must be an object"
        if not isinstance(image.get("alt"), str):
            return f'{where} must have the property "alt"'
        blob = image.get("image")
        if (
            not isinstance(blob, dict)
            or blob.get("$type") != "blob"
            or not isinstance(blob.get("ref", {}).get("$link"), str)
        ):
            return f"{where}/image should be a blob ref"
        if not str(blob.get("mimeType", "")).startswith("image/"):
            return f"{where}/image mimeType ({blob.get('mimeType')}) does not match accepted types"
        if not isinstance(blob.get("size"), int) or blob["size"] > MAX_IMAGE_BYTES:
            return f"{where}/image file too big (max {MAX_IMAGE_BYTES} bytes)"
    return None


def _images(repos: Repos, did: str, record: dict[str, Any]) -> list[Media] | str:
    """The post's images as the log shows them, or the cid of a blob this account never sent."""
    out = []
    for image in _embedded_images(record.get("embed")) or []:
        try:
            link = image["image"]["ref"]["$link"]
        except (KeyError, TypeError):
            continue
        blob = repos.blobs.get(did, {}).get(link)
        if blob is None:
            return str(link)
        out.append(Media(size=blob.size, mime=blob.mime, alt=image.get("alt")))
    return out
