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
            "--at", metavar="WHEN", help="Storm time (default: a week from now, on the hour, UTC)."
        ),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option("--tz", metavar="ZONE", help="Zone of a wall time given with --at."),
    ] = None,
) -> None:
    """Create config.toml, one example post per language and participants.csv."""
    from stormer.storm.scaffold import scaffold

    created = scaffold(directory, name=name, hashtag=hashtag, at=at, tz=tz)
    for path in created:
        print(f"created {path}")
    print(
        f"Next: write the sample posts in posts/ in your own words (check refuses the "
        f"placeholders), edit {directory / 'config.toml'}, then run "
        f"`stormer check --storm {directory}`."
    )
