"""``tradectl sim --state FILE --persist``: a restart of the sim process is a gateway restart."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from ib_insync import IB, ExecutionFilter, LimitOrder, MarketOrder, Stock

from tradectl.sim.state import SimState

from .helpers import RawClient, wait_for

pytestmark = pytest.mark.e2e
NY = ZoneInfo("America/New_York")
FRIDAY_10AM = datetime(2026, 11, 27, 10, 0, tzinfo=NY)


def write_state(path: Path, **extra: Any) -> None:
    state = {
        "calendar": "nyse",
        "clock": {"start": FRIDAY_10AM.isoformat(), "frozen": True},
        "account": {"cash": 100_000},
        "symbols": {"AAPL": {"price": 100.0, "con_id": 265598}},
        **extra,
    }
    path.write_text(yaml.safe_dump(state))


class SimProcess:
    def __init__(self, state: Path) -> None:
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "tradectl", "sim", "--port", "0", "--state", str(state)),
                *("--persist", "--control-stdin"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.fullmatch(r"tradectl sim listening on 127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        self.port = int(match.group(1))

    def control(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return reply

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def running(state: Path) -> Iterator[SimProcess]:
    sim = SimProcess(state)
    try:
        yield sim
    finally:
        sim.kill()


@contextmanager
def client(port: int) -> Iterator[IB]:
    ib = IB()
    ib.connect("127.0.0.1", port, clientId=1, timeout=10)
    try:
        yield ib
    finally:
        ib.disconnect()


def next_valid_id(port: int) -> int:
    raw = RawClient("127.0.0.1", port, client_id=1)
    raw.close()
    [announced] = [int(msg[2]) for msg in raw.received if msg[0] == "9"]
    return announced


def until(ib: IB, predicate: Any) -> None:
    wait_for(predicate, lambda t: ib.waitOnUpdate(timeout=t), timeout=10)


def trade_and_restart(tmp_path: Path, **extra: Any) -> tuple[SimState, dict[str, Any]]:
    """A GTC order rests, a market order fills (the next id); then SIGTERM and restart."""
    state_file = tmp_path / "state.yaml"
    write_state(state_file, **extra)
    aapl = Stock("AAPL", "SMART", "USD")
    with running(state_file) as sim, client(sim.port) as ib:
        resting = ib.placeOrder(aapl, LimitOrder("BUY", 5, 90.0, tif="GTC"))
        filled = ib.placeOrder(aapl, MarketOrder("BUY", 10))
        until(ib, lambda: filled.orderStatus.status == "Filled")
        before = {
            "resting_perm": resting.order.permId,
            "exec_id": filled.fills[0].execution.execId,
            "resting_id": resting.order.orderId,
            "filled_id": filled.order.orderId,
        }
        sim.terminate()
    saved = SimState.load(state_file)
    with running(state_file) as sim:
        announced = next_valid_id(sim.port)
        with client(sim.port) as ib:
            after = {
                "positions": {p.contract.symbol: p.position for p in ib.positions()},
                "open_perms": [t.order.permId for t in ib.reqAllOpenOrders()],
                "exec_ids": [f.execution.execId for f in ib.reqExecutions(ExecutionFilter())],
                "next_id": announced,
                "now": sim.control({"op": "now"})["now"],
            }
        sim.terminate()
    return saved, before | after


def test_sigterm_writes_the_account_back_and_a_restart_resumes_it(tmp_path: Path) -> None:
    saved, seen = trade_and_restart(tmp_path)
    assert [(p.symbol, p.quantity) for p in saved.positions] == [("AAPL", 10.0)]
    assert saved.account.cash == pytest.approx(100_000 - 10 * 100.01 - 1.0)
    assert [(o.order_id, o.tif, o.perm_id) for o in saved.orders] == [
        (seen["resting_id"], "GTC", seen["resting_perm"])
    ]
    assert [e.exec_id for e in saved.executions] == [seen["exec_id"]]
    assert saved.clock.start == FRIDAY_10AM

    assert seen["positions"] == {"AAPL": 10.0}
    assert seen["open_perms"] == [seen["resting_perm"]]
    assert seen["exec_ids"] == [seen["exec_id"]]
    assert seen["next_id"] == seen["filled_id"] + 1  # ids continue after a restart
    assert seen["now"] == "2026-11-27T15:00:00+00:00"


def test_order_ids_are_reused_after_a_restart_when_asked(tmp_path: Path) -> None:
    _, seen = trade_and_restart(tmp_path, gateway={"reuse_order_ids": True})
    # nextValidId goes back to just above the working order: the filled order's id comes again
    assert seen["next_id"] == seen["filled_id"] == seen["resting_id"] + 1
    assert seen["exec_ids"] == [seen["exec_id"]]


def test_day_roll_writes_the_state_and_drops_the_previous_days_executions(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "state.yaml"
    write_state(state_file)
    with running(state_file) as sim, client(sim.port) as ib:
        trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 10))
        until(ib, lambda: trade.orderStatus.status == "Filled")
        reply = sim.control({"op": "advance", "to": "2026-11-28T12:00:00-05:00"})
        assert reply == {"ok": True, "now": "2026-11-28T17:00:00+00:00"}
        rolled = SimState.load(state_file)  # written at midnight, while the sim runs
        assert rolled.clock.start == datetime(2026, 11, 28, 0, 0, tzinfo=NY)
        assert [(p.symbol, p.quantity) for p in rolled.positions] == [("AAPL", 10.0)]
        assert rolled.executions == []
        sim.kill()  # a crash: what was written at the day roll is what a restart gets
    with running(state_file) as sim, client(sim.port) as ib:
        assert {p.contract.symbol: p.position for p in ib.positions()} == {"AAPL": 10.0}
        assert sim.control({"op": "now"})["now"] == "2026-11-28T05:00:00+00:00"
