"""Injected faults, as a client of the gateway experiences them."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from ib_insync import IB, LimitOrder, MarketOrder, Stock

from tradectl.sim import SimThread

pytestmark = pytest.mark.e2e
Until = Callable[..., None]


def test_drop_connections_then_reconnect(ib: IB, sim: SimThread, until: Until) -> None:
    trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 5))
    resting = ib.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 90.0))
    until(lambda: trade.isDone() and resting.orderStatus.status == "Submitted")
    disconnects: list[None] = []
    ib.disconnectedEvent += lambda: disconnects.append(None)
    sim.control.drop_connections()
    until(lambda: bool(disconnects))
    assert not ib.isConnected()
    ib.connect(sim.host, sim.port, clientId=1, timeout=5)
    assert [(p.contract.symbol, p.position) for p in ib.positions()] == [("AAPL", 5)]
    assert len(ib.fills()) == 1  # executions are re-read on reconnect
    [working] = ib.openTrades()  # and the client's working orders
    assert working.order.permId == resting.order.permId


def test_refuse_connections_for_a_while(ib: IB, sim: SimThread, until: Until) -> None:
    started = time.monotonic()
    sim.control.refuse_connections(0.5)
    until(lambda: not ib.isConnected())
    with pytest.raises(OSError):
        IB().connect(sim.host, sim.port, clientId=2, timeout=2)
    assert sim.wait_listening(5)
    assert time.monotonic() - started >= 0.5
    ib.connect(sim.host, sim.port, clientId=1, timeout=5)
    assert ib.isConnected()


def test_reject_next_orders(ib: IB, sim: SimThread, until: Until) -> None:
    sim.control.reject_next_orders(2)
    aapl = Stock("AAPL", "SMART", "USD")
    trades = [ib.placeOrder(aapl, MarketOrder("BUY", 1)) for _ in range(3)]
    until(lambda: all(t.isDone() for t in trades))
    assert [t.orderStatus.status for t in trades] == ["Cancelled", "Cancelled", "Filled"]
    assert [e.errorCode for e in trades[0].log if e.errorCode] == [201]


def test_delayed_acknowledgements(ib: IB, sim: SimThread, until: Until) -> None:
    sim.control.delay_acks(300)
    started = time.monotonic()
    trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 90.0))
    until(lambda: trade.orderStatus.status == "Submitted")
    assert time.monotonic() - started >= 0.3
    sim.control.delay_acks(0)
    started = time.monotonic()
    ib.cancelOrder(trade.order)
    until(trade.isDone)
    assert time.monotonic() - started < 0.3


def test_connectivity_lost_and_restored(ib: IB, sim: SimThread, until: Until) -> None:
    seen: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: seen.append((req_id, code))
    sim.control.connectivity_lost()
    until(lambda: (-1, 1100) in seen)
    sim.control.connectivity_restored()
    until(lambda: (-1, 1102) in seen)
    assert ib.isConnected()


def test_json_control_commands(sim: SimThread) -> None:
    assert sim.control.apply({"op": "set_price", "symbol": "AAPL", "price": 123.45}) == {"ok": True}
    assert sim.snapshot().prices["AAPL"] == 123.45
    assert sim.control.apply({"op": "nope"})["ok"] is False
    assert sim.control.apply({"op": "set_price", "symbol": "NOPE", "price": 1})["ok"] is False
    snap = sim.control.apply({"op": "snapshot"})
    assert snap["snapshot"]["account"] == "DU0000001"


def test_drop_next_swallows_one_order_status_and_one_execution(
    ib: IB, sim: SimThread, until: Until
) -> None:
    sim.control.apply({"op": "drop_next", "message": "orderStatus"})
    sim.control.apply({"op": "drop_next", "message": "execDetails"})
    first = ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 5))
    second = ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 3))
    until(lambda: len(ib.fills()) == 1 and second.isDone())
    # The gateway's own state is complete: both orders filled, two executions.
    fills = sim.control.apply({"op": "snapshot"})["snapshot"]["fills"]
    assert [fill["shares"] for fill in fills] == [5, 3]
    # The client missed the first execution; a fresh read brings it back.
    assert [fill.execution.shares for fill in ib.fills()] == [3]
    assert len(ib.reqExecutions()) == 2
    assert first.order.permId
    assert sim.control.apply({"op": "drop_next", "message": "tickPrice"})["ok"] is False
