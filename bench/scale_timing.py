"""How long `scale.py` waits before each contender's T, and how long a whole run will take.

T has to come after the workers have started and staged every item (the attempts are
recorded at T − 0.5 s, and an item staged after T fires late), but every second of margin
beyond that is a second of waiting: a fixed 40 ms per item was 34 minutes per contender at
50,000 items, while staging takes about 8.

So the margin is derived from what this very run measured: the previous contender's
start-up and staging rate (the floor's before the first workers), times a safety factor,
plus a fixed slack:

    margin = SAFETY × (start-up + items / rate) + SLACK_S

Why this is safe:

- The rate is measured on the same storm, the same simulator and the same machine, minutes
  earlier; what changes between contenders is the worker count, and more workers on one
  outbox stage faster, not slower (5,000 items, 2026-12-02: 1 worker 99–102 items/s, 2
  workers 177, 4 workers 150). Start-up grows with the worker count (4 processes load the
  storm at once on 2 cores), so the previous start-up is scaled by it.
- The floor's staging (httpx, 100 items at once) is at least as slow as a worker's
  (aiohttp, its claim batch at once): 113–129 items/s at 1,000–2,000 items against 99–102
  for one worker at 5,000, so the first workers' margin from it is not too short by more
  than the safety factor covers.
- SAFETY = 1.5 absorbs the load changing between contenders (other sessions on the
  machine): at load 11–16 a worker staged at 29 items/s instead of 100, which no factor
  short of 4 covers, so when staging does end later than T − 1 s the report says so
  ("staging ended at T+… s"), and the next contender's margin is taken from that slower
  rate.
- Without a measurement (`--only sqlite,pg` starts with workers) the guesses below are
  half the rates measured at 5,000 items.

`--margin S` overrides all of this.
"""

from __future__ import annotations

from dataclasses import dataclass

SAFETY = 1.5
SLACK_S = 20.0
# Guesses when nothing was measured yet in this run: half of what 5,000 items measured.
GUESS_RATE = 50.0  # items/s staged by one worker (99–102 measured)
# Start-up (import, load the storm, register) of one worker: 2.4–3.3 s at 5,000 items,
# mostly loading the storm, which grows with it; each more worker on 2 cores adds as much.
GUESS_STARTUP_S = 2.0
GUESS_STARTUP_PER_ITEM_S = 0.0006
# Planning and writing the outbox in scale.py's own process before the workers start.
GUESS_SCHEDULE_PER_ITEM_S = 0.002
# After T: the burst and the outcomes written, until every worker has exited.
GUESS_AFTER_T_S = 20.0
GUESS_AFTER_T_PER_ITEM_S = 0.002
# The floor: loading, staging 110 items/s, then a burst at T + 1–2 s.
GUESS_FLOOR_RATE = 110.0


@dataclass(frozen=True)
class Measured:
    """What a finished contender tells the next one: its workers, start-up, staging."""

    workers: int
    startup_s: float
    staging_s: float


def startup_guess(items: int, workers: int) -> float:
    return workers * (GUESS_STARTUP_S + GUESS_STARTUP_PER_ITEM_S * items)


def margin_for(items: int, workers: int, previous: Measured | None) -> float:
    """Seconds from launching `workers` workers to T (see the module's docstring)."""
    if previous is None:
        startup, rate = startup_guess(items, workers), GUESS_RATE
    else:
        startup = previous.startup_s * workers / previous.workers
        rate = items / max(previous.staging_s, 1e-3)
    return SAFETY * (startup + items / rate) + SLACK_S


def estimate(items: int, plan: list[tuple[str, int]]) -> tuple[float, list[str]]:
    """A rough total in seconds for the whole run, and one line per contender, from the
    guesses above and the margins they lead to: printed at the start so that whoever runs
    50,000 items knows what they are in for."""
    lines: list[str] = []
    total = 0.0
    previous: Measured | None = None
    for name, workers in plan:
        if name == "floor":
            staging = items / GUESS_FLOOR_RATE
            took = staging + GUESS_STARTUP_S + GUESS_STARTUP_PER_ITEM_S * items + 10
            previous = Measured(1, startup_guess(items, 1), staging)
        else:
            margin = margin_for(items, workers, previous)
            after = GUESS_AFTER_T_S + GUESS_AFTER_T_PER_ITEM_S * items
            took = GUESS_SCHEDULE_PER_ITEM_S * items + margin + after
            rate = 2 * GUESS_RATE * (1.5 if workers > 1 else 1.0)
            previous = Measured(workers, startup_guess(items, workers), items / rate)
        total += took
        lines.append(f"{name} ~{took / 60:.0f} min")
    return total, lines
