"""`stormer report --html` and `--plot`: one self-contained file with the summary, the
problems, every figure with its text summary, and the measured impact; opened in real
headless Chromium, it loads nothing from anywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stormer.channels.search import SeenPost
from stormer.ops.impact import Measurement, Source
from stormer.ops.report import per_account
from stormer.ops.report_html import render_html, write_report_files
from stormer.outbox.models import State
from stormer.timezones import iso_utc

T = datetime(2031, 3, 13, 18, 0, tzinfo=UTC)
XSS = "<script>window.pwned=1</script>"


def row(
    n: int,
    *,
    kind: str = "post",
    platform: str = "mastodon",
    account: str = "acct",
    late: float | None = 0.2,
    state: str = "sent",
    sent: datetime | None = None,
) -> dict[str, Any]:
    fire = T if kind == "post" else T - timedelta(hours=24)
    sent_at = sent or (fire + timedelta(seconds=late) if late is not None else None)
    return {
        "id": f"{n:016x}",
        "kind": kind,
        "account": account,
        "platform": platform,
        "state": state,
        "fire_at": iso_utc(fire),
        "sent_at": iso_utc(sent_at) if sent_at else None,
        "lateness_s": late,
        "overdue_s": None,
        "permalink": None,
        "error": None,
        "attempts": 1,
    }


def rows() -> list[dict[str, Any]]:
    return [
        row(1, late=0.1),
        row(2, late=0.3, account=XSS),
        row(3, platform="bluesky", account="b", late=0.5),
        row(4, platform="x", account="x", late=None, state="dead"),
        *(
            row(
                10 + n,
                kind="reminder",
                platform="reminder:mailto",
                account=f"Org {n}",
                late=1.0,
                sent=T - timedelta(hours=24 - n),
            )
            for n in range(5)
        ),
    ]


def measurement() -> Measurement:
    posts = [
        SeenPost(
            "mastodon",
            f"u{n}",
            f"https://m.example/@p{n}/{n}",
            f"@p{n}",
            T + timedelta(minutes=n % 7),
            "en",
            n % 3,
        )
        for n in range(30)
    ]
    return Measurement(
        "s",
        "#Tag",
        T - timedelta(hours=1),
        T + timedelta(hours=3),
        T,
        [Source("mastodon", "m.example", True, 30)],
        posts,
    )


def test_the_summary_is_per_platform_and_account_and_reminders_per_channel() -> None:
    table = {(r["platform"], r["account"]): r for r in per_account(rows())}
    assert table[("mastodon", "acct")][State.SENT] == 1
    assert table[("x", "x")][State.FAILED] == 1 and table[("x", "x")][State.SENT] == 0
    reminders = table[("reminder:mailto", "reminders")]
    assert reminders["items"] == reminders[State.SENT] == 5  # never one line per participant


def test_the_html_escapes_everything_and_names_no_participant(tmp_path: Path) -> None:
    html = render_html(
        title="Storm", at=T, rows=rows(), problems=["DEAD: " + XSS], plots=[], measurement=None
    )
    assert XSS not in html and "&lt;script&gt;" in html
    assert "Org 1" not in html  # reminders are counted per channel
    assert "Not measured: run <code>stormer impact</code>" in html


def test_addresses_in_problems_are_links_and_nothing_else_is() -> None:
    page = "https://bsky.app/search?q=from%3Aa.example+%22Free%20them%22&f=live"
    html = render_html(
        title="Storm",
        at=T,
        rows=rows(),
        problems=[
            f"UNCONFIRMED: look at {page}: if it is not there, <b>send</b>",
            "javascript:x()",
        ],
        plots=[],
        measurement=None,
    )
    first, second = html.split("<ul class='problems'>")[1].split("</ul>")[0].split("</li>")[:2]
    shown = "https://bsky.app/search?q=from%3Aa.example+%22Free%20them%22&amp;f=live"
    assert first == (
        f"<li>UNCONFIRMED: look at <a href='{shown}' rel='noopener noreferrer' "
        f"target='_blank'>{shown}</a>: if it is not there, &lt;b&gt;send&lt;/b&gt;"
    )
    assert second == "<li>javascript:x()"


def test_the_html_and_png_are_written_owner_only_with_every_figure(tmp_path: Path) -> None:
    import stat

    html, png = tmp_path / "r.html", tmp_path / "r.png"
    written = write_report_files(
        title="Storm",
        at=T,
        rows=rows(),
        problems=[],
        measurement=measurement(),
        ours={"u1"},
        html_path=html,
        png_path=png,
    )
    assert written == [html, png]
    text = html.read_text(encoding="utf-8")
    for key in ("per-minute", "timeline", "lateness", "reminders"):
        assert f"<figure id='{key}'" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stat.S_IMODE(html.stat().st_mode) == stat.S_IMODE(png.stat().st_mode) == 0o600
    assert "mastodon: 30 post(s); busiest minute" in text
    assert "@p1" not in text  # impact counts, never authors


def test_opened_in_chromium_it_shows_every_figure_and_loads_nothing(
    tmp_path: Path, page: Any
) -> None:
    html = tmp_path / "r.html"
    write_report_files(
        title="Storm",
        at=T,
        rows=rows(),
        problems=["DEAD: 1 item"],
        measurement=measurement(),
        ours=set(),
        html_path=html,
        png_path=None,
    )
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(html.as_uri())
    assert requested == [html.as_uri()]  # the file itself, nothing else
    figures = page.eval_on_selector_all(
        "figure",
        "fs => fs.map(f => [f.id, !!f.querySelector('svg'),"
        " f.querySelector('figcaption').innerText])",
    )
    assert [f[0] for f in figures] == ["per-minute", "timeline", "lateness", "reminders"]
    assert all(has_svg and caption.strip() for _, has_svg, caption in figures)
    assert page.evaluate("window.pwned") is None
    assert page.locator("#problems + ul li").count() == 1


def test_the_report_command_writes_both_for_a_storm_without_impact(tmp_path: Path) -> None:
    from example import copy_example
    from typer.testing import CliRunner

    from stormer.cli import app

    storm = copy_example(tmp_path / "storm", at=iso_utc(T))
    runner = CliRunner()
    assert runner.invoke(app, ["schedule", "-s", str(storm)]).exit_code == 0
    # Nothing sent yet: the HTML says so; a PNG has nothing to draw, and says that.
    html = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "--html", str(html), "-s", str(storm)])
    assert result.exit_code == 0, result.output
    assert "No figure: nothing has been sent yet." in html.read_text(encoding="utf-8")
    png = runner.invoke(app, ["report", "--plot", str(tmp_path / "r.png"), "-s", str(storm)])
    assert png.exit_code != 0 and "no figure to draw yet" in str(png.exception)
