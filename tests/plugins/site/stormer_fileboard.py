"""A third-party stormer platform, as another package would ship it: "fileboard" appends each
post as one JSON line to a file (the account's base_url names it). It exists to prove that a
plugin registered under the `stormer.platforms` entry-point group is used by check, preview
and sending without any change to stormer."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from stormer.channels.base import Connection, Platform, Published, Staged, secret
from stormer.channels.http import materialize
from stormer.errors import Rejected


class Fileboard(Platform):
    name = "fileboard"
    title = "Fileboard"
    text_limit = 120
    max_images = 1
    credential_fields = ("board_key",)
    idempotency = "key"

    def length(self, text: str) -> int:
        return len(text)

    def build_requests(self, item: Any, account: Any) -> list[dict[str, Any]]:
        return [
            {
                "method": "APPEND",
                "url": account.base_url,
                "headers": {"Board-Key": secret("board_key")},
                "json": {"id": item.id, "text": item.text, "lang": item.lang},
            }
        ]

    async def verify(self, conn: Connection) -> str:
        return f"board at {conn.account.base_url}"

    async def stage(self, item: Any, conn: Connection) -> Staged:
        values = {secret("board_key"): conn.secret("board_key")}
        return Staged(
            item, [materialize(s, values) for s in self.build_requests(item, conn.account)]
        )

    async def publish(self, staged: Staged, conn: Connection) -> Published:
        board = Path(str(conn.account.base_url).removeprefix("file://"))
        # Off the event loop, as any plugin's blocking I/O must be: a burst shares the loop.
        return await asyncio.to_thread(_append, board, staged.item.id, staged.item.text)


def _append(board: Path, item_id: str, text: str) -> Published:
    """Append the post to the board, once: its own idempotency is one line per item."""
    lines = board.read_text().splitlines() if board.exists() else []
    if any(json.loads(line)["id"] == item_id for line in lines):
        raise Rejected("already on the board")
    with board.open("a") as f:
        f.write(json.dumps({"id": item_id, "text": text}) + "\n")
    return Published(item_id, f"{board}#{len(lines) + 1}")
