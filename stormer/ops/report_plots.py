"""The report's figures (matplotlib, no display): each is returned with a text summary of what
it shows, because a figure alone is no use to a screen reader or a colour-blind reader.

Colours are the Okabe–Ito palette (distinguishable with every common colour-vision
deficiency), and every series also differs by marker or line style, never by colour alone.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from stormer.ops.impact import Measurement

# Okabe & Ito (2008), "Color Universal Design": https://jfly.uni-koeln.de/color/
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LINES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)))


@dataclass(frozen=True, slots=True)
class Plot:
    key: str  # a stable name (an HTML id)
    title: str
    summary: list[str]  # what the figure shows, in words
    figure: Figure

    def svg(self) -> str:
        """The figure as inline SVG: text stays text (no embedded fonts, no external files)."""
        import matplotlib

        out = io.StringIO()
        with matplotlib.rc_context({"svg.fonttype": "none"}):
            self.figure.savefig(out, format="svg", bbox_inches="tight")
        text = out.getvalue()
        return text[text.index("<svg") :]

    def png(self) -> bytes:
        out = io.BytesIO()
        self.figure.savefig(out, format="png", dpi=150, bbox_inches="tight")
        return out.getvalue()


def _figure(title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: never a window, works with no display
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 3.6), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, loc="left", fontsize=11)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _style(n: int) -> dict[str, Any]:
    return {
        "color": OKABE_ITO[n % len(OKABE_ITO)],
        "marker": MARKERS[n % len(MARKERS)],
        "linestyle": LINES[n % len(LINES)],
    }


def _posts(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Lateness in seconds of each sent post, by platform."""
    found: dict[str, list[float]] = {}
    for row in rows:
        if row["kind"] == "post" and row["lateness_s"] is not None:
            found.setdefault(str(row["platform"]), []).append(float(row["lateness_s"]))
    return {k: sorted(v) for k, v in sorted(found.items())}


def lateness(rows: Sequence[Mapping[str, Any]]) -> Plot | None:
    """How late each platform's posts landed: one step histogram per platform."""
    by_platform = _posts(rows)
    if not by_platform:
        return None
    figure, axes = _figure("How late the posts were sent, by platform")
    every = [s for v in by_platform.values() for s in v]
    low, high = min(min(every), 0.0), max(every)
    bins = [low + (high - low) * i / 20 for i in range(21)] if high > low else 10
    summary = []
    for n, (platform, seconds) in enumerate(by_platform.items()):
        style = _style(n)
        axes.hist(
            seconds,
            bins=bins,
            histtype="step",
            linewidth=2,
            color=style["color"],
            linestyle=style["linestyle"],
            label=platform,
        )
        summary.append(
            f"{platform}: {len(seconds)} post(s), median {seconds[len(seconds) // 2]:.2f} s, "
            f"latest {seconds[-1]:.2f} s"
            + (f", {sum(s < 0 for s in seconds)} EARLY" if seconds[0] < 0 else "")
        )
    axes.axvline(0, color="black", linewidth=1)
    axes.set_xlabel("seconds after T (left of the black line: early)")
    axes.set_ylabel("posts")
    axes.legend(frameon=False)
    return Plot("lateness", "Lateness by platform", summary, figure)


def timeline(rows: Sequence[Mapping[str, Any]]) -> Plot | None:
    """When each post landed around T: one row of points per platform."""
    by_platform = _posts(rows)
    if not by_platform:
        return None
    figure, axes = _figure("When each post landed around T")
    names = list(by_platform)
    for n, platform in enumerate(names):
        style = _style(n)
        seconds = by_platform[platform]
        axes.plot(
            seconds,
            [n] * len(seconds),
            linestyle="none",
            marker=style["marker"],
            color=style["color"],
            markersize=7,
            alpha=0.8,
        )
    axes.set_yticks(range(len(names)), names)
    axes.axvline(0, color="black", linewidth=1)
    axes.set_xlabel("seconds after T")
    every = sorted(s for v in by_platform.values() for s in v)
    summary = [
        f"{len(every)} post(s) from {every[0]:+.2f} s to {every[-1]:+.2f} s around T; "
        f"{sum(s < 0 for s in every)} before T"
    ]
    return Plot("timeline", "Posts around T", summary, figure)


def reminders(rows: Sequence[Mapping[str, Any]], at: datetime) -> Plot | None:
    """Reminders delivered over the days before T, cumulatively, by channel."""
    seconds: dict[str, list[float]] = {}
    for row in rows:
        if row["kind"] == "reminder" and row["sent_at"]:
            delta = datetime.fromisoformat(row["sent_at"].replace("Z", "+00:00")) - at
            seconds.setdefault(str(row["platform"]), []).append(delta.total_seconds())
    if not seconds:
        return None
    # Hours for a real storm (reminders go out a day ahead), seconds for a rehearsal's.
    earliest = min(min(v) for v in seconds.values())
    size, unit = (3600.0, "h") if earliest <= -3600 else (1.0, "s")
    figure, axes = _figure("Reminders delivered around T")
    summary = []
    for n, (channel, values) in enumerate(sorted(seconds.items())):
        when = sorted(v / size for v in values)
        style = _style(n)
        axes.step(when, range(1, len(when) + 1), where="post", label=channel, **style)
        first = f"{abs(when[0]):.1f} {unit} " + ("before" if when[0] < 0 else "after")
        late = sum(v > 0 for v in when)
        summary.append(
            f"{channel}: {len(when)} delivered, the first {first} T"
            + (f"; {late} after T" if late else "")
        )
    axes.axvline(0, color="black", linewidth=1)
    axes.set_xlabel("hours from T" if unit == "h" else "seconds from T")
    axes.set_ylabel("reminders delivered (cumulative)")
    axes.legend(frameon=False)
    return Plot("reminders", "Reminders delivered", summary, figure)


def per_minute(measurement: Measurement, at: datetime) -> Plot | None:
    """The hashtag's public posts per minute around T, by platform (`stormer impact`); per
    second when everything fits in a minute and a half (a rehearsal's crowd, compressed)."""
    offsets = [(p.platform, (p.created_at - at).total_seconds()) for p in measurement.posts]
    if not offsets:
        return None
    span = max(s for _, s in offsets) - min(s for _, s in offsets)
    width, unit = (1, "second") if span <= 90 else (60, "minute")
    counts: dict[str, Counter[int]] = {}
    for platform, seconds in offsets:
        counts.setdefault(platform, Counter())[int(seconds // width)] += 1
    figure, axes = _figure(f"{measurement.hashtag}: public posts per {unit}")
    first = min(min(c) for c in counts.values())
    last = max(max(c) for c in counts.values())
    bins = list(range(first, last + 1))
    suffix = "s" if unit == "second" else " min"
    summary = []
    for n, (platform, by_bin) in enumerate(sorted(counts.items())):
        values = [by_bin.get(b, 0) for b in bins]
        axes.step(bins, values, where="mid", label=platform, linewidth=2, **_style(n))
        peak = max(bins, key=lambda b: (by_bin.get(b, 0), -b))
        summary.append(
            f"{platform}: {sum(values)} post(s); busiest {unit} T{peak:+d}{suffix} "
            f"with {by_bin[peak]}"
        )
    axes.axvline(0, color="black", linewidth=1)
    axes.set_xlabel(f"{unit}s from T")
    axes.set_ylabel(f"posts per {unit}")
    axes.legend(frameon=False)
    return Plot("per-minute", f"The hashtag, per {unit}", summary, figure)
