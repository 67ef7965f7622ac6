"""Suite-wide test settings."""

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(autouse=True)
def _no_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    # `plan` wraps its table to $COLUMNS. A shell that exports it, or pytest-xdist's workers
    # (COLUMNS=80), would wrap the lines the tests read; a test that wants a width sets it.
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


@pytest.fixture(autouse=True)
def private_state_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Every test gets its own default state directory: a command run without --state-dir must
    never touch the developer's ~/.local/state/tradectl or another test's journal."""
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("TRADECTL_STATE_DIR", raising=False)
    home = tmp_path_factory.mktemp("xdg-state")
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    return home


@pytest.fixture
def reserved_port() -> Iterator[int]:
    """A loopback port this test owns and nobody listens on: bound, never listening, so a
    connection to it is refused for the whole test (and never reaches a real gateway)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port: int = holder.getsockname()[1]
        yield port
