"""Fixtures: a simulated gateway on a background thread and a connected ib_insync client."""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from ib_insync import IB

from tradectl.sim import SimState, SimThread, start_sim_thread

from . import helpers
from .helpers import Client, small_state, wait_for


@pytest.fixture
def sim_state() -> SimState:
    return small_state(account={"cash": 1_000_000})


@pytest.fixture
def wire_log_path(tmp_path: Path) -> Path:
    return tmp_path / "wire.jsonl"


@pytest.fixture
def sim(sim_state: SimState, wire_log_path: Path) -> Iterator[SimThread]:
    handle = start_sim_thread(sim_state, wire_log=wire_log_path)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def connect(sim: SimThread) -> Iterator[Callable[..., IB]]:
    clients: list[IB] = []

    def make(client_id: int = 1, **kwargs: Any) -> IB:
        ib = IB()
        ib.connect(sim.host, sim.port, clientId=client_id, timeout=5, **kwargs)
        clients.append(ib)
        return ib

    yield make
    for ib in clients:
        ib.disconnect()


@pytest.fixture
def ib(connect: Callable[..., IB]) -> IB:
    return connect(1)


@pytest.fixture
def until(ib: IB) -> Callable[..., None]:
    """``until(predicate)``: pump ib_insync's loop until the predicate holds."""

    def pump(timeout: float) -> None:
        # a disconnect is an update too: re-check the predicate
        with contextlib.suppress(ConnectionError):
            ib.waitOnUpdate(timeout=timeout)

    def wait(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        wait_for(predicate, pump, timeout)

    return wait


@pytest.fixture(autouse=True)
def client_logs_clean(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail any test in which a client could not decode a message or a request timed out."""
    caplog.set_level(logging.INFO)
    yield
    broken = [
        r.getMessage()
        for r in caplog.records
        if r.name.endswith(("Decoder", "decoder"))
        or (r.name.startswith("ib_") and (r.exc_info or "timed out" in r.getMessage()))
    ]
    assert broken == []


@pytest.fixture(params=["ib_insync", "ib_async"])
def lib(request: pytest.FixtureRequest) -> ModuleType:
    """The client library a test runs under; tests taking it run under both."""
    return importlib.import_module(request.param)


@pytest.fixture
def client(lib: ModuleType, sim: SimThread) -> Iterator[Client]:
    """A connected client of the library ``lib``, client id 21."""
    connected = helpers.connect(lib, sim, 21)
    yield connected
    connected.ib.disconnect()
