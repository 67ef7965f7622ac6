"""The calls a typical ib_insync or ib_async user makes, each under both libraries
(docs/sim.md, "Calls a client makes"): historical bars, the head timestamp, P&L per
position, the account summary, trailing stops and requests the sim does not model.

The clock is frozen on Monday 2026-11-30 at 11:00 New York on the NYSE calendar, so
the week before holds Thanksgiving (closed) and its early close (13:00).
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from zoneinfo import ZoneInfo

import pytest

from tradectl.sim import SimState, SimThread
from tradectl.sim.wirelog import read_wire_log

from .helpers import Client, connect, small_state

pytestmark = pytest.mark.e2e
NY = ZoneInfo("America/New_York")
START = datetime(2026, 11, 30, 11, 0, tzinfo=NY)
ACCOUNT = "DU0000001"


@pytest.fixture
def sim_state() -> SimState:
    return small_state(
        account={"cash": 90_000, "previous_day_equity": 101_000},
        positions=[{"symbol": "AAPL", "quantity": 100, "avg_cost": 95.0}],
        calendar="nyse",
        clock={"start": START.isoformat(), "frozen": True},
    )


def advance_to(sim: SimThread, moment: datetime) -> None:
    reply = sim.call(lambda: sim.gateway.control.apply({"op": "advance", "to": moment.isoformat()}))
    assert reply == {"ok": True, "now": moment.astimezone(UTC).isoformat()}


# -- historical bars -----------------------------------------------------------------


def test_daily_bars_cover_trading_days_only(client: Client) -> None:
    bars = client.ib.reqHistoricalData(client.stock(), "", "5 D", "1 day", "TRADES", useRTH=True)
    assert [b.date for b in bars] == [
        date(2026, 11, 23),
        date(2026, 11, 24),
        date(2026, 11, 25),
        date(2026, 11, 27),  # Thanksgiving (26th) has no bar
        date(2026, 11, 30),  # today so far
    ]
    for bar in bars:
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.volume > 0 and bar.low <= bar.average <= bar.high
    assert bars[-1].close == pytest.approx(100.0, rel=0.01)  # the path ends at today's price


def test_minute_bars_follow_the_session_with_and_without_rth(client: Client) -> None:
    aapl = client.stock()
    end = "20261127 23:00:00 US/Eastern"  # the early close: 09:30-13:00, after hours to 17:00
    regular = client.ib.reqHistoricalData(aapl, end, "1 D", "1 min", "TRADES", useRTH=True)
    extended = client.ib.reqHistoricalData(aapl, end, "1 D", "1 min", "TRADES", useRTH=False)
    assert len(regular) == 210 and len(extended) == 780
    assert (regular[0].date, regular[-1].date) == (
        datetime(2026, 11, 27, 9, 30, tzinfo=NY),
        datetime(2026, 11, 27, 12, 59, tzinfo=NY),
    )
    assert (extended[0].date, extended[-1].date) == (
        datetime(2026, 11, 27, 4, 0, tzinfo=NY),
        datetime(2026, 11, 27, 16, 59, tzinfo=NY),
    )
    same_minutes = {b.date: b.close for b in extended}
    assert all(same_minutes[b.date] == b.close for b in regular)  # one price path


def test_five_minute_and_hourly_bars_align_and_are_deterministic(client: Client) -> None:
    aapl = client.stock()
    end = datetime(2026, 11, 25, 16, 0, tzinfo=NY)
    hourly = client.ib.reqHistoricalData(
        aapl, end, "1 D", "1 hour", "TRADES", useRTH=True, formatDate=2
    )
    starts = [b.date.astimezone(NY).strftime("%H:%M") for b in hourly]
    assert starts == ["09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00"]
    five = client.ib.reqHistoricalData(aapl, end, "1 D", "5 mins", "MIDPOINT", useRTH=True)
    assert len(five) == 78 and all(b.volume == -1 for b in five)
    again = client.ib.reqHistoricalData(aapl, end, "1 D", "5 mins", "MIDPOINT", useRTH=True)
    assert [(b.open, b.high, b.low, b.close) for b in again] == [
        (b.open, b.high, b.low, b.close) for b in five
    ]
    assert hourly[0].open == five[0].open and hourly[-1].close == five[-1].close


def test_a_year_of_daily_bars(client: Client) -> None:
    bars = client.ib.reqHistoricalData(client.stock(), "", "1 Y", "1 day", "TRADES", useRTH=True)
    assert 245 <= len(bars) <= 255  # trading days in 365 calendar days
    assert date(2025, 12, 25) not in {b.date for b in bars}


def test_refused_history_requests_end_at_once(client: Client) -> None:
    aapl = client.stock()
    began = time.monotonic()
    too_fine = client.ib.reqHistoricalData(aapl, "", "1 M", "1 min", "TRADES", useRTH=True)
    streaming = client.ib.reqHistoricalData(
        aapl, "", "1 D", "1 min", "TRADES", useRTH=True, keepUpToDate=True
    )
    odd_size = client.ib.reqHistoricalData(aapl, "", "1 D", "7 mins", "TRADES", useRTH=True)
    assert time.monotonic() - began < 10
    assert [len(too_fine), len(streaming), len(odd_size)] == [0, 0, 0]
    assert client.codes() == [162, 162, 162]
    assert "Time length exceed max" in client.errors[0][2]
    assert "keepUpToDate" in client.errors[1][2]


def test_head_timestamp(client: Client) -> None:
    head = client.ib.reqHeadTimeStamp(client.stock(), "TRADES", useRTH=True)
    assert head == datetime(2025, 1, 2, 14, 30)  # the calendar's first open, in UTC
    extended = client.ib.reqHeadTimeStamp(client.stock(), "TRADES", useRTH=False, formatDate=2)
    assert extended == datetime(2025, 1, 2, 4, 0, tzinfo=NY)


# -- P&L -----------------------------------------------------------------------------


def test_pnl_single_per_position(client: Client, sim: SimThread) -> None:
    aapl = client.stock()
    msft = client.stock("MSFT")
    held = client.ib.reqPnLSingle(ACCOUNT, "", aapl.conId)
    flat = client.ib.reqPnLSingle(ACCOUNT, "", msft.conId)
    client.until(lambda: held.position == 100 and flat.value == 0.0)
    assert (held.unrealizedPnL, held.value, flat.value) == (500.0, 10_000.0, 0.0)
    sim.control.set_price("AAPL", 102.0)
    client.until(lambda: held.value == 10_200.0)
    assert held.unrealizedPnL == pytest.approx(700.0)
    assert held.dailyPnL == pytest.approx(200.0)  # the previous close was 100
    sold = client.ib.placeOrder(aapl, client.lib.MarketOrder("SELL", 40))
    client.until(lambda: sold.isDone() and held.position == 60)
    assert held.realizedPnL == pytest.approx((101.99 - 95.0) * 40 - 1.0)
    # the 40 sold at 101.99 and paid 1.00: today's P&L is the move plus the sale
    assert held.dailyPnL == pytest.approx(60 * 2.0 + 40 * 1.99 - 1.0)
    client.ib.cancelPnLSingle(ACCOUNT, "", aapl.conId)
    client.ib.cancelPnLSingle(ACCOUNT, "", msft.conId)
    client.ib.reqCurrentTime()  # a round trip: the cancels have been handled
    # the clients drop updates for a cancelled reqId themselves, so ask the sim
    assert sim.call(lambda: [s.subs.pnl_single for s in sim.gateway.sessions()]) == [{}]


# -- account summary -----------------------------------------------------------------


def summary(client: Client) -> dict[tuple[str, str], str]:
    return {(v.tag, v.currency): v.value for v in client.ib.accountSummary()}


def test_account_summary_has_every_tag_and_ledger_rows(client: Client, wire_log_path: Path) -> None:
    values = summary(client)
    # both libraries ask for every tag IB documents, and $LEDGER:ALL
    [asked] = [r for r in read_wire_log(wire_log_path) if r["msg"] == "reqAccountSummary"]
    tags = set(asked["fields"]["tags"].split(","))
    assert len(tags) == 34 and "$LEDGER:ALL" in tags
    assert {tag for tag, _ in values} >= tags - {"$LEDGER:ALL"}
    assert values[("NetLiquidation", "USD")] == "100000.00"
    assert values[("GrossPositionValue", "USD")] == "10000.00"
    assert values[("PreviousDayEquityWithLoanValue", "USD")] == "101000.00"
    assert values[("AccountType", "")] == "INDIVIDUAL"
    for currency in ("USD", "BASE"):  # $LEDGER:ALL: each currency, then the base
        assert values[("CashBalance", currency)] == "90000.00"
        assert values[("NetLiquidationByCurrency", currency)] == "100000.00"
        assert values[("StockMarketValue", currency)] == "10000.00"


def test_account_summary_is_a_subscription(client: Client, sim: SimThread) -> None:
    summary(client)
    seen: list[tuple[str, str]] = []
    client.ib.accountSummaryEvent += lambda value: seen.append((value.tag, value.value))
    sim.control.set_price("AAPL", 110.0)  # a control op that changes the account
    client.until(lambda: ("NetLiquidation", "101000.00") in seen)
    assert ("AccountType", "INDIVIDUAL") not in seen  # only changed values come again

    # a change no event announces reaches the client at IB's three minute refresh
    sim.call(lambda: sim.gateway.engine.account.balances.update(USD=95_000.0))
    seen.clear()
    advance_to(sim, datetime(2026, 11, 30, 11, 2, tzinfo=NY))
    client.ib.reqCurrentTime()  # a round trip: anything sent before it has arrived
    assert ("TotalCashValue", "95000.00") not in seen
    advance_to(sim, datetime(2026, 11, 30, 11, 3, tzinfo=NY))
    client.until(lambda: ("TotalCashValue", "95000.00") in seen)
    assert summary(client)[("NetLiquidation", "USD")] == "106000.00"

    # a fill waits for the next refresh too (reqAccountUpdates shows it at once)
    seen.clear()
    bought = client.ib.placeOrder(client.stock(), client.lib.MarketOrder("BUY", 10))
    client.until(bought.isDone)
    client.ib.reqCurrentTime()
    assert not [tag for tag, _ in seen if tag == "TotalCashValue"]
    advance_to(sim, datetime(2026, 11, 30, 11, 6, tzinfo=NY))
    client.until(lambda: ("TotalCashValue", "93898.90") in seen)  # 95,000 - 10 x 110.01 - 1


# -- orders --------------------------------------------------------------------------


def test_trail_stop_price_is_reported_on_open_trailing_stops(
    client: Client, lib: ModuleType, sim: SimThread
) -> None:
    order = lib.Order(action="SELL", totalQuantity=10, orderType="TRAIL", auxPrice=3.0)
    trade = client.ib.placeOrder(client.stock(), order)
    client.until(lambda: trade.orderStatus.status == "Submitted")

    def trail_stop_seen_by_a_new_client(client_id: int) -> float:
        # a fresh client builds its trades from openOrder in full; a known trade would
        # only take a few fields from it
        observer = connect(lib, sim, client_id)
        try:
            [seen] = observer.ib.reqAllOpenOrders()
            return float(seen.order.trailStopPrice)
        finally:
            observer.ib.disconnect()

    assert trail_stop_seen_by_a_new_client(22) == 97.0
    sim.control.set_price("AAPL", 110.0)  # the stop ratchets up to 107
    assert trail_stop_seen_by_a_new_client(23) == 107.0


def test_a_buy_that_covers_a_short_is_not_new_exposure(client: Client, sim: SimThread) -> None:
    aapl = client.stock()
    # sell 1,000 (100 held, 900 short): buying power shrinks to what 900 short leaves
    short = client.ib.placeOrder(aapl, client.lib.MarketOrder("SELL", 1_000))
    client.until(short.isDone)
    assert sim.snapshot().positions["AAPL"].quantity == -900
    cover = client.ib.placeOrder(aapl, client.lib.MarketOrder("BUY", 900))
    client.until(cover.isDone)
    assert cover.orderStatus.status == "Filled"
    assert "AAPL" not in sim.snapshot().positions  # the snapshot lists open positions


# -- requests the sim does not model -------------------------------------------------


def test_unmodelled_requests_end_at_once_with_an_error(client: Client) -> None:
    began = time.monotonic()
    found = client.ib.reqMatchingSymbols("AAP")
    assert not found
    assert time.monotonic() - began < 10
    assert client.codes() == [322]
    assert "not supported by the simulator" in client.errors[0][2]
