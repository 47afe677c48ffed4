"""`stormer platforms`, `stormer post` and `stormer login`: the accounts side of a storm."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from stormer.cli._common import JsonFlag, StormDir, load, print_json
from stormer.cli.app import app


@app.command()
def platforms(as_json: JsonFlag = False) -> None:
    """List installed platform plugins with their limits and credential fields."""
    from stormer.channels import registry

    rows: list[dict[str, Any]] = []
    for name, entry in sorted(registry.installed().items()):
        plugin = registry.get(name)
        rows.append(
            {
                "name": name,
                "title": plugin.title,
                "plugin": entry.value,
                "text_limit": plugin.text_limit,
                "media_text_limit": plugin.media_text_limit,
                "max_images": plugin.max_images,
                "credentials": list(plugin.credential_fields),
                "alternative_auth": {k: list(v) for k, v in plugin.alternative_auth.items()},
                "target": plugin.target_field,
                "idempotency": plugin.idempotency,
            }
        )
    if as_json:
        print_json(rows)
        return
    for r in rows:
        limit = f"{r['text_limit']}" + (
            f" ({r['media_text_limit']} with media)" if r["media_text_limit"] else ""
        )
        print(
            f"{r['name']:<10} {r['title']:<10} limit {limit:<22} images {r['max_images']:<3} "
            f"credentials: {', '.join(r['credentials']) or '-'}"
            + "".join(
                f" (or, for {method}: {', '.join(fields)})"
                for method, fields in r["alternative_auth"].items()
            )
            + (f"; target: {r['target']}" if r["target"] else "")
        )


@app.command()
def post(
    account: Annotated[str, typer.Option("--account", "-a", help="The account to post from.")],
    post_file: Annotated[Path, typer.Option("--post", "-p", help="The post file (posts/*.md).")],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Check the credentials and show the request; post nothing."),
    ] = False,
    as_json: JsonFlag = False,
    storm_dir: StormDir = Path("."),
) -> None:
    """Send one post now through the real path (stage, publish, confirm): a smoke test."""
    import asyncio

    from stormer.dispatch.connect import account_named
    from stormer.outbox.models import State

    storm = load(storm_dir)
    acct = account_named(storm, account)
    result = asyncio.run(_post(storm, acct, _find_post(storm, post_file), dry_run=dry_run))
    if as_json:
        print_json(result)
    elif dry_run:
        print(f"{acct.name}: credentials accepted ({result['identity']}); would send:")
        print_json(result["payload"])
    elif result["outcome"] == State.SENT:
        print(f"posted: {result['permalink'] or result['remote_id']}")
    else:
        print(
            f"{acct.name}: the post may or may not have been published (the platform did "
            "not answer and offers no way to check); look at the account before retrying"
        )
        raise typer.Exit(3)


def _find_post(storm, path: Path):  # type: ignore[no-untyped-def]
    from stormer.errors import StormerError

    wanted = path if path.is_absolute() else (Path.cwd() / path)
    for p in storm.posts:
        if (storm.root / p.file).resolve() == wanted.resolve() or p.file == path.as_posix():
            return p
    raise StormerError(
        f"{path} is not one of this storm's posts (posts/*.md); check it with `stormer check`"
    )


def _refuse_unless_planned_so(source, account) -> None:  # type: ignore[no-untyped-def]
    """The smoke test sends only what the storm itself could send from `account`: a post its
    `platforms` or `accounts` keep from that account is refused before any request."""
    from stormer.errors import StormerError

    if source.platforms is not None and account.platform not in source.platforms:
        raise StormerError(
            f"{source.file} is only for {', '.join(source.platforms)} (its `platforms`), not "
            f"{account.name} on {account.platform}: choose one of its platforms' accounts"
        )
    if source.accounts is not None and account.name not in source.accounts:
        raise StormerError(
            f"{source.file} is only for {', '.join(source.accounts)} (its `accounts`), "
            f"not {account.name}"
        )


async def _post(storm, account, source, *, dry_run: bool) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from stormer.channels import registry
    from stormer.dispatch.connect import connect
    from stormer.dispatch.sending import post_now
    from stormer.errors import StormerError
    from stormer.plan import single_post
    from stormer.queue import item_id
    from stormer.timezones import iso_utc

    _refuse_unless_planned_so(source, account)

    now = datetime.now(UTC)
    # A smoke test is a deliberate new post each time: the id includes the moment.
    item = single_post(
        source,
        account,
        id=item_id(storm.slug, "smoke", account.name, source.file, iso_utc(now)),
        fire_at=now,
    )
    # The platform's own length rule, locally, as `check` applies it: not the platform's
    # refusal after the request has left.
    payload = registry.get(account.platform).render(item, account)
    if payload.problems:
        problems = "; ".join(payload.problems)
        raise StormerError(f"{source.file} cannot go to {account.name}: {problems}")
    async with connect(storm, account) as (plugin, conn):
        identity = await plugin.verify(conn)
        if dry_run:
            return {"identity": identity, "payload": plugin.render(item, account).requests}
        staged = await plugin.stage(item, conn)
        result = await post_now(plugin, staged, conn)
    published = result.published
    return {
        "account": account.name,
        "identity": identity,
        "outcome": result.outcome,
        "remote_id": published.remote_id if published else None,
        "permalink": published.permalink if published else None,
    }


@app.command()
def login(
    account: Annotated[str, typer.Argument(help="The account (its name in config.toml).")],
    storm_dir: StormDir = Path("."),
) -> None:
    """Obtain an account's credentials and keep them in the system keyring.

    Mastodon: the OAuth code flow. X: OAuth 2.0 with PKCE in a browser (it comes back to
    127.0.0.1:8765, or you paste the address it shows), or, for an account with OAuth 1.0a
    keys in config.toml, the four keys. Matrix: the user and password (a login to the
    account's fixed device). Bluesky: an app password. Others: paste the token."""
    import asyncio

    from stormer.channels import registry
    from stormer.dispatch.connect import account_named, client
    from stormer.secrets import store

    storm = load(storm_dir)
    acct = account_named(storm, account)
    plugin = registry.get(acct.platform)

    async def run() -> dict[str, str]:
        async with client() as http:
            return await plugin.login(acct, http, _ask, print)

    store(acct.name, asyncio.run(run()))
    print(
        f"saved in the system keyring for {acct.name}; it now takes precedence over "
        "the environment variable named in config.toml"
    )


def _ask(prompt: str, hidden: bool) -> str:
    return str(typer.prompt(prompt, hide_input=hidden))
