"""tomlpos.key_lines: the line of every key, checked on generated documents against where
each key was written (and tomli, to be sure each document is valid TOML)."""

import tomli
from hypothesis import given
from hypothesis import strategies as st

from stormer.storm.tomlpos import KeyLines, KeyPath, key_lines, line_of

BARE = st.text("abcxyzABZ019_-", min_size=1, max_size=8)
QUOTED = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'), max_size=6
)


def _key(name: str, quoted: bool) -> str:
    return f'"{name}"' if quoted else name


# Each key written as (name, quoted?, dotted under a sub-table?), then a value.
# A bare name may be written quoted or not; any other name only quoted.
NAMES = st.one_of(st.tuples(BARE, st.booleans()), st.tuples(QUOTED, st.just(True)))
KEYS = st.lists(
    st.tuples(NAMES, st.one_of(st.none(), BARE)).map(lambda k: (k[0][0], k[0][1], k[1])),
    min_size=1,
    max_size=6,
    unique_by=lambda k: k[0],
)
# Tables, some as [[arrays]] of tables: (name, is array, keys).
DOCS = st.lists(
    st.tuples(BARE, st.booleans(), KEYS), min_size=1, max_size=5, unique_by=lambda t: t[0]
)


@given(DOCS, st.sampled_from(["", "  ", "\t"]), st.sampled_from([" = ", "=", "  =  "]))
def test_every_key_is_found_on_its_line(
    tables: list[tuple[str, bool, list[tuple[str, bool, str | None]]]], indent: str, eq: str
) -> None:
    lines: list[str] = ["# a comment", ""]
    expected: dict[KeyPath, int] = {}
    for table, is_array, keys in tables:
        lines.append(f"[[{table}]]" if is_array else f"[{table}]")
        prefix: KeyPath = (table, 0) if is_array else (table,)
        expected[prefix] = len(lines)
        sub_tables: set[str] = set()
        for name, quoted, under in keys:
            if under is not None and under in {k[0] for k in keys}:
                under = None  # a dotted key may not reuse a plain key's name
            written = _key(name, quoted)
            path: KeyPath = (*prefix, name)
            if under is not None:
                written = f"{under}.{written}"
                path = (*prefix, under, name)
                sub_tables.add(under)
            lines.append(f"{indent}{written}{eq}1")
            expected[path] = len(lines)
        lines.append("")
    text = "\n".join(lines)
    tomli.loads(text)  # the generated document is valid TOML
    found = key_lines(text)
    for path, line in expected.items():
        assert found.get(path) == line, (path, text)
        # Asked first, before anything else is read: the lazy reading finds it on its own.
        assert line_of(KeyLines(text), path) == line, (path, text)
