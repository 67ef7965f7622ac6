"""Fixtures of the local-security tests: a sim with a wire log, subprocesses killed at the end."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

# asyncio.run() in these tests clears the thread's loop, which later ib_insync tests need.
from tests.daemon.conftest import _leave_a_current_event_loop as _leave_a_current_event_loop

# The daemon tests' sim: the default state, a free port, a wire log in tmp_path.
from tests.daemon.test_e2e import sim as sim


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test started; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)
