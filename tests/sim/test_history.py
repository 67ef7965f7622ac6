"""Historical bars and account summary rows of the pure sim modules (no sockets)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradectl.sim.account import Account
from tradectl.sim.engine import Engine
from tradectl.sim.history import (
    BAR_SECONDS,
    BarRequest,
    HistoryRefused,
    PricePath,
    bars,
    parse_end,
)
from tradectl.sim.hours import MarketHours, NyseHours
from tradectl.sim.summary import SUMMARY_TAGS, summary_rows

from .helpers import small_state

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 30, 11, 0, tzinfo=NY).timestamp()
NYSE = NyseHours()


def request(duration: str, bar_size: str, *, rth: bool = True, end: float = NOW) -> BarRequest:
    return BarRequest("AAPL", end, duration, bar_size, "TRADES", rth, 2)


def path(price: float = 100.0, seed: int = 0) -> PricePath:
    return PricePath(seed, "AAPL", price, NOW, 0.01)


def test_the_path_ends_at_the_current_price_and_depends_on_the_seed() -> None:
    assert path().price(NOW) == 100.0
    assert path(seed=1).price(NOW - 86_400) != path(seed=2).price(NOW - 86_400)
    assert path().price(NOW - 86_400) == path().price(NOW - 86_400)


@pytest.mark.parametrize(
    ("duration", "bar_size"),
    [("2 D", "1 min"), ("1 W", "2 mins"), ("1 M", "15 mins"), ("2 M", "1 hour")],
)
def test_bar_sizes_too_small_for_the_duration_are_refused(duration: str, bar_size: str) -> None:
    with pytest.raises(HistoryRefused, match="Time length exceed max"):
        bars(request(duration, bar_size), path(), NYSE, 0.01)


@pytest.mark.parametrize("duration", ["", "5", "D 5", "0 D", "-1 D", "5 X", "86401 S"])
def test_malformed_durations_are_refused(duration: str) -> None:
    with pytest.raises(HistoryRefused, match="invalid duration"):
        bars(request(duration, "1 day"), path(), NYSE, 0.01)


def test_end_times_in_ib_formats() -> None:
    moment = datetime(2026, 11, 27, 12, 0, tzinfo=NY).timestamp()
    assert parse_end("", NOW) == NOW
    assert parse_end("20261127 12:00:00", NOW) == moment
    assert parse_end("20261127 12:00:00 US/Eastern", NOW) == moment
    assert parse_end("20261127 17:00:00 UTC", NOW) == moment
    assert parse_end("20261127-17:00:00", NOW) == moment
    assert parse_end("20301127 12:00:00", NOW) == NOW  # the future is cut to now
    with pytest.raises(HistoryRefused):
        parse_end("27.11.2026", NOW)


def test_always_open_has_bars_every_day() -> None:
    _, found = bars(request("7 D", "1 day"), path(), MarketHours(), 0.01)
    assert len(found) == 7


@settings(max_examples=40, deadline=None)
@given(
    bar_size=st.sampled_from([s for s, secs in BAR_SECONDS.items() if secs <= 3600]),
    days_back=st.integers(min_value=0, max_value=300),
    rth=st.booleans(),
)
def test_intraday_bars_lie_inside_sessions_and_are_consistent(
    bar_size: str, days_back: int, rth: bool
) -> None:
    end = NOW - days_back * 86_400
    _, found = bars(request("1 D", bar_size, rth=rth, end=end), path(), NYSE, 0.01)
    size = BAR_SECONDS[bar_size]
    for bar in found:
        start = int(bar.date)
        day = datetime.fromtimestamp(start, NY).date()
        session = NYSE.session(day, regular=rth)
        assert session is not None and session[0] <= start < session[1]
        assert start < end and (start % size == 0 or start == session[0])
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.volume > 0 and bar.bar_count > 0
    starts = [int(b.date) for b in found]
    assert starts == sorted(set(starts))


def account(**overrides: object) -> Account:
    return Engine(small_state(**overrides), clock=lambda: NOW).account


def test_ledger_rows_per_currency_form() -> None:
    acct = account(positions=[{"symbol": "AAPL", "quantity": 10, "avg_cost": 90.0}])
    base = summary_rows(acct, "$LEDGER")
    assert {c for _, _, c in base} == {"BASE"}
    assert ("StockMarketValue", "1000.00", "BASE") in base
    every = summary_rows(acct, "$LEDGER:ALL")
    assert [c for _, _, c in every] == ["USD"] * len(base) + ["BASE"] * len(base)
    assert {c for _, _, c in summary_rows(acct, "$LEDGER:USD")} == {"USD"}
    assert summary_rows(acct, "$LEDGER:EUR") == []


def test_summary_rows_follow_the_request_and_skip_unknown_tags() -> None:
    rows = summary_rows(account(), "Leverage,NoSuchTag,NetLiquidation,Cushion")
    assert rows == [
        ("Leverage", "0.0000", ""),
        ("NetLiquidation", "100000.00", "USD"),
        ("Cushion", "1.000000", ""),
    ]


def test_every_documented_tag_has_a_row() -> None:
    rows = summary_rows(account(), ",".join(SUMMARY_TAGS))
    assert [tag for tag, _, _ in rows] == list(SUMMARY_TAGS)
