"""The dispatcher's bookkeeping: in flight ⊆ ready ⊆ held, one alarm per instant until it is
spent, and forgetting an item leaves no trace of it — whatever order things happen in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from stormer.channels.base import Staged
from stormer.dispatch.tracker import Tracker
from stormer.outbox.claims import ClaimedItem
from stormer.queue import QueueItem

T = datetime(2031, 3, 13, 18, 0, tzinfo=UTC)
INSTANTS = [T, T + timedelta(minutes=1), T + timedelta(minutes=2)]
IDS = [f"item-{n}" for n in range(6)]


def claimed(item_id: str, at: datetime = T) -> ClaimedItem:
    return ClaimedItem(
        id=item_id,
        kind="post",
        platform="mastodon",
        account="a",
        fire_at=at,
        lang="en",
        text="text",
        media=[],
        payload={},
        content_hash="h",
        idempotency_key=None,
        attempts=0,
        state_before="pending",
        staged_data=None,
        lease_until=at,
    )


def staged(c: ClaimedItem) -> Staged:
    return Staged(QueueItem(c.id, "post", c.fire_at, c.platform, c.account, c.lang, c.text), [])


def ready(items: Tracker, item_id: str, at: datetime = T) -> ClaimedItem:
    c = claimed(item_id, at)
    items.hold([c.id])
    items.staged(c, staged(c))
    return c


def test_an_item_goes_held_ready_in_flight_and_is_forgotten_in_one_step() -> None:
    items = Tracker()
    items.hold(["a", "b"])
    assert items.held == {"a", "b"} and not items.ready
    c = claimed("a")
    items.staged(c, staged(c))
    assert set(items.ready) == {"a"} and items.staged_through() == T
    assert [x.id for x, _ in items.due(T)] == ["a"]
    items.launch(["a"])
    assert items.in_flight == {"a"} and items.due(T) == [] and items.waiting_for(T)
    assert items.unsent() == []
    items.forget(["a"])
    assert items.held == {"b"} and not items.ready and not items.in_flight
    assert not items.waiting_for(T) and items.staged_through() is None


def test_only_a_held_item_can_be_ready_and_only_a_ready_one_in_flight() -> None:
    items = Tracker()
    c = claimed("a")
    assert items.staged(c, staged(c)) is False  # let go while it was staged: not ready
    assert not items.ready
    items.hold(["a"])
    with pytest.raises(ValueError):
        items.launch(["a"])


def test_each_instant_is_armed_once_until_its_alarm_is_spent() -> None:
    items = Tracker()
    ready(items, "a", INSTANTS[1])
    ready(items, "b", INSTANTS[0])
    ready(items, "c", INSTANTS[1])
    assert items.arm() == INSTANTS[:2]  # in order, one each
    assert items.arm() == []
    ready(items, "d", INSTANTS[0])  # staged later for an armed instant: that alarm takes it
    assert items.arm() == []
    items.disarm(INSTANTS[0])
    assert items.arm() == [INSTANTS[0]]  # still ready for it: armed again


def test_unsent_is_what_no_burst_took() -> None:
    items = Tracker()
    ready(items, "a")
    ready(items, "b", INSTANTS[1])
    items.launch(["a"])
    assert items.unsent() == ["b"]


class TrackerMachine(RuleBasedStateMachine):
    """Any sequence of what the dispatcher does keeps the invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.items = Tracker()

    @rule(ids=st.lists(st.sampled_from(IDS), max_size=3))
    def hold(self, ids: list[str]) -> None:
        self.items.hold(ids)

    @precondition(lambda self: bool(self.items.held - set(self.items.ready)))
    @rule(data=st.data(), at=st.sampled_from(INSTANTS))
    def stage(self, data: st.DataObject, at: datetime) -> None:
        item_id = data.draw(st.sampled_from(sorted(self.items.held - set(self.items.ready))))
        c = claimed(item_id, at)
        self.items.staged(c, staged(c))

    @rule(at=st.sampled_from(INSTANTS))
    def burst_starts(self, at: datetime) -> None:
        due = [c.id for c, _ in self.items.due(at)]
        self.items.launch(due)
        assert not self.items.due(at)

    @rule(ids=st.lists(st.sampled_from(IDS), max_size=3))
    def forget(self, ids: list[str]) -> None:
        self.items.forget(ids)
        for item_id in ids:
            assert item_id not in self.items.held
            assert item_id not in self.items.ready
            assert item_id not in self.items.in_flight

    @rule()
    def arm(self) -> None:
        before = self.items.armed
        new = self.items.arm()
        assert not set(new) & before and new == sorted(new)

    @rule(at=st.sampled_from(INSTANTS))
    def disarm(self, at: datetime) -> None:
        self.items.disarm(at)
        assert at not in self.items.armed

    @invariant()
    def in_flight_within_ready_within_held(self) -> None:
        assert self.items.in_flight <= set(self.items.ready) <= self.items.held

    @invariant()
    def holds_answers_as_held_does(self) -> None:
        assert [i for i in IDS if self.items.holds(i)] == [i for i in IDS if i in self.items.held]

    @invariant()
    def unsent_is_ready_minus_in_flight(self) -> None:
        assert set(self.items.unsent()) == set(self.items.ready) - self.items.in_flight


TestTrackerMachine = TrackerMachine.TestCase
TestTrackerMachine.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
