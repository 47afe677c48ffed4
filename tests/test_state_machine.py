"""The outbox state machine is written once: `stormer.outbox.models.State` and its groups.

Everywhere else a state is `State.X` or a named group (`CLAIMABLE`, `WAITING`…), never a
string literal, so a state cannot be misspelt in one module or forgotten in a group.
"""

from __future__ import annotations

import ast
from pathlib import Path

from stormer.outbox import models
from stormer.outbox.models import State

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "stormer"
# The state machine's own module, and the simulator (a stand-in for the platforms: it imports
# nothing from stormer's client side and knows no outbox).
NOT_SCANNED = (PACKAGE / "outbox" / "models.py", PACKAGE / "simulator")

# String constants equal to a state name that are not states: (file, enclosing function or
# class, text) → why. Each must still occur (a stale entry fails the test too).
NOT_STATES = {
    ("stormer/ops/alerts.py", "Alerted", "sent"): (
        "what a watchdog run did about an alert (`alerted` in `watchdog --json`), not an item"
    ),
    ("stormer/ops/alerts.py", "Alerted", "failed"): (
        "what a watchdog run did about an alert (`alerted` in `watchdog --json`), not an item"
    ),
    ("stormer/cli/schedule.py", "schedule", "cancelled"): (
        "the JSON key naming `ScheduleResult.cancelled` (a list of ids), like its neighbours "
        "`added`, `updated`, `kept_sent`"
    ),
}

GROUPS = {
    name: value
    for name, value in vars(models).items()
    if name.isupper() and isinstance(value, tuple) and value and isinstance(value[0], State)
}


def _state_literals(path: Path) -> list[tuple[str, int, str]]:
    """(enclosing def or class, line, text) of each string constant naming a state."""
    names = {s.value for s in State}
    found: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, scope: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            scope = node.name
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
            found.append((scope, node.lineno, node.value))
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "<module>")
    return found


def test_no_state_is_a_string_literal_outside_the_state_machine() -> None:
    files = [
        p
        for p in sorted(PACKAGE.rglob("*.py"))
        if not any(p == skip or skip in p.parents for skip in NOT_SCANNED)
    ]
    assert PACKAGE / "outbox" / "claims.py" in files  # the scan sees the package
    loose, exempted = [], set()
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        for scope, line, text in _state_literals(path):
            if (rel, scope, text) in NOT_STATES:
                exempted.add((rel, scope, text))
            else:
                loose.append(f"{rel}:{line} ({scope}): {text!r}")
    assert not loose, "use stormer.outbox.models.State (or a group of it):\n" + "\n".join(loose)
    assert exempted == set(NOT_STATES), f"stale exemptions: {set(NOT_STATES) - exempted}"


def test_a_state_equals_its_database_text() -> None:
    assert [str(s) for s in State] == [
        "pending",
        "staged",
        "claimed",
        "sending",
        "sent",
        "failed",
        "dead",
        "unconfirmed",
        "missed",
        "cancelled",
    ]
    assert State("sent") == "sent" and "sent" in models.OUTCOMES
    assert f"{State.SENT}" == "sent"


def test_groups_are_in_lifecycle_order_without_repeats() -> None:
    assert {"CLAIMABLE", "EDITABLE", "HELD", "WAITING", "TO_FIRE", "OUTCOMES"} <= set(GROUPS)
    order = list(State)
    for name, group in GROUPS.items():
        assert list(group) == sorted(group, key=order.index), name
        assert len(set(group)) == len(group), name


def test_every_state_is_waiting_or_settled() -> None:
    # WAITING is what `run --until-done` waits for: outcomes other than `failed` end it.
    settled = set(models.OUTCOMES) - {State.FAILED} | {State.CANCELLED}
    assert set(models.WAITING) | settled == set(State)
    assert not set(models.WAITING) & settled
    assert set(models.HELD) <= set(models.WAITING)
    assert set(models.TO_FIRE) == set(models.WAITING) - {State.SENDING}
    assert set(models.CLAIMABLE) <= set(models.TO_FIRE)
