"""How long `scale.py` waits before each contender's T, and how long a whole run will take.

T has to come after the workers have started and staged every item (the attempts are
recorded at T − 0.5 s, and an item staged after T fires late), but every second of margin
beyond that is a second of waiting: the fixed 30 s + 40 ms per item used before was 34
minutes per contender at 50,000 items, while staging 50,000 takes 4–6 minutes.

So the margin is derived from what this very run measured: the previous contender's
start-up and staging rate (the floor's before the first workers), times a safety factor,
plus a fixed slack:

    margin = SAFETY × (start-up + items / rate) + SLACK_S

Why this is safe:

- The rate is measured on the same storm, the same simulator and the same machine, minutes
  earlier; what changes between contenders is the worker count. More workers on one outbox
  stage about as fast or faster (5,000 items, 2026-12-02: 1 worker 194 items/s, 2 workers
  436, 4 workers 423; at 2,000, 4 workers 217 against 252 for one, well inside the factor).
  Start-up grows with the worker count (4 processes load the storm at once on 2 cores), so
  the previous start-up is scaled by it.
- The floor's staging (httpx, 100 items at once) is slower than a worker's (aiohttp, its
  claim batch at once): 156–157 items/s at 2,000 and 5,000 items against 193–252 for one
  worker, so the first workers' margin, taken from the floor, errs long.
- A worker's rate falls slowly as the storm grows (one worker: 229–252 items/s at 2,000,
  193–194 at 5,000): the factor 1.5 leaves room for a rate a third lower at 50,000 than
  the one it was derived from, and SLACK_S for the fixed costs (polling, the last batch).
- Load changing between contenders (other sessions on the machine) is what no factor
  covers: at load 11–16 a worker staged at 29 items/s instead of 100. When staging does end
  later than T − 1 s the report says so ("staging ended at T+… s"; the figures of that
  contender are then not valid), and the next contender's margin is taken from that
  slower rate.
- Without a measurement (`--only sqlite,pg` starts with workers) the guesses below are
  used: GUESS_RATE is half the slowest rate a worker was measured at.

`--margin S` overrides all of this.
"""

from __future__ import annotations

from dataclasses import dataclass

SAFETY = 1.5
SLACK_S = 20.0
# Figures measured on the 2-core development machine (bench/README.md, 2026-12-02, load 1-2,
# `--claim-batch 500`), at 2,000 / 5,000 items unless said otherwise:
# - staging, items/s: the floor 156 / 157 (117-120 at 12,000); one worker 229-252 /
#   193-194 (99-102 at 5,000 and load 2-4 earlier that day); 2 and 4 workers 217-370 /
#   423-436.
# - a worker's start-up (import, load the storm, register): 1.3-1.6 s for one worker, 7 s
#   for four starting at once; loading a 50,000-item storm takes 3.9 s.
# - scheduling in scale.py's process: 1-2 s at 5,000; 16 s at 50,000 (SQLite).
# - from T until every worker has exited: 6-12 s at 5,000 (the burst, then the outcomes).
# Guesses when nothing was measured yet in this run (margins: on the safe side).
GUESS_RATE = 50.0  # items/s one worker stages: half the slowest figure measured
GUESS_STARTUP_S = 2.0  # one worker; each more starting at once on 2 cores adds as much
GUESS_STARTUP_PER_ITEM_S = 0.0001  # loading the storm
GUESS_SCHEDULE_PER_ITEM_S = 0.0005
# For the run's estimate only (expected, not safe, figures):
EXPECT_FLOOR_RATE = 120.0  # 156-157 at 2,000-5,000, 117-120 at 12,000
EXPECT_RATE = {1: 150.0, 2: 300.0, 4: 300.0}  # items/s staged, by worker count
EXPECT_AFTER_T_S = 10.0
EXPECT_AFTER_T_PER_ITEM_S = 0.002  # the burst and writing its outcomes
EXPECT_FLOOR_BURST_PER_ITEM_S = 0.001  # the floor's p99 was 4.2 s at 5,000


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
    """A rough total in seconds for the whole run, and one line per contender: the margins
    the rules above would choose if every contender staged at the expected rates, plus
    scheduling and what follows T. Printed at the start, so that whoever runs 50,000 items
    knows what they are in for."""
    lines: list[str] = []
    total = 0.0
    previous: Measured | None = None
    for name, workers in plan:
        startup = startup_guess(items, workers)
        if name == "floor":
            staging = items / EXPECT_FLOOR_RATE
            took = startup + staging + EXPECT_FLOOR_BURST_PER_ITEM_S * items + 5
            previous = Measured(1, startup, staging)
        else:
            margin = margin_for(items, workers, previous)
            after = EXPECT_AFTER_T_S + EXPECT_AFTER_T_PER_ITEM_S * items
            took = GUESS_SCHEDULE_PER_ITEM_S * items + margin + after
            rate = EXPECT_RATE.get(workers, EXPECT_RATE[4])
            previous = Measured(workers, startup, items / rate)
        total += took
        lines.append(f"{name} ~{took / 60:.0f} min")
    return total, lines
