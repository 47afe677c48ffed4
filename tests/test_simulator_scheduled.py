"""Mastodon's scheduled statuses in the simulator, and the simulator's clock they are
published on: never before their time, once, with their media and alt text."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fixtures_sim import png_bytes
from timing import wait_until

ALICE = {"Authorization": "Bearer alice"}
BOB = {"Authorization": "Bearer bob"}
TOO_SOON = "Validation failed: Scheduled at The scheduled date must be in the future"


@pytest.fixture
def client(simulator: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator, timeout=10) as c:
        yield c


def _now(client: httpx.Client) -> datetime:
    return datetime.fromisoformat(client.get("/_sim/clock").json()["now"])


def _clock_to(client: httpx.Client, moment: datetime) -> None:
    client.post("/_sim/clock", json={"to": moment.isoformat()}).raise_for_status()


def _schedule(client: httpx.Client, at: datetime | str, **more: object) -> httpx.Response:
    when = at if isinstance(at, str) else at.isoformat()
    body = {"status": "#storm", "scheduled_at": when, **more}
    return client.post("/api/v1/statuses", json=body, headers=ALICE)


def _texts(client: httpx.Client) -> list[str]:
    return [p["text"] for p in client.get("/_sim/posts").json()]


def test_five_minutes_ahead_is_the_least_a_schedule_may_be(client: httpx.Client) -> None:
    now = _now(client)
    close = _schedule(client, now + timedelta(minutes=4, seconds=50))
    assert close.status_code == 422 and close.json() == {"error": TOO_SOON}
    ok = _schedule(client, now + timedelta(minutes=6))
    assert ok.status_code == 200 and set(ok.json()) == {
        "id",
        "scheduled_at",
        "params",
        "media_attachments",
    }
    assert _texts(client) == []


def test_a_time_already_past_posts_at_once_and_a_non_date_is_refused(
    client: httpx.Client,
) -> None:
    past = _schedule(client, _now(client) - timedelta(minutes=1))
    assert past.status_code == 200 and "content" in past.json()  # a Status, not scheduled
    assert _texts(client) == ["#storm"]
    nonsense = _schedule(client, "next tuesday")
    assert nonsense.status_code == 422 and nonsense.json() == {"error": "Record invalid"}


def test_each_account_sees_and_cancels_only_its_own(client: httpx.Client) -> None:
    at = _now(client) + timedelta(hours=1)
    mine = _schedule(client, at).json()
    assert client.get("/api/v1/scheduled_statuses", headers=BOB).json() == []
    for method in ("GET", "PUT", "DELETE"):
        other = client.request(method, f"/api/v1/scheduled_statuses/{mine['id']}", headers=BOB)
        assert other.status_code == 404 and other.json() == {"error": "Record not found"}
    assert client.delete(f"/api/v1/scheduled_statuses/{mine['id']}", headers=ALICE).json() == {}
    gone = client.delete(f"/api/v1/scheduled_statuses/{mine['id']}", headers=ALICE)
    assert gone.status_code == 404
    _clock_to(client, at + timedelta(minutes=1))
    assert _texts(client) == []  # cancelled: never published


def test_moving_a_schedule_needs_five_minutes_too(client: httpx.Client) -> None:
    item = _schedule(client, _now(client) + timedelta(hours=1)).json()
    path = f"/api/v1/scheduled_statuses/{item['id']}"
    for moment in (_now(client) - timedelta(hours=1), _now(client) + timedelta(minutes=2)):
        refused = client.put(path, data={"scheduled_at": moment.isoformat()}, headers=ALICE)
        assert refused.status_code == 422 and refused.json() == {"error": TOO_SOON}
    assert client.get(path, headers=ALICE).json()["scheduled_at"] == item["scheduled_at"]


def test_the_scopes_are_the_documented_ones(client: httpx.Client) -> None:
    """Listing needs read:statuses; a kit token with only write scopes can create and
    cancel, not list (https://docs.joinmastodon.org/methods/scheduled_statuses/)."""
    body = {"client_name": "kit", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
    app = client.post("/api/v1/apps", json={**body, "scopes": "write:statuses"}).json()
    page = client.get(
        "/oauth/authorize",
        params={
            "client_id": app["client_id"],
            "redirect_uri": body["redirect_uris"],
            "response_type": "code",
            "scope": "write:statuses",
        },
    )
    code = page.text.split("<code>")[1].split("</code>")[0]
    grant = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "redirect_uri": body["redirect_uris"],
    }
    writer = {
        "Authorization": f"Bearer {client.post('/oauth/token', data=grant).json()['access_token']}"
    }
    at = (_now(client) + timedelta(hours=1)).isoformat()
    made = client.post("/api/v1/statuses", json={"status": "x", "scheduled_at": at}, headers=writer)
    assert made.status_code == 200
    assert client.get("/api/v1/scheduled_statuses", headers=writer).status_code == 403
    path = f"/api/v1/scheduled_statuses/{made.json()['id']}"
    assert client.delete(path, headers=writer).status_code == 200


def test_the_same_idempotency_key_returns_the_same_scheduled_status(client: httpx.Client) -> None:
    at = (_now(client) + timedelta(hours=1)).isoformat()
    key = {**ALICE, "Idempotency-Key": "kit-1"}
    body = {"status": "#storm", "scheduled_at": at}
    first = client.post("/api/v1/statuses", json=body, headers=key).json()
    again = client.post("/api/v1/statuses", json=body, headers=key).json()
    assert again == first
    assert len(client.get("/api/v1/scheduled_statuses", headers=ALICE).json()) == 1


def test_published_at_its_time_in_order_once_with_media_and_alt_text(
    client: httpx.Client,
) -> None:
    upload = client.post(
        "/api/v2/media",
        files={"file": ("a.png", png_bytes(), "image/png")},
        data={"description": "a red square"},
        headers=ALICE,
    ).json()
    wait_until(
        "the media to be processed",
        lambda: client.get(f"/api/v1/media/{upload['id']}", headers=ALICE).status_code == 200,
    )
    t = (_now(client) + timedelta(hours=2)).replace(microsecond=0)
    second = _schedule(client, t + timedelta(seconds=1), status="second").json()
    first = _schedule(client, t, status="first", media_ids=[upload["id"]]).json()
    assert first["params"]["media_ids"] == [upload["id"]]
    assert first["media_attachments"][0]["description"] == "a red square"
    page = client.get("/api/v1/scheduled_statuses", params={"limit": 1}, headers=ALICE).json()
    assert [s["id"] for s in page] == [first["id"]]  # newest first, `limit` honoured
    assert second["id"] != first["id"]

    client.post("/_sim/clock", json={"advance_s": 3600}).raise_for_status()
    assert _texts(client) == []
    _clock_to(client, t + timedelta(seconds=5))
    posts = client.get("/_sim/posts").json()
    assert [p["text"] for p in posts] == ["first", "second"]  # by their times
    assert posts[0]["media"] == [{"alt": "a red square", "size": 73, "mime": "image/png"}]
    assert posts[0]["received_at"] == t.astimezone(UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z"
    )
    status = client.get(f"/api/v1/statuses/{posts[0]['remote_id']}", headers=ALICE).json()
    assert status["media_attachments"][0]["description"] == "a red square"
    for _ in range(3):
        client.get("/api/v1/scheduled_statuses", headers=ALICE)
    assert _texts(client) == ["first", "second"]  # once


def test_media_taken_by_another_status_meanwhile_drops_the_scheduled_one(
    client: httpx.Client,
) -> None:
    """Media are not reserved by a schedule; at its time the status no longer validates and
    is dropped, as Mastodon's PublishScheduledStatusWorker drops it."""
    upload = client.post(
        "/api/v1/media", files={"file": ("a.png", png_bytes(), "image/png")}, headers=ALICE
    ).json()
    at = _now(client) + timedelta(hours=1)
    assert _schedule(client, at, status="later", media_ids=[upload["id"]]).status_code == 200
    now = client.post(
        "/api/v1/statuses", json={"status": "now", "media_ids": [upload["id"]]}, headers=ALICE
    )
    assert now.status_code == 200
    _clock_to(client, at + timedelta(minutes=1))
    assert _texts(client) == ["now"]
    assert client.get("/api/v1/scheduled_statuses", headers=ALICE).json() == []


def test_the_clock_moves_only_forward_and_reset_puts_it_back(client: httpx.Client) -> None:
    for body in (
        {"advance_s": -1},
        {"advance_s": "nan"},
        {"to": "2000-01-01T00:00:00Z"},
        {"to": "2099-01-01T00:00:00"},  # no offset: which zone?
        {"to": "tomorrow"},
        {},
        [],
    ):
        refused = client.post("/_sim/clock", json=body)
        assert refused.status_code == 400 and refused.json()["error"], body
    moved = client.post("/_sim/clock", json={"advance_s": 86400}).json()
    assert moved["offset_s"] == 86400
    assert _now(client) - datetime.now(UTC) > timedelta(hours=23)
    client.post("/_sim/reset").raise_for_status()
    assert client.get("/_sim/clock").json()["offset_s"] == 0


def test_the_index_lists_the_new_endpoints(client: httpx.Client) -> None:
    index = client.get("/").json()
    mastodon = index["platforms"]["mastodon"]["paths"]
    for endpoint in (
        "GET /api/v1/scheduled_statuses",
        "GET /api/v1/scheduled_statuses/{id}",
        "PUT /api/v1/scheduled_statuses/{id}",
        "DELETE /api/v1/scheduled_statuses/{id}",
        "GET /oauth/authorize",
        "POST /oauth/authorize",
    ):
        assert endpoint in mastodon
    assert {"GET /_sim/clock", "POST /_sim/clock"} <= set(index["control"])
