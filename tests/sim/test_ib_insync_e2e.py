"""End to end over loopback TCP with the unmodified ib_insync client."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from ib_insync import (
    IB,
    ExecutionFilter,
    LimitOrder,
    MarketOrder,
    Order,
    Stock,
    StopLimitOrder,
    StopOrder,
)

from tradectl.sim import SimState, SimThread, start_sim_thread
from tradectl.sim.wirelog import read_wire_log

from .helpers import small_state

pytestmark = pytest.mark.e2e
Until = Callable[..., None]


@pytest.fixture
def sim_state() -> SimState:
    return small_state(
        account={"cash": 1_000_000},
        positions=[{"symbol": "MSFT", "quantity": 50, "avg_cost": 180.0}],
    )


@pytest.fixture
def aapl(ib: IB) -> Stock:
    contract = Stock("AAPL", "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


def position(ib: IB, symbol: str) -> float:
    return sum(p.position for p in ib.positions() if p.contract.symbol == symbol)


def test_connect_synchronises_without_timeouts(
    sim: SimThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ib_insync")
    ib = IB()
    ib.connect(sim.host, sim.port, clientId=7, timeout=5)
    try:
        assert ib.isConnected()
        assert ib.managedAccounts() == ["DU0000001"]
        problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert problems == []
        assert "Synchronization complete" in caplog.text
    finally:
        ib.disconnect()


def test_positions_and_account_values(ib: IB) -> None:
    [pos] = ib.positions()
    assert (pos.contract.symbol, pos.position, pos.avgCost) == ("MSFT", 50, 180.0)
    values = {v.tag: v.value for v in ib.accountValues() if v.currency == "USD"}
    assert float(values["TotalCashValue"]) == 1_000_000
    assert float(values["NetLiquidation"]) == pytest.approx(1_000_000 + 50 * 200.0)
    [item] = ib.portfolio()
    assert item.marketValue == pytest.approx(10_000.0)
    assert item.unrealizedPNL == pytest.approx(50 * 20.0)
    summary = {v.tag: v.value for v in ib.accountSummary()}
    assert float(summary["BuyingPower"]) > 0
    assert summary["AccountType"] == "INDIVIDUAL"


def test_qualify_contract_and_details(ib: IB, aapl: Stock) -> None:
    assert aapl.conId == 265598
    assert aapl.primaryExchange == "NASDAQ"
    [details] = ib.reqContractDetails(Stock("AAPL", "SMART", "USD"))
    assert details.minTick == 0.01
    assert details.timeZoneId == "US/Eastern"
    # the default always_open calendar reports every day as one whole session
    [session, *_] = details.liquidSessions()
    assert (session.start.hour, session.end.hour) == (0, 0)
    assert session.end.date() > session.start.date()
    assert ib.qualifyContracts(Stock(conId=272093))[0].symbol == "MSFT"


def test_reported_hours_follow_market_hours_and_set_hours(sim: SimThread, ib: IB) -> None:
    sim.control.set_hours("us_equities")
    [details] = ib.reqContractDetails(Stock("AAPL", "SMART", "USD"))
    assert ":0930-" in details.liquidHours and ":0400-" in details.tradingHours
    sim.control.set_hours("closed_today")
    [details] = ib.reqContractDetails(Stock("AAPL", "SMART", "USD"))
    days = details.liquidHours.split(";")
    assert [day.endswith(":CLOSED") for day in days] == [True, True, False, False]
    assert [(s.start.hour, s.end.hour) for s in details.liquidSessions()] == [(0, 23), (0, 23)]
    refused = sim.call(lambda: sim.gateway.control.apply({"op": "set_hours", "hours": "often"}))
    assert refused["ok"] is False and "hours must be one of" in refused["error"]


def test_market_order_fills_with_commission(ib: IB, aapl: Stock, until: Until) -> None:
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="tctl:test:1:entry"))
    until(lambda: trade.isDone() and bool(trade.fills) and trade.fills[0].commissionReport.execId)
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.avgFillPrice == 100.01
    fill = trade.fills[0]
    assert fill.execution.orderRef == "tctl:test:1:entry"
    assert fill.commissionReport.commission == 1.0
    until(lambda: position(ib, "AAPL") == 10)

    def cash() -> float:
        [value] = [v.value for v in ib.accountValues() if v.tag == "TotalCashValue"]
        return float(value)

    until(lambda: cash() == pytest.approx(1_000_000 - 10 * 100.01 - 1.0))


def test_limit_order_rests_then_fills_when_price_moves(
    ib: IB, aapl: Stock, sim: SimThread, until: Until
) -> None:
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 5, 95.0))
    until(lambda: trade.orderStatus.status == "Submitted")
    assert [t.order.orderId for t in ib.reqOpenOrders()] == [trade.order.orderId]
    sim.control.set_price("AAPL", 94.0)
    until(trade.isDone)
    assert trade.orderStatus.avgFillPrice == 94.01


def test_stop_stop_limit_and_trailing_stop(
    ib: IB, aapl: Stock, sim: SimThread, until: Until
) -> None:
    entry = ib.placeOrder(aapl, MarketOrder("BUY", 30))
    until(entry.isDone)
    stop = ib.placeOrder(aapl, StopOrder("SELL", 10, 90.0))
    stop_limit = ib.placeOrder(aapl, StopLimitOrder("SELL", 10, 89.0, 95.0))
    trail_order = Order(action="SELL", totalQuantity=10, orderType="TRAIL", auxPrice=3.0)
    trail = ib.placeOrder(aapl, trail_order)
    until(lambda: all(t.orderStatus.status == "Submitted" for t in (stop, stop_limit, trail)))
    sim.control.set_price("AAPL", 110.0)  # trail ratchets to 107
    sim.control.set_price("AAPL", 106.5)  # trail fires
    until(trail.isDone)
    assert not stop.isDone()
    sim.control.set_price("AAPL", 94.0)  # stop-limit triggers, sells at bid 93.99 >= 89
    until(stop_limit.isDone)
    sim.control.set_price("AAPL", 89.5)  # stop triggers
    until(stop.isDone)
    assert [t.orderStatus.avgFillPrice for t in (trail, stop_limit, stop)] == [106.49, 93.99, 89.49]
    until(lambda: position(ib, "AAPL") == 0)


def test_trailing_percent_order_over_the_wire(
    ib: IB, aapl: Stock, sim: SimThread, until: Until
) -> None:
    order = Order(action="BUY", totalQuantity=10, orderType="TRAIL", trailingPercent=2.0)
    trade = ib.placeOrder(aapl, order)
    until(lambda: trade.orderStatus.status == "Submitted")
    snap = sim.snapshot()
    assert snap.open_orders[0].trail_stop_price == 102.0
    sim.control.set_price("AAPL", 102.5)
    until(trade.isDone)


def test_bracket_order(ib: IB, aapl: Stock, sim: SimThread, until: Until) -> None:
    bracket = ib.bracketOrder("BUY", 10, limitPrice=98.0, takeProfitPrice=105.0, stopLossPrice=95.0)
    parent, take_profit, stop_loss = (ib.placeOrder(aapl, o) for o in bracket)
    until(lambda: stop_loss.orderStatus.status == "PreSubmitted")
    assert parent.orderStatus.status == "Submitted"
    assert take_profit.orderStatus.status == "PreSubmitted"
    sim.control.set_price("AAPL", 97.5)
    until(lambda: parent.isDone() and take_profit.orderStatus.status == "Submitted")
    until(lambda: position(ib, "AAPL") == 10)
    sim.control.set_price("AAPL", 105.5)
    until(lambda: take_profit.isDone() and stop_loss.isDone())
    assert take_profit.orderStatus.status == "Filled"
    assert stop_loss.orderStatus.status == "Cancelled"
    until(lambda: position(ib, "AAPL") == 0)


def test_modify_and_cancel(ib: IB, aapl: Stock, sim: SimThread, until: Until) -> None:
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 5, 90.0, orderRef="tctl:m:1:entry"))
    until(lambda: trade.orderStatus.status == "Submitted")
    trade.order.lmtPrice = 91.5
    trade.order.totalQuantity = 7
    ib.placeOrder(aapl, trade.order)
    until(lambda: sim.snapshot().open_orders[0].lmt_price == 91.5)
    [working] = sim.snapshot().open_orders
    assert (working.quantity, working.order_ref) == (7, "tctl:m:1:entry")
    ib.cancelOrder(trade.order)
    until(trade.isDone)
    assert trade.orderStatus.status == "Cancelled"
    assert sim.snapshot().open_orders == []


def test_executions_with_commissions_and_filter(
    ib: IB, aapl: Stock, until: Until, connect: Callable[..., IB]
) -> None:
    for qty in (3, 4):
        trade = ib.placeOrder(aapl, MarketOrder("BUY", qty, orderRef=f"ref{qty}"))
        until(trade.isDone)
    msft = Stock("MSFT", "SMART", "USD")
    until(ib.placeOrder(msft, MarketOrder("SELL", 5)).isDone)
    until(lambda: len(ib.fills()) == 3 and all(f.commissionReport.execId for f in ib.fills()))
    assert all(f.commissionReport.commission == 1.0 for f in ib.fills())
    # a fresh client downloads executions and their commission reports while connecting
    other = connect(2)
    fills = other.fills()
    assert sorted(f.execution.shares for f in fills) == [3, 4, 5]
    assert all(f.commissionReport.commission == 1.0 for f in fills)
    assert {f.execution.orderRef for f in fills} == {"ref3", "ref4", ""}
    [sold] = [f for f in fills if f.execution.side == "SLD"]
    assert sold.commissionReport.realizedPNL == pytest.approx((199.99 - 180.0) * 5 - 1.0)
    filtered = ib.reqExecutions(ExecutionFilter(symbol="MSFT", side="SELL"))
    assert [(f.contract.symbol, f.execution.side) for f in filtered] == [("MSFT", "SLD")]
    assert len(ib.reqExecutions(ExecutionFilter(clientId=2))) == 0


def test_completed_orders_echo_order_ref(ib: IB, aapl: Stock, until: Until) -> None:
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 1, orderRef="tctl:c:1:entry"))
    until(trade.isDone)
    completed = ib.reqCompletedOrders(apiOnly=True)
    assert [(t.order.orderRef, t.orderStatus.status) for t in completed] == [
        ("tctl:c:1:entry", "Filled")
    ]
    assert completed[0].order.permId == trade.order.permId


def test_streaming_and_snapshot_market_data(
    ib: IB, aapl: Stock, sim: SimThread, until: Until
) -> None:
    ib.reqMarketDataType(1)
    ticker = ib.reqMktData(aapl)
    until(lambda: ticker.bid == 99.99 and ticker.ask == 100.01 and ticker.close == 100.0)
    sim.control.set_price("AAPL", 101.0)
    until(lambda: ticker.last == 101.0 and ticker.bid == 100.99)
    ib.cancelMktData(aapl)
    [snap] = ib.reqTickers(Stock("MSFT", "SMART", "USD"))
    assert (snap.bid, snap.ask, snap.last) == (199.99, 200.01, 200.0)


def test_current_time_and_ids(ib: IB) -> None:
    assert ib.reqCurrentTime().year >= 2024
    first = ib.client.getReqId()
    assert ib.client.getReqId() == first + 1


def test_global_cancel(ib: IB, aapl: Stock, until: Until) -> None:
    trades = [ib.placeOrder(aapl, LimitOrder("BUY", 1, 90.0 - i)) for i in range(3)]
    until(lambda: all(t.orderStatus.status == "Submitted" for t in trades))
    ib.reqGlobalCancel()
    until(lambda: all(t.orderStatus.status == "Cancelled" for t in trades))


def test_wire_log_records_each_order_exactly(
    ib: IB, aapl: Stock, until: Until, wire_log_path: Path
) -> None:
    bracket = ib.bracketOrder("BUY", 10, 98.0, 105.0, 95.0)
    for o in bracket:
        o.orderRef = f"tctl:b:1:{o.orderType}"
        ib.placeOrder(aapl, o)
    until(lambda: len(ib.openTrades()) == 3 and ib.openTrades()[2].orderStatus.permId > 0)
    ib.cancelOrder(bracket[0])
    until(lambda: not ib.openTrades())
    records = read_wire_log(wire_log_path)
    placed = [r["fields"] for r in records if r["msg"] == "placeOrder"]
    assert [(p["orderType"], p["transmit"], p["parentId"]) for p in placed] == [
        ("LMT", False, 0),
        ("LMT", False, bracket[0].orderId),
        ("STP", True, bracket[0].orderId),
    ]
    assert placed[2]["auxPrice"] == 95.0 and placed[2]["lmtPrice"] is None
    assert placed[0]["orderRef"] == "tctl:b:1:LMT" and placed[0]["totalQuantity"] == 10
    cancels = [r for r in records if r["msg"] == "cancelOrder"]
    assert [(c["client_id"], c["fields"]["orderId"]) for c in cancels] == [(1, bracket[0].orderId)]
    assert {r["client_id"] for r in records} == {1}


class TestThinMarket:
    """fill_chunk > 0: orders fill in pieces, one per matching pass (timer or price move)."""

    @pytest.fixture
    def sim_state(self) -> SimState:
        return small_state(
            account={"cash": 1_000_000},
            matching={"fill_chunk": 4},
            market={"tick_interval": 0.05},
        )

    def test_partial_fills_over_the_wire(self, ib: IB, aapl: Stock, until: Until) -> None:
        statuses: list[tuple[str, float]] = []
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10))
        trade.statusEvent += lambda t: statuses.append((t.orderStatus.status, t.filled()))
        until(trade.isDone)
        assert [f.execution.shares for f in trade.fills] == [4, 4, 2]
        assert ("Submitted", 4) in statuses
        until(lambda: all(f.commissionReport.execId for f in trade.fills))
        assert sum(f.commissionReport.commission for f in trade.fills) == pytest.approx(1.0)
        until(lambda: position(ib, "AAPL") == 10)


class TestRandomWalk:
    @pytest.fixture
    def sim_state(self) -> SimState:
        return small_state(market={"random_walk": True, "tick_interval": 0.02, "seed": 3})

    def test_prices_move_and_stream(self, ib: IB, aapl: Stock, until: Until) -> None:
        ticker = ib.reqMktData(aapl)
        seen: set[float] = set()
        ticker.updateEvent += lambda t: seen.add(t.last) if t.last == t.last else None  # skip NaN
        until(lambda: len(seen) >= 3)
        assert all(round(p / 0.01, 6).is_integer() for p in seen)


def test_a_thousand_symbols() -> None:
    with start_sim_thread(SimState.default().with_synthetic_symbols(1000)) as sim:
        ib = IB()
        ib.connect(sim.host, sim.port, clientId=1, timeout=5)
        try:
            contracts = [Stock(f"SYM{i:04d}", "SMART", "USD") for i in range(1, 1001, 50)]
            assert len(ib.qualifyContracts(*contracts)) == 20
        finally:
            ib.disconnect()
