"""A client that hangs up while the simulator holds its request (the latency a fault config
adds) finds its post created, as on a real platform, which has read the whole request and
works on it whether or not the client waits for the answer. This is what a worker killed
with its requests in flight leaves behind (the chaos harness, tests/chaos*.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from fixtures_sim import png_bytes
from timing import wait_until


@pytest.fixture
def http(simulator: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator, timeout=10) as client:
        client.post("/_sim/config", json={"latency_ms": [400, 400]}).raise_for_status()
        yield client


def posts(http: httpx.Client) -> list[dict]:
    return http.get("/_sim/posts").json()


SENDS = {
    "telegram": {"url": "/bot123:ABC/sendMessage", "json": {"chat_id": "@s", "text": "gone"}},
    "discord with an image": {
        "url": "/api/v10/webhooks/42/tok",
        "params": {"wait": "true"},
        "data": {"payload_json": '{"content": "gone", "attachments": [{"id": 0}]}'},
        "files": {"files[0]": ("a.png", png_bytes(), "image/png")},
    },
    "mastodon": {
        "url": "/api/v1/statuses",
        "headers": {"Authorization": "Bearer tok"},
        "data": {"status": "gone"},
    },
}


@pytest.mark.parametrize("send", SENDS.values(), ids=SENDS.keys())
def test_a_client_gone_during_the_latency_still_has_its_post_created(
    http: httpx.Client, simulator: str, send: dict
) -> None:
    # The client gives up after 50 ms and closes its connection; the server holds 400 ms.
    with (
        httpx.Client(base_url=simulator, timeout=httpx.Timeout(10, read=0.05)) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.post(**send)
    wait_until("the post created after its client left", lambda: len(posts(http)) == 1)
    assert "gone" in posts(http)[0]["text"]


def test_a_request_cut_off_before_its_body_was_complete_creates_nothing(
    http: httpx.Client, simulator: str
) -> None:
    address = urlsplit(simulator)
    body = b'{"chat_id": "@s", "text": "half"}'
    with socket.create_connection((address.hostname, address.port)) as raw:
        raw.sendall(
            b"POST /bot123:ABC/sendMessage HTTP/1.1\r\nHost: sim\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
    # A whole request sent after it lands (400 ms later); the cut one never does.
    http.post("/bot123:ABC/sendMessage", json={"chat_id": "@s", "text": "whole"})
    assert [p["text"] for p in posts(http)] == ["whole"]
