"""Every benchmark still runs: each script's --quick mode, end to end, in a few seconds.

The figures themselves are not checked here (timings on a shared machine are noisy); `make bench`
produces them. What is checked is what would make a benchmark silently wrong: orders that never
reached the wire, pacing errors, a table that is not printed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run_quick(*command: str) -> str:
    finished = subprocess.run(
        [sys.executable, *command, "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "machine: " in finished.stdout
    return finished.stdout


def test_rebalance_sends_every_order_without_pacing_errors() -> None:
    output = run_quick("-m", "benchmarks.rebalance")
    assert "tradectl cold |" in output
    assert "tradectl warm |" in output
    assert "naive loop" in output
    assert "pacing errors 0 (goal 0)" in output


def test_reaction_measures_every_edit() -> None:
    output = run_quick("-m", "benchmarks.reaction")
    assert "| edits | debounce ms | p50 ms |" in output
    assert "p50 " in output


def test_planner_scaling_prints_its_rows() -> None:
    output = run_quick("benchmarks/planner_scaling.py")
    assert "     100 " in output
    assert "   1,000 " in output


def test_footprint_reads_the_daemon_rss_and_cpu() -> None:
    output = run_quick("-m", "benchmarks.footprint")
    assert "| rules | seconds | RSS MB |" in output
    assert "peak RSS " in output


def test_protection_measures_the_modify_after_each_fill() -> None:
    output = run_quick("-m", "benchmarks.protection")
    assert "| fills | protective | p50 ms |" in output
    # Every fill was followed first by an order message for the bracket's stop or take-profit.
    assert "|     3 |          3 |" in output


def test_startup_prints_every_command_beside_bare_python() -> None:
    output = run_quick("-m", "benchmarks.startup")
    rows = {line.split("|")[1].strip(): line for line in output.splitlines() if line[:1] == "|"}
    assert {"python -c pass", "tradectl --help", "tradectl validate rules/"} <= rows.keys()
    assert "≤ 150" in rows["tradectl --help"]
    assert "≤ 300" in rows["tradectl validate rules/"]
