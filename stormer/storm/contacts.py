"""Participants' contacts: what a `contact` cell in participants.csv means, and the Apprise URL
a reminder to it is sent through.

A contact names *where the participant is reached*; how stormer sends there is the
organizer's, named in config (`[reminders] senders`), because it carries the organizer's
secrets (an SMTP login, a bot token):

    alice@example.org, mailto:alice@example.org, mailto://alice@example.org
        e-mail, sent through the `mailto` sender (an Apprise mailto:// or mailtos:// URL of
        the organizer's SMTP server) with `to=` the participant's address alone;
    tgram://123456789, tgram://@channel
        a Telegram chat, sent by the organizer's bot (`tgram` sender: tgram://BOT_TOKEN);
    matrix:@alice:example.org, matrix:!room:example.org, matrix:#alias:example.org
        a Matrix user or room, sent by the organizer's Matrix account (`matrix` sender:
        matrix://user:password@host or matrixs://…);
    any other Apprise URL (discord://id/token, ntfy://…, a full tgram://token/chat)
        the participant's own channel, complete in itself: used as it is.

A contact is never printed: `Contact.kind` ("email", "telegram", "matrix", "discord"…) is
what previews, reports and logs may show. `Contact.ref` is a stable, non-reversible-by-
itself handle (a hash) the outbox keeps instead of the address.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

EMAIL: Final = re.compile(r"^[^@\s:/?#]+@[^@\s:/?#]+\.[^@\s:/?#]+$")
_TELEGRAM_CHAT: Final = re.compile(r"^(-?\d{3,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$")
_TELEGRAM_TOKEN: Final = re.compile(r"^\d{5,12}:[A-Za-z0-9_-]{20,}$")
_MATRIX_TARGET: Final = re.compile(r"^[@!#][^:\s]+:[^\s]+$")
_PHONE: Final = re.compile(r"^\+?[\d().-]{3,}$")
# Apprise schemes as the kind a person would call them.
_KINDS: Final = {
    "mailto": "email",
    "mailtos": "email",
    "tgram": "telegram",
    "matrix": "matrix",
    "matrixs": "matrix",
    "discord": "discord",
}
# The sender (in [reminders] senders) each kind of bare address needs. Part of what a contact
# means, so it lives here rather than on the reminder channel: loading a storm checks the
# names in [reminders] senders against it, and the storm layer imports no channel.
SENDER_FOR: Final = {"email": "mailto", "telegram": "tgram", "matrix": "matrix"}


class BadContact(ValueError):
    """A contact that is not an address stormer can send a reminder to."""


@dataclass(frozen=True, slots=True)
class Contact:
    """One channel to one participant. `address` never leaves this object by default."""

    kind: str  # "email", "telegram", "matrix", or the Apprise scheme of a complete URL
    address: str = field(repr=False)  # the e-mail address, chat id, Matrix id, or whole URL
    needs_sender: bool  # a bare address: sent through the organizer's sender for `kind`
    ref: str = ""  # a hash of the normalized contact: what the outbox keeps

    def __repr__(self) -> str:
        return f"Contact({self.kind})"


# What a contact may be, for a message about one that is none of these.
ACCEPTED: Final = (
    "an e-mail address (name@example.org), a Telegram chat (tgram://CHAT_ID), a Matrix "
    "user or room (matrix:@name:example.org) or a complete Apprise URL (discord://…, ntfy://…)"
)


def parse_contact(text: str) -> Contact:
    """Read one contact as participants.csv writes it. Raises BadContact whose message says
    what is wrong and what a valid one looks like, as a clause that follows "row 3 (Name):
    the contact cannot be used: ". It never repeats the contact, which is private."""
    raw = text.strip()
    if not raw:
        raise BadContact(f"it is empty; write {ACCEPTED}")
    lower = raw.lower()
    if EMAIL.match(raw):
        return _contact("email", raw.lower(), True)
    if lower.startswith("mailto:"):
        rest = raw[len("mailto:") :].removeprefix("//")
        if EMAIL.match(rest):
            return _contact("email", rest.lower(), True)
        raise BadContact(
            "after mailto: comes one e-mail address, like mailto:name@example.org (the "
            "organizer's own SMTP server goes in [reminders] senders, not here)"
        )
    if lower.startswith("matrix:") and not lower.startswith("matrix://"):
        target = raw[len("matrix:") :]
        if _MATRIX_TARGET.match(target):
            return _contact("matrix", target, True)
        raise BadContact(
            "after matrix: comes a Matrix user, room or alias with its server, like "
            "matrix:@name:example.org, matrix:!room:example.org or matrix:#alias:example.org"
        )
    if lower.startswith("tgram://"):
        rest = raw[len("tgram://") :].strip("/")
        if _TELEGRAM_CHAT.match(rest):
            return _contact("telegram", rest, True)
        first = rest.split("/", 1)[0]
        if not _TELEGRAM_TOKEN.match(first):
            raise BadContact(
                "after tgram:// comes a Telegram chat id (a number) or @channel name: "
                "tgram://CHAT_ID or tgram://@channelname (or a bot token and chat, as in "
                "an Apprise URL: tgram://BOT_TOKEN/CHAT_ID)"
            )
        return _contact("telegram", raw, False)
    if "://" in raw:
        # Whether Apprise can send there is Apprise's to say, and loading a storm imports no
        # Apprise: `notify.sender.checked_contact` asks it, for check and the import.
        scheme = lower.split("://", 1)[0]
        if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
            raise BadContact(
                f"what comes before :// is not a URL scheme (letters, like discord://); "
                f"write {ACCEPTED}"
            )
        return _contact(_KINDS.get(scheme, scheme), raw, False)
    if "@" in raw:
        raise BadContact(
            "it is not a whole e-mail address (a name, @ and a domain with a dot, like "
            "name@example.org)"
        )
    if _PHONE.match(raw):
        raise BadContact(f"a phone number is not a contact stormer can send to; write {ACCEPTED}")
    raise BadContact(f"it is neither an e-mail address nor a URL; write {ACCEPTED}")


def _contact(kind: str, address: str, needs_sender: bool) -> Contact:
    digest = hashlib.sha256(f"{kind}\x1f{address}".encode()).hexdigest()[:16]
    return Contact(kind, address, needs_sender, digest)


def apprise_url(contact: Contact, senders: dict[str, str]) -> str:
    """The Apprise URL that reaches `contact` alone. `senders` maps a sender name (mailto,
    tgram, matrix) to the organizer's Apprise URL for it (revealed secrets).

    Raises BadContact when the contact needs a sender that is not configured."""
    if not contact.needs_sender:
        return contact.address
    name = SENDER_FOR[contact.kind]
    sender = senders.get(name)
    if not sender:
        raise BadContact(
            f"{contact.kind} contacts need the `{name}` sender in [reminders] senders: the "
            f"name of the environment variable holding the organizer's {name}:// Apprise URL"
        )
    if contact.kind == "email":
        return _with_query(sender, to=contact.address)
    # Telegram chat ids and Matrix targets are path segments after the sender's own part.
    parts = urlsplit(sender)
    path = parts.path.rstrip("/")
    target = quote(contact.address, safe="@!:-_.")
    query = parts.query
    if contact.kind == "matrix":
        if contact.address.startswith("#"):
            target = "%23" + quote(contact.address[1:], safe=":-_.")
        if "hsreq=" not in query.lower():
            # Apprise appends its own server to a room id unless told not to; room version
            # 12 ids have no server part (!opaque), so the direct room it just created could
            # not be joined (seen against Synapse 1.163). Ids that name a server keep it.
            query = "&".join(q for q in (query, "hsreq=no") if q)
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/{target}", query, ""))


def _with_query(url: str, **params: str) -> str:
    """`url` with `params` set in its query string, replacing any of the same name (a
    sender URL must not carry its own `to`, or the reminder would go there too)."""
    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in {p.lower() for p in params} | {"cc", "bcc"}
    ]
    query += list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
