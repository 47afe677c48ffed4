"""How long a post is, counted the way each platform counts it.

Every platform measures "characters" differently, and a storm post that one
server rejects as one character too long misses the moment. The rules:

X (280, weighted)
    twitter-text v3 (https://developer.twitter.com/en/docs/counting-characters,
    https://github.com/twitter/twitter-text): text is NFC-normalised; code points
    in U+0000-U+10FF, U+2000-U+200D, U+2010-U+201F and U+2032-U+2037 weigh 1,
    everything else (CJK, most emoji) weighs 2; an emoji sequence from the
    Unicode emoji list (a ZWJ family, a flag, a skin tone) weighs 2 as a whole;
    every URL, with or without a scheme, weighs 23 because X wraps it in t.co.
    The counter is the `twitter-text-parser` package (module `twitter_text`).
Bluesky (300 graphemes, 3000 UTF-8 bytes)
    The app.bsky.feed.post lexicon limits `text` to maxGraphemes 300 and
    maxLength 3000, where lexicon string lengths are UTF-8 bytes
    (https://atproto.com/specs/lexicon#string). Graphemes are Unicode extended
    grapheme clusters (UAX #29).
Mastodon (500 by default; each instance may configure its own)
    app/validators/status_length_validator.rb: every URL with a scheme is
    replaced by 23 characters, a mention `@user@domain` by `@user`, and the
    result is counted in grapheme clusters (Ruby `each_grapheme_cluster`).
Telegram (4096 for a message, 1024 for a media caption)
    https://core.telegram.org/bots/api#sendmessage: "1-4096 characters after
    entities parsing". Telegram measures entity offsets in UTF-16 code units.
Discord (2000)
    https://discord.com/developers/docs/resources/message#create-message:
    content "up to 2000 characters"; Discord staff explained the API counts
    Unicode code points (https://github.com/discord/discord-api-docs/issues/1315).

All counters are pure; the expensive ones are memoised per text because a
storm queue repeats the same few texts across thousands of accounts.
"""

from __future__ import annotations

import re
import sys
import types
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from functools import cache, lru_cache

import regex

X_LIMIT = 280
BLUESKY_LIMIT = 300
BLUESKY_MAX_BYTES = 3000
MASTODON_LIMIT = 500
TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024
DISCORD_LIMIT = 2000

_CACHE_SIZE = 65536

Span = tuple[int, int, str]

_GRAPHEME = regex.compile(r"\X")
_FIRST_COMBINING = 0x0300  # U+0300 COMBINING GRAVE ACCENT, the first of the combining marks

# A URL runs until whitespace or a character that may not appear unescaped in
# a URL (RFC 3986 excludes <, > and "). The scheme must not be glued to a
# preceding letter or digit, so "xhttps://" is not a link.
_URL = regex.compile(r"(?<![\p{L}\p{N}])https?://[^\s<>\"]+", regex.IGNORECASE)
# Sentence punctuation that people type straight after a link but that is
# almost never the last character of the real address (the same idea as
# twitter-text's and Bluesky's link detectors). CJK and full-width forms
# included because storm texts come in many scripts.
_URL_TRAILING = frozenset(".,!?:;'\"‘’“”«»…。、，！？：；")
_CLOSE_TO_OPEN = {")": "(", "]": "[", "}": "{"}

_HASHTAG = regex.compile(
    r"(?<![\p{L}\p{M}\p{Nd}_&])"  # not glued to a word, nor to "&" as in &#x27;
    r"#(?!\p{M})"  # a mark would fuse with the "#" into one grapheme (keycap #️⃣)
    r"(?=[\p{M}\p{Nd}_]*\p{L})"  # needs a letter: "#2024" is no tag on X or Bluesky
    r"[\p{L}\p{M}\p{Nd}_]+"
)

# Account::MENTION_RE from Mastodon (app/models/account.rb); group 1 is the
# local part that Mastodon keeps when counting.
_MENTION = regex.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_])?)(?:@[\w.-]+\w)?",
    regex.IGNORECASE,
)

_LINE_ENDINGS = re.compile(r"\r\n|\r|\n")


@lru_cache(maxsize=_CACHE_SIZE)
def graphemes(text: str) -> int:
    """Number of extended grapheme clusters (what a reader sees as characters)."""
    if not text or ord(max(text)) < _FIRST_COMBINING:
        # Below U+0300 no character joins another (UAX #29: nothing there is Extend,
        # SpacingMark, Prepend, ZWJ or a regional indicator) but LF after CR.
        return len(text) - text.count("\r\n")
    return len(_GRAPHEME.findall(text))


def bluesky_length(text: str) -> int:
    return graphemes(text)


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def telegram_length(text: str) -> int:
    # Telegram does not document whether its limit counts code points or
    # UTF-16 code units; its entity offsets are UTF-16, and UTF-16 is never
    # smaller than the code-point count, so this errs on the safe side.
    return len(text.encode("utf-16-le")) // 2


def discord_length(text: str) -> int:
    # Discord staff: "Our API uses Python 3, so the API calculates length
    # based on the number of codepoints" (discord-api-docs#1315). So an emoji
    # outside the BMP counts 1, a ZWJ family as many as its code points, a
    # custom emoji <:name:id> its full markup.
    return len(text)


@lru_cache(maxsize=_CACHE_SIZE)
def mastodon_length(text: str, *, url_length: int = 23) -> int:
    """Length as Mastodon's StatusLengthValidator counts it (without a content warning)."""
    return graphemes(_mastodon_countable_text(text, url_length))


def _mastodon_countable_text(text: str, url_length: int) -> str:
    if "://" not in text and "@" not in text:
        return text  # neither a URL nor a mention to replace
    urls = find_urls(text)
    replacements = [(start, end, "x" * url_length) for start, end, _ in urls]
    replacements += [
        (m.start(), m.end(), "@" + m.group(1))
        for m in _MENTION.finditer(text)
        if not _overlaps(m.start(), m.end(), urls)
    ]
    replacements.sort()
    pieces, pos = [], 0
    for start, end, replacement in replacements:
        pieces += [text[pos:start], replacement]
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def find_urls(text: str) -> list[Span]:
    """(start, end, url) character spans of http(s) URLs, trailing punctuation excluded."""
    spans = []
    for match in _URL.finditer(text):
        url = _trim_url(match.group())
        if url.find("://") + 3 < len(url):  # something must be left after the scheme
            spans.append((match.start(), match.start() + len(url), url))
    return spans


def _trim_url(url: str) -> str:
    while url:
        last = url[-1]
        if last in _URL_TRAILING:
            url = url[:-1]
        elif last in _CLOSE_TO_OPEN and url.count(_CLOSE_TO_OPEN[last]) < url.count(last):
            # "(see https://en.wikipedia.org/wiki/Foo_(bar))": keep the
            # balanced parenthesis, drop the one closing the sentence.
            url = url[:-1]
        else:
            break
    return url


def find_hashtags(text: str) -> list[Span]:
    """(start, end, tag) character spans of hashtags; tag is without the "#"."""
    urls = find_urls(text)
    return [
        (m.start(), m.end(), m.group()[1:])
        for m in _HASHTAG.finditer(text)
        if not _overlaps(m.start(), m.end(), urls)
    ]


def _overlaps(start: int, end: int, spans: list[Span]) -> bool:
    return any(start < span_end and span_start < end for span_start, span_end, _ in spans)


@lru_cache(maxsize=_CACHE_SIZE)
def x_length(text: str) -> int:
    """twitter-text v3 weighted length; equal to parse_tweet(text).weightedLength."""
    return _x_counter()(text)


@cache
def _x_counter() -> Callable[[str], int]:
    """Build the X counter on first use.

    Importing twitter_text costs ~0.5 s (it parses the Unicode emoji list and compiles
    its URL and emoji expressions at import), so commands that never count for X don't
    pay for it.

    parse_tweet itself spends ~1 ms per post running a 3,800-way emoji alternation at
    every character and its URL expression at every position. This counter gives the
    same number from the same pieces (URL extractor, emoji expression, weight table) but
    tries each only where it can match, which makes it ~100x faster:
    tests/test_lengths.py checks it against parse_tweet on generated text.
    """
    _import_twitter_text()
    from twitter_text import extract_urls_with_indices
    from twitter_text.config import config
    from twitter_text.regexp.emoji import emoji, emoji_list, single_codepoint_emoji_ranges
    from twitter_text.regexp.spaces_group import spaces_group

    options = config["defaults"]
    scale: int = options["scale"]  # twitter-text ships no types: the config's own value
    url_weight = options["transformed_url_length"] * scale
    emoji_weight = options["default_weight"]
    weigh = _char_weigher(options["default_weight"], options["ranges"])
    # twitter-text's emoji expression is the emoji list's multi-code-point sequences, then
    # a class of single code points. So a match begins with one of those single code
    # points, or with the first code point of a sequence followed by one that can come
    # second. One expression finds where that holds, in C; the 3,800-way alternation
    # runs only there. (Digits and # begin keycap sequences: most texts hold many.)
    sequences = [[int(c, 16) for c in e.codepoint.split()] for e in emoji_list]
    sequences = [s for s in sequences if len(s) > 1]
    singles = [c for low, high in single_codepoint_emoji_ranges for c in range(low, high + 1)]
    emoji_start = re.compile(
        f"{_char_class(singles)}|{_char_class(s[0] for s in sequences)}"
        f"(?={_char_class(s[1] for s in sequences)})"
    )
    # A URL never holds a space (twitter-text's domain, path and query characters all
    # exclude its spaces_group), and its domain ends in a dot and a top-level domain: it
    # lies inside one run of non-spaces holding a dot followed by another character. The
    # lookbehind makes a run match only from its first character, so the scan is linear.
    space = f"[{spaces_group}]"
    not_space = f"[^{spaces_group}]"
    dotted_run = re.compile(f"(?<!{not_space}){not_space}*?\\.(?![.]|{space}|$){not_space}*")
    # Every emoji is one of the single code points, or a sequence whose second code point
    # is in the text: a text holding none of these (most) has no emoji at all.
    emoji_chars = set(map(chr, singles)) | {chr(s[1]) for s in sequences}

    def emoji_spans(text: str) -> Iterator[tuple[int, int]]:
        # Same matches as emoji.finditer(text): a match can only begin at a
        # character that begins some emoji, and the scan resumes after it.
        if emoji_chars.isdisjoint(text):
            return
        resume = 0
        for start in emoji_start.finditer(text):
            i = start.start()
            if i >= resume and (hit := emoji.match(text, i)):
                resume = hit.end()
                yield i, resume

    def url_spans(text: str) -> Iterator[tuple[int, int]]:
        # Same URLs as extract_urls_with_indices(text), each found in a window of its run
        # and the character on either side: the extractor looks one character behind a
        # URL (a space there is as good as the start of the text) and one ahead (a space
        # as good as the end), never further.
        for run in dotted_run.finditer(text):
            first = max(run.start() - 1, 0)
            for url in extract_urls_with_indices(text[first : run.end() + 1]):
                start = first + url["indices"][0]
                yield start, start + len(url["url"])

    def count(text: str) -> int:
        normalized = _LINE_ENDINGS.sub("\n", unicodedata.normalize("NFC", text))
        # Keyed by start like parse_tweet's entity maps; a URL wins over an
        # emoji at the same position because parse_tweet checks URLs first.
        entities = {start: (end, emoji_weight) for start, end in emoji_spans(normalized)}
        for start, end in url_spans(normalized):
            entities[start] = (end, url_weight)
        total, pos = 0, 0
        for start in sorted(entities):
            if start >= pos:  # entities starting inside a counted one are skipped
                end, weight = entities[start]
                total += weigh(normalized[pos:start]) + weight
                pos = end
        return (total + weigh(normalized[pos:])) // scale

    return count


def _import_twitter_text() -> None:
    """Import twitter_text without pkg_resources, a third of its import time (0.1 s in every
    command that counts for X). twitter_text calls one function of it, at import, to read
    its emoji list (regexp/emoji.py); it is given that function, reading the same file next
    to the module, and pkg_resources stays unimported for whoever needs the real one."""
    if "twitter_text" in sys.modules or "pkg_resources" in sys.modules:
        return  # imported already, or the real pkg_resources is there for it

    from pathlib import Path

    def resource_string(module: str, name: str) -> bytes:
        return (Path(sys.modules[module].__file__ or "").parent / name).read_bytes()

    stand_in = types.ModuleType("pkg_resources")
    stand_in.resource_string = resource_string  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = stand_in
    try:
        import twitter_text  # noqa: F401  (imported for its modules, used by the caller)
    finally:
        del sys.modules["pkg_resources"]


def _char_weigher(default_weight: int, ranges: list[dict[str, int]]) -> Callable[[str], int]:
    classes = [(_run_of(r["start"], r["end"]), r["weight"] - default_weight) for r in ranges]
    # Most text lies wholly in the range that starts at U+0000 (Latin, Greek, Cyrillic,
    # Arabic, Hebrew…): its weight times its length, without a scan per range.
    first = next((r for r in ranges if r["start"] == 0), None)

    def weigh(segment: str) -> int:
        if first is not None and (not segment or ord(max(segment)) <= first["end"]):
            return first["weight"] * len(segment)
        total = default_weight * len(segment)
        for pattern, delta in classes:
            total += delta * sum(map(len, pattern.findall(segment)))
        return total

    return weigh


def _char_class(code_points: Iterable[int]) -> str:
    """A regular-expression class of these code points, consecutive ones as ranges (a
    class listing thousands of single characters is slow to match)."""
    ranges: list[list[int]] = []
    for c in sorted(set(code_points)):
        if ranges and c == ranges[-1][1] + 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return (
        "["
        + "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges)
        + "]"
    )


def _run_of(first: int, last: int) -> re.Pattern[str]:
    return re.compile(f"[{re.escape(chr(first))}-{re.escape(chr(last))}]+")
