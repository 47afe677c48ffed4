"""Files only their owner may read: the outbox (it holds participants' contacts), the
`.stormer/` working folder and everything in it (alert markers, caches, calendars).

Participants of a storm that protests a state's repression are at risk if their list leaks,
and a shared machine or a backup copies whatever a file's mode allows. So every path that
creates one of these goes through here: folders 0700, files 0600, tightened when they exist
already with a wider mode. Foundation level: imports nothing from stormer.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> Path:
    """Create `path` and its missing parents as 0700 (`mkdir -p` would give the parents the
    usual mode); tighten `path` if it exists."""
    for folder in [*reversed(path.parents), path]:
        if not folder.exists():
            folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
            folder.chmod(FOLDER_MODE)  # mkdir's mode is masked by the umask
    _tighten(path, FOLDER_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists as an owner-only file (created empty if missing), before
    anything writes to it: a file created 0644 and tightened afterwards was readable in
    between."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)  # the umask can only narrow it
    os.close(fd)
    _tighten(path, FILE_MODE)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (a temporary file renamed over it), owner-only."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _tighten(path: Path, mode: int) -> None:
    if stat.S_IMODE(path.stat().st_mode) & ~mode:
        path.chmod(mode)
