"""Footprint of an idle daemon: RSS and CPU of ``tradectl run`` with 50 rules loaded.

    .venv/bin/python -m benchmarks.footprint [--rules 50] [--seconds 60] [--quick]

The daemon trades the simulated gateway (a subprocess, so its work is not counted) with
``--rules`` two-level BUY ladders resting below the market on the sim's 40 default symbols.
Once every ladder order is on the wire, the daemon is idle in the sense that matters: connected,
watching its rules directory, answering the gateway and running its timer pass every
``schedule.reconcile_every`` (30 s) with nothing to send. Over ``--seconds`` the script samples
its resident set size every second and its CPU time at both ends (psutil, the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmarks.support import (
    daemon_process,
    finished_passes,
    machine,
    rules_header,
    scale_ladder,
    sim_process,
    table,
    wait_until,
)
from tradectl.sim import SimState

# Issue #17's goals (round one: 100 MB and 1 %).
RSS_GOAL_MB = 60.0
CPU_GOAL_PERCENT = 0.3
LADDER_VALUE = 10_000.0
RECONCILE_EVERY = "30s"


@dataclass
class Footprint:
    rules: int
    seconds: float
    rss_mb: float
    peak_rss_mb: float
    cpu_percent: float
    passes: int


def bare_python_rss_mb() -> float:
    """The reference: the RSS of an interpreter that imported nothing (``python -c pass``, kept
    alive long enough to be measured)."""
    bare = subprocess.Popen(
        [sys.executable, "-c", "import sys; print(flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert bare.stdin is not None and bare.stdout is not None
    try:
        bare.stdout.readline()
        return float(psutil.Process(bare.pid).memory_info().rss) / 2**20
    finally:
        bare.stdin.close()
        bare.wait(10)


def ladders(count: int) -> str:
    prices = {symbol: spec.price for symbol, spec in SimState.default().symbols.items()}
    symbols = sorted(prices)
    lines = ["version: 1\n", "scales:\n"]
    for index in range(count):
        symbol = symbols[index % len(symbols)]
        start = round(prices[symbol] * 0.7, 2)
        quantity = max(2, round(LADDER_VALUE / start))
        lines.append(scale_ladder(f"ladder-{index:03d}", symbol, start, quantity))
    return "".join(lines)


def measure(rules: int, seconds: float) -> Footprint:
    workdir = Path(tempfile.mkdtemp(prefix="tradectl-bench-"))
    try:
        with sim_process(workdir) as sim:
            rules_dir = workdir / "rules"
            rules_dir.mkdir()
            header = rules_header(sim.port, workdir / "records", reconcile_every=RECONCILE_EVERY)
            (rules_dir / "account.yaml").write_text(header)
            (rules_dir / "ladders.yaml").write_text(ladders(rules))
            state_dir = workdir / "state"
            with daemon_process(rules_dir, state_dir, workdir / "tradectl.log") as daemon:
                wait_until(
                    lambda: (
                        daemon.count("first sync complete")
                        and sum(m["msg"] == "placeOrder" for m in sim.messages()) >= 2 * rules
                    ),
                    120,
                    f"the daemon's first sync and {2 * rules} ladder orders",
                )
                process = psutil.Process(daemon.process.pid)
                passes_before = finished_passes(state_dir)
                started = time.monotonic()
                cpu_before = process.cpu_times()
                peak = 0
                while (elapsed := time.monotonic() - started) < seconds:
                    peak = max(peak, process.memory_info().rss)
                    time.sleep(min(1.0, seconds - elapsed))
                cpu_after = process.cpu_times()
                elapsed = time.monotonic() - started
                rss = process.memory_info().rss
                cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
                return Footprint(
                    rules=rules,
                    seconds=elapsed,
                    rss_mb=rss / 2**20,
                    peak_rss_mb=max(peak, rss) / 2**20,
                    cpu_percent=100 * cpu / elapsed,
                    passes=finished_passes(state_dir) - passes_before,
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="5 rules for 3 s: a smoke run")
    args = parser.parse_args()
    rules, seconds = (5, 3.0) if args.quick else (args.rules, args.seconds)
    result = measure(rules, seconds)
    print(f"## Idle daemon footprint (reconcile_every {RECONCILE_EVERY})\n")
    headers = [
        "rules",
        "seconds",
        "RSS MB",
        "peak RSS MB",
        "bare python RSS MB",
        "CPU %",
        "timer passes",
    ]
    row = [
        result.rules,
        f"{result.seconds:.0f}",
        f"{result.rss_mb:.1f}",
        f"{result.peak_rss_mb:.1f}",
        f"{bare_python_rss_mb():.1f}",
        f"{result.cpu_percent:.2f}",
        result.passes,
    ]
    print(table(headers, [row]))
    print()
    rss_ok = "met" if result.peak_rss_mb <= RSS_GOAL_MB else "MISSED"
    cpu_ok = "met" if result.cpu_percent <= CPU_GOAL_PERCENT else "MISSED"
    print(f"peak RSS {result.peak_rss_mb:.1f} MB (goal <= {RSS_GOAL_MB:.0f} MB): {rss_ok}")
    print(f"CPU {result.cpu_percent:.2f} % (goal <= {CPU_GOAL_PERCENT:g} %): {cpu_ok}")
    print(machine())
    return 0


if __name__ == "__main__":
    sys.exit(main())
