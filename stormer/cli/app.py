"""The typer application every command module registers on. It imports nothing of stormer, so
a command module can import it without a cycle through `stormer.cli`."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="stormer",
    help="Coordinated social-media storms: one hashtag, one moment, every time zone.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
    rich_markup_mode=None,
)
