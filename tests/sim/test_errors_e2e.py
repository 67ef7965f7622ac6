"""IB's error codes and limits as the clients see them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ib_insync import IB, LimitOrder, MarketOrder, Stock

from tradectl.sim import SimState, SimThread, start_sim_thread
from tradectl.sim.wirelog import read_wire_log

from .helpers import RawClient, small_state

pytestmark = pytest.mark.e2e
Until = Callable[..., None]


@pytest.fixture
def sim_state() -> SimState:
    return small_state(account={"cash": 1_000_000}, limits={"max_market_data_lines": 2})


@pytest.fixture
def errors(ib: IB) -> list[tuple[int, int, str]]:
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: seen.append((req_id, code, msg))
    return seen


def codes(errors: list[tuple[int, int, str]]) -> list[int]:
    # 2xxx notices (farm status) are informational
    return [code for _, code, _ in errors if not 2100 <= code < 2200]


def test_unknown_symbol_is_200(ib: IB, errors: list[tuple[int, int, str]], until: Until) -> None:
    assert ib.qualifyContracts(Stock("NOPE", "SMART", "USD")) == []
    assert errors[-1][1:] == (200, "No security definition has been found for the request")
    ib.reqMktData(Stock("NOPE", "SMART", "USD"))
    until(lambda: codes(errors) == [200, 200])
    trade = ib.placeOrder(Stock("NOPE", "SMART", "USD"), MarketOrder("BUY", 1))
    until(trade.isDone)
    assert codes(errors) == [200, 200, 200]


def test_market_data_line_limit_is_101(
    ib: IB, errors: list[tuple[int, int, str]], until: Until
) -> None:
    tickers = [ib.reqMktData(Stock(s, "SMART", "USD")) for s in ("AAPL", "MSFT", "LOT")]
    until(lambda: codes(errors) == [101])
    assert errors[-1][0] == ib.wrapper.ticker2ReqId["mktData"][tickers[2]]
    ib.cancelMktData(tickers[0].contract)
    retry = ib.reqMktData(Stock("LOT", "SMART", "USD"))
    until(lambda: retry.last == 10.0)
    assert codes(errors) == [101]


def test_invalid_order_is_201_and_cancelled(
    ib: IB, errors: list[tuple[int, int, str]], until: Until
) -> None:
    trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 0.5))
    until(lambda: trade.isDone() and trade.orderStatus.permId > 0)
    assert trade.orderStatus.status == "Cancelled"
    [(req_id, _, msg)] = [e for e in errors if e[1] == 201]
    assert req_id == trade.order.orderId
    assert msg.startswith("Order rejected - reason:")


def test_off_tick_price_is_110_and_cancelled(
    ib: IB, errors: list[tuple[int, int, str]], until: Until
) -> None:
    trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 99.999))
    until(lambda: trade.isDone() and trade.orderStatus.permId > 0)
    assert trade.orderStatus.status == "Cancelled"
    assert [(e[0], e[1]) for e in errors if e[1] in (110, 201)] == [(trade.order.orderId, 110)]


def test_insufficient_buying_power_is_201(
    ib: IB, errors: list[tuple[int, int, str]], until: Until
) -> None:
    trade = ib.placeOrder(Stock("MSFT", "SMART", "USD"), MarketOrder("BUY", 10_000))
    until(trade.isDone)
    assert trade.orderStatus.status == "Cancelled"
    assert codes(errors) == [201]
    assert "buying power" in errors[-1][2]
    assert ib.positions() == []


def test_cancel_of_unknown_order_is_10147(
    ib: IB, errors: list[tuple[int, int, str]], until: Until
) -> None:
    ib.client.cancelOrder(4242)
    until(lambda: codes(errors) == [10147])
    assert errors[-1] == (4242, 10147, "OrderId 4242 that needs to be cancelled is not found.")


def test_twenty_one_orders_on_one_side_is_201(
    ib: IB, errors: list[tuple[int, int, str]], until: Until
) -> None:
    aapl = Stock("AAPL", "SMART", "USD")
    trades = [ib.placeOrder(aapl, LimitOrder("BUY", 1, 50.0)) for _ in range(21)]
    until(lambda: all(t.orderStatus.status in ("Submitted", "Cancelled") for t in trades))
    assert [t.orderStatus.status for t in trades].count("Submitted") == 20
    assert trades[-1].orderStatus.status == "Cancelled"
    assert codes(errors) == [201]


def test_pacing_51_messages_in_a_second_is_100(sim: SimThread, wire_log_path: Path) -> None:
    client = RawClient(sim.host, sim.port, client_id=5)
    try:
        client.send_many([(49, 1)] * 51)  # reqCurrentTime
        for _ in range(50):
            client.read_until(lambda msg: msg[0] == "49")
    finally:
        client.close()
    paced = [m for m in client.received if m[0] == "4" and m[3] == "100"]
    assert len(paced) == 1
    assert paced[0][4].startswith("Max rate of messages per second has been exceeded")
    records = [r for r in read_wire_log(wire_log_path) if r["msg"] == "reqCurrentTime"]
    assert len(records) == 51
    assert [r.get("dropped", False) for r in records].count(True) == 1
    assert records[-1]["dropped"] is True


def test_pacing_can_be_disabled() -> None:
    with start_sim_thread(small_state(limits={"max_messages_per_second": 0})) as sim:
        client = RawClient(sim.host, sim.port, client_id=5)
        try:
            client.send_many([(49, 1)] * 60)
            for _ in range(60):
                client.read_until(lambda msg: msg[0] == "49")
            assert not [m for m in client.received if m[0] == "4" and m[3] == "100"]
        finally:
            client.close()


def test_unsupported_requests_fail_fast(
    ib: IB, errors: list[tuple[int, int, str]], until: Until
) -> None:
    ticks = ib.reqHistoricalTicks(
        Stock("AAPL", "SMART", "USD"), "", "20261130 16:00:00 UTC", 100, "TRADES", useRth=True
    )
    assert len(ticks) == 0
    assert codes(errors) == [322]
