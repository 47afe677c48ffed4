"""`stormer init`: scaffold a new storm that passes `stormer check` straight away."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stormer.cli.app import app


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the storm in.")],
    name: Annotated[str | None, typer.Option(help="The storm's name.")] = None,
    hashtag: Annotated[str, typer.Option(help="The storm's hashtag, e.g. #FreeThem.")] = "#MyStorm",
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="WHEN",
            help="Storm time: an instant (2031-03-13T18:00:00Z, 2031-03-13T20:00:00+02:00) or "
            "a wall time ('2031-03-13 20:00') with --tz (default: a week from now, on the "
            "hour, UTC).",
        ),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option("--tz", metavar="ZONE", help="Zone of a wall time given with --at."),
    ] = None,
) -> None:
    """Create config.toml, one example post per language and participants.csv."""
    from stormer.storm.scaffold import scaffold

    _check_when(at, tz)
    created = scaffold(directory, name=name, hashtag=hashtag, at=at, tz=tz)
    for path in created:
        print(f"created {path}")
    print(
        f"Next: write the sample posts in posts/ in your own words (check refuses the "
        f"placeholders), edit {directory / 'config.toml'}, then run "
        f"`stormer check --storm {directory}`."
    )


# What --at accepts: said when the time given cannot be read.
AT_FORMS = (
    "--at takes an instant such as 2031-03-13T18:00:00Z or 2031-03-13T20:00:00+02:00, or a "
    "wall time such as '2031-03-13 20:00' with --tz ZONE"
)


def _check_when(at: str | None, tz: str | None) -> None:
    """A bad --at or --tz is a usage error naming the option (and what --at accepts), before
    anything is written — not a generic error from deep inside the scaffold."""
    from stormer.errors import TimeError, UnknownZone
    from stormer.timezones import parse_when

    if at is None:
        if tz:
            raise typer.BadParameter(
                "--tz needs --at: give the wall time in that zone", param_hint="--tz"
            )
        return
    try:
        parse_when(at, tz)
    except UnknownZone as e:
        raise typer.BadParameter(str(e), param_hint="--tz") from None
    except TimeError as e:
        message = str(e)
        # A gap or a fold spells out its own choices; a time it cannot read names the forms.
        if type(e) is TimeError and "--tz ZONE" not in message:
            message += f" ({AT_FORMS})"
        raise typer.BadParameter(message, param_hint="--at") from None
