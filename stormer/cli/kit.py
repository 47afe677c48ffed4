"""`stormer kit build|serve`: the storm kit, the static site for participants who post from
their own accounts (stormer.kit)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stormer.cli._common import StormDir, exit_if_check_fails, load, note
from stormer.cli.app import app

kit_app = typer.Typer(
    name="kit",
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The storm kit: a static site, one page per language, for participants who post "
    "themselves.",
)
app.add_typer(kit_app)

OutDir = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        metavar="DIR",
        help="The kit's folder (replaced whole at each build; a folder stormer did not make "
        "must be empty). Default: build/kit in the storm folder.",
    ),
]


@kit_app.command()
def build(out: OutDir = None, storm_dir: StormDir = Path(".")) -> None:
    """Write the kit: one page per language with posts (storm time on every clock, sample
    posts with copy buttons and click-to-post links, images with alt text, the .ics,
    endorsers who opted in), working from disk or any static host.

    Refused (exit 1) when `stormer check` rejects the storm. Prints the kit's folder.
    """
    from stormer.kit.build import build_kit, default_out

    storm = load(storm_dir)
    exit_if_check_fails(storm)
    built = build_kit(storm, out if out is not None else default_out(storm))
    print(built.out, flush=True)  # alone on stdout: scripts and `make demo` read it
    note(
        f"kit: {len(built.files)} files, pages in {', '.join(built.langs) or 'no language'}; "
        f"open {(built.out / 'index.html').as_uri()} or review it with `stormer kit serve`"
    )


@kit_app.command()
def serve(
    port: Annotated[
        int,
        typer.Option(
            "--port", "-p", min=0, max=65535, help="Port to listen on (0: any free port)."
        ),
    ] = 8788,
    out: OutDir = None,
    storm_dir: StormDir = Path("."),
) -> None:
    """Serve the built kit on http://127.0.0.1:PORT/ for review, with its Content-Security-Policy
    as a header too, until Ctrl-C. Build it first with `stormer kit build`."""
    from stormer.kit.build import default_out
    from stormer.kit.serve import kit_server, url_of

    folder = out if out is not None else default_out(load(storm_dir))
    server = kit_server(folder.expanduser().absolute(), port)
    print(url_of(server), flush=True)  # alone on stdout: scripts read the address
    note(f"serving the kit in {folder}; Ctrl-C stops")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
