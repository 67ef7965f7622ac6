"""The fast tier's two 200-order scenarios, crash-restart and gateway faults. Each spends most of
its time waiting on the daemon's pacer (45 messages a second) and on the gateway, not on the CPU.
They are two tests, so that `make test`'s workers (pytest-xdist) run them side by side, each in
its own process with its own simulated gateway (docs/testing.md)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from .test_crash_restart import crash_restart
from .test_gateway_faults import FAST, gateway_faults

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    # Above the suite's 180 s: each scenario may itself wait up to 180 s for convergence.
    pytest.mark.timeout(420),
]


def test_crash_restart_fast(tmp_path: Path) -> None:
    crash_restart(tmp_path, 3, name="crash-restart-fast", clock_jump=timedelta(minutes=2))


def test_gateway_faults_fast(tmp_path: Path) -> None:
    gateway_faults(tmp_path, FAST, name="gateway-faults-fast")
