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


def parse_contact(text: str) -> Contact:
    """Read one contact as participants.csv writes it. Raises BadContact saying what is
    accepted. The error message never repeats the contact itself."""
    raw = text.strip()
    if not raw:
        raise BadContact("an empty contact")
    lower = raw.lower()
    if EMAIL.match(raw):
        return _contact("email", raw.lower(), True)
    if lower.startswith("mailto:"):
        rest = raw[len("mailto:") :].removeprefix("//")
        if EMAIL.match(rest):
            return _contact("email", rest.lower(), True)
        raise BadContact(
            "a mailto: contact must be one e-mail address (mailto:name@example.org);"
            " the organizer's SMTP server goes in [reminders] senders"
        )
    if lower.startswith("matrix:") and not lower.startswith("matrix://"):
        target = raw[len("matrix:") :]
        if _MATRIX_TARGET.match(target):
            return _contact("matrix", target, True)
        raise BadContact(
            "a matrix: contact is a user, room or alias with its server "
            "(matrix:@name:example.org, matrix:!room:example.org)"
        )
    if lower.startswith("tgram://"):
        rest = raw[len("tgram://") :].strip("/")
        if _TELEGRAM_CHAT.match(rest):
            return _contact("telegram", rest, True)
        first = rest.split("/", 1)[0]
        if not _TELEGRAM_TOKEN.match(first):
            raise BadContact(
                "a tgram:// contact is a chat id or @channel (tgram://123456789),"
                " or a whole Apprise URL with a bot token"
            )
        return _contact("telegram", raw, False)
    if "://" in raw:
        # Whether Apprise can send there is Apprise's to say, and loading a storm imports no
        # Apprise: `notify.sender.checked_contact` asks it, for check and the import.
        scheme = lower.split("://", 1)[0]
        if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
            raise BadContact("not a URL scheme")
        return _contact(_KINDS.get(scheme, scheme), raw, False)
    raise BadContact(
        "not an e-mail address or an Apprise URL (mailto:…, tgram://…, matrix:@…, discord://…)"
    )


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
            f"{contact.kind} contacts need the `{name}` sender in [reminders] "
            f"senders (the environment variable holding the organizer's "
            f"{name}:// Apprise URL)"
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
