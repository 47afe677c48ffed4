"""`stormer doctor`'s media check asks which platforms a post may go to through the index
`check` uses (`plan.Eligibility`) and reads each image file once, however many posts attach
it. On random small storms its finding must be exactly what the pairwise version (the code as
it was before, kept here as the reference) found."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_check_index import FILES, PostParts, accounts, post_parts, storm_of

from stormer.channels import registry
from stormer.ops.doctor import SHOWN, _size, media_finding
from stormer.ops.findings import Finding, failed, passed
from stormer.plan import eligible
from stormer.storm import Account, Image, Storm


def ref_media_finding(storm: Storm) -> Finding:
    problems, count = [], 0
    for post in storm.posts:
        platforms = {a.platform for a in storm.accounts if eligible(post, a)}
        for image in post.images:
            count += 1
            where = f"{post.file}: {image.path}"
            try:
                size = len((storm.root / "posts" / image.path).read_bytes())
            except OSError as e:
                problems.append(f"{where} cannot be read ({e.strerror or e})")
                continue
            for platform in sorted(platforms):
                if platform not in registry.installed():
                    continue
                plugin = registry.get(platform)
                limit = plugin.image_limits.max_bytes
                if limit is not None and size > limit:
                    problems.append(
                        f"{where} is {_size(size)}, over {plugin.title}'s {_size(limit)}"
                    )
    if problems:
        return failed(
            "media",
            f"{len(problems)} problem(s): "
            + "; ".join(problems[:SHOWN])
            + (f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""),
            "make the file readable, or shrink it (resize, or save as JPEG), or keep "
            "the post off that platform with platforms = [...] in its front matter",
        )
    if not count:
        return passed("media", "no images")
    return passed("media", f"{count} image(s) readable and within every platform's limit")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(accounts, max_size=8), st.lists(post_parts, max_size=8), st.sampled_from(sorted(FILES))
)
def test_doctor_media_finds_what_pairwise_checking_found(
    tmp_path: Path, accounts_: list[Account], parts: list[PostParts], unreadable: str
) -> None:
    posts = tmp_path / "posts"
    posts.mkdir(exist_ok=True)
    for name, size in FILES.items():
        (posts / name).unlink(missing_ok=True)
        (posts / name).write_bytes(b"\0" * size)
    (posts / unreadable).unlink()  # one file gone since loading: it cannot be read
    storm = storm_of(tmp_path, accounts_, parts, reminded=False)
    assert media_finding(storm) == ref_media_finding(storm)


def test_each_image_file_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "posts").mkdir()
    for name, size in FILES.items():
        (tmp_path / "posts" / name).write_bytes(b"\0" * size)
    images = tuple(Image(name, "alt", "image/png", 800, 600, 2) for name in sorted(FILES))
    parts: list[PostParts] = [("en", f"post {n} #tag", images, None, None) for n in range(50)]
    account = Account("acc-0", "bluesky", (), None, None, None, (), 1)
    storm = storm_of(tmp_path, [account], parts, reminded=False)
    reads: list[str] = []
    read_bytes = Path.read_bytes

    def counted(path: Path) -> bytes:
        reads.append(path.name)
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", counted)
    found = media_finding(storm)
    assert sorted(reads) == sorted(FILES)  # not once per post
    assert found.message.startswith("50 problem(s)")  # large.png, over Bluesky's 1 MB, 50 times
