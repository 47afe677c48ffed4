"""Fixtures: real local servers that receive what stormer sends out (alerts, reminders): an
SMTP server and an HTTP endpoint for JSON, each on a free loopback port, keeping everything it
receives."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from ports import free_port


@dataclass
class SmtpSink:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    def url(self, to: str = "organizer@example.org") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=stormer@example.org&to={to}"


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """An SMTP server on a free loopback port that keeps every message it receives."""
    from aiosmtpd.controller import Controller

    sink = SmtpSink(free_port())

    class Keep:
        async def handle_DATA(
            self,
            server: Any,
            session: Any,
            envelope: Any,
        ) -> str:
            sink.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    controller = Controller(Keep(), hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class JsonSink:
    port: int
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)

    def url(self, auth: str = "") -> str:
        return f"json://{auth}127.0.0.1:{self.port}/alerts"


@pytest.fixture
def json_sink() -> Iterator[JsonSink]:
    """An HTTP server on a free loopback port that keeps every JSON body POSTed to it."""
    sink = JsonSink(0)

    class Keep(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            sink.received.append((dict(self.headers), json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keep)
    sink.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
