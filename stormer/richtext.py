"""Bluesky rich-text facets for hashtags and links.

Bluesky does not parse hashtags or links out of post text: the client sends
them as facets (lexicon app.bsky.richtext.facet) whose index is a range of
UTF-8 *bytes* into the text, start inclusive, end exclusive
(https://docs.bsky.app/docs/advanced-guides/post-richtext). A tag is stored
without its "#" and may have at most 64 graphemes and 640 bytes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from stormer.lengths import find_hashtags, find_urls, graphemes, utf8_bytes

TAG_MAX_GRAPHEMES = 64
TAG_MAX_BYTES = 640

_TAG = "app.bsky.richtext.facet#tag"
_LINK = "app.bsky.richtext.facet#link"
_CACHE_SIZE = 65536


def bluesky_facets(text: str) -> list[dict[str, Any]]:
    """One facet per hashtag and per link, sorted by byteStart."""
    # Fresh dicts on every call (callers may keep or change them); the text scanning
    # behind them is done once per distinct text, since a storm repeats its few texts
    # across thousands of items.
    return [
        {
            "index": {"byteStart": byte_start, "byteEnd": byte_end},
            "features": [{"$type": kind, key: value}],
        }
        for byte_start, byte_end, kind, key, value in _facet_spans(text)
    ]


@lru_cache(maxsize=_CACHE_SIZE)
def _facet_spans(text: str) -> tuple[tuple[int, int, str, str, str], ...]:
    """(byteStart, byteEnd, feature $type, feature key, feature value), sorted by byteStart."""
    features = [
        (start, end, _TAG, "tag", tag)
        for start, end, tag in find_hashtags(text)
        if graphemes(tag) <= TAG_MAX_GRAPHEMES and utf8_bytes(tag) <= TAG_MAX_BYTES
    ]
    features += [(start, end, _LINK, "uri", url) for start, end, url in find_urls(text)]
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
