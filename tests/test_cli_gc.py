"""The cyclic garbage collector while a command runs: collections of the young objects only,
seldom of the whole heap (a big storm is tens of thousands of long-lived objects), and the
caller's thresholds given back when the command ends."""

import gc
from pathlib import Path

import pytest
from chaos_storm import PLATFORMS, write_storm
from check_helpers import run_main

from stormer.cli import _GC_THRESHOLDS


def test_a_command_collects_at_the_raised_thresholds_and_restores_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Three thousand accounts, each with a post: tens of thousands of objects that live until the
    # command ends, so the young generation overflows even the raised threshold, whatever the
    # suite imported before.
    storm = tmp_path / "storm"
    for variable, secret in write_storm(storm, "http://127.0.0.1:9", PLATFORMS, 3000).items():
        monkeypatch.setenv(variable, secret)
    during: list[tuple[int, int, int]] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            during.append(gc.get_threshold())

    before = gc.get_threshold()
    assert before != _GC_THRESHOLDS
    gc.callbacks.append(record)
    try:
        code, _, err = run_main(monkeypatch, capsys, "check", "--storm", str(storm))
    finally:
        gc.callbacks.remove(record)
    assert code == 0, err
    # Any collection at the caller's thresholds came before or after the command, in the test's
    # own work.
    assert _GC_THRESHOLDS in during
    assert set(during) <= {_GC_THRESHOLDS, before}
    assert gc.get_threshold() == before
