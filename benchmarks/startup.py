"""Start-up time of the quick commands: ``tradectl --help`` and ``tradectl validate rules/``.

    .venv/bin/python -m benchmarks.startup [--runs 20] [--quick]

Each command runs ``--runs`` times as a fresh process, interleaved with a bare ``python -c pass``
(the interpreter's own start, which no change to tradectl can remove), and the table shows the
median wall time of each. Editors and pre-commit run ``validate`` on every save; ``--help`` is
the first thing a new user runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.support import ROOT, machine, table

HELP_GOAL_MS = 150.0
VALIDATE_GOAL_MS = 300.0


def tradectl() -> list[str]:
    """The installed console script, as users run it; ``python -m tradectl`` without one."""
    script = Path(sys.executable).parent / "tradectl"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tradectl"]


def wall_ms(command: list[str]) -> float:
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
    elapsed = (time.perf_counter() - started) * 1000
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {finished.returncode}: {finished.stderr!r}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 runs each")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    commands = {
        "python -c pass": ([sys.executable, "-c", "pass"], None),
        "tradectl --help": ([*tradectl(), "--help"], HELP_GOAL_MS),
        "tradectl validate rules/": ([*tradectl(), "validate", "rules/"], VALIDATE_GOAL_MS),
    }
    for command, _ in commands.values():
        wall_ms(command)  # warm the file cache: the first start after an install reads more
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (command, _) in commands.items():
            times[name].append(wall_ms(command))
    bare = statistics.median(times["python -c pass"])
    rows = []
    for name, (_, goal) in commands.items():
        median = statistics.median(times[name])
        verdict = "" if goal is None else ("met" if median <= goal else "MISSED")
        rows.append(
            [
                name,
                f"{median:.0f}",
                f"{min(times[name]):.0f}",
                f"{max(times[name]):.0f}",
                f"{median - bare:+.0f}",
                "" if goal is None else f"≤ {goal:.0f}",
                verdict,
            ]
        )
    print(f"startup: median of {runs} runs each, interleaved")
    headers = ["command", "median ms", "min ms", "max ms", "over python ms", "goal ms", ""]
    print(table(headers, rows))
    print(machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())
