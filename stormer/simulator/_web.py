"""Small request/response helpers shared by the platform modules (no platform logic here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import FormData
from starlette.responses import Response

from .faults import utcnow

if TYPE_CHECKING:
    from starlette.datastructures import UploadFile
    from starlette.requests import Request

    from .state import Sim

# Starlette's default is 1 MiB per multipart part; platforms take images of 10-16 MB.
MAX_PART_BYTES = 100 * 1024 * 1024


def json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # orjson: the benchmarks push 10,000 posts through here.
    return Response(
        orjson.dumps(data), status_code=status, headers=headers, media_type="application/json"
    )


def sim(request: Request) -> Sim:
    return request.app.state.sim  # type: ignore[no-any-return]


def received_at(request: Request) -> datetime:
    """When the request arrived (stamped by the fault layer before any latency)."""
    stamped = request.scope.get("state", {}).get("received_at")
    return stamped if isinstance(stamped, datetime) else utcnow()


async def body_json(request: Request) -> Any:
    """The JSON body, or None when there is none or it does not parse."""
    raw = await request.body()
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded"))


@asynccontextmanager
async def form(request: Request) -> AsyncIterator[FormData]:
    """`async with form(request) as f:` — closes the spooled upload files afterwards."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        # The stdlib parser is several times faster than the multipart one for plain forms,
        # and a 10,000-post Mastodon burst is all plain forms.
        body = (await request.body()).decode("utf-8", "replace")
        fields: list[tuple[str, str | UploadFile]] = [*parse_qsl(body, keep_blank_values=True)]
        yield FormData(fields)
        return
    async with request.form(max_files=100, max_fields=1000, max_part_size=MAX_PART_BYTES) as data:
        yield data


async def file_bytes(value: Any) -> tuple[bytes, str | None, str | None] | None:
    """(data, filename, content type) of an uploaded form part, or None if it is a plain field."""
    if isinstance(value, str) or value is None:
        return None
    data = await value.read()
    return data, value.filename, value.content_type


def form_list(data: FormData, key: str) -> list[str]:
    """Rails/PHP-style arrays: `key[]=a&key[]=b` (and plain repeated `key`)."""
    return [v for v in (*data.getlist(f"{key}[]"), *data.getlist(key)) if isinstance(v, str)]
