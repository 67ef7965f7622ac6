"""Shared fixtures of the daemon tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _leave_a_current_event_loop() -> Iterator[None]:
    # asyncio.run() clears the thread's current loop on exit; ib_insync's synchronous API used by
    # tests that run later in this process expects one.
    yield
    asyncio.set_event_loop(asyncio.new_event_loop())
