"""Line numbers for keys of a TOML document (tomli reports none for valid documents).

A small line scanner, good for the documents people write by hand: `[table]`, `[[array]]`,
`key = value`, dotted keys and one-line inline tables. It answers "on which line is
accounts[2].credentials?" so that every problem in config.toml can say where it is.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import tomli

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)

# `key = …` with a bare key: what _KEY matches on most lines, and the same key.
_BARE_KEY = re.compile(r"\s*([A-Za-z0-9_-]+)\s*=")

KeyPath = tuple[str | int, ...]  # e.g. ("accounts", 2, "credentials")


_INLINE_KEY = re.compile(r"[{,]\s*([A-Za-z0-9_-]+)\s*=")
# A line whose first character but spacing is "[": a table header, or the rare key or value
# line that starts so.
_BRACKETED_LINE = re.compile(r"^[ \t]*\[[^\n]*", re.M)


def _split_dotted(key: str) -> list[str]:
    if "." not in key and '"' not in key and "'" not in key:
        return [key.strip()]  # the usual bare key, without a regular expression
    return [
        _unquoted(part.strip()) for part in re.split(r"\.(?=(?:[^\"']|\"[^\"]*\"|'[^']*')*$)", key)
    ]


def _unquoted(part: str) -> str:
    """A key part without its quotes, only the outer pair: "'" is the key '."""
    if len(part) >= 2 and part[0] == part[-1] and part[0] in "\"'":
        return part[1:-1]
    return part


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map each key path (table names, array indexes, keys) to its 1-based line number."""
    return dict(KeyLines(text))


class KeyLines(Mapping[KeyPath, int]):
    """The 1-based line of each key path of a document, worked out as it is asked for.

    The table headers are found at once. The keys of a table are read the first time a
    path under it is asked for and not found among the headers: a config.toml of 10,000
    accounts has 80,000 keys, and loading one that holds no mistake asks for the lines of
    the account tables and a handful of keys."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._lines: dict[KeyPath, int] = {}
        # The keys of each table not read yet: (its first line's number, start, end) of
        # each stretch of text under a header of that table (and the text before any).
        self._unread: dict[KeyPath, list[tuple[int, int, int]]] = defaultdict(list)
        counts: dict[tuple[str, ...], int] = defaultdict(int)
        prefix: KeyPath = ()
        body_line, body_start = 1, 0
        number, counted_to = 1, 0
        for candidate in _BRACKETED_LINE.finditer(text):  # only such a line can be a header
            line = candidate.group()
            header = _HEADER.match(line)
            if not header or _KEY.match(line):
                continue
            number += text.count("\n", counted_to, candidate.start())
            counted_to = candidate.start()
            self._unread[prefix].append((body_line, body_start, candidate.start()))
            names = tuple(_split_dotted(header.group(2)))
            if header.group(1) == "[[":
                index = counts[names]
                counts[names] += 1
                prefix = (*names, index)
                self._lines.setdefault(names, number)
            else:
                prefix = names
            self._lines.setdefault(prefix, number)
            body_line, body_start = number + 1, candidate.end() + 1
        self._unread[prefix].append((body_line, body_start, len(text)))

    def __contains__(self, path: object) -> bool:
        if path in self._lines:
            return True
        if isinstance(path, tuple):
            self._read_under(path)
        return path in self._lines

    def __getitem__(self, path: KeyPath) -> int:
        if path not in self:
            raise KeyError(path)
        return self._lines[path]

    def __iter__(self) -> Iterator[KeyPath]:
        for prefix in list(self._unread):
            self._read(prefix)
        return iter(self._lines)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _read_under(self, path: KeyPath) -> None:
        """Read the keys of every table `path` may be in: those whose name begins it."""
        for end in range(len(path) + 1):
            if path[:end] in self._unread:
                self._read(path[:end])

    def _read(self, prefix: KeyPath) -> None:
        lines = self._lines
        for first, start, end in self._unread.pop(prefix, ()):
            for number, line in enumerate(self._text[start:end].split("\n"), start=first):
                # Most lines are `key = value`: bare keys are read without the full expression.
                bare = _BARE_KEY.match(line)
                key = bare or _KEY.match(line)
                if not key:
                    continue  # blank, a comment, or inside a value spread over lines
                path = (*prefix, key.group(1)) if bare else (*prefix, *_split_dotted(key.group(1)))
                lines.setdefault(path, number)
                # Keys of a one-line inline table: `credentials = { token = "..." }`.
                rest = line[key.end() :]
                if "{" in rest or "," in rest:
                    for inner in _INLINE_KEY.finditer(rest):
                        lines.setdefault((*path, inner.group(1)), number)


def line_of(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, or of its closest located ancestor."""
    p = tuple(path)
    while p:
        if p in lines:
            return lines[p]
        p = p[:-1]
    return None


@dataclass(frozen=True, slots=True)
class SyntaxErrorAt:
    """Where a TOML document stops being TOML, for a message like a compiler's."""

    reason: str  # tomli's message without its "(at line …, column …)"
    line: int | None  # in the file's own numbering
    column: int | None
    excerpt: str | None  # the text of that line


_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_AT_END = " (at end of document)"
_LONGEST_QUOTED = 200
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def syntax_error(error: tomli.TOMLDecodeError, text: str, first_line: int = 1) -> SyntaxErrorAt:
    """Where `error`, raised reading `text`, is. `first_line` is the file's number for the
    first line of `text` (front matter starts on a post's line 2). The place is read from
    the message ("(at line N, column M)" or "(at end of document)"), which tomli words
    like the standard library's tomllib."""
    message = str(error)
    lines = text.splitlines() or [""]
    found = _POSITION.search(message)
    if found:
        reason = message[: found.start()]
        number, column = int(found.group(1)), int(found.group(2))
    elif message.endswith(_AT_END):  # the parser ran out of text: point past the last line
        reason = message.removesuffix(_AT_END)
        number, column = len(lines), len(lines[-1]) + 1
    else:
        return SyntaxErrorAt(message, None, None, None)
    if reason == "Illegal character '\\n'":
        reason += " (a string not closed by a quote on its line?)"
    excerpt = lines[number - 1] if number <= len(lines) else None
    if excerpt is not None and (len(excerpt) > _LONGEST_QUOTED or _CONTROL.search(excerpt)):
        excerpt = None  # a caret under column 5000, or a terminal escape, helps nobody
    return SyntaxErrorAt(reason, number + first_line - 1, column, excerpt)
