"""Mastodon's scheduled statuses (https://docs.joinmastodon.org/methods/scheduled_statuses/).

`POST /api/v1/statuses` with `scheduled_at` keeps the status and answers a ScheduledStatus;
at its time on the simulator's clock (clock.py) the status is published like any other —
into `GET /_sim/posts` with its media and their alt text — never before, and once.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.routing import Route

from ._web import body_json, form, is_form, json, sim
from .mastodon_entities import (
    Scheduled,
    State,
    Status,
    iso,
    mastodon_state,
    media_json,
    record_status,
    status_json,
)
from .mastodon_oauth import api_error, authenticate

if TYPE_CHECKING:
    from starlette.requests import Request

    from .state import Sim

# `scheduled_at`: "Must be at least 5 minutes in the future."
# (https://docs.joinmastodon.org/methods/statuses/#form-data-parameters); closer than that,
# the 422 https://docs.joinmastodon.org/methods/scheduled_statuses/#422-unprocessable-entity
# shows (ScheduledStatusValidator on the ScheduledStatus model).
MIN_AHEAD_S = 5 * 60
TOO_SOON = "Validation failed: Scheduled at The scheduled date must be in the future"
# A `scheduled_at` that is no date: PostStatusService#preprocess_attributes! turns the
# ArgumentError into ActiveRecord::RecordInvalid, whose message without a record is this
# (app/services/post_status_service.rb; the API renders it as {"error": …}, 422).
NOT_A_DATE = "Record invalid"


def _parse(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    # Ruby's String#to_datetime reads a time without an offset as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def when(value: Any, now: float) -> datetime | Response | None:
    """When a new status is to be published: None for now; a 422 when it cannot be."""
    if value is None or value == "":
        return None
    moment = _parse(value)
    if moment is None:
        return api_error(422, NOT_A_DATE)
    if moment.timestamp() <= now:
        # A time already past is no schedule: the status is posted at once
        # (PostStatusService#scheduled_in_the_past? in app/services/post_status_service.rb).
        return None
    if moment.timestamp() < now + MIN_AHEAD_S:
        return api_error(422, TOO_SOON)
    return moment


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def scheduled_json(item: Scheduled, now: float) -> dict[str, Any]:
    """A ScheduledStatus: https://docs.joinmastodon.org/entities/ScheduledStatus/ — `params`
    are the status's parameters as given, `media_attachments` the media they name."""
    draft = item.draft
    return {
        "id": item.id,
        "scheduled_at": iso(item.scheduled_at),
        "params": {
            "text": draft.text,
            "poll": None,
            "media_ids": [m.id for m in draft.media] or None,
            "sensitive": draft.sensitive,
            "spoiler_text": draft.spoiler_text or None,
            "visibility": draft.visibility,
            "language": draft.language,
            "scheduled_at": None,
            "idempotency": None,
            "in_reply_to_id": None,
            "application_id": None,
            "with_rate_limit": False,
        },
        "media_attachments": [media_json(item.base, m, now) for m in draft.media],
    }


def schedule(request: Request, draft: Status, at: datetime, key: str | None) -> Response:
    """Keep `draft` to publish at `at`; "Providing this parameter will cause ScheduledStatus
    to be returned instead of Status" (https://docs.joinmastodon.org/methods/statuses/#create)."""
    state = mastodon_state(sim(request))
    item = Scheduled(str(sim(request).store.snowflake()), at, draft, _base(request))
    state.scheduled[item.id] = item
    if key:
        # The same Idempotency-Key returns the scheduled status, not a second one
        # (PostStatusService#idempotency_duplicate looks in scheduled_statuses).
        state.idempotency[(draft.account.id, key)] = (item.id, time.time())
    return json(scheduled_json(item, time.time()))


def repeated(request: Request, state: State, known: str) -> Response:
    """The answer to a repeated Idempotency-Key: what the first request made."""
    if known in state.statuses:
        return json(status_json(_base(request), state.statuses[known]))
    if known in state.scheduled:
        return json(scheduled_json(state.scheduled[known], time.time()))
    # A scheduled status since published or cancelled: `find` raises RecordNotFound.
    return api_error(404, "Record not found")


def publish_due(simulator: Sim) -> None:
    """Publish every scheduled status whose time has come on the simulator's clock, in time
    order. Each is removed before it is published, as PublishScheduledStatusWorker destroys
    the ScheduledStatus first (app/workers/publish_scheduled_status_worker.rb): once, even if
    publishing fails — and a status whose media were meanwhile attached to another status
    no longer validates and is dropped, as the worker drops it."""
    state = mastodon_state(simulator)
    if not state.scheduled:
        return
    now = simulator.clock.now()
    due = [s for s in state.scheduled.values() if s.scheduled_at.timestamp() <= now]
    for item in sorted(due, key=lambda s: (s.scheduled_at, int(s.id))):
        del state.scheduled[item.id]
        if any(m.status_id is not None for m in item.draft.media):
            continue
        published = replace(
            item.draft, id=str(simulator.store.snowflake()), created_at=item.scheduled_at
        )
        record_status(simulator, item.base, published)


def _mine(request: Request, state: State, owner: str) -> Scheduled | Response:
    item = state.scheduled.get(request.path_params["id"])
    if item is None or item.draft.account.id != owner:
        # "ScheduledStatus is not owned by you or does not exist":
        # https://docs.joinmastodon.org/methods/scheduled_statuses/#404-not-found
        return api_error(404, "Record not found")
    return item


def _page(items: list[Scheduled], query: Any) -> list[Scheduled]:
    """max_id, since_id, min_id and limit (default 20, max 40), newest first:
    https://docs.joinmastodon.org/methods/scheduled_statuses/#query-parameters"""
    try:
        limit = min(40, max(1, int(query.get("limit", "20"))))
    except ValueError:
        limit = 20
    ordered = sorted(items, key=lambda s: int(s.id))
    names = ("max_id", "since_id", "min_id")
    bounds = {k: int(query[k]) for k in names if query.get(k, "").isdigit()}
    if "max_id" in bounds:
        ordered = [s for s in ordered if int(s.id) < bounds["max_id"]]
    for lower in ("since_id", "min_id"):
        if lower in bounds:
            ordered = [s for s in ordered if int(s.id) > bounds[lower]]
    # min_id pages forward: the `limit` oldest after it; the others the `limit` newest.
    chosen = ordered[:limit] if "min_id" in bounds else ordered[-limit:]
    return chosen[::-1]


async def list_scheduled(request: Request) -> Response:
    # "User token + `read:statuses`": https://docs.joinmastodon.org/methods/scheduled_statuses/#get
    account = authenticate(request, "read:statuses")
    if isinstance(account, Response):
        return account
    state = mastodon_state(sim(request))
    mine = [s for s in state.scheduled.values() if s.draft.account.id == account.id]
    now = time.time()
    return json([scheduled_json(s, now) for s in _page(mine, request.query_params)])


async def get_scheduled(request: Request) -> Response:
    # "User token + `read:statuses`":
    # https://docs.joinmastodon.org/methods/scheduled_statuses/#get-one
    account = authenticate(request, "read:statuses")
    if isinstance(account, Response):
        return account
    item = _mine(request, mastodon_state(sim(request)), account.id)
    return item if isinstance(item, Response) else json(scheduled_json(item, time.time()))


async def _scheduled_at(request: Request) -> Any:
    if is_form(request):
        async with form(request) as data:
            return data.get("scheduled_at")
    body = await body_json(request)
    given = body.get("scheduled_at") if isinstance(body, dict) else None
    return given or request.query_params.get("scheduled_at")


async def update_scheduled(request: Request) -> Response:
    # "User token + `write:statuses`"; scheduled_at "Must be at least 5 minutes into the
    # future": https://docs.joinmastodon.org/methods/scheduled_statuses/#update
    account = authenticate(request, "write:statuses")
    if isinstance(account, Response):
        return account
    item = _mine(request, mastodon_state(sim(request)), account.id)
    if isinstance(item, Response):
        return item
    value = await _scheduled_at(request)
    if value is not None:
        moment = _parse(value)
        if moment is None:
            return api_error(422, NOT_A_DATE)
        # The model's validator, not PostStatusService: a time in the past is refused too.
        if moment.timestamp() < sim(request).clock.now() + MIN_AHEAD_S:
            return api_error(422, TOO_SOON)
        item.scheduled_at = moment
    return json(scheduled_json(item, time.time()))


async def cancel_scheduled(request: Request) -> Response:
    # "User token + `write:statuses`", answers `{}`:
    # https://docs.joinmastodon.org/methods/scheduled_statuses/#cancel
    account = authenticate(request, "write:statuses")
    if isinstance(account, Response):
        return account
    state = mastodon_state(sim(request))
    item = _mine(request, state, account.id)
    if isinstance(item, Response):
        return item
    del state.scheduled[item.id]
    return json({})


routes = [
    Route("/api/v1/scheduled_statuses", list_scheduled, methods=["GET"]),
    Route("/api/v1/scheduled_statuses/{id}", get_scheduled, methods=["GET"]),
    Route("/api/v1/scheduled_statuses/{id}", update_scheduled, methods=["PUT"]),
    Route("/api/v1/scheduled_statuses/{id}", cancel_scheduled, methods=["DELETE"]),
]
