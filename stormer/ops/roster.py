"""The participants file: importing a sign-up form's CSV export into it, listing it without
contacts, exporting it with them.

participants.csv names the organizations and people joining a storm against a state's
repression, with where to reach them: a leaked copy endangers them. So nothing here puts a
contact into a message. A problem says "the contact in column 4", never the value; a listing
shows the *kind* of each contact (email, telegram, matrix…); only `export_text`, which the
CLI calls on an explicit request, holds the addresses, and `write_private` creates its file
readable by its owner alone.

An import is validated with the loader's own rules (`participants.participant_from_row`: the
name, `resolve_zone`, the language code) plus `notify.sender.checked_contact` (Apprise judges a
URL contact), and merged by name (case
and spacing ignored): a known name gets the new zone and language and any contact it did not
have; a new name is appended. Bad rows are reported with their line in the imported file and
left out; the good ones are kept. The file is rewritten atomically, its rows in their order.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from stormer.errors import ConfigError, Problem, TimeError
from stormer.notify.sender import checked_contact
from stormer.storm.contacts import BadContact, parse_contact
from stormer.storm.model import Participant, Storm
from stormer.storm.participants import PARTICIPANT_COLUMNS, participant_from_row, resolve_zone
from stormer.storm.problems import ProblemCollector

# Header names a form export may use for each column, best first; compared after
# `_header_key` (case, spacing, "-"/"_", a parenthesised hint and trailing ":?*" ignored).
SYNONYMS: Final = {
    "name": (
        "name",
        "organization",
        "organisation",
        "organization name",
        "organisation name",
        "group",
        "full name",
        "participant",
    ),
    "zone": ("zone", "timezone", "time zone", "tz", "country"),
    "lang": ("lang", "language", "locale"),
    # Every contact column is read: a form may ask for an e-mail and a Telegram chat apart.
    "contact": (
        "contact",
        "contacts",
        "email",
        "e mail",
        "email address",
        "e mail address",
        "mail",
        "apprise url",
    ),
}
_LANG_PARTS: Final = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{2}))?$")
# A value that looks like an address, wherever it sits: never put into a message.
_ADDRESS_LIKE: Final = re.compile(r"[^\s'\"()]*(?:@|://)[^\s'\"()]*")
HIDDEN: Final = "<hidden>"


def name_key(name: str) -> str:
    """What two names must share to be the same participant: case and spacing ignored."""
    return " ".join(name.split()).casefold()


def participants_path(storm: Storm) -> Path:
    return storm.root / storm.participants_file


# --- reading a form export ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Incoming:
    """One good row of an imported file, normalized."""

    line: int  # where the row starts in the imported file
    name: str
    zone: str
    lang: str  # "" when the file gave none: the storm's default_lang applies
    contacts: tuple[str, ...] = field(repr=False)


@dataclass
class FormRows:
    rows: list[Incoming]
    problems: list[Problem]
    columns: dict[str, list[str]]  # our column → the header(s) it was read from


def _header_key(header: str) -> str:
    text = re.sub(r"\(.*?\)", " ", header.casefold())
    text = re.sub(r"[\s_\-]+", " ", text).strip().rstrip(":?*").strip()
    return text


def map_columns(header: list[str], file: str) -> dict[str, list[int]]:
    """Our column → the indexes of the header cells it is read from. Raises ConfigError
    when the name or zone column is missing, listing the names accepted."""
    keys = [_header_key(h) for h in header]
    found: dict[str, list[int]] = {}
    for column, names in SYNONYMS.items():
        if column == "contact":
            hits = [i for i, k in enumerate(keys) if k in names]
        else:
            hits = next(([keys.index(n)] for n in names if n in keys), [])
        if hits:
            found[column] = hits
    missing = [c for c in ("name", "zone") if c not in found]
    if missing:
        accepted = "; ".join(f"{c}: {', '.join(SYNONYMS[c])}" for c in missing)
        raise ConfigError(
            [
                Problem(
                    "error",
                    "bad-participant",
                    file,
                    1,
                    f"no {' or '.join(missing)} column in the header; accepted names ({accepted}). "
                    f"Rename the column, or start the file with {','.join(PARTICIPANT_COLUMNS)}",
                )
            ]
        )
    return found


def normalize_lang(text: str) -> str:
    """ "EN" → "en", "pt-br" → "pt_BR"; anything else unchanged (the loader's rule judges)."""
    m = _LANG_PARTS.match(text.strip())
    if not m:
        return text.strip()
    return m.group(1).lower() + (f"_{m.group(2).upper()}" if m.group(2) else "")


def normalized_contact(text: str) -> tuple[str, str]:
    """(the contact as participants.csv should hold it, its hash). Raises BadContact."""
    contact = checked_contact(text)
    if contact.needs_sender and contact.kind == "telegram":
        written = f"tgram://{contact.address}"
    elif contact.needs_sender and contact.kind == "matrix":
        written = f"matrix:{contact.address}"
    else:  # an e-mail address, lower-cased; or an Apprise URL complete in itself
        written = contact.address
    return written, contact.ref


def read_form(text: str, *, file: str, default_lang: str) -> FormRows:
    """Every row of a form export (a UTF-8 BOM already removed), validated and normalized.
    Bad rows become Problems at their line in `file`; a message never holds a contact."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    columns = map_columns(header, file)
    rows: list[Incoming] = []
    problems: list[Problem] = []
    end = reader.line_num
    for cells in reader:
        line, end = end + 1, reader.line_num
        if not any(c.strip() for c in cells):
            continue
        row, problem = _read_row(cells, line, columns, header, file, default_lang)
        if problem:
            problems.append(problem)
        elif row:
            rows.append(row)
    return FormRows(
        rows, problems, {c: [header[i].strip() for i in ix] for c, ix in columns.items()}
    )


def _read_row(
    cells: list[str],
    line: int,
    columns: dict[str, list[int]],
    header: list[str],
    file: str,
    default_lang: str,
) -> tuple[Incoming | None, Problem | None]:
    def cell(i: int) -> str:
        return cells[i].strip() if i < len(cells) else ""

    name = " ".join(cell(columns["name"][0]).split())
    zone = cell(columns["zone"][0])
    lang = normalize_lang(cell(columns["lang"][0])) if "lang" in columns else ""
    raw_contacts = [(i, cell(i).split()) for i in columns.get("contact", [])]
    secrets = {t for _, tokens in raw_contacts for t in tokens}
    who = f"row {line}" + (f" ({_ADDRESS_LIKE.sub(HIDDEN, name)})" if name else "")

    def bad(message: str) -> tuple[None, Problem]:
        for value in sorted(secrets, key=len, reverse=True):
            message = message.replace(value, HIDDEN)
        return None, Problem(
            "error",
            "bad-participant",
            file,
            line,
            message.rstrip(".") + "; the row was not imported",
        )

    if name and not zone:
        return bad(
            f"{who}: the time zone is empty: write an IANA zone (Europe/Madrid) or a "
            "two-letter country code with a single zone (NP)"
        )
    c = ProblemCollector()
    p = participant_from_row(
        {"name": name, "zone": zone, "lang": lang}, line, file, default_lang, c
    )
    if p is None:
        # Its messages quote the name, zone or language as given: mask what looks like an
        # address there (a form export with shifted columns puts e-mails under "time zone").
        return bad(_ADDRESS_LIKE.sub(HIDDEN, c.problems[0].message))
    written: dict[str, str] = {}  # hash → contact as written, in order, without repeats
    for i, tokens in raw_contacts:
        for n, token in enumerate(tokens, 1):
            try:
                text, ref = normalized_contact(token.rstrip(",;"))
            except BadContact as e:
                which = (
                    f"the contact in column {i + 1}"
                    if len(tokens) == 1
                    else f"contact {n} of {len(tokens)} in column {i + 1}"
                )
                return bad(
                    f"{who}: {which} ({header[i].strip()!r}) cannot be used: {e}. Correct "
                    "it in the file, or empty the cell to import the row without it"
                )
            written.setdefault(ref, text)
    return Incoming(line, p.name, p.zone, lang, tuple(written.values())), None


# --- merging into the participants file ----------------------------------------------------


@dataclass
class Merged:
    text: str  # the participants file as it should now be
    added: list[int] = field(default_factory=list)  # lines in the imported file
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)


def _contact_ref(text: str) -> str:
    """How a contact already in the file is compared: its hash, or itself if it is bad."""
    try:
        return parse_contact(text).ref
    except BadContact:
        return "\x00" + text


def merge(existing: str | None, incoming: list[Incoming], *, file: str) -> Merged:
    """`existing` (the participants file's text, None if there is none) with `incoming`
    merged in. Existing rows keep their order and whatever columns they have beyond ours."""
    header = list(PARTICIPANT_COLUMNS)
    rows: list[dict[str, str]] = []
    if existing is not None and existing.strip():
        reader = csv.reader(io.StringIO(existing.lstrip("\ufeff"), newline=""))
        found = [h.strip().lower() for h in next(reader, [])]
        if "name" not in found:
            raise ConfigError(
                [
                    Problem(
                        "error",
                        "bad-participant",
                        file,
                        1,
                        f"the header has no name column: it must start with "
                        f"{','.join(PARTICIPANT_COLUMNS)}",
                    )
                ]
            )
        header += [h for h in found if h and h not in header]
        for cells in reader:
            if any(c.strip() for c in cells):
                rows.append({h: cells[i] if i < len(cells) else "" for i, h in enumerate(found)})
    index: dict[str, int] = {}  # name key → position in rows
    for i, row in enumerate(rows):
        index.setdefault(name_key(row.get("name", "")), i)
    out = Merged("")
    for new in incoming:
        at = index.get(name_key(new.name))
        if at is None:
            index[name_key(new.name)] = len(rows)
            rows.append(
                {
                    "name": new.name,
                    "zone": new.zone,
                    "lang": new.lang,
                    "contact": " ".join(new.contacts),
                }
            )
            out.added.append(new.line)
            continue
        row = rows[at]
        before = dict(row)
        if _resolved(row.get("zone", "")) != new.zone:
            row["zone"] = new.zone
        if new.lang and normalize_lang(row.get("lang", "")) != new.lang:
            row["lang"] = new.lang
        have = row.get("contact", "").split()
        refs = {_contact_ref(t) for t in have}
        have += [t for t in new.contacts if _contact_ref(t) not in refs]
        row["contact"] = " ".join(have)
        (out.unchanged if row == before else out.updated).append(new.line)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([row.get(h, "") for h in header] for row in rows)
    out.text = buffer.getvalue()
    return out


def _resolved(zone: str) -> str | None:
    try:
        return resolve_zone(zone)
    except TimeError:
        return None


# --- the import, with its files --------------------------------------------------------------


@dataclass
class ImportReport:
    file: str  # the participants file, relative to the storm folder
    source: str
    added: int
    updated: int
    unchanged: int
    problems: list[Problem]
    columns: dict[str, list[str]]
    written: bool

    @property
    def bad(self) -> int:
        return len(self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "source": self.source,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "bad": self.bad,
            "written": self.written,
            "columns": self.columns,
            "problems": [p.as_dict() for p in self.problems],
        }


def import_file(storm: Storm, source: Path, *, dry_run: bool = False) -> ImportReport:
    """Merge the form export `source` into the storm's participants file (unless
    `dry_run`). Raises ConfigError if `source` or the participants file cannot be read."""
    shown = source.name
    where = source.parent  # problems print the file as the user named it: where/shown
    try:
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text: save it as CSV UTF-8"
        problem = Problem(
            "error", "bad-participant", shown, None, f"cannot read {source}: {reason}"
        )
        raise ConfigError([problem.in_folder(where)]) from None
    try:
        form = read_form(text, file=shown, default_lang=storm.default_lang)
    except ConfigError as e:
        raise ConfigError([p.in_folder(where) for p in e.problems]) from None
    target = participants_path(storm)
    existing = target.read_text(encoding="utf-8-sig") if target.is_file() else None
    try:
        merged = merge(existing, form.rows, file=storm.participants_file)
    except ConfigError as e:  # the storm's own participants file: named from where the user is
        raise ConfigError([p.in_folder(storm.root) for p in e.problems]) from None
    written = False
    if not dry_run and (merged.added or merged.updated):
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o600
        write_atomic(target, merged.text, mode=mode)
        written = True
    return ImportReport(
        storm.participants_file,
        str(source),
        len(merged.added),
        len(merged.updated),
        len(merged.unchanged),
        [p.in_folder(where) for p in form.problems],
        form.columns,
        written,
    )


def write_atomic(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Replace `path` with `text` in one step: a reader sees the old file or the new one,
    never half of it. The temporary file is private from its creation."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- listing and export ----------------------------------------------------------------------


def contact_kinds(participant: Participant) -> list[str]:
    """The kind of each of the participant's contacts ("invalid" for one `check` reports)."""
    kinds = []
    for text in participant.contacts:
        try:
            kinds.append(parse_contact(text).kind)
        except BadContact:
            kinds.append("invalid")
    return kinds


def listing(storm: Storm) -> list[dict[str, Any]]:
    """Every participant as a listing may show them: no contact, only its kind."""
    return [
        {"row": p.row, "name": p.name, "zone": p.zone, "lang": p.lang, "contacts": contact_kinds(p)}
        for p in storm.participants
    ]


def export_text(storm: Storm) -> str:
    """The participants WITH their contacts, as CSV: only for an explicit export."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PARTICIPANT_COLUMNS)
    writer.writerows((p.name, p.zone, p.lang, " ".join(p.contacts)) for p in storm.participants)
    return buffer.getvalue()


def write_private(path: Path, text: str, *, force: bool = False) -> None:
    """Write `text` to a new file that only its owner can read (0o600). Raises
    FileExistsError if `path` exists, unless `force` (then it is replaced atomically)."""
    if force:
        write_atomic(path, text, mode=0o600)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
