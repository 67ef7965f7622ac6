"""Fixtures for the apply tests: a simulated gateway on a loopback port, rule sets pointing at
it, and ways to run ``tradectl apply`` in this process or as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ib_insync import IB, LimitOrder, Stock

from tradectl.cli import main
from tradectl.sim import SimState, SimThread, start_sim_thread
from tradectl.sim.wirelog import read_wire_log

ACCOUNT = "DU0000001"
CLIENT_ID = 17
# What ib_insync's handshake sends (IB.connectAsync), all read-only; for client id 0 it would
# also send reqAutoOpenOrders, which `apply` never lets an unvalidated rule file cause.
HANDSHAKE = {
    "startApi",
    "reqPositions",
    "reqOpenOrders",
    "reqCompletedOrders",
    "reqAccountUpdates",
    "reqAccountUpdatesMulti",
    "reqExecutions",
}


def sim_state(
    symbols: dict[str, float], cash: float = 1_000_000, account: str = ACCOUNT
) -> SimState:
    return SimState.from_dict(
        {
            "account": {"id": account, "cash": cash},
            "symbols": {symbol: {"price": price} for symbol, price in symbols.items()},
        }
    )


DEFAULT_PRICES = {"AAPL": 100.0, "MSFT": 200.0, "SPY": 500.0, "NVDA": 50.0, "AMZN": 220.0}


@dataclass
class Gateway:
    sim: SimThread
    wire_log: Path

    def messages(self, name: str | None = None) -> list[dict[str, Any]]:
        if not self.wire_log.exists():
            return []
        return [line for line in read_wire_log(self.wire_log) if name in (None, line["msg"])]

    def placed_refs(self) -> list[str]:
        return [line["fields"]["orderRef"] for line in self.messages("placeOrder")]

    def positions(self) -> dict[str, float]:
        snapshot = self.sim.snapshot()
        return {symbol: p.quantity for symbol, p in snapshot.positions.items() if p.quantity}

    def client_connected(self, client_id: int) -> bool:
        gateway = self.sim.gateway
        return self.sim.call(lambda: any(s.client_id == client_id for s in gateway.sessions()))


def place_manual_order(
    gateway: Gateway, symbol: str, action: str, quantity: int, limit: float
) -> int:
    """A limit order placed by another client (id 99), as the user's own tools would: tradectl
    sees it but never touches it. Returns its order id."""
    manual = IB()
    manual.connect("127.0.0.1", gateway.sim.port, clientId=99, timeout=10)
    try:
        trade = manual.placeOrder(
            Stock(symbol, "SMART", "USD"), LimitOrder(action, quantity, limit)
        )
        manual.sleep(0)
        return int(trade.order.orderId)
    finally:
        manual.disconnect()


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[[SimState], Gateway]]:
    started: list[SimThread] = []

    def start(state: SimState) -> Gateway:
        wire_log = tmp_path / f"wire-{len(started)}.jsonl"
        handle = start_sim_thread(state, wire_log=wire_log)
        started.append(handle)
        return Gateway(handle, wire_log)

    yield start
    for handle in started:
        handle.stop()


@pytest.fixture
def gateway(gateway_factory: Callable[[SimState], Gateway]) -> Gateway:
    return gateway_factory(sim_state(DEFAULT_PRICES))


def write_rules(
    directory: Path,
    gateway: Gateway,
    *,
    account: dict[str, Any] | None = None,
    risk: dict[str, Any] | None = None,
    client_id: int = CLIENT_ID,
    **sections: Any,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "version": 1,
        "account": account or {"id": ACCOUNT},
        "gateway": {"host": "127.0.0.1", "port": gateway.sim.port, "client_id": client_id},
        "risk": {
            "max_order_value": 50_000,
            "max_position_fraction": 0.35,
            "max_risk_per_trade_fraction": 0.05,
            "max_daily_loss_fraction": 0.05,
            "max_orders_per_minute": 3000,
            **(risk or {}),
        },
        "records": {"dir": str(directory.parent / "records")},
        **sections,
    }
    (directory / "rules.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return directory


def allocation_rules(
    directory: Path, gateway: Gateway, targets: dict[str, float], **sections: Any
) -> Path:
    """One allocation, ``core``, of half the NAV over ``targets``, in limit orders 10 bps through
    the price."""
    core = {
        "capital": {"fraction_of_nav": 0.5},
        "drift": {"absolute": 0.001},
        "min_trade_value": 0,
        "order": {"type": "limit", "offset_bps": 10},
        "targets": targets,
    }
    return write_rules(directory, gateway, allocations={"core": core}, **sections)


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def apply_in_process(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Callable[..., Outcome]:
    def run(rules: Path, *extra: str, state_dir: Path | None = None) -> Outcome:
        state = state_dir or tmp_path / "state"
        capsys.readouterr()
        code = main(["apply", str(rules), "--yes", "--state-dir", str(state), *extra])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


def apply_subprocess(
    rules: Path,
    state_dir: Path,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    options: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """`tradectl apply RULES --yes` through the real entry point, as a user runs it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tradectl",
            "apply",
            str(rules),
            "--yes",
            "--state-dir",
            str(state_dir),
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition on another thread's or process's state until it holds or time is up."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within timeout")
        time.sleep(0.02)
