"""`stormer report --html`: one self-contained HTML file an organizer can act on and show —
the summary per platform and account, every problem with what to do, and the figures (inline
SVG, each with its text summary beside it), plus the hashtag's measured impact when
`stormer impact` has run. No external resource: no script, font, stylesheet or image link.

Participants are at risk: reminders appear as counts per channel; no contact is in the rows
this is built from (`report_rows` masks them), and impact shows counts, not authors.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stormer.errors import StormerError
from stormer.ops.report import per_account
from stormer.outbox.models import State

if TYPE_CHECKING:
    from pathlib import Path

    from stormer.ops.impact import Measurement
    from stormer.ops.report_plots import Plot

# Inline, because the file must stand alone; system fonts only.
_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1a1a1a;background:#fff}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #e5e5e5}
td.n{text-align:right}
figure{margin:1.5rem 0;display:grid;grid-template-columns:minmax(0,3fr) minmax(12rem,1fr);
gap:1rem;align-items:start}
figure svg{width:100%;height:auto}
figcaption{font-size:.95rem}
.problems li{margin:.3rem 0}
pre{white-space:pre-wrap;overflow-wrap:anywhere}
@media (max-width:40rem){figure{grid-template-columns:1fr}}
"""


# A web address in a problem's words (a permalink, a page to check by hand), without the
# punctuation that ends the sentence around it.
_URL = re.compile(r"https?://[^\s<>\"']+?(?=[.,:;)]?(?:\s|$))")


def _linked(text: str) -> str:
    """`text` escaped, its web addresses made links the organizer can click (opened in a
    new tab, telling the page nothing about the report)."""
    out, last = [], 0
    for found in _URL.finditer(text):
        url = found.group(0)
        out += [
            html.escape(text[last : found.start()]),
            f"<a href='{html.escape(url, quote=True)}' rel='noopener noreferrer' "
            f"target='_blank'>{html.escape(url)}</a>",
        ]
        last = found.end()
    return "".join([*out, html.escape(text[last:])])


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def render_html(
    *,
    title: str,
    at: datetime,
    rows: Sequence[Mapping[str, Any]],
    problems: Sequence[str],
    plots: Sequence[Plot],
    impact_lines: Sequence[str] = (),
    measurement: Measurement | None = None,
) -> str:
    """The whole report as one HTML document (every text escaped)."""
    from stormer.timezones import iso_utc

    e = html.escape
    table = per_account(rows)
    body = [
        f"<h1>{e(title)}</h1>",
        f"<p>T = {e(iso_utc(at))}. {len(rows)} item(s).</p>",
        "<h2 id='summary'>Summary</h2>",
        "<table><thead><tr><th scope='col'>platform</th><th scope='col'>account</th>"
        "<th scope='col'>sent</th><th scope='col'>late p50</th><th scope='col'>p99</th>"
        "<th scope='col'>max</th><th scope='col'>failed</th><th scope='col'>unconfirmed</th>"
        "<th scope='col'>missed</th></tr></thead><tbody>",
        *(
            f"<tr><td>{e(r['platform'])}</td><td>{e(r['account'])}</td>"
            f"<td class='n'>{r[State.SENT]} of {r['items']}</td>"
            f"<td class='n'>{_seconds(r['p50_s'])}</td><td class='n'>{_seconds(r['p99_s'])}</td>"
            f"<td class='n'>{_seconds(r['max_s'])}</td><td class='n'>{r[State.FAILED]}</td>"
            f"<td class='n'>{r[State.UNCONFIRMED]}</td><td class='n'>{r[State.MISSED]}</td></tr>"
            for r in table
        ),
        "</tbody></table>",
        "<h2 id='problems'>Problems, and what to do</h2>",
        (
            "<ul class='problems'>" + "".join(f"<li>{_linked(p)}</li>" for p in problems) + "</ul>"
            if problems
            else "<p>None: every item went out as planned.</p>"
        ),
        "<h2 id='figures'>Figures</h2>",
    ]
    for plot in plots:
        caption = "".join(f"<p>{e(line)}</p>" for line in plot.summary)
        body.append(
            f"<figure id='{e(plot.key)}' aria-labelledby='{e(plot.key)}-title'>"
            f"<div role='img' aria-label='{e(plot.title)}'>{plot.svg()}</div>"
            f"<figcaption><strong id='{e(plot.key)}-title'>{e(plot.title)}</strong>{caption}"
            "</figcaption></figure>"
        )
    if not plots:
        body.append("<p>No figure: nothing has been sent yet.</p>")
    body.append("<h2 id='impact'>The storm's measured impact</h2>")
    if measurement is None:
        body.append("<p>Not measured: run <code>stormer impact</code> after the storm.</p>")
    else:
        body.append("<pre>" + e("\n".join(impact_lines)) + "</pre>")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        # Nothing is loaded from anywhere: not even from this file's own folder.
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )


def write_report_files(
    *,
    title: str,
    at: datetime,
    rows: Sequence[Mapping[str, Any]],
    problems: Sequence[str],
    measurement: Measurement | None,
    ours: set[str],
    html_path: Path | None,
    png_path: Path | None,
) -> list[Path]:
    """The HTML report and/or the main figure as PNG (the hashtag per minute when measured,
    else the posts around T); the files written."""
    from stormer.ops import report_plots as plots
    from stormer.ops.impact_summary import render, summarize

    impact_lines = (
        render(summarize(measurement, at=at, ours=ours)) if measurement is not None else []
    )
    figures = [
        p
        for p in (
            plots.per_minute(measurement, at) if measurement is not None else None,
            plots.timeline(rows),
            plots.lateness(rows),
            plots.reminders(rows, at),
        )
        if p is not None
    ]
    from stormer.private import write_private

    written = []
    if html_path is not None:
        write_private(
            html_path,
            render_html(
                title=title,
                at=at,
                rows=rows,
                problems=problems,
                plots=figures,
                impact_lines=impact_lines,
                measurement=measurement,
            ).encode(),
        )
        written.append(html_path)
    if png_path is not None:
        if not figures:
            raise StormerError("no figure to draw yet: nothing has been sent or measured")
        write_private(png_path, figures[0].png())
        written.append(png_path)
    return written
