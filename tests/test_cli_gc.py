"""The cyclic garbage collector while a command runs: collections of the young objects only,
seldom of the whole heap (a big storm is tens of thousands of long-lived objects), and the
caller's thresholds given back when the command ends."""

import gc
from pathlib import Path

import pytest
from check_helpers import run_main
from example import copy_example

from stormer.cli import _GC_THRESHOLDS


def test_a_command_collects_at_the_raised_thresholds_and_restores_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    storm = copy_example(tmp_path / "storm")
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
    # Checking the example storm allocates enough for collections while it runs (any at the
    # caller's thresholds came before or after it, in the test's own work).
    assert _GC_THRESHOLDS in during
    assert set(during) <= {_GC_THRESHOLDS, before}
    assert gc.get_threshold() == before
