"""ASGI plumbing the fault layer needs (no platform logic here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import Message, Receive


async def read_whole_request(receive: Receive) -> Receive | None:
    """The request's body read to its end and handed on by the returned `receive`; None if
    the client disconnected before the body was complete (a server never saw that request)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
    pending = [whole]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()  # after the body, only a disconnect can come

    return replay
