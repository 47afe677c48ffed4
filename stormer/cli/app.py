"""The typer application every command module registers on. It imports nothing of stormer, so
a command module can import it without a cycle through `stormer.cli`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    # typer vendors its own click: its types, not the `click` package's.
    from typer._click import Context, HelpFormatter

# `stormer --help` lists the commands in the order an organizer works, not alphabetically.
SECTIONS = (
    ("Prepare", ("init", "times", "participants", "ics", "kit", "platforms", "login")),
    ("Check", ("check", "preview", "doctor", "rehearse", "post")),
    ("Schedule and run", ("schedule", "run", "status", "watchdog")),
    ("After the storm", ("report", "impact")),
    ("Tools", ("db", "simulator")),
)


class WorkOrder(TyperGroup):
    """The command list in SECTIONS order, under their headings; any command not placed
    (a new one) comes last, under "Other", so that it is never hidden."""

    def list_commands(self, ctx: Context) -> list[str]:
        placed = [name for _, names in SECTIONS for name in names if name in self.commands]
        return placed + sorted(set(self.commands) - set(placed))

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        width = formatter.width - 6 - max(len(name) for name in self.commands)
        listed: set[str] = set()
        for title, names in (*SECTIONS, ("Other", tuple(sorted(self.commands)))):
            rows = []
            for name in names:
                command = self.commands.get(name)
                if command is None or command.hidden or name in listed:
                    continue
                listed.add(name)
                rows.append((name, command.get_short_help_str(limit=width)))
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"stormer {version('stormer')}")
        raise typer.Exit()


app = typer.Typer(
    name="stormer",
    cls=WorkOrder,
    help="Coordinated social-media storms: one hashtag, one moment, every time zone.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
    rich_markup_mode=None,
)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> Any:
    """Coordinated social-media storms: one hashtag, one moment, every time zone."""
