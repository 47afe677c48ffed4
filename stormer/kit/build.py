"""`stormer kit build`: the kit of a storm `check` accepts, written into a folder.

The folder is replaced whole, never mixed with what was there: the kit is written into a new
folder beside it and swapped in, so a failed build leaves the previous kit as it was. A
folder stormer did not make is never replaced (`--out ~` must not empty a home folder): the
kit leaves a marker file, and only a folder holding it, or an empty one, is written.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from stormer.kit import KitError

if TYPE_CHECKING:
    from stormer.storm import Storm

MARKER: Final = ".stormer-kit"
MARKER_TEXT: Final = (
    "This folder is a storm kit made by `stormer kit build`; the next build replaces it whole.\n"
)
DEFAULT_OUT: Final = Path("build") / "kit"  # inside the storm folder


@dataclass(frozen=True, slots=True)
class Built:
    out: Path
    files: list[str]  # relative to `out`
    langs: list[str]


def default_out(storm: Storm) -> Path:
    return storm.root / DEFAULT_OUT


def build_kit(storm: Storm, out: Path) -> Built:
    """Write the kit of `storm` (whose check passes: the caller's to ensure) to `out`."""
    from stormer.kit.content import kit_content
    from stormer.kit.render import write_kit

    kit = kit_content(storm)
    out = _usable(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        new = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    except OSError as e:
        raise KitError(_cannot_write(out, e)) from None
    try:
        files = write_kit(kit, storm, new)
        (new / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
        new.chmod(0o755)  # mkdtemp's is 0700; a kit is public, made to be uploaded or served
        _swap(new, out)
    except OSError as e:
        shutil.rmtree(new, ignore_errors=True)
        raise KitError(_cannot_write(out, e)) from None
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return Built(out, files, [page.lang for page in kit.pages])


def _usable(out: Path) -> Path:
    """`out`, absolute, if the kit may be written there; else a KitError saying why."""
    try:
        out = out.expanduser().absolute()
        if out.exists() and not out.is_dir():
            raise KitError(f"{out} is a file, not a folder: choose a folder with --out DIR")
        if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
            raise KitError(
                f"{out} is not empty and is not a kit stormer built: a build replaces its "
                "folder whole, so choose a new or empty folder with --out DIR"
            )
    except ValueError as e:  # a NUL in the path
        raise KitError(f"--out {str(out)!r} is not a usable path ({e})") from None
    except OSError as e:
        raise KitError(_cannot_write(out, e)) from None
    return out


def _swap(new: Path, out: Path) -> None:
    """`new` becomes `out`; the old kit, if any, is removed once the new one is in place."""
    if not out.exists():
        new.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    out.rename(old / out.name)
    try:
        new.rename(out)
    except OSError:
        (old / out.name).rename(out)  # the previous kit back where it was
        raise
    shutil.rmtree(old, ignore_errors=True)


def _cannot_write(out: Path, e: OSError) -> str:
    why = e.strerror or str(e)
    return f"cannot write the kit to {out}: {why}; choose a folder you can write with --out DIR"
