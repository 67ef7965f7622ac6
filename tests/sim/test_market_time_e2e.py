"""Market time on the wire: clock, NYSE sessions, holds, expiries, halts, data permissions.

Every test starts on a frozen clock on Wednesday 2026-11-25 at 17:00 New York (after
hours, the day before Thanksgiving) and moves it with the control op ``advance``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from ib_insync import IB, ExecutionFilter, LimitOrder, MarketOrder, Stock, Trade

from tradectl.sim import SimState, SimThread, start_sim_thread
from tradectl.sim.wirelog import read_wire_log

from .helpers import small_state, wait_for

pytestmark = pytest.mark.e2e
Until = Callable[..., None]
NY = ZoneInfo("America/New_York")
START = datetime(2026, 11, 25, 17, 0, tzinfo=NY)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


@pytest.fixture
def sim_state() -> SimState:
    state = small_state(
        account={"cash": 1_000_000},
        calendar="nyse",
        clock={"start": START.isoformat(), "frozen": True},
    )
    state.symbols["MSFT"].market_data = "delayed"
    state.symbols["LOT"].market_data = "none"
    return state


@pytest.fixture
def aapl(ib: IB) -> Stock:
    contract = Stock("AAPL", "SMART", "USD")
    ib.qualifyContracts(contract)
    return contract


@pytest.fixture
def errors(ib: IB) -> list[tuple[int, int, str]]:
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: seen.append((req_id, code, msg))
    return seen


def last_trade_times(ib: IB) -> list[str]:
    """The last-trade times (tick type 45) the gateway streams to ``ib`` from now on, in order;
    ib_insync does not keep them on its Ticker."""
    stamps: list[str] = []
    tick_string = ib.wrapper.tickString

    def record(req_id: int, tick_type: int, value: str) -> None:
        if tick_type == 45:
            stamps.append(value)
        tick_string(req_id, tick_type, value)

    ib.wrapper.tickString = record  # type: ignore[method-assign]
    return stamps


def advance_to(sim: SimThread, moment: datetime) -> None:
    reply = sim.call(lambda: sim.gateway.control.apply({"op": "advance", "to": moment.isoformat()}))
    assert reply == {"ok": True, "now": moment.astimezone(UTC).isoformat()}


def test_now_advance_and_req_current_time_follow_the_sim_clock(ib: IB, sim: SimThread) -> None:
    apply = sim.gateway.control.apply
    assert sim.call(lambda: apply({"op": "now"})) == {
        "ok": True,
        "now": "2026-11-25T22:00:00+00:00",
    }
    assert ib.reqCurrentTime() == START.astimezone(UTC)
    reply = sim.call(lambda: apply({"op": "advance", "seconds": 90}))
    assert reply == {"ok": True, "now": "2026-11-25T22:01:30+00:00"}
    advance_to(sim, ny(2026, 11, 30, 9, 30))
    assert ib.reqCurrentTime() == ny(2026, 11, 30, 9, 30).astimezone(UTC)
    backwards = sim.call(lambda: apply({"op": "advance", "to": START.isoformat()}))
    assert backwards["ok"] is False and "does not go back" in backwards["error"]
    naive = sim.call(lambda: apply({"op": "advance", "to": "2026-12-01T10:00:00"}))
    assert naive["ok"] is False and "UTC offset" in naive["error"]


def test_contract_details_carry_nyse_hours_with_closed_days_and_the_early_close(
    ib: IB,
) -> None:
    [details] = ib.reqContractDetails(Stock("AAPL", "SMART", "USD"))
    assert details.timeZoneId == "US/Eastern"
    assert details.liquidHours.split(";") == [
        "20261125:0930-20261125:1600",
        "20261126:CLOSED",  # Thanksgiving
        "20261127:0930-20261127:1300",  # early close
        "20261128:CLOSED",
        "20261129:CLOSED",
        "20261130:0930-20261130:1600",
        "20261201:0930-20261201:1600",
    ]
    assert details.tradingHours.split(";")[:3] == [
        "20261125:0400-20261125:2000",
        "20261126:CLOSED",
        "20261127:0400-20261127:1700",
    ]
    friday = details.liquidSessions()[1]
    assert (friday.start, friday.end) == (ny(2026, 11, 27, 9, 30), ny(2026, 11, 27, 13, 0))


def test_order_outside_rth_is_held_with_399_over_the_holiday_and_fills_at_the_open(
    ib: IB, sim: SimThread, aapl: Stock, errors: list[tuple[int, int, str]], until: Until
) -> None:
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 10))
    until(lambda: trade.orderStatus.status == "PreSubmitted")
    until(lambda: any(code == 399 for _, code, _ in errors))
    [(req_id, _, message)] = [e for e in errors if e[1] == 399]
    assert req_id == trade.order.orderId
    assert "2026-11-27 09:30:00 US/Eastern" in message  # Thursday is Thanksgiving

    advance_to(sim, ny(2026, 11, 26, 12, 0))
    ib.sleep(0.2)
    assert trade.orderStatus.status == "PreSubmitted"
    assert sim.snapshot().positions == {}

    advance_to(sim, ny(2026, 11, 27, 9, 45))
    until(lambda: trade.orderStatus.status == "Filled")
    [fill] = trade.fills
    assert fill.execution.time == ny(2026, 11, 27, 9, 30).astimezone(UTC)
    assert sim.snapshot().positions["AAPL"].quantity == 10


def test_order_placed_on_saturday_waits_for_monday_open(
    ib: IB,
    sim: SimThread,
    aapl: Stock,
    errors: list[tuple[int, int, str]],
    until: Until,
    wire_log_path: Path,
) -> None:
    advance_to(sim, ny(2026, 11, 28, 11, 0))
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 5, 101.0, tif="GTC"))
    until(lambda: any(code == 399 for _, code, _ in errors))
    assert "2026-11-30 09:30:00 US/Eastern" in errors[-1][2]
    advance_to(sim, ny(2026, 11, 30, 9, 29, 59))
    ib.sleep(0.2)
    assert trade.orderStatus.status == "PreSubmitted"
    advance_to(sim, ny(2026, 11, 30, 9, 30))
    until(lambda: trade.orderStatus.status == "Filled")
    assert trade.fills[0].execution.time == ny(2026, 11, 30, 9, 30).astimezone(UTC)
    [placed] = [r for r in read_wire_log(wire_log_path) if r["msg"] == "placeOrder"]
    assert (placed["sim_time"], placed["market"]) == ("2026-11-28T16:00:00.000000+00:00", "closed")


def test_outside_rth_order_trades_after_hours(
    ib: IB, sim: SimThread, aapl: Stock, until: Until
) -> None:
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 10, 101.0, outsideRth=True))
    until(lambda: trade.orderStatus.status == "Filled")
    assert sim.snapshot().positions["AAPL"].quantity == 10


def test_day_order_expires_at_the_early_close_and_gtc_persists(
    ib: IB, sim: SimThread, aapl: Stock, until: Until
) -> None:
    advance_to(sim, ny(2026, 11, 27, 10, 0))
    day = ib.placeOrder(aapl, LimitOrder("BUY", 10, 90.0))
    gtc = ib.placeOrder(aapl, LimitOrder("BUY", 10, 90.0, tif="GTC"))
    until(lambda: day.orderStatus.status == gtc.orderStatus.status == "Submitted")
    advance_to(sim, ny(2026, 11, 27, 12, 59, 59))
    ib.sleep(0.2)
    assert day.orderStatus.status == "Submitted"
    advance_to(sim, ny(2026, 11, 27, 13, 0, 1))
    until(lambda: day.orderStatus.status == "Cancelled")
    assert gtc.orderStatus.status == "Submitted"

    advance_to(sim, ny(2026, 12, 1, 10, 0))
    [working] = sim.snapshot().open_orders
    assert (working.order_id, working.tif, working.status) == (
        gtc.order.orderId,
        "GTC",
        "Submitted",
    )
    sim.control.set_price("AAPL", 89.0)
    until(lambda: gtc.orderStatus.status == "Filled")


def bought_on_friday_morning(
    ib: IB, sim: SimThread, aapl: Stock, until: Until, quantity: int
) -> Trade:
    """Friday 2026-11-27 10:00, a market buy filled."""
    advance_to(sim, ny(2026, 11, 27, 10, 0))
    trade = ib.placeOrder(aapl, MarketOrder("BUY", quantity))
    until(lambda: trade.orderStatus.status == "Filled")
    return trade


def test_executions_and_completed_orders_report_the_current_day_only(
    ib: IB, sim: SimThread, aapl: Stock, until: Until
) -> None:
    trade = bought_on_friday_morning(ib, sim, aapl, until, 10)
    assert len(ib.reqExecutions(ExecutionFilter())) == 1
    assert [t.order.permId for t in ib.reqCompletedOrders(apiOnly=True)] == [trade.order.permId]

    advance_to(sim, ny(2026, 11, 27, 23, 59, 59))
    assert len(ib.reqExecutions(ExecutionFilter())) == 1
    advance_to(sim, ny(2026, 11, 28, 0, 0, 1))
    assert ib.reqExecutions(ExecutionFilter()) == []
    assert ib.reqCompletedOrders(apiOnly=True) == []
    assert len(sim.snapshot().executions) == 1  # the sim itself still knows


def test_the_day_roll_moves_previous_day_equity_on_and_forgets_the_days_transfers(
    ib: IB, sim: SimThread, aapl: Stock, until: Until
) -> None:
    bought_on_friday_morning(ib, sim, aapl, until, 100)
    sim.control.set_price("AAPL", 150.0)
    sim.control.transfer(-50_000.0)
    friday = sim.snapshot()
    assert friday.previous_day_equity == 1_000_000.0
    assert friday.daily_pnl == pytest.approx(friday.net_liquidation + 50_000.0 - 1_000_000.0)
    pnl = ib.reqPnL("DU0000001")
    until(lambda: pnl.dailyPnL == pytest.approx(friday.daily_pnl))

    advance_to(sim, ny(2026, 11, 28, 0, 0, 1))
    saturday = sim.snapshot()
    assert saturday.previous_day_equity == pytest.approx(friday.net_liquidation)
    assert saturday.daily_pnl == 0.0, "Friday's P&L and withdrawal belong to Friday"
    until(lambda: pnl.dailyPnL == 0.0)
    until(
        lambda: any(
            value.tag == "PreviousDayEquityWithLoanValue"
            and float(value.value) == pytest.approx(friday.net_liquidation)
            for value in ib.accountValues()
        )
    )
    sim.control.transfer(10_000.0)
    assert sim.snapshot().daily_pnl == 0.0
    persisted = sim.call(sim.gateway.engine.export_state)
    assert persisted.account.previous_day_equity == pytest.approx(friday.net_liquidation)


def test_halted_symbol_gets_tick_49_no_trades_and_no_fills(
    ib: IB, sim: SimThread, aapl: Stock, until: Until
) -> None:
    advance_to(sim, ny(2026, 11, 27, 10, 0))
    ticker = ib.reqMktData(aapl)
    until(lambda: ticker.halted == 0 and ticker.last == 100.0)
    sim.control.halt("AAPL", 2)
    until(lambda: ticker.halted == 2)
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 10))
    until(lambda: trade.orderStatus.status == "Submitted")
    sim.control.set_price("AAPL", 100.5)
    sim.control.step()
    ib.sleep(0.2)
    assert trade.orderStatus.status == "Submitted"
    assert sim.snapshot().executions == []

    assert sim.call(lambda: sim.gateway.control.apply({"op": "resume", "symbol": "AAPL"})) == {
        "ok": True
    }
    until(lambda: ticker.halted == 0 and trade.orderStatus.status == "Filled")
    assert trade.orderStatus.avgFillPrice == 100.51


def test_last_trade_time_is_tick_45_and_closed_market_has_no_bid_or_ask(
    ib: IB, sim: SimThread, aapl: Stock, until: Until
) -> None:
    stamps = last_trade_times(ib)
    advance_to(sim, ny(2026, 11, 28, 12, 0))  # Saturday
    ticker = ib.reqMktData(aapl)
    until(lambda: ticker.last == 100.0 and bool(stamps))
    # the last trade was Friday's after-hours close, bid and ask are unset
    assert stamps[-1] == str(int(ny(2026, 11, 27, 17, 0).timestamp()))
    assert (ticker.bid, ticker.ask) == (-1, -1)

    advance_to(sim, ny(2026, 11, 30, 9, 31))
    until(lambda: ticker.bid == 99.99 and ticker.ask == 100.01)
    assert stamps[-1] == str(int(ny(2026, 11, 30, 9, 31).timestamp()))
    sim.control.halt("AAPL")
    advance_to(sim, ny(2026, 11, 30, 9, 40))
    sim.control.set_price("AAPL", 100.2)
    until(lambda: ticker.last == 100.2)
    assert stamps[-1] == str(int(ny(2026, 11, 30, 9, 31).timestamp()))  # halted since 9:31


def test_a_streaming_subscriber_hears_the_last_trade_time_move_without_a_price_move(
    ib: IB, sim: SimThread, aapl: Stock, until: Until
) -> None:
    """A liquid stock trades all the time in a session: its stream's tick 45 follows the clock
    (found by the simulated week once tradectl streamed quotes: a stream stood still and the
    daemon held every allocation as stale)."""
    stamps = last_trade_times(ib)
    advance_to(sim, ny(2026, 11, 30, 10, 0))
    ib.reqMktData(aapl)
    until(lambda: stamps[-1:] == [str(int(ny(2026, 11, 30, 10, 0).timestamp()))])
    advance_to(sim, ny(2026, 11, 30, 10, 30))
    until(lambda: stamps[-1] == str(int(ny(2026, 11, 30, 10, 30).timestamp())))
    advance_to(sim, ny(2026, 11, 30, 22, 0))  # after hours ended at 20:00: one last tape
    until(lambda: stamps[-1] == str(int(ny(2026, 11, 30, 20, 0).timestamp())))
    heard = len(stamps)
    advance_to(sim, ny(2026, 11, 30, 23, 0))  # closed: no trade, nothing new is streamed
    ib.reqCurrentTime()  # answered after anything the advance sent on this connection
    assert len(stamps) == heard


def test_market_data_permissions_354_and_10167(
    ib: IB, errors: list[tuple[int, int, str]], until: Until
) -> None:
    msft = Stock("MSFT", "SMART", "USD")
    lot = Stock("LOT", "SMART", "USD")
    ib.reqMktData(lot)
    ib.reqMktData(msft)
    until(lambda: [c for _, c, _ in errors if c in (354, 10167)] == [354, 354])
    assert "Delayed market data is available" in errors[-1][2]

    # A ticker's `ticks` only hold the latest batch: collect every batch as it arrives.
    delayed_types: list[int] = []
    ib.pendingTickersEvent += lambda tickers: delayed_types.extend(
        tick.tickType
        for ticker in tickers
        for tick in ticker.ticks
        if tick.tickType in (66, 67, 68)
    )
    ib.reqMarketDataType(3)
    delayed = ib.reqMktData(msft, "", False, False)
    until(lambda: delayed.last == 200.0 and len(delayed_types) >= 3)
    assert errors[-1][1] == 10167
    assert sorted(set(delayed_types)) == [66, 67, 68]
    ib.reqMktData(lot, "", False, False)
    until(lambda: errors[-1][1] == 354)


def test_a_running_clock_crosses_the_close_in_real_time() -> None:
    """Without ``frozen`` the clock runs on from its start: a daemon sees the close come."""
    state = small_state(calendar="nyse", clock={"start": ny(2026, 11, 30, 15, 59, 59).isoformat()})
    with start_sim_thread(state) as sim:
        ib = IB()
        ib.connect(sim.host, sim.port, clientId=1, timeout=10)
        try:
            trade = ib.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 1, 90.0))
            wait_for(
                lambda: trade.orderStatus.status == "Cancelled",
                lambda t: ib.waitOnUpdate(timeout=t),
                timeout=15,
            )
            assert ib.reqCurrentTime() >= ny(2026, 11, 30, 16, 0).astimezone(UTC)
        finally:
            ib.disconnect()
