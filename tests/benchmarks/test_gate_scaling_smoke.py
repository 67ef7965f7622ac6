"""The gate benchmark still runs (its --quick mode), like every other benchmark."""

from __future__ import annotations

import pytest

from tests.benchmarks.test_benchmarks_smoke import run_quick

pytestmark = pytest.mark.slow


def test_gate_scaling_prints_its_rows() -> None:
    output = run_quick("-m", "benchmarks.gate_scaling")
    assert "   1,000       834 " in output
    assert "            10,000,000       0% " in output
    assert "                     1     100% " in output
