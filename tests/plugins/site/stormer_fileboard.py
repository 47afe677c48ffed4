"""A third-party stormer platform, as another package would ship it: "fileboard" appends each
post as one JSON line to a file (the account's base_url names it). It exists to prove that a
plugin registered under the `stormer.platforms` entry-point group is used by check, preview,
doctor and sending without any change to stormer — including what it declares about itself
(its limits, rules and pace), which differs from every built-in's."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from stormer.channels.base import Connection, ImageLimits, Platform, Published, Staged, secret
from stormer.channels.http import materialize
from stormer.errors import Rejected


class Fileboard(Platform):
    name = "fileboard"
    title = "Fileboard"
    text_limit = 120
    max_images = 1
    image_limits = ImageLimits(source="a board keeps its pictures small", max_bytes=300_000)
    credential_fields = ("board_key",)
    needs_base_url = True  # base_url names the board's file; there is no default board
    same_text_forbidden = True  # a board shows each text once
    idempotency = "key"  # the item id: a board refuses a line it holds already, for ever
    concurrency = 1  # one writer at a time appends to a file
    pace = (2, 1.0)  # two lines a second from one account: a board is read by people

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
        line = await asyncio.to_thread(_append, board, staged.item)
        return Published(staged.item.id, f"{board}#{line}")


def _append(board: Path, item: Any) -> int:
    """Append `item` to the board (with the time it was written); return its line number."""
    lines = board.read_text().splitlines() if board.exists() else []
    if any(json.loads(line)["id"] == item.id for line in lines):
        raise Rejected("already on the board")  # its own idempotency: one line per item
    with board.open("a") as f:
        f.write(json.dumps({"id": item.id, "text": item.text, "at": time.time()}) + "\n")
    return len(lines) + 1
