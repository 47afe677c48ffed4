"""Pieces shared by the per-platform client tests, which run a plugin against a fake platform
behind httpx.MockTransport: reading what the plugin sent, running a scenario on a connection
to the fake, and the checks that a credential is shown nowhere."""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import httpx
import pytest

from stormer.channels.base import Connection, Platform, Published, Staged
from stormer.errors import OutcomeUnknown
from stormer.queue import MediaRef, QueueItem
from stormer.secrets import Secret
from stormer.storm import Account

PNG = b"\x89PNG\r\n\x1a\n" + b"first image"
JPEG = b"\xff\xd8\xff\xe0" + b"second image"
T = TypeVar("T")
STORM_AT = datetime(2021, 3, 11, 18, tzinfo=UTC)  # the 2021 storm's instant
ITEM_ID = "0123456789abcdef"


def account_for(
    platform: str,
    credential: tuple[str, str],
    *,
    base_url: str | None = None,
    target: str | None = None,
) -> Account:
    """The campaign's account on `platform`, as config.toml would load it (English posts,
    one credential named by its environment variable)."""
    return Account(
        name=f"campaign-{platform}",
        platform=platform,
        langs=("en",),
        base_url=base_url,
        target=target,
        handle=None,
        credentials=(credential,),
        line=None,
    )


def post_item(
    platform: str,
    text: str,
    media: Iterable[MediaRef] = (),
    *,
    account: str | None = None,
    item_id: str = ITEM_ID,
    lang: str = "en",
    fire_at: datetime = STORM_AT,
) -> QueueItem:
    """One post as planning hands it to the plugin (the account `campaign-PLATFORM` unless
    named)."""
    return QueueItem(
        id=item_id,
        kind="post",
        fire_at=fire_at,
        platform=platform,
        account=account or f"campaign-{platform}",
        lang=lang,
        text=text,
        media=tuple(media),
    )


def form(request: httpx.Request) -> dict[str, Any]:
    """A JSON or multipart body as fields: text as str, files as (filename, bytes, mime)."""
    ctype = request.headers["content-type"]
    if ctype.startswith("application/json"):
        return dict(json.loads(request.content))
    message = BytesParser(policy=policy.HTTP).parsebytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + request.content
    )
    assert message.is_multipart(), ctype
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        filename = part.get_filename()
        fields[name] = (filename, data, part.get_content_type()) if filename else data.decode()
    return fields


def run_against(
    server: Callable[[httpx.Request], httpx.Response],
    scenario: Callable[[Connection], Awaitable[T]],
    account: Account,
    credentials: dict[str, str],
    *,
    state: dict[str, Any] | None = None,
    media_root: Path | None = None,
    on_state_change: Callable[[dict[str, Any]], None] | None = None,
) -> T:
    """Run `scenario` on a connection to `account`, with `credentials` (as secrets), whose
    requests go to `server`, a fake platform. `state` is handed in as is: a test may look
    at what the plugin kept in it."""

    async def main() -> T:
        async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as client:
            conn = Connection(
                account,
                client,
                {field: Secret(value) for field, value in credentials.items()},
                state=state if state is not None else {},
                on_state_change=on_state_change,
                media_root=media_root,
            )
            return await scenario(conn)

    return asyncio.run(main())


async def publish(plugin: Platform, queued: QueueItem, conn: Connection) -> Published:
    return await plugin.publish(await plugin.stage(queued, conn), conn)


def lost_then_reconciled(
    plugin: Platform, queued: QueueItem
) -> Callable[[Connection], Awaitable[Any]]:
    """The scenario: stage `queued`, publish it and lose the answer (OutcomeUnknown: the fake
    is set to lose it), then ask the platform (`reconcile`); returns what reconcile found."""

    async def scenario(conn: Connection) -> Any:
        staged = await plugin.stage(queued, conn)
        with pytest.raises(OutcomeUnknown):
            await plugin.publish(staged, conn)
        return await plugin.reconcile(staged, conn)

    return scenario


class Answering(Protocol):
    """A fake platform whose answer to a send a test can replace."""

    answer: httpx.Response | None


@runtime_checkable
class LosingAnswers(Answering, Protocol):
    """A fake platform that can also take a send and lose the answer (a read timeout)."""

    timeout_after_send: bool


def shown(error: BaseException) -> list[str]:
    """Everything an error can put in front of someone: message, repr, traceback."""
    return [str(error), repr(error), "".join(traceback.format_exception(error))]


def what_sending_shows(
    plugin: Platform, queued: QueueItem, server: Answering, *, server_error: httpx.Response
) -> Callable[[Connection], Awaitable[list[str]]]:
    """The scenario: verify, stage and publish `queued`, then publish it again twice, failing:
    the answer lost (if the fake can lose one) and `server_error`. Returns everything that put
    in front of someone: what verify says, the reprs of the staged item (second), the
    connection and the post, and each error as `shown`."""

    async def scenario(conn: Connection) -> list[str]:
        texts = [await plugin.verify(conn)]
        staged = await plugin.stage(queued, conn)
        texts.extend([repr(staged), repr(conn)])
        texts.append(repr(await plugin.publish(staged, conn)))
        if isinstance(server, LosingAnswers):
            server.timeout_after_send = True
            texts.extend(await _failed_publish(plugin, staged, conn))
        server.answer = server_error
        texts.extend(await _failed_publish(plugin, staged, conn))
        return texts

    return scenario


async def _failed_publish(plugin: Platform, staged: Staged, conn: Connection) -> list[str]:
    with pytest.raises(OutcomeUnknown) as caught:
        await plugin.publish(staged, conn)
    return shown(caught.value)


def assert_nowhere(
    forbidden: Iterable[str], texts: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """None of `forbidden` in any of `texts`, any message logged, or the log as captured."""
    logged = [r.getMessage() for r in caplog.records]
    for text in [*texts, *logged, caplog.text]:
        for secret in forbidden:
            assert secret not in text, text
