"""Preparing a big storm (issue 15, item 2): what many posts share is read once, a command
that checks and schedules plans once, and the long steps report their progress — on a
terminal only, never into --json output."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from check_helpers import BEFORE, EN_01, edit

from stormer.channels import registry
from stormer.cli.progress import Steps
from stormer.ops.checks import check
from stormer.plan import plan, plan_posts
from stormer.storm import load_storm
from stormer.storm import posts as posts_module

Calls = list[tuple[str, int, int]]


def copies_of_en_01(root: Path, n: int) -> None:
    """`n` more posts attaching the same image as posts/en-01 (each its own text)."""
    source = (root / EN_01).read_text(encoding="utf-8")
    for i in range(n):
        text = source.replace("Article 26", f"Article 26 ({i})")
        (root / "posts" / f"zz-copy-{i:02d}.md").write_text(text, encoding="utf-8")


def test_an_image_many_posts_attach_is_read_once(
    storm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies_of_en_01(storm, 5)
    read: list[Path] = []
    real = posts_module.read_image
    monkeypatch.setattr(posts_module, "read_image", lambda p: read.append(p) or real(p))
    loaded = load_storm(storm)
    attaching = [p for p in loaded.posts if any(i.path == "images/flag-book.png" for i in p.images)]
    assert len(attaching) >= 6
    assert [p.name for p in read].count("flag-book.png") == 1
    copies = [p for p in loaded.posts if p.file == EN_01 or "zz-copy" in p.file]
    assert len({p.images for p in copies}) == 1  # what the file is, as each post attaches it


def test_a_missing_image_is_reported_in_every_post_that_attaches_it(storm: Path) -> None:
    copies_of_en_01(storm, 2)
    (storm / "posts" / "images" / "flag-book.png").unlink()
    problems = [p for p in load_storm(storm).problems if p.code == "missing-image"]
    files = {p.file for p in problems}
    assert {EN_01, "posts/zz-copy-00.md", "posts/zz-copy-01.md"} <= files


def test_a_bad_front_matter_shared_by_two_posts_is_reported_in_both(storm: Path) -> None:
    copies_of_en_01(storm, 2)
    for name in ("zz-copy-00.md", "zz-copy-01.md"):
        edit(storm / "posts" / name, 'lang = "en"', 'lang = "en"\nplatforms = "x"')
    bad = {p.file for p in load_storm(storm).problems if p.code == "bad-front-matter"}
    assert bad == {"posts/zz-copy-00.md", "posts/zz-copy-01.md"}


def test_planning_once_gives_the_same_check_and_the_same_plan(storm: Path) -> None:
    copies_of_en_01(storm, 3)
    loaded = load_storm(storm, known_platforms=set(registry.installed()))
    posts = list(plan_posts(loaded))
    assert check(loaded, now=BEFORE, posts=posts) == check(loaded, now=BEFORE)
    assert plan(loaded, posts=posts) == plan(loaded)


def test_loading_checking_and_writing_report_their_progress(storm: Path) -> None:
    copies_of_en_01(storm, 3)
    calls: Calls = []
    loaded = load_storm(storm, progress=lambda *a: calls.append(a))
    check(loaded, now=BEFORE, progress=lambda *a: calls.append(a))
    steps = {step for step, _, _ in calls}
    assert steps == {"reading posts", "checking posts"}
    for step in steps:
        mine = [(done, total) for s, done, total in calls if s == step]
        assert mine[-1] == (len(loaded.posts), len(loaded.posts))  # ends complete
        assert [d for d, _ in mine] == sorted(d for d, _ in mine)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_only_on_a_terminal_and_never_when_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with Steps() as progress:
        progress("reading posts", 1, 2)
        assert progress.bar is None
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with Steps(quiet=True) as progress:
        progress("reading posts", 1, 2)
        assert progress.bar is None
    assert terminal.getvalue() == ""
    with Steps() as progress:
        progress("reading posts", 1, 2)
        progress.spin("planning")
        progress.done("planning")
        assert progress.bar is not None
        assert [t.description for t in progress.bar.tasks] == ["reading posts", "planning"]
    assert progress.bar is None  # stopped: the command's own output comes next
