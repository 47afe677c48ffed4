"""`stormer simulator serve`: the local imitation of all six platform APIs, on one port."""

from __future__ import annotations

from typing import Annotated

import typer

from stormer.cli.app import app

simulator_app = typer.Typer(
    name="simulator",
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The local platform simulator used by tests, benchmarks and rehearsals.",
)
app.add_typer(simulator_app)


@simulator_app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port", "-p", min=0, max=65535, help="Port to listen on (0: any free port)."
        ),
    ] = 8787,
    latency: Annotated[
        str | None,
        typer.Option(
            "--latency",
            metavar="MS",
            help="Answer after a random delay in this range, in milliseconds: 50-300.",
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option("--seed", help="Seed of the fault and latency randomness (repeatable runs)."),
    ] = 0,
) -> None:
    """Serve Mastodon, Bluesky, X, Telegram, Discord and Matrix imitations; print the base URL
    and how to point a storm's accounts at it.

    GET / lists what it serves; faults are set at run time with POST /_sim/config; GET
    /_sim/posts lists what was posted.
    """
    # Starlette and uvicorn are imported here, not at the top: `stormer --help` stays fast.
    import socket

    from stormer.simulator import SimConfig, create_app, parse_latency
    from stormer.simulator.background import quiet_server

    try:
        config = SimConfig(seed=seed, latency_ms=parse_latency(latency) if latency else (0, 0))
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--latency") from e
    # Binding the socket here lets --port 0 print the port actually taken.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (socket.gaierror, TypeError, UnicodeError) as e:
        # Not a host name the resolver takes (NUL, an unencodable or unknown name).
        sock.close()
        raise typer.BadParameter(f"cannot listen on {host!r}: {e}", param_hint="--host") from e
    except OSError as e:
        sock.close()
        raise typer.BadParameter(
            f"cannot listen on {host}:{port}: {e.strerror}", param_hint="--port"
        ) from e
    sock.listen(4096)  # a storm opens thousands of connections at once
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    url = f"http://{shown}:{bound}"
    print(url, flush=True)  # alone on stdout: scripts read the address from its first line
    _how_to_use(url)
    server = quiet_server(create_app(config))
    try:
        server.run(sockets=[sock])  # on the configured loop (asyncio.run would ignore it)
    finally:
        sock.close()


def _how_to_use(url: str) -> None:
    """On stderr, for people: how to point a storm at the simulator, and what else it has."""
    from stormer.cli._common import note
    from stormer.simulator.index import how_to_point

    note(f"platform simulator at {url} (Ctrl-C stops it; nothing sent to it leaves this machine)")
    note("point a storm's accounts at it in config.toml, per platform:")
    for platform, point in how_to_point(url).items():
        note(f"    {platform:<9} {point}")
    note(f"then schedule and run the storm as usual. {url}/ lists every path it serves;")
    note(f"{url}/_sim/posts what was posted; POST {url}/_sim/config sets faults and latency.")
