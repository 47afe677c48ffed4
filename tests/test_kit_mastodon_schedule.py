"""The kit's "schedule it on your own Mastodon" (issue 13, item 2) in a real Chromium: the kit
served on one loopback port, the simulated Mastodon on another; the visitor chooses the
server, connects (app, consent page, PKCE, token), schedules a post with its image and alt
text for T, cancels another — and the simulator, on its own clock, publishes the first at T,
not before, and never the cancelled one. Closer than 5 minutes to T, the page itself posts at
T on its clock, not before. No token ever leaves the browser except to the visitor's server."""

from __future__ import annotations

import json
import socket
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from example import copy_example
from timing import wait_until

from stormer.channels import registry
from stormer.kit.build import build_kit
from stormer.kit.render import PACKAGE_TEMPLATES
from stormer.storm import load_storm

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Request

WITH_IMAGE = "posts/en-01-right-to-education.md"  # one image, with its alt text
OTHER = "posts/en-02-birzeit-detentions.md"
THIRD = "posts/en-03-every-continent.md"  # two images
WORDS = tomllib.loads((PACKAGE_TEMPLATES / "words.toml").read_text(encoding="utf-8"))["en"]
TOKEN_KEY = (
    "() => sessionStorage.getItem('stormer-kit:mastodon-token:' + stormerKit.mastodonOrigin())"
)


def test_every_language_has_every_word_of_the_kit() -> None:
    words = tomllib.loads((PACKAGE_TEMPLATES / "words.toml").read_text(encoding="utf-8"))
    english = set(words["en"])
    assert {w for w in english if w.startswith("schedule_")}, "the scheduling words are there"
    for lang, table in words.items():
        assert set(table) == english, lang
        assert all(text.strip() for text in table.values()), lang


def _kit(root: Path, at: datetime) -> Path:
    folder = copy_example(root / "storm", at=at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    storm = load_storm(folder, known_platforms=set(registry.installed()))
    assert not storm.errors, storm.errors
    build_kit(storm, root / "kit")
    return root / "kit"


def _sim_now(simulator: str) -> datetime:
    return datetime.fromisoformat(httpx.get(f"{simulator}/_sim/clock", timeout=10).json()["now"])


def _clock_to(simulator: str, moment: datetime) -> None:
    answer = httpx.post(f"{simulator}/_sim/clock", json={"to": moment.isoformat()}, timeout=10)
    answer.raise_for_status()


def _posts(simulator: str) -> list[dict[str, Any]]:
    posts: list[dict[str, Any]] = httpx.get(f"{simulator}/_sim/posts", timeout=10).json()
    return posts


class Watched:
    """Every request the context makes and every address its pages show."""

    def __init__(self, context: BrowserContext) -> None:
        self.requests: list[Request] = []
        self.addresses: list[str] = []
        context.on("request", lambda request: self.requests.append(request))
        context.on("page", self.page)

    def page(self, page: Page) -> None:
        page.on("framenavigated", lambda frame: self.addresses.append(frame.url))

    def assert_token_stays_with(self, token: str, server: str) -> None:
        # Watched for real: the code came back in an address, the token went to the server.
        assert any("code=" in url for url in self.addresses), self.addresses
        assert any(token in (r.headers.get("authorization") or "") for r in self.requests)
        assert token and not any(token in url for url in self.addresses)
        for request in self.requests:
            if request.url.startswith(server + "/"):
                continue
            seen = [request.url, json.dumps(request.all_headers()), request.post_data or ""]
            assert not any(token in s for s in seen), request.url


def _connect(page: Page, kit_page: str, simulator: str) -> str:
    """Choose the server, connect the account; the token the page now holds."""
    page.goto(kit_page)
    page.fill("#mastodon-instance", simulator)
    page.press("#mastodon-instance", "Enter")  # the keyboard is enough
    page.locator("#schedule-connect").wait_for(state="visible")
    page.click("#schedule-connect")
    page.wait_for_url(f"{simulator}/oauth/authorize?*")
    page.get_by_role("button", name="Authorize").click()
    page.locator("#schedule-connected").wait_for(state="visible")
    # The code came back in the address; it is no longer there.
    assert page.url == f"{kit_page}#mastodon", page.url
    assert page.locator("#schedule-error").is_hidden()
    token = json.loads(page.evaluate(TOKEN_KEY))
    assert isinstance(token, str) and token
    return token


def _number(page: Page, file: str) -> str:
    number = page.locator(f'article.post[data-post-file="{file}"]').get_attribute(
        "data-post-number"
    )
    assert number
    return number


def test_the_visitor_schedules_at_t_on_their_own_mastodon_and_cancels(
    browser_context: Callable[..., BrowserContext],
    simulator: str,
    serve_folder: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    now = max(_sim_now(simulator), datetime.now(UTC))
    at = (now + timedelta(hours=1)).replace(second=0, microsecond=0)
    kit = serve_folder(_kit(tmp_path, at))
    context = browser_context()
    watched = Watched(context)
    page = context.new_page()
    token = _connect(page, f"{kit}/en.html", simulator)

    first, other = _number(page, WITH_IMAGE), _number(page, OTHER)
    alt = page.locator(f"#post-{first}-image-1-alt").inner_text()
    text = page.locator(f"#post-{first}-text").inner_text()
    page.click(f"#post-{first}-schedule")
    status = page.locator(f"#post-{first}-schedule-status")
    wait_until(
        "the post scheduled",
        lambda: status.get_attribute("data-state") == "scheduled",
        seen=status.inner_text,
    )
    assert page.locator(f"#post-{first}-schedule").is_disabled()  # never twice from here
    page.click(f"#post-{other}-schedule")
    wait_until("two posts listed", lambda: page.locator("#schedule-list li").count() == 2)
    listed = page.locator("#schedule-list li")
    assert page.locator("#schedule-list-holder").is_visible()
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]  # the controls, connected and listed
    assert [v["id"] for v in found if v["impact"] in ("serious", "critical")] == [], found

    # The other one is cancelled from the page, with the keyboard.
    cancel = listed.filter(has_text=page.locator(f"#post-{other}-text").inner_text()[:40])
    cancel.locator("button.schedule-cancel").focus()
    page.keyboard.press("Enter")
    wait_until("one cancelled", lambda: listed.count() == 1)
    assert page.locator(f"#post-{other}-schedule-status").get_attribute("data-state") == (
        "cancelled"
    )
    assert page.locator("#schedule-error").is_hidden()

    assert _posts(simulator) == []
    _clock_to(simulator, at - timedelta(seconds=30))
    assert _posts(simulator) == []  # never before T
    _clock_to(simulator, at)
    (post,) = _posts(simulator)  # once, and never the cancelled one
    assert post["text"] == text
    assert post["media"] == [{"alt": alt, "size": post["media"][0]["size"], "mime": "image/png"}]
    assert datetime.fromisoformat(post["received_at"]) == at
    _clock_to(simulator, at + timedelta(hours=1))
    assert len(_posts(simulator)) == 1

    watched.assert_token_stays_with(token, simulator)
    assert "code=" not in page.url


def test_closer_than_5_minutes_the_page_posts_at_t_and_not_before(
    browser_context: Callable[..., BrowserContext],
    simulator: str,
    serve_folder: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    at = datetime(2030, 6, 1, 18, 0, tzinfo=UTC)
    kit = serve_folder(_kit(tmp_path, at))
    context = browser_context()
    watched = Watched(context)
    page = context.new_page()
    token = _connect(page, f"{kit}/en.html", simulator)  # on the real clock

    # Four minutes before T on the page's clock: the token stays in this tab's storage.
    context.clock.install(time=at - timedelta(minutes=4))
    page.reload()
    page.locator("#schedule-connected").wait_for(state="visible")
    first = _number(page, WITH_IMAGE)
    page.click(f"#post-{first}-schedule")
    status = page.locator(f"#post-{first}-schedule-status")
    assert status.get_attribute("data-state") == "soon"
    page.click(f"#post-{first}-schedule-at-start")
    wait_until(
        "ready to post at T",
        lambda: status.get_attribute("data-state") == "waiting",
        seen=status.inner_text,
    )
    # A second one waits for T too, and is cancelled: the page will not post it.
    third = _number(page, THIRD)
    page.click(f"#post-{third}-schedule")
    page.click(f"#post-{third}-schedule-at-start")
    listed = page.locator("#schedule-list li")
    wait_until("two wait for T", lambda: listed.count() == 2)
    listed.filter(has_text=page.locator(f"#post-{third}-text").inner_text()[:40]).locator(
        "button.schedule-cancel"
    ).click()
    wait_until("one cancelled", lambda: listed.count() == 1)
    assert page.locator(f"#post-{third}-schedule-status").get_attribute("data-state") == (
        "cancelled"
    )

    def statuses() -> list[Request]:
        return [r for r in watched.requests if r.url.endswith("/api/v1/statuses")]

    page.clock.pause_at(at - timedelta(seconds=1))
    page.clock.run_for(999)  # T minus a millisecond
    assert status.get_attribute("data-state") == "waiting"
    assert _posts(simulator) == [] and statuses() == []
    page.clock.run_for(1)  # T
    wait_until(
        "posted at T",
        lambda: status.get_attribute("data-state") == "posted",
        seen=status.inner_text,
    )
    (post,) = _posts(simulator)
    assert post["text"] == page.locator(f"#post-{first}-text").inner_text()
    assert post["media"][0]["alt"] == page.locator(f"#post-{first}-image-1-alt").inner_text()

    # After T: the page says so, and offers to post now.
    other = _number(page, OTHER)
    page.click(f"#post-{other}-schedule")
    late = page.locator(f"#post-{other}-schedule-status")
    assert late.get_attribute("data-state") == "past"
    assert late.inner_text() == WORDS["schedule_past"]
    page.click(f"#post-{other}-schedule-now")
    wait_until(
        "posted now", lambda: late.get_attribute("data-state") == "posted", seen=late.inner_text
    )
    assert [p["text"] for p in _posts(simulator)][1:] == [
        page.locator(f"#post-{other}-text").inner_text()
    ]
    page.reload()  # what was posted for this T is not offered again: never twice
    page.locator("#schedule-connected").wait_for(state="visible")
    assert page.locator(f"#post-{first}-schedule").is_disabled()
    assert page.locator(f"#post-{other}-schedule").is_disabled()
    assert page.locator(f"#post-{other}-schedule-status").inner_text() == WORDS["schedule_posted"]
    assert page.locator(f"#post-{third}-schedule").is_enabled()
    assert len(_posts(simulator)) == 2
    watched.assert_token_stays_with(token, simulator)


def test_every_failure_is_said_in_words(
    browser_context: Callable[..., BrowserContext],
    simulator: str,
    serve_folder: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    kit = serve_folder(_kit(tmp_path, at))
    page = browser_context().new_page()
    _connect(page, f"{kit}/en.html", simulator)
    other = _number(page, OTHER)
    said = page.locator(f"#post-{other}-schedule-status")

    # Refused: the server's own reason, as text.
    httpx.post(f"{simulator}/_sim/config", json={"mastodon_max_characters": 10}, timeout=10)
    page.click(f"#post-{other}-schedule")
    wait_until("refused", lambda: said.get_attribute("data-state") == "error", seen=said.inner_text)
    assert said.inner_text() == (
        f"{WORDS['schedule_refused']} Validation failed: Text character limit of 10 exceeded"
    )
    httpx.post(f"{simulator}/_sim/config", json={}, timeout=10).raise_for_status()

    # The token no longer accepted (expired, withdrawn): forgotten, and the page asks again.
    page.evaluate(
        "() => sessionStorage.setItem('stormer-kit:mastodon-token:' +"
        " stormerKit.mastodonOrigin(), JSON.stringify('invalid-withdrawn'))"
    )
    page.click(f"#post-{other}-schedule")
    wait_until(
        "expired", lambda: said.inner_text() == WORDS["schedule_expired"], seen=said.inner_text
    )
    assert page.locator("#schedule-connect").is_visible()
    assert page.evaluate(TOKEN_KEY) is None

    # Denied on the consent page: nothing done, and said.
    page.click("#schedule-connect")
    page.wait_for_url(f"{simulator}/oauth/authorize?*")
    page.get_by_role("button", name="Deny").click()
    page.locator("#schedule-error").wait_for(state="visible")
    assert page.locator("#schedule-error").inner_text() == WORDS["schedule_denied"]
    assert "error=" not in page.url

    # A server that does not answer.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{closed.getsockname()[1]}"
    page.click("#mastodon-change")
    page.fill("#mastodon-instance", nobody)
    page.click("#mastodon-save")
    page.locator("#schedule-connect").wait_for(state="visible")
    page.click("#schedule-connect")
    page.locator("#schedule-error").wait_for(state="visible")
    assert page.locator("#schedule-error").inner_text() == WORDS["schedule_unreachable"]
    assert _posts(simulator) == []


def test_from_disk_the_visitor_pastes_the_code_their_server_shows(
    browser_context: Callable[..., BrowserContext], simulator: str, tmp_path: Path
) -> None:
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    kit_page = (_kit(tmp_path, at) / "en.html").as_uri()
    context = browser_context()
    watched = Watched(context)
    page = context.new_page()
    page.goto(kit_page)
    page.fill("#mastodon-instance", simulator)
    page.click("#mastodon-save")
    page.locator("#schedule-connect").wait_for(state="visible")
    # No address to come back to: the server shows the code in a new tab, pasted here.
    with context.expect_page() as opened:
        page.click("#schedule-connect")
    consent = opened.value
    consent.wait_for_load_state()
    assert "redirect_uri=urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob" in consent.url
    code = consent.locator(".oauth-code").input_value()
    consent.close()
    page.locator("#schedule-code").fill(code)
    page.press("#schedule-code", "Enter")
    page.locator("#schedule-connected").wait_for(state="visible")
    token = json.loads(page.evaluate(TOKEN_KEY))

    other = _number(page, OTHER)  # a post without an image
    page.click(f"#post-{other}-schedule")
    said = page.locator(f"#post-{other}-schedule-status")
    wait_until("scheduled", lambda: said.get_attribute("data-state") == "scheduled")
    # A page opened from disk cannot read its own image files (Chromium refuses file: fetches
    # and taints a canvas drawn from them): it says so instead of posting without the image.
    first = _number(page, WITH_IMAGE)
    page.click(f"#post-{first}-schedule")
    image = page.locator(f"#post-{first}-schedule-status")
    wait_until("said", lambda: image.get_attribute("data-state") == "error", seen=image.inner_text)
    assert image.inner_text() == WORDS["schedule_image"]

    _clock_to(simulator, at)
    assert [p["text"] for p in _posts(simulator)] == [
        page.locator(f"#post-{other}-text").inner_text()
    ]
    assert token not in json.dumps(watched.addresses)


def test_disconnecting_revokes_the_token_at_the_server(
    browser_context: Callable[..., BrowserContext],
    simulator: str,
    serve_folder: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    """Disconnect gives the token back (POST /oauth/revoke, through CORS: the kit is another
    origin), so that it stops working at the server, not only in this tab; a server that
    cannot be told is said so, and the page forgets the token all the same."""
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    kit = serve_folder(_kit(tmp_path, at))
    context = browser_context()
    watched = Watched(context)
    page = context.new_page()
    token = _connect(page, f"{kit}/en.html", simulator)

    def answer_to(token: str) -> int:  # an empty status: 422 to a valid token, 401 otherwise
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.post(
            f"{simulator}/api/v1/statuses", headers=headers, data={"status": ""}, timeout=10
        ).status_code

    assert answer_to(token) == 422
    page.click("#schedule-disconnect")
    page.locator("#schedule-connect").wait_for(state="visible")
    assert page.evaluate(TOKEN_KEY) is None
    assert page.locator("#schedule-error").is_hidden()
    assert answer_to(token) == 401  # revoked at the server
    revokes = [r for r in watched.requests if r.url == f"{simulator}/oauth/revoke"]
    assert [r.method for r in revokes] == ["POST"]
    assert f"token={token}" in (revokes[0].post_data or "")

    # The server cannot be told: said, and the token forgotten in this tab anyway.
    page.click("#schedule-connect")  # the server is chosen already
    page.wait_for_url(f"{simulator}/oauth/authorize?*")
    page.get_by_role("button", name="Authorize").click()
    page.locator("#schedule-connected").wait_for(state="visible")
    token = json.loads(page.evaluate(TOKEN_KEY))
    page.route(f"{simulator}/oauth/revoke", lambda route: route.abort())
    page.click("#schedule-disconnect")
    page.locator("#schedule-error").wait_for(state="visible")
    assert page.locator("#schedule-error").inner_text() == WORDS["schedule_unreachable"]
    assert page.locator("#schedule-connect").is_visible()
    assert page.evaluate(TOKEN_KEY) is None
    assert answer_to(token) == 422  # still valid there: the visitor was told
