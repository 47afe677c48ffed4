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
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .secrets import Secret, install_log_redaction, redact

if TYPE_CHECKING:
    from .platforms.base import NotPosted, Published, Staged
    from .queue import QueueItem
    from .storm import Storm

log = logging.getLogger("stormer.notify")


def apprise_module() -> Any:
    """The apprise module, its log lines redacted (it logs a URL it cannot parse, whole)."""
    import apprise

    install_log_redaction()  # the "apprise" logger is among those secrets.py filters
    return apprise


@contextmanager
def apprise_quiet() -> Iterator[None]:
    # Apprise loads every plugin on first use; its e-mail plugin imports `imghdr`, deprecated
    # since Python 3.11. Not our warning to act on (and the test suite turns warnings into
    # errors).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*imghdr", category=DeprecationWarning)
        yield


@contextmanager
def apprise_log() -> Iterator[list[str]]:
    """Collect what Apprise logs at WARNING and above while the block runs: Apprise's
    `notify` answers only True or False, and its log is where the reason is."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(redact(record.getMessage()))

    handler = Keep(logging.WARNING)
    logger = logging.getLogger("apprise")
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def resolve_senders(names: Mapping[str, str],
                    environ: Mapping[str, str] | None = None) -> tuple[dict[str, Secret],
                                                                     list[str]]:
    """The organizer's sender URLs (`[reminders] senders`: sender → environment variable), as
    Secrets, and the variables that are not set."""
    import os

    env = os.environ if environ is None else environ
    out: dict[str, Secret] = {}
    missing = []
    for sender, var in names.items():
        value = env.get(var, "").strip()
        if value:
            out[sender] = Secret(value)
        else:
            missing.append(var)
    return out, missing


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

    def __init__(self) -> None:
        self._urls: dict[str, Secret] = {}  # item id → the Apprise URL (a secret)

    async def stage(self, item: QueueItem, conn: ReminderConnection) -> Staged:
        from .contacts import SENDER_FOR, BadContact, apprise_url
        from .errors import MissingCredential, Rejected
        from .platforms.base import Staged
        from .reminders import find_contact

        found = find_contact(conn.storm, item)
        if found is None:
            raise Rejected("the participant or this contact is no longer in participants.csv",
                           platform=self.name)
        participant, contact = found
        sender = SENDER_FOR[contact.kind] if contact.needs_sender else None
        variable = conn.storm.reminder_senders.get(sender or "")
        if sender and sender not in conn.senders and variable:
            # Fixable before T: staging reports it and tries again.
            raise MissingCredential(f"the `{sender}` reminder sender is not set: put its "
                                    f"Apprise URL in the environment variable {variable}",
                                    platform=self.name)
        try:
            url = apprise_url(contact, {k: v.reveal() for k, v in conn.senders.items()})
        except BadContact as e:
            raise Rejected(str(e), platform=self.name) from None
        secret = Secret(url)  # redacted from every log line from now on
        apprise = apprise_module()
        with apprise_quiet():
            usable = apprise.Apprise.instantiate(url) is not None
        if not usable:
            raise Rejected(f"the {contact.kind} contact of participant row {participant.row} is "
                           "not a usable Apprise URL", platform=self.name)
        self._urls[item.id] = secret
        data = {"channel": contact.kind}
        if contact.kind == "email":
            data["ics"] = str(self._calendar(conn))
        return Staged(item=item, requests=[], data=data)

    def _calendar(self, conn: ReminderConnection) -> Path:
        from .reminders import storm_calendar

        folder = conn.workdir or Path(tempfile.gettempdir())
        path = folder / f"{conn.storm.slug}.ics"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".ics.tmp")
            tmp.write_bytes(storm_calendar(conn.storm))
            tmp.replace(path)
        return path

    async def publish(self, staged: Staged, conn: ReminderConnection) -> Published:
        from .errors import Rejected, Transient
        from .platforms.base import Published
        from .reminders import to_html

        item = staged.item
        secret = self._urls.get(item.id)
        if secret is None:
            raise Rejected("reminder not staged", platform=self.name)
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
                body=body, title=title, attach=attach,
                body_format=apprise.NotifyFormat.HTML if email else apprise.NotifyFormat.TEXT)
        if not ok:
            from .report import clean_error

            why = clean_error("; ".join(said[-2:]) or "the service did not take it",
                              contacts=True)
            raise Transient(f"not delivered: {why}", platform=self.name)
        return Published(remote_id=f"reminder:{item.id}")

    async def reconcile(self, staged: Staged, conn: ReminderConnection,
                        ) -> Published | NotPosted | None:
        return None  # Apprise cannot ask a mail server or a chat whether a message arrived

