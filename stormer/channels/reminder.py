"""The reminder channel: one reminder to one participant, through Apprise.

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

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stormer.channels.base import Channel, Published, Staged
from stormer.notify.sender import apprise_log, apprise_module, apprise_quiet, failure, usable_url
from stormer.secrets import Secret, private_contact

if TYPE_CHECKING:
    from stormer.queue import QueueItem
    from stormer.storm import Participant, Storm
    from stormer.storm.contacts import Contact


@dataclass
class ReminderConnection:
    """What the dispatcher hands `ReminderChannel` for one reminder (the `Connection` of a
    platform plugin, minus the HTTP client: Apprise owns its transports)."""

    storm: Storm
    senders: dict[str, Secret] = field(repr=False)
    workdir: Path | None = None  # where calendar attachments are written


class ReminderChannel(Channel[ReminderConnection]):
    """Sends one reminder to one participant through Apprise; see the module docstring."""

    name = "reminder"
    title = "Reminder"
    # Apprise cannot ask a mail server or a chat whether a message arrived: `reconcile`
    # answers None (Channel's), and the organizer asks the participant.
    where_to_look = "the participant may have it already; ask them"
    private = True  # participants: their addresses are never shown

    @classmethod
    def label(cls, platform: str, payload: Mapping[str, Any] | None) -> str:
        """The kind of contact only ("reminder:email"), never the address."""
        channel = (payload or {}).get("channel")
        if channel:
            return f"reminder:{channel}"
        return platform.split(":", 1)[0]  # a channel written as an address: its kind only

    def __init__(self) -> None:
        # item id → (the Apprise URL, a secret; the address, to read Apprise's log by)
        self._to: dict[str, tuple[Secret, str]] = {}
        self._index: dict[tuple[str, str], tuple[Participant, Contact]] | None = None

    async def stage(self, item: QueueItem, conn: ReminderConnection) -> Staged:
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
        private_contact(contact.address)
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
            from stormer.private import private_folder, write_private

            private_folder(folder)
            write_private(path, storm_calendar(conn.storm))
        return path

    async def publish(self, staged: Staged, conn: ReminderConnection) -> Published:
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
