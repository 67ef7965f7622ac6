"""What the adapter makes of IB's market data and contract details for market time: quotes
timed by their last trade (tick 45), halts (tick 49), no previous close as a price, and the
day's trading hours kept in the journal (docs/planning.md, "Market time")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ib_insync import Contract, ContractDetails, Ticker

from tests.planner.builders import NOW
from tradectl.ib.adapter import (
    ConnectionSettings,
    IbAdapter,
    _market_hours,
    _quote,
    _stored_hours,
)


def test_the_adapter_never_prices_from_the_previous_close() -> None:
    assert _quote("AAPL", Ticker(close=150.0), NOW) is None


def test_the_adapter_times_a_quote_by_the_last_trade_and_reads_halts() -> None:
    last_trade = NOW - timedelta(hours=3)
    quote = _quote("AAPL", Ticker(last=151.0, halted=2.0), last_trade)
    assert quote is not None
    assert (quote.last, quote.time, quote.halted) == (151.0, last_trade, True)
    trading = _quote("AAPL", Ticker(last=151.0, halted=0.0), NOW)
    assert trading is not None and not trading.halted


def test_hours_kept_in_the_journal_serve_only_their_own_day() -> None:
    today = NOW.date()
    details = ContractDetails(
        contract=Contract(symbol="AAPL", secType="STK"),
        timeZoneId="US/Eastern",
        tradingHours="20261125:0400-20261125:2000",
        liquidHours="20261125:0930-20261125:1600",
    )
    read = _market_hours("AAPL", [details], [], today)
    assert read is not None
    hours, stored = read
    assert _stored_hours(stored, today) == hours
    assert _stored_hours(stored, today + timedelta(days=1)) is None
    assert _stored_hours("not json", today) is None
    notes: list[str] = []
    garbled = ContractDetails(contract=details.contract, timeZoneId="US/Eastern", liquidHours="x")
    assert _market_hours("AAPL", [garbled], notes, today) is None
    assert notes and "unreadable" in notes[0]


def test_tick_45_is_recorded_as_the_last_trade_time_of_the_contract() -> None:
    adapter = IbAdapter(ConnectionSettings("127.0.0.1", 1, 17, "DU1", live_allowed=False), None)
    adapter.ib.wrapper.reqId2Ticker[5] = Ticker(contract=Contract(conId=265598))
    adapter.ib.wrapper.tickString(5, 45, "1764601200")
    adapter.ib.wrapper.tickString(5, 45, "garbled")
    adapter.ib.wrapper.tickString(6, 45, "1764601300")
    assert adapter._last_trade_times == {265598: datetime(2025, 12, 1, 15, 0, tzinfo=UTC)}
