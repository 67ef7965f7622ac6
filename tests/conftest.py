"""Suite-wide test settings."""

import asyncio
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# CI explores the same examples on every run, so a submission is judged on its own change and
# not on the luck of a new random draw; developers' runs keep drawing fresh examples (and keep
# the failures they find in .hypothesis/), which is where new bugs are found.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _leave_a_current_event_loop() -> Iterator[None]:
    # asyncio.run() (daemon tests, ib_async tests) clears the thread's current loop on exit;
    # ib_insync's synchronous API, used by tests that run later in this process, expects one.
    yield
    asyncio.set_event_loop(asyncio.new_event_loop())
