"""Apprise, the one way stormer sends notifications: organizer alerts and participants'
reminders. (Apprise maintains 100+ services; stormer writes no SMTP, Telegram or Matrix
notification code of its own.)

`ReminderChannel` is what the dispatcher sends a reminder through, with the same shape as a
platform plugin (stage before T, publish at T, reconcile after a crash), so reminders take
the same claim / lease / outcome path as posts: never sent twice, never lost.

- Staging finds the participant's contact in participants.csv (the outbox keeps only a hash
  of it), builds the Apprise URL that reaches that participant alone, and writes the
  calendar attachment. A contact that is gone, unusable or lacks its sender is `Rejected`
  (the item becomes `dead`, its reason in the report).
- Publishing sends one message to one recipient. Apprise answers only yes or no; a "no" is
  retried like a post (`Transient`) until the retry deadline, then `dead` with the reason
  Apprise logged, contacts scrubbed.
- Apprise offers no way to ask whether a message arrived, so `reconcile` answers None: an
  item whose worker died while sending becomes `unconfirmed`, never resent blindly.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from stormer.secrets import Secret, clean_error, install_log_redaction, redact

if TYPE_CHECKING:
    from stormer.channels.base import NotPosted, Published, Staged
    from stormer.queue import QueueItem
    from stormer.storm.contacts import Contact
    from stormer.storm.loader import Participant, Storm

log = logging.getLogger("stormer.notify")


def apprise_module() -> Any:
    """The apprise module, its log lines redacted (it logs a URL it cannot parse, whole)."""
    import apprise

    install_log_redaction()  # the "apprise" logger is among those secrets.py filters
    _install_log_filter()  # and participants' addresses are masked in what it logs
    return apprise


def usable_url(url: str) -> bool:
    """Whether Apprise can send to `url` (parsed only: nothing is sent)."""
    apprise = apprise_module()
    with apprise_quiet():
        return apprise.Apprise.instantiate(url) is not None


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
        message = redact(record.getMessage())
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
        logger.addFilter(_log_filter)


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


# --- reminders through the dispatcher ---------------------------------------------------------


@dataclass
class ReminderConnection:
    """What the dispatcher hands `ReminderChannel` for one reminder (the `Connection` of a
    platform plugin, minus the HTTP client: Apprise owns its transports)."""

    storm: Storm
    senders: dict[str, Secret] = field(repr=False)
    workdir: Path | None = None  # where calendar attachments are written


class ReminderChannel:
    """Sends one reminder to one participant through Apprise; see the module docstring."""

    name: ClassVar[str] = "reminder"
    idempotency_window: ClassVar[None] = None
    concurrency: ClassVar[int] = 100  # Apprise's services, a few at a time
    pace: ClassVar[None] = None

    def __init__(self) -> None:
        # item id → (the Apprise URL, a secret; the address, to read Apprise's log by)
        self._to: dict[str, tuple[Secret, str]] = {}
        self._index: dict[tuple[str, str], tuple[Participant, Contact]] | None = None

    async def stage(self, item: QueueItem, conn: ReminderConnection) -> Staged:
        from stormer.channels.base import Staged
        from stormer.errors import MissingCredential, Rejected
        from stormer.reminders import contact_index
        from stormer.storm.contacts import SENDER_FOR, BadContact, apprise_url

        if self._index is None:
            self._index = contact_index(conn.storm)
        found = self._index.get((item.account, str(item.payload.get("contact"))))
        if found is None:
            raise Rejected(
                "the participant or this contact is no longer in participants.csv",
                platform=self.name,
            )
        participant, contact = found
        sender = SENDER_FOR[contact.kind] if contact.needs_sender else None
        variable = conn.storm.reminder_senders.get(sender or "")
        if sender and sender not in conn.senders and variable:
            # Fixable before T: staging reports it and tries again.
            raise MissingCredential(
                f"the `{sender}` reminder sender is not set: put its "
                f"Apprise URL in the environment variable {variable}",
                platform=self.name,
            )
        try:
            url = apprise_url(contact, {k: v.reveal() for k, v in conn.senders.items()})
        except BadContact as e:
            raise Rejected(str(e), platform=self.name) from None
        secret = Secret(url)  # redacted from every log line from now on
        if not usable_url(url):
            raise Rejected(
                f"the {contact.kind} contact of participant row {participant.row} is "
                "not a usable Apprise URL",
                platform=self.name,
            )
        self._to[item.id] = (secret, contact.address)
        data = {"channel": contact.kind}
        if contact.kind == "email":
            data["ics"] = str(self._calendar(conn))
        return Staged(item=item, requests=[], data=data)

    def _calendar(self, conn: ReminderConnection) -> Path:
        from stormer.reminders import storm_calendar

        folder = conn.workdir or Path(tempfile.gettempdir())
        path = folder / f"{conn.storm.slug}.ics"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".ics.tmp")
            tmp.write_bytes(storm_calendar(conn.storm))
            tmp.replace(path)
        return path

    async def publish(self, staged: Staged, conn: ReminderConnection) -> Published:
        from stormer.channels.base import Published
        from stormer.errors import Rejected, Transient
        from stormer.reminders import to_html

        item = staged.item
        if item.id not in self._to:
            raise Rejected("reminder not staged", platform=self.name)
        secret, address = self._to[item.id]
        apprise = apprise_module()
        notifier = apprise.Apprise()
        with apprise_quiet():
            notifier.add(secret.reveal())
        email = staged.data.get("channel") == "email"
        title = str(item.payload.get("subject", ""))
        body = to_html(item.text, item.lang, title) if email else item.text
        attach = None
        if email and staged.data.get("ics"):
            attach = apprise.AppriseAttachment()
            attach.add(staged.data["ics"])
        with apprise_quiet(), apprise_log() as said:
            ok = await notifier.async_notify(
                body=body,
                title=title,
                attach=attach,
                body_format=apprise.NotifyFormat.HTML if email else apprise.NotifyFormat.TEXT,
            )
        if not ok:
            permanent, why = failure(said, address)
            if permanent:
                raise Rejected(f"not delivered: {why}", platform=self.name)
            raise Transient(f"not delivered: {why}", platform=self.name)
        return Published(remote_id=f"reminder:{item.id}")

    async def reconcile(
        self,
        staged: Staged,
        conn: ReminderConnection,
    ) -> Published | NotPosted | None:
        return None  # Apprise cannot ask a mail server or a chat whether a message arrived
