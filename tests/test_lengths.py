import json
import subprocess
import sys
import unicodedata

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from twitter_text import parse_tweet

from stormer.channels.registry import get
from stormer.lengths import (
    BLUESKY_LIMIT,
    BLUESKY_MAX_BYTES,
    DISCORD_LIMIT,
    MASTODON_LIMIT,
    TELEGRAM_CAPTION_LIMIT,
    TELEGRAM_TEXT_LIMIT,
    X_LIMIT,
    bluesky_length,
    discord_length,
    find_hashtags,
    find_urls,
    graphemes,
    mastodon_length,
    telegram_length,
    utf8_bytes,
    x_length,
)

FAMILY = "👨\u200d👩\u200d👧\u200d👦"  # 7 code points, 11 UTF-16 units, 25 UTF-8 bytes
LONG_URL = "https://example.org/" + "a" * 100

# Fragments that exercise every rule: URL pieces, emoji parts (ZWJ, variation
# selector, keycap, skin tone, flags), combining marks, Arabic harakat,
# Hangul jamo, a Devanagari conjunct, CJK and line endings; mixed with
# arbitrary text.
_PIECES = st.sampled_from(
    [
        "https://",
        "http://",
        "t.co/",
        "x.org",
        ".com",
        ".ws",
        ".",
        "/",
        "#",
        "@",
        "(",
        ")",
        ",",
        "!",
        "'",
        '"',
        "&",
        "_",
        " ",
        "\u3000",  # twitter-text's spaces: a URL ends at any of them
        "\xa0",
        "www.",
        "?q=1",
        "\n",
        "\r\n",
        "\r",
        "a",
        "1",
        "\u200d",
        "\ufe0f",
        "\u20e3",
        "👨",
        "👩",
        "🏽",
        "🇵",
        "🇸",
        "❤",
        "🔥",
        "©",
        "e\u0301",
        "\u0300",
        "日本",
        "الحرية",
        "\u064e",
        "\u1100",
        "\u1161",
        "\u11a8",
        "क्",
        "ष",
    ]
)
TEXTS = st.lists(st.one_of(_PIECES, st.text(max_size=5)), max_size=30).map("".join)


class TestX:
    def test_280_ascii_fits_281_does_not(self) -> None:
        assert x_length("a" * 280) == X_LIMIT
        assert x_length("a" * 281) == X_LIMIT + 1

    def test_cjk_weighs_two(self) -> None:
        assert x_length("日" * 140) == X_LIMIT
        assert x_length("日" * 141) == X_LIMIT + 2

    def test_url_counts_23_whatever_its_length(self) -> None:
        assert x_length(LONG_URL) == 23
        assert x_length("Read " + LONG_URL + " now") == 5 + 23 + 4

    def test_zwj_family_counts_2(self) -> None:
        assert x_length(FAMILY) == 2
        assert x_length(FAMILY * 140) == X_LIMIT

    def test_decomposed_text_counts_like_composed(self) -> None:
        assert x_length("e\u0301" * 280) == x_length("é" * 280) == X_LIMIT

    # Emoji inside or straddling the end of a URL: the URL swallows them.
    @pytest.mark.parametrize("text", ["https://i❤.ws", "x.com/1️⃣", "go x.com/1️⃣ 🇵🇸.ps\r\n"])
    def test_overlapping_entities_like_parse_tweet(self, text: str) -> None:
        assert x_length(text) == parse_tweet(text).weightedLength

    @settings(max_examples=200, deadline=None)
    @given(TEXTS)
    def test_same_as_parse_tweet(self, text: str) -> None:
        assert x_length(text) == parse_tweet(text).weightedLength

    @settings(max_examples=200, deadline=None)
    @given(TEXTS)
    def test_normalisation_does_not_change_length(self, text: str) -> None:
        assert x_length(text) == x_length(unicodedata.normalize("NFC", text))

    def test_importing_lengths_does_not_load_twitter_text(self) -> None:
        code = "import sys, stormer.lengths; print('twitter_text' in sys.modules)"
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "False"

    def test_counting_imports_twitter_text_without_pkg_resources(self) -> None:
        # twitter_text reads its emoji list through pkg_resources; stormer gives it a stand-in
        # for that import alone. The count must not change, and a later import of
        # pkg_resources must get the real module.
        text = "Free them ✊🏽 https://example.org/a_(b) #FreePalestinianStudents"
        code = (
            "import sys; from stormer.lengths import x_length; "
            f"print(x_length({text!r})); print('pkg_resources' in sys.modules); "
            "import pkg_resources; print(hasattr(pkg_resources, 'working_set'))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.split() == [str(parse_tweet(text).weightedLength), "False", "True"]


class TestGraphemes:
    @given(st.text(alphabet=st.characters(max_codepoint=0x2FF)))
    def test_below_the_combining_marks_only_crlf_joins(self, text: str) -> None:
        assert graphemes(text) == len(regex.findall(r"\X", text))

    @given(TEXTS)
    def test_same_as_unicode_segmentation(self, text: str) -> None:
        assert graphemes(text) == len(regex.findall(r"\X", text))


class TestBluesky:
    # Each unit is 4 graphemes but 14 code points: a ZWJ family, two Arabic
    # letters each carrying a haraka that joins its letter, and a Latin letter.
    UNIT = FAMILY + "ب\u0650" + "س\u0652" + "a"

    def test_graphemes_not_code_points(self) -> None:
        text = self.UNIT * 75
        assert len(text) == 75 * 12
        assert bluesky_length(text) == BLUESKY_LIMIT
        assert bluesky_length(text + "x") == BLUESKY_LIMIT + 1

    def test_shadda_and_kasra_stay_on_their_letter(self) -> None:
        word = "حُرِّيَّة"  # 4 letters, 5 harakat
        assert (len(word), graphemes(word)) == (9, 4)

    def test_byte_limit_can_bite_before_grapheme_limit(self) -> None:
        text = FAMILY * 300
        assert bluesky_length(text) == BLUESKY_LIMIT
        assert utf8_bytes(text) == 25 * 300 > BLUESKY_MAX_BYTES

    @settings(max_examples=200)
    @given(TEXTS, TEXTS)
    def test_joining_never_adds_graphemes(self, a: str, b: str) -> None:
        # Clusters can merge across the seam (and, through Indic conjuncts,
        # more than one of them), but never split.
        assert graphemes(a + b) <= graphemes(a) + graphemes(b)


class TestMastodon:
    def test_urls_count_23_and_remote_mentions_count_as_local(self) -> None:
        head = "@alice@example.social " + LONG_URL + " "  # "@alice " + 23 + " "
        assert mastodon_length(head) == 7 + 23 + 1
        assert mastodon_length(head + "a" * 469) == MASTODON_LIMIT
        assert mastodon_length(head + "a" * 470) == MASTODON_LIMIT + 1

    def test_counts_graphemes(self) -> None:
        assert mastodon_length("ب\u0650" * 500) == MASTODON_LIMIT
        assert mastodon_length(FAMILY) == 1

    def test_short_url_also_counts_23(self) -> None:
        assert mastodon_length("https://x.org") == 23

    def test_trailing_period_is_not_part_of_the_url(self) -> None:
        assert mastodon_length(LONG_URL + ".") == 24

    def test_instance_url_length(self) -> None:
        assert mastodon_length(LONG_URL, url_length=30) == 30

    def test_at_sign_glued_to_a_word_is_not_a_mention(self) -> None:
        assert mastodon_length("mail@alice@example.social") == 25

    @settings(max_examples=200)
    @given(TEXTS)
    def test_without_urls_or_mentions_it_is_graphemes(self, text: str) -> None:
        plain = text.replace("@", "").replace(":", "")
        assert mastodon_length(plain) == graphemes(plain)


class TestTelegram:
    def test_emoji_outside_bmp_counts_two(self) -> None:
        assert telegram_length("😀") == 2
        assert telegram_length("日") == 1
        assert telegram_length(FAMILY) == 11

    def test_limits(self) -> None:
        assert telegram_length("😀" * 2048) == TELEGRAM_TEXT_LIMIT
        assert telegram_length("😀" * 2048 + "a") == TELEGRAM_TEXT_LIMIT + 1
        assert telegram_length("a" * 1024) == TELEGRAM_CAPTION_LIMIT


class TestDiscord:
    def test_counts_code_points(self) -> None:
        assert discord_length("a" * 2000) == DISCORD_LIMIT
        assert discord_length("a" * 2001) == DISCORD_LIMIT + 1
        assert discord_length("😀" * 2000) == DISCORD_LIMIT
        assert discord_length(FAMILY) == 7

    @settings(max_examples=200)
    @given(TEXTS)
    def test_counters_are_ordered(self, text: str) -> None:
        # A grapheme holds at least one code point; a code point one or two
        # UTF-16 units.
        assert graphemes(text) <= discord_length(text) <= telegram_length(text)


class TestMatrix:
    @given(TEXTS)
    def test_length_is_the_bytes_of_the_json_content(self, text: str) -> None:
        # What the spec limits is the event's JSON; the count must equal it exactly.
        content = {"msgtype": "m.text", "body": text}
        assert get("matrix").length(text) == len(json.dumps(content).encode())


class TestFindUrls:
    @pytest.mark.parametrize(
        ("text", "url"),
        [
            ("See https://example.org/a.", "https://example.org/a"),
            ("(see https://w.org/wiki/Foo_(bar))", "https://w.org/wiki/Foo_(bar)"),
            ("(https://example.org/a)", "https://example.org/a"),
            ("Really? https://example.org/a?b=1!", "https://example.org/a?b=1"),
            ('"https://example.org/q"', "https://example.org/q"),
            ("https://example.org/a, https://b.org", "https://example.org/a"),
            ("見て https://example.org/a。", "https://example.org/a"),
            ("HTTP://EXAMPLE.ORG/x;", "HTTP://EXAMPLE.ORG/x"),
        ],
    )
    def test_trailing_punctuation_excluded(self, text: str, url: str) -> None:
        start, end, found = find_urls(text)[0]
        assert found == url == text[start:end]

    @pytest.mark.parametrize(
        "text", ["xhttps://example.org", "https://", "https://.", "ftp://example.org"]
    )
    def test_not_urls(self, text: str) -> None:
        assert find_urls(text) == []

    @settings(max_examples=200)
    @given(TEXTS)
    def test_spans_slice_back(self, text: str) -> None:
        for start, end, url in find_urls(text):
            assert text[start:end] == url
            assert url.lower().startswith(("http://", "https://"))
            assert url[-1] not in ".,!?:;'\""


class TestFindHashtags:
    @pytest.mark.parametrize(
        ("text", "tags"),
        [
            ("Now! #FreePalestinianStudents", ["FreePalestinianStudents"]),
            ("#الحرية_للطلاب", ["الحرية_للطلاب"]),
            ("#حُرِّيَّة.", ["حُرِّيَّة"]),
            ("(#tag) #tag2_x, #日本語", ["tag", "tag2_x", "日本語"]),
            ("#2024 #1 a#b &#39; &#x27; #️⃣ 1️⃣", []),
            ("#️⃣tag", []),  # the "#" belongs to the keycap emoji
            ("https://example.org/page#section #real", ["real"]),
        ],
    )
    def test_tags(self, text: str, tags: list[str]) -> None:
        assert [tag for _, _, tag in find_hashtags(text)] == tags

    @settings(max_examples=200)
    @given(TEXTS)
    def test_spans_slice_back(self, text: str) -> None:
        urls = find_urls(text)
        for start, end, tag in find_hashtags(text):
            assert text[start:end] == "#" + tag
            assert not tag.isdigit()
            assert all(end <= url_start or url_end <= start for url_start, url_end, _ in urls)
