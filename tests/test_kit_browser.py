"""The storm kit in a real headless Chromium: `stormer kit build` run as a user runs it, its
output served by `stormer kit serve`'s server (with its CSP header), the browser's time zone
and clock controlled. pytz is the oracle for local times: a library the kit does not use
(the page uses the browser's Intl, the build zoneinfo), so neither checks itself.

Screenshots of every page, phone (360 px) and desktop (1280 px), are written to
$STORMER_SCREENSHOTS or build/screenshots/ at the repo root, for a person to look at."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
import pytz
from example import REPO, copy_example

from stormer.channels import registry
from stormer.kit.build import build_kit
from stormer.kit.serve import serving
from stormer.reminders import link_platforms
from stormer.storm import Post, Storm, load_storm

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

LANGS = ("en", "es", "fr", "it", "ar")
ZONES = ("Asia/Gaza", "America/Los_Angeles", "Pacific/Auckland")
# A storm just after each zone's clocks changed (pytz's own words in the comments).
DST_EDGES = {
    "America/Los_Angeles": "2021-03-14T10:30:00Z",  # 03:30 PDT, 30 min after springing forward
    "Pacific/Auckland": "2021-04-03T14:30:00Z",  # 02:30 NZST: the night's second 02:30
    "Asia/Gaza": "2021-03-26T22:30:00Z",  # 01:30 EEST on Saturday, 30 min into summer time
}
WAIT_MS = 30_000  # one condition on a loaded 2-core machine
# Each canary would set window.pwned if it ever ran as markup.
CANARY_POST = (
    "Canary <script>window.pwned=1</script> and <img src=x onerror=window.pwned=2> "
    "#FreePalestinianStudents"
)
CANARY_NAME = "<img src=x onerror=window.pwned=2> Friends <script>window.pwned=1</script>"
# A Latin name ending in a neutral character (the full stop), as it sits on the Arabic page.
LATIN_NAME = "Friends of Birzeit University Inc."
MASTODON = "https://mastodon.social"


@dataclass(frozen=True)
class Kit:
    storm: Storm
    url: str  # the served kit, ending in "/"
    out: Path  # the built kit

    def page_url(self, lang: str) -> str:
        return f"{self.url}{lang}.html"

    def numbered(self, lang: str) -> list[tuple[int, Post]]:
        return [(n, p) for n, p in enumerate(self.storm.posts, start=1) if p.lang == lang]


def _storm_folder(root: Path) -> Path:
    storm = copy_example(root)
    (storm / "posts" / "en-09-canary.md").write_text(
        f'+++\nlang = "en"\n+++\n{CANARY_POST}\n', encoding="utf-8"
    )
    path = storm / "participants.csv"
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    rows[0].append("public")
    for row in rows[1:]:
        row.append("")
    rows.append([CANARY_NAME, "Europe/Rome", "it", "mailto://canary@canary.example.org", "yes"])
    rows.append(
        [LATIN_NAME, "Europe/London", "en", "mailto://friends@birzeit-friends.example.org", "yes"]
    )
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return storm


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    """The example storm with XSS canaries, built once by the real command line and served."""
    folder = _storm_folder(tmp_path_factory.mktemp("kit") / "storm")
    out = folder / "site"
    done = subprocess.run(
        [sys.executable, "-m", "stormer", "kit", "build", "--out", str(out)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    storm = load_storm(folder, known_platforms=set(registry.installed()))
    assert storm.at is not None and not storm.errors
    with serving(out) as url:
        yield Kit(storm, url, out)


@pytest.fixture(scope="module")
def edge_kits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Kit]]:
    """The example storm moved to each of DST_EDGES, built (in this process) and served."""
    kits = {}
    with contextlib.ExitStack() as stack:
        for zone, at in DST_EDGES.items():
            root = tmp_path_factory.mktemp("edge")
            storm = load_storm(
                copy_example(root / "storm", at=at), known_platforms=set(registry.installed())
            )
            assert not storm.errors, storm.errors
            build_kit(storm, root / "site")
            kits[zone] = Kit(storm, stack.enter_context(serving(root / "site")), root / "site")
        yield kits


def _at(kit: Kit) -> datetime:
    assert kit.storm.at is not None
    return kit.storm.at


def _open(
    browser_context: Callable[..., BrowserContext],
    url: str,
    *,
    clock_at: datetime | None = None,
    init_script: str | None = None,
    **options: Any,
) -> Page:
    """A page at `url` in a new context; with `clock_at`, on a fake clock paused there."""
    page = browser_context(**options).new_page()
    if init_script:
        page.add_init_script(init_script)
    if clock_at is not None:
        # Installed a little earlier, then paused at `clock_at` once loaded: loading the page
        # uses up fake time (tests/fixtures_browser.py).
        page.clock.install(time=clock_at - timedelta(seconds=10))
    page.goto(url)
    page.wait_for_function("() => window.stormerKit !== undefined", timeout=WAIT_MS)
    if clock_at is not None:
        page.clock.pause_at(clock_at)
    return page


def _pytz_local(at: datetime, zone: str) -> datetime:
    tz = pytz.timezone(zone)
    return tz.normalize(at.astimezone(tz))  # never tzinfo=: pytz's zones need localize/normalize


def _spaces(text: str) -> str:
    return re.sub(r"\s+", " ", text)  # ICU puts U+202F before AM/PM; \s matches it


# --- the storm on the visitor's clock --------------------------------------------------------


@pytest.mark.parametrize("zone", ZONES)
def test_local_time_weekday_and_embargo_are_the_visitors_own(
    kit: Kit, browser_context: Callable[..., BrowserContext], zone: str
) -> None:
    at = _at(kit)
    local = _pytz_local(at, zone)
    iso = local.strftime("%Y-%m-%dT%H:%M")
    page = _open(
        browser_context, kit.page_url("en"), clock_at=at - timedelta(hours=1),
        timezone_id=zone, locale="en-US",
    )  # fmt: skip
    time = page.locator("#local-time")
    assert time.get_attribute("data-local-iso") == iso
    assert time.get_attribute("data-weekday") == local.strftime("%A")
    assert time.get_attribute("data-zone") == zone
    clock = f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"
    assert _spaces(time.inner_text()) == clock
    day = _spaces(page.locator("#local-day").inner_text())
    assert day == f"{local.strftime('%A')}, {local.strftime('%B')} {local.day}"
    assert zone in page.locator("#local-zone").inner_text()
    assert page.locator("#local").is_visible()
    # The embargo line is on the same clock: "don't use the hashtag before <local time>".
    embargo = page.locator("#embargo-time")
    assert embargo.get_attribute("data-local-iso") == iso
    assert _spaces(embargo.inner_text()) == f"{day}, {clock}"
    assert kit.storm.hashtag in page.locator("#embargo").inner_text()
    # The Arabic page says the same instant (its words are Arabic, its data the same).
    arabic = _open(browser_context, kit.page_url("ar"), timezone_id=zone, locale="ar")
    assert arabic.locator("#local-time").get_attribute("data-local-iso") == iso
    assert arabic.locator("#local-time").get_attribute("data-weekday") == local.strftime("%A")
    assert arabic.locator("#embargo-time").get_attribute("data-local-iso") == iso


@pytest.mark.parametrize("zone", ZONES)
def test_local_time_just_after_the_clocks_changed_is_pytzs(
    edge_kits: dict[str, Kit], browser_context: Callable[..., BrowserContext], zone: str
) -> None:
    kit = edge_kits[zone]
    local = _pytz_local(_at(kit), zone)
    page = _open(browser_context, kit.page_url("en"), timezone_id=zone, locale="en-US")
    time = page.locator("#local-time")
    assert time.get_attribute("data-local-iso") == local.strftime("%Y-%m-%dT%H:%M")
    assert time.get_attribute("data-weekday") == local.strftime("%A")
    assert page.locator("#embargo-time").get_attribute("data-local-iso") == local.strftime(
        "%Y-%m-%dT%H:%M"
    )


@pytest.mark.parametrize("zone", ZONES)
def test_the_countdown_says_now_at_t_and_not_a_millisecond_before(
    kit: Kit, browser_context: Callable[..., BrowserContext], zone: str
) -> None:
    at = _at(kit)
    page = _open(
        browser_context, kit.page_url("en"), clock_at=at - timedelta(days=1, seconds=5),
        timezone_id=zone, locale="en-US",
    )  # fmt: skip
    countdown = page.locator("#countdown")
    assert countdown.get_attribute("data-state") == "before"
    assert _spaces(countdown.inner_text()) == "Starts in 1 days 00:00:05"
    page.clock.pause_at(at - timedelta(seconds=1))
    page.wait_for_function(
        "() => document.getElementById('countdown').textContent.endsWith('00:00:01')",
        timeout=WAIT_MS,
    )
    assert countdown.get_attribute("data-state") == "before"
    page.clock.run_for(999)  # T − 1 ms
    assert countdown.get_attribute("data-state") == "before"
    assert countdown.inner_text().endswith("00:00:01")
    page.clock.run_for(1)  # T
    page.wait_for_function(
        "() => document.getElementById('countdown').dataset.state === 'now'", timeout=WAIT_MS
    )
    assert countdown.inner_text() == "Now! Post now."


# --- the posts: links, copy ------------------------------------------------------------------


def _text_param(href: str) -> tuple[str, dict[str, list[str]]]:
    url = urlsplit(href)
    query = parse_qs(url.query, keep_blank_values=True, strict_parsing=True)
    return f"{url.scheme}://{url.netloc}{url.path}", query


@pytest.mark.parametrize("lang", LANGS)
def test_every_click_to_post_link_decodes_to_the_posts_exact_text(
    kit: Kit, browser_context: Callable[..., BrowserContext], lang: str
) -> None:
    page = _open(browser_context, kit.page_url(lang))
    # Mastodon's links need the visitor's server: none yet, so none shown.
    assert page.locator("a.post-link[data-platform='mastodon']:visible").count() == 0
    page.fill("#mastodon-instance", "@someone@Mastodon.Social/")
    page.click("#mastodon-save")  # kept, and the page reloads with a policy naming it
    page.wait_for_function(
        "() => document.getElementById('mastodon-current').textContent === 'mastodon.social'",
        timeout=WAIT_MS,
    )
    where = {
        "x": "https://x.com/intent/post",
        "bluesky": "https://bsky.app/intent/compose",
        "telegram": "https://t.me/share/url",
        "mastodon": f"{MASTODON}/share",
    }
    numbered = kit.numbered(lang)
    assert numbered
    for number, post in numbered:
        links = page.locator(f"#post-{number} a.post-link")
        platforms = {links.nth(i).get_attribute("data-platform") for i in range(links.count())}
        assert platforms == {*link_platforms(kit.storm, post), "mastodon"}
        for platform in platforms:
            link = page.locator(f"#post-{number}-link-{platform}")
            assert link.is_visible()
            base, query = _text_param(link.evaluate("a => a.href"))
            assert base == where[platform]
            assert query["text"] == [post.text], (platform, post.file)
        assert page.locator(f"#post-{number}-text").text_content() == post.text


def _clipboard_page(kit: Kit, browser_context: Callable[..., BrowserContext], lang: str) -> Page:
    return _open(
        browser_context, kit.page_url(lang), permissions=["clipboard-read", "clipboard-write"]
    )


def _clipboard(page: Page) -> str:
    text = page.evaluate("() => navigator.clipboard.readText()")
    assert isinstance(text, str)
    return text


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_copy_buttons_copy_the_exact_post_and_alt_text(
    kit: Kit, browser_context: Callable[..., BrowserContext], lang: str
) -> None:
    page = _clipboard_page(kit, browser_context, lang)
    status = page.locator("#copy-status")
    for number, post in kit.numbered(lang):
        page.evaluate("() => navigator.clipboard.writeText('')")
        page.click(f"#post-{number}-copy")
        page.wait_for_function(
            "(n) => document.getElementById('post-' + n + '-copy').dataset.copied === 'true'",
            arg=number,
            timeout=WAIT_MS,
        )
        assert _clipboard(page) == post.text, post.file
        assert status.text_content() == status.get_attribute("data-copied")
        for m, image in enumerate(post.images, start=1):
            page.click(f"#post-{number}-image-{m}-copy")
            page.wait_for_function(
                "(id) => document.getElementById(id).dataset.copied === 'true'",
                arg=f"post-{number}-image-{m}-copy",
                timeout=WAIT_MS,
            )
            assert _clipboard(page) == image.alt


# --- direction, escaping, the policy ---------------------------------------------------------


def test_the_arabic_page_is_right_to_left_and_its_text_sits_on_the_right(
    kit: Kit, browser_context: Callable[..., BrowserContext]
) -> None:
    page = _open(browser_context, kit.page_url("ar"), locale="ar")
    assert page.evaluate("() => document.documentElement.lang") == "ar"
    assert page.evaluate("() => getComputedStyle(document.body).direction") == "rtl"
    # A heading's text ends at the right edge of its box, far from the left one.
    edges = page.evaluate(
        """() => {
          const heading = document.getElementById("posts-heading");
          const range = document.createRange();
          range.selectNodeContents(heading);
          const text = range.getBoundingClientRect(), box = heading.getBoundingClientRect();
          return [box.right - text.right, text.left - box.left];
        }"""
    )
    assert abs(edges[0]) <= 2 and edges[1] > 20, edges
    for lang in ("en", "es"):
        other = _open(browser_context, kit.page_url(lang))
        assert other.evaluate("() => getComputedStyle(document.body).direction") == "ltr"
        assert other.evaluate("() => document.documentElement.lang") == lang


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_an_endorsers_name_reads_in_its_own_direction_on_any_page(
    kit: Kit, browser_context: Callable[..., BrowserContext], lang: str
) -> None:
    """On the Arabic page a Latin name is still left to right: "Inc." ends on the right, not
    as ".Friends of … Inc" with its full stop thrown to the other side."""
    page = _open(browser_context, kit.page_url(lang))
    item = page.locator("#endorsers li.endorser", has_text=LATIN_NAME)
    assert item.evaluate("li => getComputedStyle(li).direction") == (
        "rtl" if lang == "ar" else "ltr"
    )  # the item, its bullet included, stays in the page's direction
    first, last = item.locator("bdi").evaluate(
        """name => {
          const text = name.firstChild, range = document.createRange(), at = (i) => {
            range.setStart(text, i);
            range.setEnd(text, i + 1);
            return range.getBoundingClientRect().left;
          };
          return [at(0), at(text.length - 1)];
        }"""
    )
    assert first < last  # "F" left of ".": read left to right


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["with-csp", "without-csp"])
def test_xss_canaries_show_as_text_and_never_run(
    kit: Kit, browser_context: Callable[..., BrowserContext], bypass_csp: bool
) -> None:
    """Without the policy too: escaping alone must keep them text."""
    number = next(n for n, p in kit.numbered("en") if p.text == CANARY_POST)
    for lang in ("en", "it"):
        page = _open(browser_context, kit.page_url(lang), bypass_csp=bypass_csp)
        page.wait_for_load_state("load")  # an <img src=x> would have failed, onerror run
        names = page.locator("#endorsers li.endorser").all_text_contents()
        assert CANARY_NAME in names
        assert page.locator("#endorsers img, #endorsers script").count() == 0
        if lang == "en":
            assert page.locator(f"#post-{number}-text").text_content() == CANARY_POST
            assert page.locator(f"#post-{number}-text").inner_text() == CANARY_POST
            assert page.locator(f"#post-{number} script, #post-{number} img[src='x']").count() == 0
        assert page.evaluate("() => window.pwned") is None
    if bypass_csp:  # the test can tell: here an injected script does run
        page.add_script_tag(content="window.pwned = 'injected'")
        assert page.evaluate("() => window.pwned") == "injected"


@pytest.mark.parametrize("host", ["kit-serve", "static-host"])
def test_the_policy_blocks_an_injected_inline_script(
    kit: Kit,
    browser_context: Callable[..., BrowserContext],
    serve_folder: Callable[[Path], str],
    host: str,
) -> None:
    """From `kit serve` (the policy as a header and in the page) and from a static host that
    sends no header: the page's own <meta> policy is enough."""
    from playwright.sync_api import Error

    url = kit.page_url("en") if host == "kit-serve" else f"{serve_folder(kit.out)}/en.html"
    page = _open(browser_context, url)
    answer = page.request.get(url)
    assert ("content-security-policy" in answer.headers) == (host == "kit-serve")
    page.evaluate(
        """() => {
          window.violations = [];
          document.addEventListener("securitypolicyviolation", (e) =>
            window.violations.push([e.effectiveDirective, e.disposition]));
        }"""
    )
    with pytest.raises(Error):  # Playwright reports the script the policy refused
        page.add_script_tag(content="window.injected = true")
    page.wait_for_function("() => window.violations.length > 0", timeout=WAIT_MS)
    assert page.evaluate("() => window.injected") is None
    assert ["script-src-elem", "enforce"] in page.evaluate("() => window.violations")


# --- accessibility, screenshots --------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "scheme"),
    [*((lang, "light") for lang in (*LANGS, "index")), ("en", "dark"), ("ar", "dark")],
)
def test_axe_finds_no_serious_or_critical_violation(
    kit: Kit, browser_context: Callable[..., BrowserContext], lang: str, scheme: str
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    url = f"{kit.url}index.html#languages" if lang == "index" else kit.page_url(lang)
    page = _open(browser_context, url, clock_at=_at(kit) - timedelta(hours=2), color_scheme=scheme)
    page.clock.resume()  # axe-core waits on timers of its own
    if lang != "index":
        page.fill("#mastodon-instance", "not a server")
        page.click("#mastodon-save")  # the error shown too
        assert page.locator("#mastodon-error").is_visible()
    results = Axe().run(page)
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, "\n".join(serious)


def _screenshots() -> Path:
    folder = Path(os.environ.get("STORMER_SCREENSHOTS") or REPO / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("width", [360, 1280])
@pytest.mark.parametrize("lang", LANGS)
def test_screenshot_of_each_page_and_no_sideways_scrolling_on_a_phone(
    kit: Kit, browser_context: Callable[..., BrowserContext], lang: str, width: int
) -> None:
    page = _open(
        browser_context, kit.page_url(lang), clock_at=_at(kit) - timedelta(hours=2, minutes=5),
        viewport={"width": width, "height": 800}, timezone_id="Asia/Gaza", locale=lang,
    )  # fmt: skip
    page.wait_for_load_state("load")  # the images in place
    overflow = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    if width == 360:
        assert overflow[0] <= overflow[1], f"{lang}: {overflow[0]} px wide in {overflow[1]}"
    path = _screenshots() / f"kit-{lang}-{width}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


# --- the notification at T -------------------------------------------------------------------

# Every Notification the page makes is recorded with the (fake) time it was made at; asking
# for permission is counted. The browser's own permission answers.
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  window.notified = [];
  window.asked = 0;
  class Recorded {
    constructor(title, options) {
      window.notified.push({title: title, body: options && options.body, at: Date.now()});
    }
    static get permission() { return Real.permission; }
    static requestPermission() { window.asked += 1; return Real.requestPermission(); }
  }
  window.Notification = Recorded;
})();
"""


def test_the_notification_is_armed_only_by_a_click_and_fires_at_t_not_before(
    kit: Kit, browser_context: Callable[..., BrowserContext]
) -> None:
    at = _at(kit)
    options: dict[str, Any] = {"permissions": ["notifications"]}
    page = _open(
        browser_context, kit.page_url("en"), clock_at=at - timedelta(minutes=2),
        init_script=RECORD_NOTIFICATIONS, **options,
    )  # fmt: skip
    status = page.locator("#notify-status")
    assert page.locator("#notify-button").is_visible()
    assert page.evaluate("() => window.asked") == 0  # never a prompt on page load
    assert status.get_attribute("data-armed") is None
    page.click("#notify-button")
    page.wait_for_function(
        "() => document.getElementById('notify-status').dataset.armed === 'true'",
        timeout=WAIT_MS,
    )
    assert page.evaluate("() => window.asked") == 1
    assert page.locator("#notify-button").is_disabled()
    page.clock.pause_at(at - timedelta(seconds=1))
    page.clock.run_for(999)  # T − 1 ms
    assert page.evaluate("() => window.notified") == []
    assert status.get_attribute("data-notified") is None
    page.clock.run_for(1)  # T
    page.wait_for_function("() => window.notified.length > 0", timeout=WAIT_MS)
    [notified] = page.evaluate("() => window.notified")
    assert notified["at"] == int(at.timestamp() * 1000)
    assert notified["title"] == f"{kit.storm.name} {kit.storm.hashtag}"
    assert status.get_attribute("data-notified") == "true"

    # Without the click, T passes with no notification.
    idle = _open(
        browser_context, kit.page_url("en"), clock_at=at - timedelta(minutes=2),
        init_script=RECORD_NOTIFICATIONS, **options,
    )  # fmt: skip
    idle.clock.pause_at(at + timedelta(seconds=5))
    idle.wait_for_function(
        "() => document.getElementById('countdown').dataset.state === 'now'", timeout=WAIT_MS
    )
    assert idle.evaluate("() => [window.asked, window.notified.length]") == [0, 0]
    assert idle.locator("#notify-status").get_attribute("data-armed") is None
