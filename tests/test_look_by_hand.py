"""Where an organizer looks by hand for a post nobody could confirm (`Platform.look_by_hand_at`,
`ops.report.hand_checks`): a page of the platform's own web app, filled in from the account."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stormer.channels import registry
from stormer.channels.base import opening_words
from stormer.ops.report import fix_for, hand_checks, report_rows
from stormer.outbox.models import Outbox, State
from stormer.storm import load_storm
from stormer.storm.model import Account
from tests.example import copy_example

TEXT = "Free the students held without charge https://fps.example/call #FreePalestinianStudents"
TAG = "#FreePalestinianStudents"


def account(platform: str, **kw: str | None) -> Account:
    fields: dict[str, str | None] = {"base_url": None, "target": None, "handle": None} | kw
    return Account(name="a", platform=platform, langs=("en",), credentials=(), line=None, **fields)


def test_mastodon_sends_the_organizer_to_the_instances_hashtag_page() -> None:
    got = registry.get("mastodon").look_by_hand_at(
        account("mastodon", base_url="https://social.example.org/"), TEXT, TAG
    )
    assert got == "https://social.example.org/tags/FreePalestinianStudents"


def test_bluesky_searches_the_accounts_posts_for_the_opening_words() -> None:
    got = registry.get("bluesky").look_by_hand_at(
        account("bluesky", handle="fps-campaign.example.org"), TEXT, TAG
    )
    assert got is not None
    parts = urlsplit(got)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "bsky.app", "/search")
    assert parse_qs(parts.query)["q"] == [
        'from:fps-campaign.example.org "Free the students held without charge"'
    ]


def test_x_searches_the_exact_opening_words_latest_first() -> None:
    got = registry.get("x").look_by_hand_at(account("x"), "Liberté pour les étudiants", TAG)
    assert got is not None
    query = parse_qs(urlsplit(got).query)
    assert query == {"q": ['"Liberté pour les étudiants"'], "f": ["live"]}


@pytest.mark.parametrize(
    ("chat", "page"),
    [("@fps_channel", "https://t.me/fps_channel"), ("-1001234567890", None), ("@", None)],
)
def test_telegram_links_only_a_public_chat(chat: str, page: str | None) -> None:
    assert registry.get("telegram").look_by_hand_at(
        account("telegram", target=chat), TEXT, TAG
    ) == (page)


def test_matrix_links_the_room_through_matrix_to() -> None:
    got = registry.get("matrix").look_by_hand_at(
        account("matrix", target="#fps:matrix.example.org"), TEXT, TAG
    )
    assert got == "https://matrix.to/#/%23fps:matrix.example.org"


@pytest.mark.parametrize(
    ("platform", "fields"),
    [("discord", {}), ("bluesky", {"handle": None}), ("matrix", {"target": None})],
)
def test_no_page_when_there_is_none_or_the_account_lacks_what_it_needs(
    platform: str, fields: dict[str, str | None]
) -> None:
    assert registry.get(platform).look_by_hand_at(account(platform, **fields), TEXT, TAG) is None


def test_a_post_that_opens_with_its_hashtag_is_searched_by_the_words_after_it() -> None:
    x = registry.get("x")
    got = x.look_by_hand_at(account("x"), "#FreePalestinianStudents @un now, free them #x", TAG)
    assert got is not None
    assert parse_qs(urlsplit(got).query)["q"] == ['"now, free them"']
    assert x.look_by_hand_at(account("x"), f"{TAG} https://fps.example", TAG) is None


@given(st.text())
def test_the_opening_words_are_a_run_of_the_texts_plain_words(text: str) -> None:
    words = opening_words(text).split()
    tokens = text.split()
    runs = [tokens[i : i + len(words)] for i in range(len(tokens) - len(words) + 1)]
    assert words in runs
    assert len(words) <= 8
    assert not any(w[0] in "#@" or "://" in w for w in words)


def test_report_rows_name_the_page_for_unconfirmed_posts_only(tmp_path: Path) -> None:
    storm = load_storm(copy_example(tmp_path / "storm"))
    mastodon = next(a for a in storm.accounts if a.platform == "mastodon")
    t = datetime(2031, 3, 13, 18, 0, tzinfo=UTC)

    def row(state: str, kind: str = "post") -> Outbox:
        return Outbox(
            id=f"{state}-{kind}",
            kind=kind,
            state=state,
            account=mastodon.name,
            platform="mastodon",
            fire_at=t,
            text=TEXT,
            source="posts/en.md",
            attempts=1,
            error="no answer" if state == State.UNCONFIRMED else None,
        )

    unconfirmed, sent = report_rows(
        [row(State.UNCONFIRMED), row(State.SENT)], t, hand_checks(storm)
    )
    tag_page = f"{mastodon.base_url}/tags/{storm.hashtag.lstrip('#')}"
    assert (unconfirmed["look_at"], sent["look_at"]) == (tag_page, None)
    assert fix_for(unconfirmed) == (
        f"look at {tag_page}: if the post is not there, send it with "
        f"`stormer post --account {mastodon.name} --post posts/en.md`"
    )
