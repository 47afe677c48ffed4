"""Bluesky rich-text facets for hashtags, links and mentions.

Bluesky does not parse hashtags or links out of post text: the client sends
them as facets (lexicon app.bsky.richtext.facet) whose index is a range of
UTF-8 *bytes* into the text, start inclusive, end exclusive
(https://docs.bsky.app/docs/advanced-guides/post-richtext). A tag is stored
without its "#" and may have at most 64 graphemes and 640 bytes. A mention
(`@handle.example.org`) points at the account's DID, which only the network knows: the
caller resolves the handles `find_mentions` returns and passes them in; a handle it could
not resolve stays plain text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from stormer.lengths import find_hashtags, find_urls, graphemes, utf8_bytes

TAG_MAX_GRAPHEMES = 64
TAG_MAX_BYTES = 640

_TAG = "app.bsky.richtext.facet#tag"
_LINK = "app.bsky.richtext.facet#link"
_MENTION = "app.bsky.richtext.facet#mention"
# A handle is a domain name (https://atproto.com/specs/handle): labels of letters, digits and
# hyphens, not starting or ending with a hyphen, the last one not starting with a digit. A
# mention starts the text or follows a space or "(", as the official client detects it
# (https://docs.bsky.app/docs/advanced-guides/post-richtext); a "." or "-" right after it
# followed by a letter or digit means the name goes on (it is not a mention of the prefix).
_HANDLE_MENTION = re.compile(
    r"(?:^|(?<=[\s(]))@("
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
    r"[a-zA-Z](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r")(?![a-zA-Z0-9-]|\.[a-zA-Z0-9])"
)
_HANDLE_MAX = 253
_CACHE_SIZE = 65536


def bluesky_facets(text: str, mentions: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """One facet per hashtag, per link and per mention of a handle in `mentions` (handle,
    lower case → DID), sorted by byteStart."""
    # Fresh dicts on every call (callers may keep or change them); the text scanning
    # behind them is done once per distinct text, since a storm repeats its few texts
    # across thousands of items.
    mentions = mentions or {}
    return [
        {
            "index": {"byteStart": byte_start, "byteEnd": byte_end},
            "features": [{"$type": kind, key: mentions[value] if kind == _MENTION else value}],
        }
        for byte_start, byte_end, kind, key, value in _facet_spans(text)
        if kind != _MENTION or value in mentions
    ]


def find_mentions(text: str) -> list[tuple[int, int, str]]:
    """(start, end, handle) character spans of `@handle` mentions (the span includes the
    "@"; the handle in lower case), outside links."""
    return [(start, end, handle) for start, end, _, _, handle in _mention_spans(text)]


def _mention_spans(text: str) -> tuple[tuple[int, int, str, str, str], ...]:
    urls = find_urls(text)
    return tuple(
        (m.start(), m.end(), _MENTION, "did", m.group(1).lower())
        for m in _HANDLE_MENTION.finditer(text)
        if len(m.group(1)) <= _HANDLE_MAX
        and not any(m.start() < end and start < m.end() for start, end, _ in urls)
    )


@lru_cache(maxsize=_CACHE_SIZE)
def _facet_spans(text: str) -> tuple[tuple[int, int, str, str, str], ...]:
    """(byteStart, byteEnd, feature $type, feature key, feature value), sorted by byteStart;
    a mention's value is its handle, replaced by the DID when the facets are built."""
    features = [
        (start, end, _TAG, "tag", tag)
        for start, end, tag in find_hashtags(text)
        if graphemes(tag) <= TAG_MAX_GRAPHEMES and utf8_bytes(tag) <= TAG_MAX_BYTES
    ]
    features += [(start, end, _LINK, "uri", url) for start, end, url in find_urls(text)]
    features += _mention_spans(text)
    features.sort(key=lambda feature: feature[0])
    byte_spans = _byte_spans(text, [(start, end) for start, end, *_ in features])
    return tuple(
        (byte_start, byte_end, kind, key, value)
        for (byte_start, byte_end), (_, _, kind, key, value) in zip(
            byte_spans, features, strict=True
        )
    )


def _byte_spans(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Character spans (sorted, non-overlapping) as UTF-8 byte spans.

    Encodes each stretch of text once, walking left to right, instead of
    encoding the whole prefix for every span.
    """
    byte_spans = []
    char_pos = byte_pos = 0
    for start, end in spans:
        byte_start = byte_pos + utf8_bytes(text[char_pos:start])
        byte_pos = byte_start + utf8_bytes(text[start:end])
        char_pos = end
        byte_spans.append((byte_start, byte_pos))
    return byte_spans
