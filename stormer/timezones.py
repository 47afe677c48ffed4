"""One storm instant, every participant's clock.

Instants are always tz-aware UTC datetimes. Local wall times are accepted only together with
an IANA zone, and a wall time that falls in a DST gap (does not exist) or fold (happens twice)
is an error naming both choices — never a silent guess.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from stormer.errors import AmbiguousTime, NonexistentTime, TimeError, UnknownZone

if "PYTHONTZPATH" not in os.environ:
    # Zone rules come from the pinned tzdata package, not the operating system, so that every
    # organizer's machine (and CI) computes the same local times from the same rules.
    zoneinfo.reset_tzpath(to=())

# Babel locales used for each storm language; "en" follows the campaign's own
# day-month order ("Thursday 11 March") rather than the US default.
BABEL_LOCALES = {"en": "en_GB"}

# Date patterns without the year for the announcement line, per language. Languages not
# listed fall back to CLDR's "full" date format (which includes the year).
_ANNOUNCE_DATE = {
    "en": "EEEE d MMMM",
    "es": "EEEE, d 'de' MMMM",
    "fr": "EEEE d MMMM",
    "it": "EEEE d MMMM",
    "ar": "EEEE، d MMMM",
    "pt": "EEEE, d 'de' MMMM",
    "de": "EEEE, d. MMMM",
}

_RTL_COMMA = {"ar", "fa", "ur"}  # these scripts write the comma as "،"

_INSTANT = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
    r"\s*(?P<offset>Z|z|UTC|[+-]\d{2}:?\d{2})?$"
)


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def known_zones() -> list[str]:
    """Every IANA zone name stormer accepts, sorted (`stormer times --list-zones`)."""
    return sorted(_zone_names())


@functools.cache
def get_zone(name: str) -> ZoneInfo:
    """The zone called `name`, or UnknownZone with the closest valid names."""
    if name in _zone_names():
        return ZoneInfo(name)
    try:
        # Accept valid names missing from the listing (e.g. "UTC" on some builds).
        if "/" in name or name == "UTC":
            return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass  # OSError: a folder of the zone database, such as "America/Indiana"
    raise UnknownZone(name, suggest_zones(name))


def suggest_zones(name: str, n: int = 3) -> list[str]:
    """Up to `n` zone names close to a misspelt one (case-insensitive)."""
    by_lower = {z.lower(): z for z in _zone_names()}
    lowered = name.strip().lower()
    if lowered in by_lower:
        return [by_lower[lowered]]
    close = difflib.get_close_matches(lowered, list(by_lower), n=n, cutoff=0.6)
    if not close:
        # "Madird" alone: compare against the city part of every zone.
        cities = {z.rsplit("/", 1)[-1].lower(): z for z in _zone_names()}
        close = difflib.get_close_matches(lowered.rsplit("/", 1)[-1], list(cities), n=n)
        return [cities[c] for c in close]
    return [by_lower[c] for c in close]


@functools.lru_cache(maxsize=4096)  # a queue spells its few fire times thousands of times
def iso_utc(instant: datetime) -> str:
    """`2021-03-11T18:00:00Z` — the one spelling of an instant in JSON and storage."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


FIRST_YEAR, LAST_YEAR = 1970, 2999


def parse_when(when: str, tz: str | None = None) -> datetime:
    """Parse WHEN: an instant with offset (`...Z`, `...+02:00`) or a wall time with `tz`.

    Returns a tz-aware UTC datetime. Raises TimeError (or a subclass) with a message for people.
    """
    m = _INSTANT.match(when.strip())
    if not m:
        raise TimeError(
            f"cannot read {when!r} as a time: write an instant such as 2021-03-11T18:00:00Z "
            "or 2021-03-11T20:00:00+02:00, or a wall time such as '2021-03-11 20:00' with --tz ZONE"
        )
    try:
        wall = datetime.fromisoformat(f"{m['date']}T{m['time']}")
    except ValueError as e:
        raise TimeError(f"{m['date']} {m['time']} is not a valid date and time: {e}") from None
    if not FIRST_YEAR <= wall.year <= LAST_YEAR:
        # Year 1 or 9999 is a typo, and overflows as soon as a reminder offset or the grace
        # is added to it.
        raise TimeError(
            f"{wall.year} is not a storm's year: write one from {FIRST_YEAR} to {LAST_YEAR}"
        )
    offset = m["offset"]
    if offset:
        if tz:
            raise TimeError(
                f"{when!r} already has a UTC offset; drop --tz, or give a wall time without offset"
            )
        if offset in ("Z", "z", "UTC"):
            return wall.replace(tzinfo=UTC)
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            raise TimeError(f"{offset!r} is not a valid UTC offset")
        delta = timedelta(hours=hours, minutes=minutes) * sign
        return (wall - delta).replace(tzinfo=UTC)
    if not tz:
        raise TimeError(
            f"{when!r} is a wall time without a zone: add --tz ZONE (e.g. --tz Asia/Gaza), "
            "or write the instant in UTC with a Z (2021-03-11T18:00:00Z)"
        )
    return localize(wall, tz)


def localize(wall: datetime, zone_name: str) -> datetime:
    """The UTC instant of naive wall time `wall` in `zone_name`; gaps and folds are errors."""
    zone = get_zone(zone_name)
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    u_first, u_second = first.astimezone(UTC), second.astimezone(UTC)
    if u_first.astimezone(zone).replace(tzinfo=None) != wall:
        start, end, before, after = _gap_around(u_second, u_first, zone)
        raise NonexistentTime(
            f"{_fmt_wall(wall)} does not exist in {zone_name}: clocks jump from "
            f"{start:%H:%M} to {end:%H:%M} on {start:%Y-%m-%d} ({before} → {after}). "
            f"Choose a time before {start:%H:%M} or from {end:%H:%M} on, or give the instant "
            "with its UTC offset."
        )
    if u_first != u_second:
        a, b = sorted((u_first, u_second))
        fa, fb = a.astimezone(zone), b.astimezone(zone)
        raise AmbiguousTime(
            f"{_fmt_wall(wall)} is ambiguous in {zone_name}: it happens twice, at "
            f"{iso_utc(a)} ({fa.tzname()}, UTC{utc_offset(fa)}) and at {iso_utc(b)} "
            f"({fb.tzname()}, UTC{utc_offset(fb)}). Give the instant instead, e.g. "
            f"{fa.isoformat()} or {fb.isoformat()}."
        )
    return u_first


def _gap_around(
    lo: datetime, hi: datetime, zone: tzinfo
) -> tuple[datetime, datetime, str | None, str | None]:
    """The wall clock just before and just after the transition that lies in [lo, hi] (UTC)."""
    lo_offset = lo.astimezone(zone).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).utcoffset() == lo_offset:
            lo = mid
        else:
            hi = mid
    transition = hi.replace(microsecond=0)
    before = (transition - timedelta(seconds=1)).astimezone(zone)
    after = transition.astimezone(zone)
    return (
        (before + timedelta(seconds=1)).replace(tzinfo=None),
        after.replace(tzinfo=None),
        before.tzname(),
        after.tzname(),
    )


def _fmt_wall(wall: datetime) -> str:
    return wall.strftime("%Y-%m-%d %H:%M" + (":%S" if wall.second else ""))


def utc_offset(local: datetime) -> str:
    off = local.utcoffset() or timedelta(0)
    sign = "-" if off < timedelta(0) else "+"
    minutes = abs(int(off.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class LocalTime:
    zone: str
    local: datetime

    @property
    def weekday(self) -> str:
        return self.local.strftime("%A")  # English by design: JSON is for machines

    @property
    def abbreviation(self) -> str:
        return self.local.tzname() or ""

    def as_dict(self) -> dict[str, str]:
        return {
            "zone": self.zone,
            "local": self.local.isoformat(),
            "weekday": self.weekday,
            "abbreviation": self.abbreviation,
        }


def local_times(at: datetime, zones: list[str]) -> list[LocalTime]:
    """`at` on each zone's clock, in the order given, duplicates removed."""
    seen: dict[str, LocalTime] = {}
    for z in zones:
        if z not in seen:
            seen[z] = LocalTime(z, at.astimezone(get_zone(z)))
    return list(seen.values())


@dataclass(frozen=True, slots=True)
class AnnounceZone:
    """A zone as the announcement names it: "Pacific", "central Europe", "Palestine"."""

    zone: str
    label: str | None = None
    labels: tuple[tuple[str, str], ...] = ()  # (lang, label) pairs

    def label_for(self, lang: str) -> str | None:
        base = lang.split("_")[0]
        for key, value in self.labels:
            if key in (lang, base):
                return value
        # `label` is the English name; other languages use `labels` or CLDR's zone name.
        return self.label if base == "en" else None


# A language as config.toml, participants.csv and --lang write it: "en", "es", "pt_BR".
LANG_CODE: Final = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")


def babel_locale(lang: str) -> str:
    return BABEL_LOCALES.get(lang, lang)


def known_language(lang: str) -> bool:
    """Whether `lang` is a language code (en, pt_BR) that Babel can write dates in: every
    language of a storm (posts, participants, accounts, the default) must be one."""
    if not LANG_CODE.fullmatch(lang):
        return False
    from babel import Locale, UnknownLocaleError  # heavy: only when a storm is loaded

    try:
        Locale.parse(babel_locale(lang))
    except (ValueError, UnknownLocaleError):
        return False
    return True


def format_clock(local: datetime, lang: str) -> str:
    """ "10 am" / "7:30 pm" in English as campaigns write it; 24-hour CLDR time elsewhere."""
    if lang.split("_")[0] == "en":
        hour = local.hour % 12 or 12
        suffix = "am" if local.hour < 12 else "pm"
        return f"{hour}:{local.minute:02d} {suffix}" if local.minute else f"{hour} {suffix}"
    from babel.dates import format_time  # Babel is heavy: only commands that format pay

    return format_time(local, "HH:mm", locale=babel_locale(lang))


def format_day(day: date | datetime, lang: str, *, year: bool = False) -> str:
    """Localized weekday and date: "jueves, 11 de marzo" (with `year`: CLDR's full date)."""
    from babel.dates import format_date

    base = lang.split("_")[0]
    if not year and base in _ANNOUNCE_DATE:
        return format_date(day, _ANNOUNCE_DATE[base], locale=babel_locale(lang))
    return format_date(day, "full", locale=babel_locale(lang))


def zone_label(az: AnnounceZone, lang: str) -> str:
    label = az.label_for(lang)
    if label:
        return label
    if az.zone == "UTC":
        return "UTC"
    from babel.dates import get_timezone_location

    return get_timezone_location(get_zone(az.zone), locale=babel_locale(lang))


def announcement(at: datetime, zones: list[AnnounceZone], lang: str = "en") -> str:
    """The one-line announcement of instant `at` across the labelled `zones`.

    English: "Thursday 11 March, 10 am Pacific / 1 pm Eastern / 6 pm UTC / ...".
    The date is the first zone's; a zone whose local date differs says its own day.
    """
    if not zones:
        zones = [AnnounceZone("UTC", "UTC")]
    first_day = at.astimezone(get_zone(zones[0].zone)).date()
    parts = []
    for az in zones:
        local = at.astimezone(get_zone(az.zone))
        part = f"{format_clock(local, lang)} {zone_label(az, lang)}"
        if local.date() != first_day:
            from babel.dates import format_date

            part += f" ({format_date(local, 'EEE d', locale=babel_locale(lang))})"
        parts.append(part)
    comma = "، " if lang.split("_")[0] in _RTL_COMMA else ", "
    return f"{format_day(first_day, lang)}{comma}{' / '.join(parts)}"


DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


# No storm needs a reminder, a staging window or a grace of more than a year, and a longer
# one overflows the datetimes it is added to (year 9999).
MAX_DURATION: Final = timedelta(days=366)


def parse_duration(text: str) -> timedelta:
    """ "24h", "1h30m", "10m", "90s", "2d" → timedelta; ValueError on anything else."""
    m = DURATION.match(text)
    if not m or not any(m.groups()):
        raise ValueError(f"{text!r} is not a duration: write e.g. 24h, 1h30m, 10m or 45s")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    try:
        value = timedelta(days=d, hours=h, minutes=mi, seconds=s)
    except OverflowError:
        value = MAX_DURATION * 2
    if value > MAX_DURATION:
        raise ValueError(f"{text!r} is too long: at most {MAX_DURATION.days}d")
    return value
