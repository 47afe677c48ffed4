"""The participants file (participants.csv): who joins the storm, in which zone and language,
and where to remind them. `roster.py` imports into it with the same row rules."""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path
from typing import Any

from stormer.errors import TimeError
from stormer.storm.model import Participant
from stormer.storm.problems import ProblemCollector, not_utf8
from stormer.storm.schema import CONFIG_NAME
from stormer.timezones import get_zone, known_language

PARTICIPANT_COLUMNS = ("name", "zone", "lang", "contact")
# The optional `public` column: "yes" lists the participant's name (never a contact) among the
# endorsers on the storm kit's pages. Anything unsaid is no: being named publicly may put a
# participant at risk, so only an explicit yes counts.
PUBLIC_VALUES = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


def resolve_zone(value: str) -> str:
    """An IANA zone, or a two-letter ISO country code with exactly one zone (pytz's tables).

    Raises TimeError naming the choices for a country with several zones.
    """
    value = value.strip()
    if re.fullmatch(r"[A-Za-z]{2}", value):
        import pytz  # only pytz has the country → zones table

        code = value.upper()
        zones = pytz.country_timezones.get(code)
        if zones is None:
            raise TimeError(f"unknown time zone or country code {value!r}")
        if len(zones) > 1:
            raise TimeError(
                f"country {code} has {len(zones)} time zones; write one of: " + ", ".join(zones)
            )
        return zones[0]
    get_zone(value)
    return value


def load_participants(
    root: Path, name: str, default_lang: str, c: ProblemCollector, *, explicit: bool
) -> list[Participant]:
    """The participants in `root / name`; a missing file is reported only if `explicit`ly
    configured (the default file is optional)."""
    path = root / name
    if not path.is_file():
        if explicit:
            c.add(
                "warning",
                "missing-participants-file",
                CONFIG_NAME,
                None,
                f"[participants] file = {name!r} does not exist; nobody will be reminded",
            )
        return []
    out: list[Participant] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            _read_rows(csv.reader(f), name, default_lang, c, out)
    except UnicodeDecodeError as e:
        c.add("error", "bad-participant", name, None, f"not UTF-8 text ({not_utf8(e)})")
        return []
    except csv.Error as e:
        # The reader's line is where it stopped; a field it refuses is never quoted (it may
        # hold someone's address).
        c.add("error", "bad-participant", name, None, f"cannot be read as CSV: {e}")
        return []
    return out


def _read_rows(
    reader: Any, name: str, default_lang: str, c: ProblemCollector, out: list[Participant]
) -> None:
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [col for col in ("name", "zone") if col not in header]
    if missing:
        c.add(
            "error",
            "bad-participant",
            name,
            1,
            f"the header must have the columns {', '.join(PARTICIPANT_COLUMNS)}; "
            f"missing: {', '.join(missing)}",
        )
        return
    col = {h: i for i, h in enumerate(header)}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        cells = {h: (row[i].strip() if i < len(row) else "") for h, i in col.items()}
        p = participant_from_row(cells, line, name, default_lang, c)
        if p:
            out.append(p)


def participant_from_row(
    cells: dict[str, str], line: int, file: str, default_lang: str, c: ProblemCollector
) -> Participant | None:
    """One row (`cells` by column name) validated: the name, the zone (`resolve_zone`), the
    language code. None if it is bad, with the problem added to `c` at `file`:`line`."""
    who = cells.get("name", "")
    if not who:
        c.add("error", "bad-participant", file, line, f"row {line}: the name is empty")
        return None
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\r\n" for ch in who):
        c.add(
            "error",
            "bad-participant",
            file,
            line,
            f"row {line}: the name contains control characters (a NUL?): remove them",
        )
        return None
    try:
        zone = resolve_zone(cells.get("zone", ""))
    except TimeError as e:
        why = str(e)
        if re.search(r"@|://|\d{5}", cells.get("zone", "")):
            # Columns shifted in a form export: never echo what may be someone's address.
            why = (
                "the zone column holds what looks like a contact, not a time zone: check "
                "the columns are name, zone, lang, contact"
            )
        c.add("error", "bad-participant", file, line, f"row {line} ({who}): {why}")
        return None
    lang = cells.get("lang") or default_lang
    if not known_language(lang):
        c.add(
            "error",
            "bad-participant",
            file,
            line,
            f"row {line} ({who}): {lang!r} is not a language code (e.g. en, es, ar)",
        )
        return None
    public = PUBLIC_VALUES.get(cells.get("public", "").lower() or "no")
    if public is None:
        c.add(
            "error",
            "bad-participant",
            file,
            line,
            # The value is not echoed: in a shifted row it may be someone's address.
            f"row {line} ({who}): the public column must be yes or no (yes lists the name "
            "among the storm kit's endorsers)",
        )
        return None
    contacts = tuple(cells.get("contact", "").split())
    return Participant(row=line, name=who, zone=zone, lang=lang, contacts=contacts, public=public)
