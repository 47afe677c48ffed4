"""Fixtures: a real headless Chromium, driven by Playwright's synchronous API.

The browser is the machine's own Chromium (Debian's `chromium`, which `make browser`
installs as root), launched by path: Playwright's own browser download is never used.
`STORMER_CHROMIUM` names another binary. A machine without it skips the browser tests with a
loud reason; under CI=true they fail instead, where a missing browser must not pass unnoticed.

`browser` is one Chromium per test module (about a second to start), stopped at the module's
end, so no Playwright connection outlives the tests that use it. `browser_context(**options)`
opens a fresh context — cookies, storage, time zone (`timezone_id`), `locale`, viewport — closed
after the test; `page` is a page in a default one. `serve_folder(path)` serves a folder of
static files on 127.0.0.1 (its own origin) until the test ends. Playwright's sync API runs
its own event loop, so it refuses to start inside a running asyncio loop: a test using these
fixtures must be a plain (non-async) test function.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from not_run import not_run

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

__all__ = ["browser", "browser_context", "chromium_path", "page", "serve_folder"]

# Chromium's sandbox needs user namespaces that containers (CI, this machine) do not give.
LAUNCH_ARGS = ["--no-sandbox"]
TIMEOUT_MS = 30_000  # Playwright's default, stated: one action on a loaded 2-core machine


def chromium_path() -> str | None:
    """The Chromium to drive: $STORMER_CHROMIUM, else `chromium` on PATH."""
    named = os.environ.get("STORMER_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    return shutil.which("chromium")


def _unavailable(reason: str) -> NoReturn:
    not_run("browser", reason)


def _outside_asyncio() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    pytest.fail(
        "Playwright's sync API cannot run inside a running asyncio loop: make this test a "
        "plain function",
        pytrace=False,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    path = chromium_path()
    if path is None:
        _unavailable(
            "no Chromium (install it with `make browser`, as root, or "
            "`sudo apt-get install -y chromium fonts-dejavu-core`; or set STORMER_CHROMIUM)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (`pip install -r requirements.lock`)")
    _outside_asyncio()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=LAUNCH_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def browser_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """`browser_context(timezone_id="Asia/Gaza", locale="ar", viewport=…)`: a new context
    with Playwright's `new_context` options; all closed after the test."""
    opened: list[BrowserContext] = []

    def open_context(**options: Any) -> BrowserContext:
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        opened.append(context)
        return context

    try:
        yield open_context
    finally:
        for context in opened:
            context.close()


@pytest.fixture
def page(browser_context: Callable[..., BrowserContext]) -> Page:
    return browser_context().new_page()


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test's output is not the place for an access log


@pytest.fixture
def serve_folder() -> Iterator[Callable[[Path], str]]:
    """`serve_folder(path)` → the base URL (http://127.0.0.1:<free port>) of a static server
    for the files in `path`, stopped after the test."""
    servers: list[ThreadingHTTPServer] = []

    def serve(folder: Path) -> str:
        server = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(folder))
        )
        servers.append(server)
        threading.Thread(target=server.serve_forever, name="static files", daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}"

    try:
        yield serve
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
