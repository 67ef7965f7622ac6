"""The fast tier's two 200-order scenarios, crash-restart and gateway faults, side by side: each
spends most of its time waiting on the daemon's pacer (45 messages a second) and on the gateway,
not on the CPU, so together they take little longer than one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from .test_crash_restart import crash_restart
from .test_gateway_faults import FAST, gateway_faults

pytestmark = pytest.mark.e2e


def _with_own_event_loop(scenario: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # ib_insync's synchronous API (the manual orders) needs a current event loop in this thread.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return scenario(*args, **kwargs)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@pytest.mark.slow
# Above the suite's 180 s: each scenario may itself wait up to 180 s for convergence.
@pytest.mark.timeout(420)
def test_crash_restart_and_gateway_faults_fast(tmp_path: Path) -> None:
    crash_dir, faults_dir = tmp_path / "crash", tmp_path / "faults"
    crash_dir.mkdir()
    faults_dir.mkdir()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="scenario") as pool:
        crash = pool.submit(
            _with_own_event_loop,
            crash_restart,
            crash_dir,
            3,
            name="crash-restart-fast",
            clock_jump=timedelta(minutes=2),
        )
        faults = pool.submit(
            _with_own_event_loop, gateway_faults, faults_dir, FAST, name="gateway-faults-fast"
        )
        # Both finish (and report their figures) before either failure is raised.
        errors = [future.exception() for future in (crash, faults)]
    for error in errors:
        if error is not None:
            raise error
