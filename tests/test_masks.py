"""Masking known values in log lines (stormer.secrets._Masks) does what one regex
alternation of them all, longest first, does: the oracle here, which it replaced because
its cost grew with the number of values (bench/redaction.py)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from stormer.secrets import _Masks

# A small alphabet, so that values overlap, nest and repeat inside the texts.
ALPHABET = "ab@.:-"


def oracle(values: set[str], text: str, mask: str) -> str:
    if not values:
        return text
    ordered = sorted(values, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))).sub(mask, text)


@settings(max_examples=400)
@given(
    window=st.integers(min_value=1, max_value=6),
    values=st.sets(st.text(ALPHABET, min_size=1, max_size=9), max_size=12),
    pieces=st.lists(st.text(ALPHABET, max_size=12), max_size=6),
    data=st.data(),
)
def test_masking_matches_a_longest_first_alternation(
    window: int, values: set[str], pieces: list[str], data: st.DataObject
) -> None:
    # Texts made of the values themselves and of noise around and between them.
    chosen = data.draw(st.lists(st.sampled_from(sorted(values)), max_size=6)) if values else []
    text = "".join(p + v for p, v in zip(pieces, chosen + [""] * len(pieces), strict=False))
    masks = _Masks(window)
    for value in sorted(values):  # added one by one, in any order: the result is the same
        masks.add(value)
    assert masks.sub(text, "<m>") == oracle(values, text, "<m>")


def test_a_value_is_masked_wherever_it_starts_even_among_many() -> None:
    masks = _Masks(6)
    tokens = [f"tok-{n:05d}-secret" for n in range(20_000)]
    for token in tokens:
        masks.add(token)
    line = f"GET /bot{tokens[12_345]}/sendMessage; then {tokens[0]}{tokens[19_999]}."
    assert (
        masks.sub(line, "<redacted>")
        == "GET /bot<redacted>/sendMessage; then <redacted><redacted>."
    )
    assert masks.sub("tok-00001-secre", "<redacted>") == "tok-00001-secre"  # not a whole value
