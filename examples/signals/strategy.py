"""An SMA crossover strategy that writes targets for tradectl (examples/signals/README.md).

The strategy only decides what to hold: 100 AAPL while the 5-day average close is above the
20-day one, nothing otherwise. tradectl reconciles the account to that, with its journal,
limits and exactly-once orders; the strategy never places an order and never reads positions.

The simulated gateway has no historical bars, so the bars come from bars.csv beside this file.
``--as-of`` replays them up to a day; ``--every`` rewrites the file on a schedule, stepping one
bar per run (a stand-in for "a new daily bar arrived").

    python examples/signals/strategy.py --as-of 2026-10-06
    python examples/signals/strategy.py --every 60
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYMBOL = "AAPL"
SHARES_WHEN_ON = 100
FAST, SLOW = 5, 20


def read_closes(path: Path) -> list[tuple[date, float]]:
    with path.open(newline="") as bars:
        return [
            (date.fromisoformat(row["date"]), float(row["close"])) for row in csv.DictReader(bars)
        ]


def signal(closes: list[float]) -> bool:
    """True when the fast average is above the slow one (too few bars: off)."""
    if len(closes) < SLOW:
        return False
    fast = sum(closes[-FAST:]) / FAST
    slow = sum(closes[-SLOW:]) / SLOW
    return fast > slow


def write_targets(out: Path, shares: int, as_of: datetime) -> None:
    """Write atomically (temp file, rename): tradectl never reads a half-written file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_text(f"symbol,shares,as_of\n{SYMBOL},{shares},{as_of.isoformat()}\n")
    os.replace(temporary, out)


def run_once(bars: Path, out: Path, as_of_day: date) -> bool:
    closes = [close for day, close in read_closes(bars) if day <= as_of_day]
    on = signal(closes)
    # as_of is when the signal was computed, not the bar's date: tradectl's max_age measures how
    # long ago the strategy last ran, so a strategy that stops is noticed.
    write_targets(out, SHARES_WHEN_ON if on else 0, datetime.now(UTC))
    print(f"{as_of_day}: signal {'ON' if on else 'OFF'} -> {out}", flush=True)
    return on


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=Path, default=HERE / "bars.csv")
    parser.add_argument("--out", type=Path, default=HERE / "rules" / "signals" / "momentum.csv")
    parser.add_argument("--as-of", type=date.fromisoformat, help="replay the bars up to this day")
    parser.add_argument(
        "--every", type=float, help="seconds between runs; each run steps one bar further"
    )
    args = parser.parse_args(argv)
    days = [day for day, _ in read_closes(args.bars)]
    if args.every is None:
        run_once(args.bars, args.out, args.as_of or days[-1])
        return 0
    start = days.index(args.as_of) if args.as_of in days else SLOW
    for day in days[start:]:
        run_once(args.bars, args.out, day)
        time.sleep(args.every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
