"""`stormer kit build|serve` as a user runs them: where the kit goes, what is refused (a storm
`check` rejects, a folder it may not replace, one it cannot write), overrides from the storm
folder, the review server; and participants.csv's `public` column."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from example import copy_example

from stormer.channels import registry
from stormer.kit import KitError
from stormer.kit.build import MARKER
from stormer.kit.policy import header_policy
from stormer.kit.serve import kit_server, serving
from stormer.storm import load_storm


def stormer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real command line in a fresh interpreter, errors as the user sees them."""
    return subprocess.run(
        [sys.executable, "-m", "stormer", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def storm(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "storm")


def test_build_writes_the_kit_in_the_storm_folder_and_says_where(storm: Path) -> None:
    done = stormer("kit", "build", cwd=storm)
    assert done.returncode == 0, done.stderr
    out = storm / "build" / "kit"
    assert done.stdout.splitlines() == [str(out)]
    assert (out / MARKER).is_file() and (out / "index.html").is_file()
    assert "en, ar, es, fr, it" in done.stderr and "stormer kit serve" in done.stderr
    assert (out.stat().st_mode & 0o777) == 0o755


def test_a_storm_check_rejects_gets_no_kit(storm: Path) -> None:
    post = storm / "posts" / "en-01-right-to-education.md"
    post.write_text(post.read_text(encoding="utf-8") + "x" * 600, encoding="utf-8")
    done = stormer("kit", "build", "--out", str(storm / "site"), cwd=storm)
    assert done.returncode == 1
    assert "too-long" in done.stderr and "`stormer check` rejects this storm" in done.stderr
    assert not (storm / "site").exists()
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("participants.csv/kit", "cannot write the kit to"),  # a folder under a file
        ("participants.csv", "is a file, not a folder"),
        ("posts", "is not empty and is not a kit stormer built"),
    ],
)
def test_where_the_kit_cannot_go_is_refused_and_left_alone(
    storm: Path, where: str, said: str
) -> None:
    before = sorted(p.name for p in (storm / "posts").iterdir())
    done = stormer("kit", "build", "--out", str(storm / where), cwd=storm)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and "--out DIR" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in (storm / "posts").iterdir()) == before
    assert not [p for p in storm.iterdir() if p.name.startswith(".")]  # no half-built folder


def _built(storm: Path, out: Path) -> list[str]:
    from stormer.kit.build import build_kit

    loaded = load_storm(storm, known_platforms=set(registry.installed()))
    return build_kit(loaded, out).files


def test_a_rebuild_replaces_the_previous_kit_whole(storm: Path, tmp_path: Path) -> None:
    out = tmp_path / "outs" / "site"
    _built(storm, out)
    (out / "stale.html").write_text("old", encoding="utf-8")
    (storm / "posts" / "it-02-trentacinque-arresti.md").unlink()
    files = _built(storm, out)
    assert not (out / "stale.html").exists()
    assert "it.html" in files and (out / "it.html").is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["site"]


def test_a_failed_build_leaves_the_previous_kit(storm: Path, tmp_path: Path) -> None:
    out = tmp_path / "outs" / "site"
    _built(storm, out)
    before = (out / "en.html").read_bytes()
    own = storm / "templates" / "kit"
    own.mkdir(parents=True)
    (own / "lang.html.j2").write_text(
        "{% extends 'base.html.j2' %}{% block main %}{{ nope.nothing }}{% endblock %}"
    )
    with pytest.raises(KitError, match=r"the kit template lang\.html\.j2 cannot be rendered"):
        _built(storm, out)
    assert (out / "en.html").read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["site"]


def test_the_storm_folder_overrides_templates_words_and_static_files(
    storm: Path, tmp_path: Path
) -> None:
    own = storm / "templates" / "kit"
    (own / "static").mkdir(parents=True)
    (own / "words.toml").write_text('[en]\ncopy = "Copy it"\n[es]\nwhen = "¿Cuándo?"\n')
    (own / "static" / "kit.css").write_text("body { color: black; }\n")
    (own / "index.html.j2").write_text(
        "{% extends 'base.html.j2' %}{% block main %}<p id='ours'>{{ w.choose_language }}"
        "</p>{% endblock %}"
    )
    out = tmp_path / "site"
    _built(storm, out)
    assert ">Copy it</button>" in (out / "en.html").read_text(encoding="utf-8")
    spanish = (out / "es.html").read_text(encoding="utf-8")
    assert "¿Cuándo?" in spanish and ">Copiar</button>" in spanish  # merged, word by word
    assert (out / "static" / "kit.css").read_text() == "body { color: black; }\n"
    assert (out / "static" / "kit.js").is_file()
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "<p id='ours'>Choose your language</p>" in index
    assert 'http-equiv="Content-Security-Policy"' in index  # from the package's base template


def test_bad_words_are_named(storm: Path, tmp_path: Path) -> None:
    own = storm / "templates" / "kit"
    own.mkdir(parents=True)
    (own / "words.toml").write_text("[en]\ncopy = 3\n")
    with pytest.raises(KitError, match=r"words.toml: \[en\] must hold only words"):
        _built(storm, tmp_path / "site")


def test_serve_sends_the_pages_with_the_policy_as_a_header(storm: Path, tmp_path: Path) -> None:
    out = tmp_path / "site"
    _built(storm, out)
    with serving(out) as url:
        assert url.startswith("http://127.0.0.1:")
        for page in ("", "en.html", "static/kit.js", "free-palestinian-students-2021.ics"):
            with urllib.request.urlopen(url + page, timeout=10) as answer:
                assert answer.status == 200
                assert answer.headers["Content-Security-Policy"] == header_policy()
                assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        with urllib.request.urlopen(url + "static/kit.js", timeout=10) as answer:
            assert "javascript" in answer.headers["Content-Type"]


def test_serve_needs_a_built_kit_and_a_free_port(storm: Path, tmp_path: Path) -> None:
    with pytest.raises(KitError, match="build it first with `stormer kit build`"):
        kit_server(tmp_path, 0)
    out = tmp_path / "site"
    _built(storm, out)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = stormer("kit", "serve", "--out", str(out), "--port", str(port), cwd=storm)
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr


@pytest.mark.parametrize(
    ("value", "public"),
    [("yes", True), ("YES", True), ("true", True), ("1", True), ("no", False), ("", False)],
)
def test_the_public_column_says_who_is_named(storm: Path, value: str, public: bool) -> None:
    (storm / "participants.csv").write_text(
        f"name,zone,lang,contact,public\nSomeone,Europe/Rome,it,s@example.org,{value}\n",
        encoding="utf-8",
    )
    loaded = load_storm(storm, known_platforms=set(registry.installed()))
    assert not loaded.errors
    assert [p.public for p in loaded.participants] == [public]


def test_a_bad_public_value_is_a_problem_that_does_not_echo_it(storm: Path) -> None:
    (storm / "participants.csv").write_text(
        "name,zone,lang,contact,public\nSomeone,Europe/Rome,it,,someone@private.example.org\n",
        encoding="utf-8",
    )
    loaded = load_storm(storm, known_platforms=set(registry.installed()))
    [problem] = loaded.errors
    assert (problem.code, problem.file, problem.line) == ("bad-participant", "participants.csv", 2)
    assert "public column must be yes or no" in problem.message
    assert "private.example.org" not in problem.message


def test_a_regional_language_gets_its_page_with_a_bcp47_tag(storm: Path, tmp_path: Path) -> None:
    """pt_BR as stormer writes it; pt-BR as HTML wants it. Words not translated: English."""
    (storm / "posts" / "pt-01-liberdade.md").write_text(
        '+++\nlang = "pt_BR"\n+++\nLiberdade para os estudantes palestinos! '
        "#FreePalestinianStudents\n",
        encoding="utf-8",
    )
    out = tmp_path / "site"
    assert "pt_BR.html" in _built(storm, out)
    page = (out / "pt_BR.html").read_text(encoding="utf-8")
    assert '<html lang="pt-BR" dir="ltr">' in page
    assert ">Copy</button>" in page
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'hreflang="pt-BR" lang="pt-BR" dir="ltr" data-lang="pt_BR">Português (Brasil)<' in index
