"""Where `stormer preview --json` spends its time, stage by stage, in one process.

    python bench/preview_stages.py STORM_DIR      (e.g. one written by bench/gen_storm.py)

Times loading, planning, rendering the payloads, building the records and encoding the
JSON, the same steps `stormer preview --json` takes, so a slow stage is easy to spot
before reaching for a profiler (`python -m cProfile -s cumtime -m stormer preview --json
--storm DIR > /dev/null`). CPU seconds are printed too: on a busy machine they are
steadier than wall time. Prints figures only.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Self


class Stage:
    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> Self:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self.wall
        self.cpu_s = time.process_time() - self.cpu
        print(
            f"  {self.name:<42} {self.wall_s:6.2f} s wall  {self.cpu_s:6.2f} s CPU", file=sys.stderr
        )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    storm_dir = Path(argv[0])
    with Stage("import stormer (load, plan, preview)"):
        from stormer.cli._common import load
        from stormer.plan import plan
        from stormer.preview import item_record, rendered
    with Stage("load storm"):
        storm = load(storm_dir)
    with Stage("plan"):
        items = plan(storm)
    # Streamed like the command (nothing kept), each pass adding one step to the last.
    with Stage(f"render {len(items)} payloads") as render:
        for _ in rendered(storm, items):
            pass
    with Stage("  + item records") as record:
        for item, payload in rendered(storm, items):
            item_record(item, payload)
    with Stage("  + json.dumps(record, ensure_ascii=False)") as dumps:
        size = 0
        for item, payload in rendered(storm, items):
            size += len(json.dumps(item_record(item, payload), ensure_ascii=False))
    print(
        f"  records ≈ {record.cpu_s - render.cpu_s:.2f} s CPU, JSON ≈ "
        f"{dumps.cpu_s - record.cpu_s:.2f} s CPU for {size / 1e6:.0f} MB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
