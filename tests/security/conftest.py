"""Fixtures of the local-security tests: a sim with a wire log, subprocesses killed at the end,
and a current event loop left behind for the ib_insync tests that run later."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradectl.sim import SimState, SimThread, start_sim_thread


@pytest.fixture(autouse=True)
def _current_event_loop_afterwards() -> Iterator[None]:
    # asyncio.run() clears the thread's loop; ib_insync's synchronous API needs one.
    yield
    asyncio.set_event_loop(asyncio.new_event_loop())


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimThread]:
    """The default sim account on a free port, its wire log in tmp_path/wire.jsonl."""
    with start_sim_thread(SimState.default(), port=0, wire_log=tmp_path / "wire.jsonl") as gateway:
        yield gateway


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)
