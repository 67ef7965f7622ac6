"""Shared fixtures of the daemon tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.sim import SimState, SimThread, start_sim_thread


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimThread]:
    """The default simulated gateway on a free loopback port, its wire log in tmp_path."""
    gateway = start_sim_thread(SimState.default(), port=0, wire_log=tmp_path / "wire.jsonl")
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def _leave_a_current_event_loop() -> Iterator[None]:
    # asyncio.run() clears the thread's current loop on exit; ib_insync's synchronous API used by
    # tests that run later in this process expects one.
    yield
    asyncio.set_event_loop(asyncio.new_event_loop())


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # `tradectl run` configures the root logger with the stream of the moment, which pytest
    # closes after a test that captures it.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
