"""Participants' reminders: when each goes out, and what it says, in the participant's own
language and on the participant's own clock.

Planning is pure, like the posts': every (participant, offset before T, contact) is one queue
item with a deterministic id, so `schedule` stores each once and `run` sends it through the
same claim / lease / outcome path as a post (stormer.channels.reminder).

Each reminder names the storm and its hashtag, the local weekday, date and time in the
participant's zone and language (Babel, CLDR), how long until it starts, the kit page, and a
sample post in the participant's language with click-to-post links. Samples rotate across
the participants of one language, so hundreds of people are not handed the same text (X
forbids coordinated identical posts; identical text is what got earlier storm tools banned).

The texts are Jinja2 templates, one file per language, each with a `subject` and a `body`
block (`stormer.reminder_templates`: stormer's own, overridden by a storm's
`templates/reminders/<lang>.txt.j2`); a language without a template falls back to English
(`check` warns). E-mail also gets an HTML part, made from the text when it is sent
(`to_html`): right to left for Arabic and the other RTL languages. And it carries the storm
as a calendar event (`storm_calendar`).

Privacy: an item carries the participant's name and a hash of the contact, never the contact
itself; `contact_index` finds the address in participants.csv when the reminder is staged.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode

from stormer.queue import Payload, QueueItem, item_ids
from stormer.reminder_templates import ReminderTemplates
from stormer.storm.contacts import BadContact, Contact, parse_contact

if TYPE_CHECKING:
    from stormer.storm import Participant, Post, Storm

RTL: Final = frozenset({"ar", "fa", "he", "ur", "ps", "yi", "ckb", "dv", "sd", "ug"})


# --- planning ---------------------------------------------------------------------------------


def parsed_contacts(participant: Participant) -> list[Contact]:
    """The participant's usable contacts (a bad one is `check`'s to report), without repeats."""
    out: dict[str, Contact] = {}
    for text in participant.contacts:
        try:
            contact = parse_contact(text)
        except BadContact:
            continue
        out.setdefault(contact.ref, contact)
    return list(out.values())


def plan_reminders(storm: Storm) -> Iterator[QueueItem]:
    """Every reminder of the storm: per participant, per offset in [reminders], per contact.

    Reminders whose time has passed are planned too (planning knows no clock); `schedule`
    does not add a new item whose time has passed, so a participant who joins late gets
    only the reminders still ahead."""
    if storm.at is None or not storm.reminder_offsets:
        return
    writer = ReminderWriter(storm)
    make_id = item_ids(storm.slug, "reminder")
    seen: set[str] = set()
    for participant in storm.participants:
        contacts = parsed_contacts(participant)
        if not contacts:
            continue
        sample = writer.sample_for(participant)
        for offset in storm.reminder_offsets:
            text = writer.text(participant, offset, sample)
            for contact in contacts:
                offset_ms = offset // timedelta(milliseconds=1)  # a rehearsal's are tiny
                item = make_id(participant.name, offset_ms, contact.ref)
                if item in seen:  # the same person twice in the CSV: reminded once
                    continue
                seen.add(item)
                payload = {"channel": contact.kind, "contact": contact.ref, "subject": text.subject}
                yield QueueItem(
                    id=item,
                    kind="reminder",
                    fire_at=storm.at - offset,
                    platform="reminder",
                    account=participant.name,
                    lang=text.lang,
                    text=text.body,
                    payload=payload,
                    source=sample.file if sample else None,
                )


def contact_index(storm: Storm) -> dict[tuple[str, str], tuple[Participant, Contact]]:
    """Where each reminder goes: (participant name, contact hash) — what an item carries as
    `account` and `payload["contact"]` — to the participant and contact in participants.csv.
    Built once per storm: looking each item up by a scan would be quadratic."""
    index: dict[tuple[str, str], tuple[Participant, Contact]] = {}
    for participant in storm.participants:
        for contact in parsed_contacts(participant):
            index.setdefault((participant.name, contact.ref), (participant, contact))
    return index


# What one message may hold on the channels that limit it (Apprise splits or cuts beyond).
CHANNEL_LIMITS: Final = {"telegram": 4096, "discord": 2000, "email": 1_000_000, "matrix": 65_536}
DEFAULT_LIMIT: Final = 4096


def render_reminder(
    storm: Storm,
    item: QueueItem,
    *,
    contacts: dict[tuple[str, str], tuple[Participant, Contact]] | None = None,
) -> Payload:
    """The dry run of one reminder: the message as its one recipient gets it. The recipient
    is `<email contact of NAME>` unless `contacts` (a `contact_index`) is given to show the
    address itself."""
    channel = str(item.payload.get("channel", "?"))
    to = f"<{channel} contact of {item.account}>"
    if contacts is not None:
        found = contacts.get((item.account, str(item.payload.get("contact"))))
        to = found[1].address if found else "<no longer in participants.csv>"
    message: dict[str, Any] = {
        "channel": channel,
        "to": to,
        "subject": item.payload.get("subject", ""),
        "body": item.text,
    }
    if channel == "email":
        message["html"] = True
        message["attachments"] = [f"{storm.slug}.ics"]
    limit = CHANNEL_LIMITS.get(channel, DEFAULT_LIMIT)
    problems = [f"{len(item.text)} > {limit} ({channel} limit)"] if len(item.text) > limit else []
    return Payload([message], len(item.text), limit, problems)


# --- the text ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReminderText:
    lang: str  # the language the text is written in (the participant's, or the fallback)
    subject: str
    body: str


class ReminderWriter:
    """Writes the reminders of one storm; caches what thousands of participants share."""

    def __init__(self, storm: Storm) -> None:
        assert storm.at is not None
        self.storm = storm
        self.at: datetime = storm.at
        self._samples = _samples_by_lang(storm)
        self._turn: dict[str, int] = defaultdict(int)  # next sample per language
        self.templates = ReminderTemplates(storm.root)
        self._texts: dict[tuple[str, str, timedelta, str | None], ReminderText] = {}

    def sample_for(self, participant: Participant) -> Post | None:
        """The next sample in the participant's language (else the storm's default
        language, else any), rotating within that language."""
        lang = participant.lang
        pool_key = next(
            (
                k
                for k in (lang, lang.split("_")[0], self.storm.default_lang)
                if self._samples.get(k)
            ),
            None,
        )
        if pool_key is None:
            pool_key = next(iter(self._samples), None)
            if pool_key is None:
                return None
        pool = self._samples[pool_key]
        turn = self._turn[pool_key]
        self._turn[pool_key] = turn + 1
        return pool[turn % len(pool)]

    def text(
        self, participant: Participant, offset: timedelta, sample: Post | None
    ) -> ReminderText:
        key = (participant.lang, participant.zone, offset, sample.file if sample else None)
        found = self._texts.get(key)
        if found is None:
            found = self._texts[key] = self._write(
                participant.lang, participant.zone, offset, sample
            )
        return found

    def _write(
        self,
        lang: str,
        zone: str,
        offset: timedelta,
        sample: Post | None,
    ) -> ReminderText:
        from stormer.timezones import babel_locale, get_zone

        written_in, template = self.templates.choose(lang)
        locale = babel_locale(written_in if written_in != lang.split("_")[0] else lang)
        local = self.at.astimezone(get_zone(zone))
        storm = self.storm
        values = {
            "storm": storm.name,
            "hashtag": storm.hashtag,
            "kit_url": storm.kit_url,
            # By wall time: aware datetimes at one instant compare (and cache) as equal
            # whatever their zone, so a cache keyed on them would hand Auckland New York's.
            "date": _date(local.replace(tzinfo=None), locale),
            "time": _time(local.replace(tzinfo=None), locale),
            "zone": _zone_name(zone, locale),
            "utc": f"{self.at:%H:%M} UTC",
            "until": _until(offset, locale),
            "sample": sample.text if sample else None,
            "links": click_to_post(sample.text, storm.kit_url, sample.platforms) if sample else {},
        }
        subject, body = self.templates.write(written_in, template, values)
        return ReminderText(written_in, subject, body)

    def trial(self, lang: str) -> ReminderText:
        """A reminder in `lang` as a participant in UTC gets it, with a sample: how `check`
        finds what a storm's template does wrong only when rendered."""
        sample = next((p for p in self.storm.posts if p.lang == lang and p.text), None)
        sample = sample or next((p for p in self.storm.posts if p.text), None)
        offset = (
            self.storm.reminder_offsets[0] if self.storm.reminder_offsets else timedelta(hours=1)
        )
        return self._write(lang, "UTC", offset, sample)


def _samples_by_lang(storm: Storm) -> dict[str, list[Post]]:
    samples: dict[str, list[Post]] = defaultdict(list)
    for post in storm.posts:
        if post.text:
            samples[post.lang].append(post)
    return dict(samples)


@cache
def _date(wall: datetime, locale: str) -> str:
    from babel.dates import format_date

    return format_date(wall, "full", locale=locale)


@cache
def _time(wall: datetime, locale: str) -> str:
    from babel.dates import format_time

    return format_time(wall, "HH:mm", locale=locale)


@cache
def _zone_name(zone: str, locale: str) -> str:
    if zone in ("UTC", "Etc/UTC"):
        return "UTC"
    from babel.dates import get_timezone_location

    from stormer.timezones import get_zone

    return get_timezone_location(get_zone(zone), locale=locale)


@cache
def _until(offset: timedelta, locale: str) -> str:
    from babel.dates import format_timedelta

    # Said in the largest unit that divides the offset exactly, and days only from two on:
    # "in 24 hours", "in 90 minutes" (Babel alone would round them to "1 day", "2 hours").
    # Babel picks the largest unit whose value reaches `threshold`, so the threshold is set
    # just above the value in the unit above the one wanted.
    seconds = int(offset.total_seconds())
    units = [(86400, None), (3600, 86400), (60, 3600), (1, 60)]
    above = next(a for u, a in units if seconds % u == 0 and (u != 86400 or seconds >= 2 * 86400))
    threshold = max(1.0, seconds / above + 0.001) if above else 1.0
    return format_timedelta(
        timedelta(seconds=seconds), locale=locale, add_direction=True, threshold=threshold
    )


@cache  # thousands of participants share a few samples
def click_to_post(
    text: str, kit_url: str | None, platforms: tuple[str, ...] | None = None
) -> dict[str, str]:
    """Links that open the sample post ready to send, on the platforms that offer one and
    the post allows (its `platforms`, if it names any: a post kept off X gets no X link)."""
    links = {
        "x": "https://x.com/intent/post?" + urlencode({"text": text}, quote_via=quote),
        "bluesky": "https://bsky.app/intent/compose?" + urlencode({"text": text}, quote_via=quote),
    }
    if kit_url:  # Telegram's share link needs a URL to share, the text goes with it
        links["telegram"] = "https://t.me/share/url?" + urlencode(
            {"url": kit_url, "text": text}, quote_via=quote
        )
    return {name: url for name, url in links.items() if platforms is None or name in platforms}


def link_platforms(storm: Storm, post: Post) -> list[str]:
    """The platforms whose click-to-post link carries `post` to participants."""
    return list(click_to_post("", storm.kit_url, post.platforms))


def handed_samples(storm: Storm) -> set[str]:
    """The posts (by file) that reminders hand to participants as their sample: the same
    rotation as `plan_reminders`, without writing the texts."""
    if storm.at is None or not storm.reminder_offsets:
        return set()
    writer = ReminderWriter(storm)
    handed = set()
    for participant in storm.participants:
        if parsed_contacts(participant):
            sample = writer.sample_for(participant)
            if sample is not None:
                handed.add(sample.file)
    return handed


_LINK: Final = re.compile(r"https?://[^\s<>\"]+")


def to_html(body: str, lang: str, title: str) -> str:
    """The HTML part of a reminder e-mail: the text, escaped, links made clickable, with the
    language and direction set so that Arabic reads right to left."""
    direction = "rtl" if lang.split("_")[0] in RTL else "ltr"
    paragraphs = []
    for block in re.split(r"\n\s*\n", body.strip()):
        lines = []
        for line in block.splitlines():
            out, last = [], 0
            for m in _LINK.finditer(line):
                out.append(html.escape(line[last : m.start()]))
                url = html.escape(m.group(0), quote=True)
                # A click-to-post link carries the whole sample, percent-encoded: show where
                # it goes, not the encoding.
                shown = html.escape(m.group(0).split("?", 1)[0].split("://", 1)[1])
                out.append(f'<a href="{url}" dir="ltr">{shown}</a>')
                last = m.end()
            out.append(html.escape(line[last:]))
            lines.append("".join(out))
        paragraphs.append(f"<p>{'<br>'.join(lines)}</p>")
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}" dir="{direction}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>\n"
        f'<body dir="{direction}" style="text-align: {"right" if direction == "rtl" else "left"}">'
        + "\n".join(paragraphs)
        + "</body></html>\n"
    )


# --- the calendar -------------------------------------------------------------------------------


def storm_calendar(
    storm: Storm, *, alarm: timedelta = timedelta(minutes=10), now: datetime | None = None
) -> bytes:
    """The storm as an iCalendar event at its UTC instant, with an alarm `alarm` before;
    stamped `now` (when the file is made, as RFC 5545 says DTSTAMP is)."""
    from icalendar import Alarm, Calendar, Event

    assert storm.at is not None
    cal = Calendar()
    cal.add("prodid", "-//stormer//storm reminder//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"{storm.slug}@stormer")
    # RFC 5545 3.8.7.2: when this iCalendar object was created — not the event's start.
    event.add("dtstamp", (now or datetime.now(UTC)).replace(microsecond=0))
    event.add("dtstart", storm.at)
    event.add("dtend", storm.at + timedelta(hours=1))
    event.add("summary", f"{storm.name} {storm.hashtag}")
    description = f"{storm.hashtag}"
    if storm.kit_url:
        event.add("url", storm.kit_url)
        description += f"\n{storm.kit_url}"
    event.add("description", description)
    reminder = Alarm()
    reminder.add("action", "DISPLAY")
    reminder.add("description", f"{storm.name} {storm.hashtag}")
    reminder.add("trigger", -alarm)
    event.add_component(reminder)
    cal.add_component(event)
    ics: bytes = cal.to_ical()
    return ics
