"""Shared fixtures of the daemon tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.e2e_support import DaemonProcess, Wire
from tradectl.sim import SimState, SimThread, start_sim_thread


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # `tradectl run` configures the root logger with the stream of the moment, which pytest
    # closes after a test that captures it.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# The end-to-end tests' simulated gateway, its wire log, and the daemons they start.
@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimThread]:
    gateway = start_sim_thread(SimState.default(), port=0, wire_log=tmp_path / "wire.jsonl")
    yield gateway
    gateway.stop()


@pytest.fixture
def wire(tmp_path: Path, sim: SimThread) -> Wire:
    return Wire(tmp_path / "wire.jsonl")


@pytest.fixture
def started() -> Iterator[list[DaemonProcess]]:
    """Daemons a test started; any still running at the end are killed."""
    daemons: list[DaemonProcess] = []
    yield daemons
    for daemon in daemons:
        daemon.kill()
