"""Participants' contacts: what a cell of participants.csv means, and the Apprise URL that
reaches that one participant — never anyone else, never quoted in an error."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from stormer.notify.sender import checked_contact
from stormer.storm.contacts import BadContact, apprise_url, parse_contact

SENDERS = {
    "mailto": "mailtos://user:pw@smtp.example.org?from=storm@example.org&to=org@x.org"
    "&cc=boss@x.org",
    "tgram": "tgram://123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef",
    "matrix": "matrixs://bot:pw@matrix.example.org",
}


@pytest.mark.parametrize(
    ("text", "kind", "address", "needs_sender"),
    [
        ("Alice@Example.ORG", "email", "alice@example.org", True),
        ("mailto:alice@example.org", "email", "alice@example.org", True),
        ("mailto://alice@example.org", "email", "alice@example.org", True),
        ("tgram://123456789", "telegram", "123456789", True),
        ("tgram://-1001234567890", "telegram", "-1001234567890", True),
        ("tgram://@storm_channel", "telegram", "@storm_channel", True),
        (
            "tgram://123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef/987",
            "telegram",
            "tgram://123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef/987",
            False,
        ),
        ("matrix:@alice:example.org", "matrix", "@alice:example.org", True),
        ("matrix:!abcDEF:example.org", "matrix", "!abcDEF:example.org", True),
        ("matrix:#storm:example.org", "matrix", "#storm:example.org", True),
        (
            "discord://1234567/tokentokentoken",
            "discord",
            "discord://1234567/tokentokentoken",
            False,
        ),
        ("ntfy://ntfy.example.org/topic", "ntfy", "ntfy://ntfy.example.org/topic", False),
    ],
)
def test_contacts_are_read_by_their_shape(
    text: str, kind: str, address: str, needs_sender: bool
) -> None:
    contact = parse_contact(text)
    assert (contact.kind, contact.address, contact.needs_sender) == (kind, address, needs_sender)
    assert address not in repr(contact) and len(contact.ref) == 16


@pytest.mark.parametrize(
    "text",
    [
        "",
        "alice",
        "alice@",
        "mailto:bob",
        "mailto://user:secret@smtp.example.org",
        "tgram://not-a-chat",
        "matrix:alice",
        "nosuchscheme://private-thing",
        "+34 600 000 000",
    ],
)
def test_a_bad_contact_is_refused_without_being_quoted(text: str) -> None:
    with pytest.raises(BadContact) as e:
        checked_contact(text)  # parse_contact, and Apprise's verdict on a URL
    if text:
        assert text not in str(e.value)


def test_the_same_contact_written_two_ways_is_one_contact() -> None:
    assert parse_contact("mailto:ALICE@example.org").ref == parse_contact("alice@example.org").ref
    assert parse_contact("alice@example.org").ref != parse_contact("bob@example.org").ref


def test_an_email_goes_to_the_participant_alone() -> None:
    url = apprise_url(parse_contact("alice@example.org"), SENDERS)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("mailtos", "user:pw@smtp.example.org")
    query = parse_qs(parts.query)
    # The sender's own `to` and `cc` would copy every reminder to someone else: dropped.
    assert query == {"from": ["storm@example.org"], "to": ["alice@example.org"]}


def test_chat_contacts_are_targets_of_the_organizers_bot_or_account() -> None:
    assert (
        apprise_url(parse_contact("tgram://987654"), SENDERS)
        == "tgram://123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef/987654"
    )
    assert (
        apprise_url(parse_contact("matrix:@alice:example.org"), SENDERS)
        == "matrixs://bot:pw@matrix.example.org/@alice:example.org?hsreq=no"
    )
    assert (
        apprise_url(parse_contact("matrix:#storm:example.org"), SENDERS)
        == "matrixs://bot:pw@matrix.example.org/%23storm:example.org?hsreq=no"
    )
    complete = "discord://1234567/tokentokentoken"
    assert apprise_url(parse_contact(complete), {}) == complete


def test_a_contact_whose_sender_is_missing_says_which() -> None:
    with pytest.raises(BadContact, match=r"`tgram` sender in \[reminders\] senders"):
        apprise_url(parse_contact("tgram://987654"), {"mailto": SENDERS["mailto"]})
