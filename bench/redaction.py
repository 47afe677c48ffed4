"""Masking credentials in log lines while a worker stages a big storm: what the regex
alternation did, against stormer.secrets._Masks.

    .venv/bin/python bench/redaction.py [--accounts 50000] [--batch 500] [--regex-up-to 20000]

Staging adds the credentials of each batch's accounts (`Secret` registers every value for
redaction) and logs a line per batch. Per storm size: the whole run's masking time (values
added, one line masked per batch) and one line's masking time once every value is known.
The regex is the code before (one alternation, longest first, compiled again when a value
was added); it is run only up to `--regex-up-to` accounts: it is quadratic. A benchmark,
not a test: it prints figures and exits 0.
"""

from __future__ import annotations

import argparse
import re
import time

from stormer.secrets import _Masks

LINE = "staged 500 of 500 item(s) claimed; POST http://127.0.0.1:8000/bot{}/sendPhoto 200"


def tokens(n: int) -> list[str]:
    return [f"{k:06d}:tok-{k * 7919 % 1_000_003:07d}-x" for k in range(n)]


def with_regex(values: list[str], batch: int) -> tuple[float, float]:
    known: set[str] = set()
    pattern: re.Pattern[str] | None = None
    began = time.perf_counter()
    for start in range(0, len(values), batch):
        known.update(values[start : start + batch])
        ordered = sorted(known, key=len, reverse=True)
        pattern = re.compile("|".join(re.escape(v) for v in ordered))
        pattern.sub("<redacted>", LINE.format(values[start]))
    run = time.perf_counter() - began
    assert pattern is not None
    began = time.perf_counter()
    pattern.sub("<redacted>", LINE.format(values[-1]))
    return run, time.perf_counter() - began


def with_masks(values: list[str], batch: int) -> tuple[float, float]:
    masks = _Masks(6)
    began = time.perf_counter()
    for start in range(0, len(values), batch):
        for v in values[start : start + batch]:
            masks.add(v)
        masks.sub(LINE.format(values[start]), "<redacted>")
    run = time.perf_counter() - began
    began = time.perf_counter()
    masked = masks.sub(LINE.format(values[-1]), "<redacted>")
    assert "<redacted>" in masked
    return run, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--regex-up-to", type=int, default=20_000)
    args = parser.parse_args()
    sizes = sorted({n for n in (1_000, 5_000, 10_000, 20_000, args.accounts) if n <= args.accounts})
    print(
        f"{'accounts':>9} {'regex: run':>12} {'one line':>10} {'masks: run':>12} {'one line':>10}"
    )
    for n in sizes:
        values = tokens(n)
        regex = with_regex(values, args.batch) if n <= args.regex_up_to else None
        masks = with_masks(values, args.batch)
        shown = (
            f"{regex[0]:>10.2f} s {regex[1] * 1e3:>7.2f} ms" if regex else f"{'–':>12} {'–':>10}"
        )
        print(f"{n:>9,} {shown} {masks[0]:>10.3f} s {masks[1] * 1e3:>7.3f} ms", flush=True)


if __name__ == "__main__":
    main()
