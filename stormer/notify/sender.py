"""Apprise, the one way stormer sends notifications: organizer alerts and participants'
reminders. (Apprise maintains 100+ services; stormer writes no SMTP, Telegram or Matrix
notification code of its own.)

Here: Apprise loaded with its log kept free of secrets and contacts, whether a URL is usable,
why a message was not delivered (from what Apprise logged), and the organizer's senders
resolved from the environment. The reminder channel that sends through it is
stormer.channels.reminder.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from stormer.secrets import Secret, clean_error, install_log_redaction, redact

if TYPE_CHECKING:
    from stormer.storm import Storm
    from stormer.storm.contacts import Contact

log = logging.getLogger("stormer.notify")


def apprise_module() -> Any:
    """The apprise module, its log lines redacted (it logs a URL it cannot parse, whole)."""
    import apprise

    install_log_redaction()  # secrets redacted in every log record, Apprise's included
    _install_log_filter()  # and participants' addresses are masked in what it logs
    return apprise


def usable_url(url: str) -> bool:
    """Whether Apprise can send to `url` (parsed only: nothing is sent)."""
    apprise = apprise_module()
    with apprise_quiet():
        return apprise.Apprise.instantiate(url) is not None


def checked_contact(text: str) -> Contact:
    """`parse_contact`, plus Apprise's verdict on a contact that is a whole Apprise URL.

    Raises:
        BadContact: the contact cannot be parsed, or Apprise cannot send to it.
    """
    from stormer.storm.contacts import BadContact, parse_contact

    contact = parse_contact(text)
    if "://" in contact.address and not usable_url(contact.address):
        # The scheme is not named: in a URL Apprise does not know, it may be anything.
        raise BadContact(
            "Apprise cannot send to this URL (a service it does not know, or a part of the "
            "URL missing or wrong); each service's URL is described at "
            "https://github.com/caronc/apprise/wiki"
        )
    return contact


@contextmanager
def apprise_quiet() -> Iterator[None]:
    # Apprise loads every plugin on first use; its e-mail plugin imports `imghdr`, deprecated
    # since Python 3.11. Not our warning to act on (and the test suite turns warnings into
    # errors).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*imghdr", category=DeprecationWarning)
        yield


class _AppriseLog(logging.Filter):
    """On Apprise's logger: hands every line to the open `apprise_log` blocks, then lets
    through only what the logger would have let through anyway, with participants'
    addresses masked (Apprise logs each recipient: "Sent Email to alice@…")."""

    def __init__(self) -> None:
        super().__init__()
        self.captures: list[list[str]] = []
        self.level = logging.NOTSET  # the logger's level before a capture lowered it
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact(record.getMessage(), contacts=False)  # captures read by address
        for lines in list(self.captures):
            lines.append(message)
        if record.levelno < self.level:
            return False  # DEBUG lines exist only for the capture
        record.msg, record.args = clean_error(message, contacts=True), None
        return True


_log_filter = _AppriseLog()


def _install_log_filter() -> None:
    logger = logging.getLogger("apprise")
    if _log_filter not in logger.filters:
        _log_filter.level = logger.getEffectiveLevel()
        # First, before the redaction every stormer logger has (stormer.secrets), which masks
        # participants' addresses: the capture reads Apprise's lines by address.
        logger.filters.insert(0, _log_filter)


@contextmanager
def apprise_log() -> Iterator[list[str]]:
    """Collect what Apprise logs (DEBUG included: the SMTP server's refusal of an address is
    logged there) while the block runs, secrets redacted but addresses kept: Apprise's
    `notify` answers only True or False, and its log is where the reason is. Blocks may
    overlap (one per reminder in flight): each sees every line, so callers pick theirs."""
    logger = logging.getLogger("apprise")
    _install_log_filter()
    lines: list[str] = []
    with _log_filter.lock:
        if not _log_filter.captures:
            _log_filter.level = logger.getEffectiveLevel()
            logger.setLevel(logging.DEBUG)
        _log_filter.captures.append(lines)
    try:
        yield lines
    finally:
        with _log_filter.lock:
            _log_filter.captures.remove(lines)
            if not _log_filter.captures:
                logger.setLevel(_log_filter.level)


_REFUSED = re.compile(r"\(5\d\d, b?['\"]([^'\"]*)")  # an SMTP 5xx answer for one address


def failure(said: list[str], address: str) -> tuple[bool, str]:
    """From what Apprise logged, (permanent?, why) for a message to `address`: a 5xx refusal
    of that address is permanent (resending cannot help); anything else may pass later.
    The address itself is never part of `why`."""
    mine = [line for line in said if address and address in line]
    for line in mine:
        m = _REFUSED.search(line)
        if m:
            return True, clean_error(
                f"the mail server refused the address ({m.group(0)[1:4]} {m.group(1)})",
                contacts=True,
            ).replace(address, "")
    shown = [line for line in said if not line.startswith("Socket Exception")][-2:]
    why = "; ".join(shown) or "the service did not take it"
    return False, clean_error(why.replace(address, "<contact>") if address else why, contacts=True)


def env_urls(
    names: Sequence[str],
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, Secret], list[str]]:
    """The Apprise URLs held by the environment variables `names` (name → URL, as Secrets:
    redacted from logs from now on), and the names that are not set."""
    import os

    env = os.environ if environ is None else environ
    urls: dict[str, Secret] = {}
    missing = []
    for name in names:
        value = env.get(name, "").strip()
        if value:
            urls[name] = Secret(value)
        else:
            missing.append(name)
    return urls, missing


def resolve_senders(
    names: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, Secret], list[str]]:
    """The organizer's sender URLs (`[reminders] senders`: sender → environment variable), as
    Secrets, and the variables that are not set."""
    urls, missing = env_urls(list(dict.fromkeys(names.values())), environ)
    return {sender: urls[var] for sender, var in names.items() if var in urls}, missing


def sender_problems(
    storm: Storm,
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, int], list[str]]:
    """For `stormer doctor`: how many contacts of each kind the reminders go to, and what
    stops them (a sender not configured, its variable unset, its URL unusable). Sends
    nothing; names variables, never their values."""
    from stormer.reminders import parsed_contacts
    from stormer.storm.contacts import SENDER_FOR

    kinds: dict[str, int] = {}
    for participant in storm.participants:
        for contact in parsed_contacts(participant):
            kinds[contact.kind] = kinds.get(contact.kind, 0) + 1
    senders, _ = resolve_senders(storm.reminder_senders, environ)
    wrong = []
    for kind in sorted(kinds):
        sender = SENDER_FOR.get(kind)
        if sender is None:
            continue  # complete Apprise URLs, checked when loaded
        variable = storm.reminder_senders.get(sender)
        if variable is None:
            wrong.append(
                f"{kinds[kind]} {kind} contact(s) but no `{sender}` sender in [reminders] senders"
            )
        elif sender not in senders:
            wrong.append(f"${variable} (the `{sender}` sender) is not set")
        elif not usable_url(senders[sender].reveal()):
            wrong.append(f"${variable} is not a usable Apprise URL")
    return kinds, wrong
