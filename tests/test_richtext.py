from hypothesis import given, settings
from hypothesis import strategies as st

from stormer.lengths import find_hashtags, find_urls
from stormer.richtext import bluesky_facets

FAMILY = "👨\u200d👩\u200d👧\u200d👦"  # 25 UTF-8 bytes
TAG = "app.bsky.richtext.facet#tag"
LINK = "app.bsky.richtext.facet#link"

# Multi-byte text of every width (2-byte Arabic and harakat, 3-byte CJK and
# ZWJ, 4-byte emoji) around hashtag and URL fragments.
_PIECES = st.sampled_from(
    [
        "#",
        "#tag",
        "#الحرية_للطلاب",
        "https://",
        "example.org/",
        "a.",
        ")",
        "(",
        " ",
        "_",
        "&",
        "الحرية",
        "\u0650",
        "日本語",
        FAMILY,
        "🇵🇸",
        "\ufe0f",
        "\u20e3",
        "e\u0301",
        "\n",
    ]
)
TEXTS = st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=25).map("".join)


def sliced(text: str, facet: dict) -> str:
    index = facet["index"]
    return text.encode("utf-8")[index["byteStart"] : index["byteEnd"]].decode("utf-8")


def test_hashtag_after_arabic_text() -> None:
    text = "الحرية للطلاب #FreePalestinianStudents"
    (facet,) = bluesky_facets(text)
    assert facet["features"] == [{"$type": TAG, "tag": "FreePalestinianStudents"}]
    # 12 Arabic letters of 2 bytes and 2 spaces: byte 26, character 14.
    assert facet["index"] == {"byteStart": 26, "byteEnd": 50}
    assert sliced(text, facet) == "#FreePalestinianStudents"


def test_link_after_zwj_emoji() -> None:
    text = FAMILY + " https://example.org/students"
    (facet,) = bluesky_facets(text)
    assert facet["features"] == [{"$type": LINK, "uri": "https://example.org/students"}]
    assert facet["index"] == {"byteStart": 26, "byteEnd": 26 + 28}
    assert sliced(text, facet) == "https://example.org/students"


def test_hashtag_after_cjk() -> None:
    text = "学生に自由を #FreeThem"
    (facet,) = bluesky_facets(text)
    assert facet["index"] == {"byteStart": 19, "byteEnd": 28}
    assert sliced(text, facet) == "#FreeThem"


def test_arabic_hashtag() -> None:
    text = "معاً #الحرية_للطلاب"
    (facet,) = bluesky_facets(text)
    assert facet["features"] == [{"$type": TAG, "tag": "الحرية_للطلاب"}]
    assert sliced(text, facet) == "#الحرية_للطلاب"


def test_trailing_period_not_in_link() -> None:
    text = "Read https://example.org/statement."
    (facet,) = bluesky_facets(text)
    assert facet["features"][0]["uri"] == "https://example.org/statement"
    assert sliced(text, facet) == "https://example.org/statement"


def test_sorted_by_byte_start_and_fragment_is_not_a_tag() -> None:
    text = "日本 https://example.org/page#section #Tag1 #Tag2"
    facets = bluesky_facets(text)
    assert [f["features"][0]["$type"] for f in facets] == [LINK, TAG, TAG]
    assert [sliced(text, f) for f in facets] == [
        "https://example.org/page#section",
        "#Tag1",
        "#Tag2",
    ]


def test_tag_at_most_64_graphemes() -> None:
    assert len(bluesky_facets("#" + "a" * 64)) == 1
    assert bluesky_facets("#" + "a" * 65) == []


def test_tag_at_most_640_bytes() -> None:
    letter = "ب\u064b\u064c\u064d\u064e\u064f"  # one grapheme, 12 bytes
    assert len(bluesky_facets("#" + letter * 53)) == 1  # 636 bytes
    assert bluesky_facets("#" + letter * 54) == []  # 648 bytes, 54 graphemes


def test_changing_a_result_does_not_change_the_next() -> None:
    text = "#Tag https://example.org"
    first = bluesky_facets(text)
    first[0]["features"][0]["tag"] = "Changed"
    first[1]["index"]["byteStart"] = 0
    first.pop()
    tag, link = bluesky_facets(text)
    assert tag == {
        "index": {"byteStart": 0, "byteEnd": 4},
        "features": [{"$type": TAG, "tag": "Tag"}],
    }
    assert link["index"] == {"byteStart": 5, "byteEnd": 24}


def test_no_facets_in_plain_text() -> None:
    assert bluesky_facets("") == []
    assert bluesky_facets("no tags, no links: #2024 & more") == []


@settings(max_examples=200)
@given(TEXTS)
def test_facets_slice_back_to_hashtags_and_urls(text: str) -> None:
    facets = bluesky_facets(text)
    previous_end = 0
    for facet in facets:
        index = facet["index"]
        assert previous_end <= index["byteStart"] < index["byteEnd"]
        previous_end = index["byteEnd"]
        (feature,) = facet["features"]
        expected = "#" + feature["tag"] if feature["$type"] == TAG else feature["uri"]
        assert sliced(text, facet) == expected
    links = [f for f in facets if f["features"][0]["$type"] == LINK]
    assert len(links) == len(find_urls(text))
    assert len(facets) - len(links) <= len(find_hashtags(text))


def test_mentions_get_a_facet_only_when_resolved_with_byte_offsets() -> None:
    from stormer.richtext import find_mentions

    text = "Ça va @Alice.Example.org? (@bob.test) mail a@b.org https://x.org/@c.test @nope."
    assert [handle for _, _, handle in find_mentions(text)] == ["alice.example.org", "bob.test"]
    facets = bluesky_facets(text, {"alice.example.org": "did:plc:alice"})
    raw = text.encode()
    spans = [
        (raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(), f["features"][0])
        for f in facets
    ]
    assert spans == [
        (
            "@Alice.Example.org",
            {"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:alice"},
        ),
        (
            "https://x.org/@c.test",
            {"$type": "app.bsky.richtext.facet#link", "uri": "https://x.org/@c.test"},
        ),
    ]
    assert facets[0]["index"]["byteStart"] == len("Ça va ".encode()) == 7
    assert not any("mention" in str(f) for f in bluesky_facets(text))  # none resolved
