"""`stormer kit build` on the example storm: what the pages hold, read without a browser (the
browser tests drive the same pages in Chromium). The example gets an XSS canary in a post and
in an endorser's name, a `public` column, and a participant who did not opt in."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from example import copy_example
from kit_html import Page, read_page

from stormer.channels import registry
from stormer.kit.build import build_kit
from stormer.kit.policy import meta_policy
from stormer.reminders import link_platforms, parsed_contacts
from stormer.storm import Storm, load_storm
from stormer.timezones import format_clock, get_zone

LANGS = {"en", "es", "fr", "it", "ar"}
CANARY_POST = (
    'Canary <script>window.__pwned = 1</script> & "quotes" <img src=x onerror=alert(1)> '
    "#FreePalestinianStudents"
)
CANARY_NAME = '<script>alert("endorser")</script> Solidarity & Co'
HIDDEN_NAME = "Quiet Collective That Said No"
PUBLIC_NAMES = ("Gazainfo", "BDS Mexico")


def _storm_folder(root: Path) -> Path:
    storm = copy_example(root)
    (storm / "posts" / "en-09-canary.md").write_text(
        f'+++\nlang = "en"\n+++\n{CANARY_POST}\n', encoding="utf-8"
    )
    path = storm / "participants.csv"
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    rows[0].append("public")
    for row in rows[1:]:
        row.append("yes" if row[0] in PUBLIC_NAMES else "")
    rows.append([CANARY_NAME, "Europe/Rome", "it", "mailto://canary@canary.example.org", "yes"])
    rows.append([HIDDEN_NAME, "Asia/Gaza", "ar", "hidden@quiet.example.org", "no"])
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return storm


def _load(folder: Path) -> Storm:
    return load_storm(folder, known_platforms=set(registry.installed()))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Storm, Path]:
    storm = _load(_storm_folder(tmp_path_factory.mktemp("kit") / "storm"))
    assert not storm.errors, storm.errors
    out = tmp_path_factory.mktemp("out") / "kit"
    build_kit(storm, out)
    return storm, out


def pages(out: Path) -> dict[str, Page]:
    return {lang: read_page(out / f"{lang}.html") for lang in LANGS}


def test_one_page_per_language_with_its_lang_and_direction(built: tuple[Storm, Path]) -> None:
    _, out = built
    assert {p.stem for p in out.glob("*.html")} == LANGS | {"index"}
    for lang, page in pages(out).items():
        html = page.all("html")[0]
        assert html.get("lang") == lang
        assert html.get("dir") == ("rtl" if lang == "ar" else "ltr")
    index = read_page(out / "index.html")
    links = {a.get("data-lang"): a.get("href") for a in index.all("a") if "data-lang" in a.attrs}
    assert links == {lang: f"{lang}.html" for lang in LANGS}


def test_every_post_is_on_its_language_page_exactly(built: tuple[Storm, Path]) -> None:
    storm, out = built
    by_lang = pages(out)
    for number, post in enumerate(storm.posts, start=1):
        page = by_lang[post.lang]
        assert page.by_id(f"post-{number}-text").text == post.text
        article = page.by_id(f"post-{number}")
        assert article.get("data-post-file") == post.file
        for other in LANGS - {post.lang}:
            assert not [e for e in by_lang[other].elements if e.attrs.get("id") == f"post-{number}"]


def test_every_click_to_post_link_carries_the_exact_text(built: tuple[Storm, Path]) -> None:
    storm, out = built
    where = {
        "x": ("x.com", "/intent/post"),
        "bluesky": ("bsky.app", "/intent/compose"),
        "telegram": ("t.me", "/share/url"),
    }
    by_lang = pages(out)
    seen = set()
    for number, post in enumerate(storm.posts, start=1):
        page = by_lang[post.lang]
        links = {
            e.get("data-platform"): e
            for e in page.with_class("a", "post-link")
            if e.get("id").startswith(f"post-{number}-")
        }
        # A post kept off a platform (its `platforms`) gets no link there, as in reminders.
        assert set(links) == set(link_platforms(storm, post)) | {"mastodon"}
        for platform, (host, path) in where.items():
            if platform not in links:
                continue
            link = links[platform]
            url = urlsplit(link.get("href"))
            assert (url.scheme, url.netloc, url.path) == ("https", host, path)
            query = parse_qs(url.query, keep_blank_values=True, strict_parsing=True)
            assert query["text"] == [post.text]
            if platform == "telegram":
                assert query["url"] == [storm.kit_url]
            seen.add(platform)
        # Mastodon's goes to the visitor's own server: made in the browser from the text.
        mastodon = page.by_id(f"post-{number}-link-mastodon")
        assert "href" not in mastodon.attrs and "hidden" in mastodon.attrs
        assert mastodon.get("data-text-from") == f"post-{number}-text"
    assert seen == set(where)


def test_lengths_are_each_platforms_own_count(built: tuple[Storm, Path]) -> None:
    storm, out = built
    by_lang = pages(out)
    for number, post in enumerate(storm.posts, start=1):
        for platform in [*link_platforms(storm, post), "mastodon"]:
            item = by_lang[post.lang].by_id(f"post-{number}-length-{platform}")
            plugin = registry.get(platform)
            assert int(item.get("data-length")) == plugin.length(post.text)
            assert int(item.get("data-limit")) == plugin.limit(with_media=False)


def test_xss_canaries_are_text_never_markup(built: tuple[Storm, Path]) -> None:
    storm, out = built
    english = (out / "en.html").read_text(encoding="utf-8")
    italian = (out / "it.html").read_text(encoding="utf-8")
    for html in (english, italian):
        assert "<script>window" not in html and "<script>alert" not in html
        assert "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in english
    number = next(i for i, p in enumerate(storm.posts, 1) if p.text == CANARY_POST)
    assert pages(out)["en"].by_id(f"post-{number}-text").text == CANARY_POST
    for page in pages(out).values():
        names = [li.text for li in page.with_class("li", "endorser")]
        assert CANARY_NAME in names


def test_endorsers_are_only_those_who_opted_in_and_only_names(
    built: tuple[Storm, Path],
) -> None:
    _, out = built
    for page in pages(out).values():
        names = [li.text for li in page.with_class("li", "endorser")]
        assert names == [*PUBLIC_NAMES, CANARY_NAME]
    everything = "\n".join(p.read_text(encoding="utf-8") for p in out.glob("*.html"))
    assert HIDDEN_NAME not in everything


def test_no_contact_of_any_participant_in_any_file(built: tuple[Storm, Path]) -> None:
    storm, out = built
    needles = set()
    for participant in storm.participants:
        needles.update(participant.contacts)
        for contact in parsed_contacts(participant):
            needles.add(contact.address)
    needles |= {"canary.example.org", "quiet.example.org"}  # the host alone names them too
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 10
    for path in files:
        data = path.read_bytes().decode("utf-8", errors="replace")
        found = sorted(n for n in needles if n in data)
        assert not found, f"{path.name} holds {found}"


def test_nothing_comes_from_elsewhere_and_nothing_runs_inline(built: tuple[Storm, Path]) -> None:
    _, out = built
    for path in out.glob("*.html"):
        page = read_page(path)
        sources = [e.get("src") for e in page.all("script")] + [
            e.get("src") for e in page.all("img")
        ]
        sources += [e.get("href") for e in page.all("link")]
        assert sources, path.name
        for source in sources:
            assert not re.match(r"^([a-z][a-z0-9+.-]*:|//)", source, re.I), (path.name, source)
            assert (out / source).is_file(), (path.name, source)
        for script in page.all("script"):
            assert script.text.strip() == "", f"inline script in {path.name}"
        for element in page.elements:
            assert "style" not in element.attrs, (path.name, element.tag)
            assert not [a for a in element.attrs if a.startswith("on")], (path.name, element.tag)
        assert not page.all("style")


def test_every_page_carries_the_policy_before_anything_it_covers(
    built: tuple[Storm, Path],
) -> None:
    _, out = built
    for path in out.glob("*.html"):
        page = read_page(path)
        head = [e for e in page.elements if e.inside[-1:] == ("head",)]
        policy = page.all("meta", http_equiv="Content-Security-Policy")
        assert len(policy) == 1 and policy[0] is head[1], path.name  # right after the charset
        content = policy[0].get("content")
        assert content == meta_policy()
        directives = dict(d.strip().split(" ", 1) for d in content.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'"
        assert "unsafe-inline" not in content and "unsafe-eval" not in content


def test_storm_time_needs_no_script(built: tuple[Storm, Path]) -> None:
    storm, out = built
    assert storm.at is not None
    for lang, page in pages(out).items():
        rows = [tr for tr in page.all("tr") if "data-zone" in tr.attrs]
        # The announcement's zones, never the participants' own (a public page).
        assert [tr.get("data-zone") for tr in rows] == [a.zone for a in storm.announce]
        for tr in rows:
            local = storm.at.astimezone(get_zone(tr.get("data-zone")))
            assert format_clock(local, lang) in tr.text
        assert page.by_id("announcement").text.strip()
        assert storm.hashtag in page.by_id("embargo").text
        assert page.by_id("embargo-time").text == "2021-03-11 18:00 UTC"
        assert page.all("body")[0].get("data-storm-at") == "2021-03-11T18:00:00Z"


def test_images_are_copied_with_their_alt_text_and_the_ics_is_there(
    built: tuple[Storm, Path],
) -> None:
    storm, out = built
    by_lang = pages(out)
    count = 0
    for number, post in enumerate(storm.posts, start=1):
        page = by_lang[post.lang]
        for m, image in enumerate(post.images, start=1):
            img = page.by_id(f"post-{number}-image-{m}-img")
            assert img.get("alt") == image.alt
            assert page.by_id(f"post-{number}-image-{m}-alt").text == image.alt
            copy = page.by_id(f"post-{number}-image-{m}-copy")
            assert copy.get("data-copy-target") == f"post-{number}-image-{m}-alt"
            download = page.by_id(f"post-{number}-image-{m}-download")
            assert download.get("href") == img.get("src")
            assert (out / img.get("src")).read_bytes() == (
                storm.root / "posts" / image.path
            ).read_bytes()
            count += 1
    assert count >= 5
    from icalendar import Calendar

    ics = out / f"{storm.slug}.ics"
    event = Calendar.from_ical(ics.read_bytes()).walk("VEVENT")[0]
    assert event.decoded("dtstart") == storm.at
    assert by_lang["en"].by_id("ics-link").get("href") == ics.name


def test_the_controls_a_browser_test_needs_are_there(built: tuple[Storm, Path]) -> None:
    _, out = built
    page = pages(out)["ar"]
    for hook in (
        "local-time", "local-day", "local-zone", "countdown", "embargo-time", "notify-button",
        "notify-status", "mastodon-form", "mastodon-instance", "mastodon-save", "mastodon-error",
        "mastodon-current", "mastodon-change", "why-varied", "posts", "copy-status", "endorsers",
    ):  # fmt: skip
        page.by_id(hook)
    labels = [e.get("for") for e in page.all("label")]
    assert "mastodon-instance" in labels
    for button in page.all("button"):
        assert button.get("type") in ("button", "submit") and button.text.strip()
