"""The trading-hours parser and the market-time hold logic (docs/planning.md, "Market time")."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradectl.planner.market_time import (
    HoursFormatError,
    MarketHours,
    hold_reason,
    in_blackout,
    market_hours,
    parse_hours,
)
from tradectl.schemas.models import Blackout, TradingWindow

NEW_YORK = ZoneInfo("America/New_York")
DEFAULT_BLACKOUTS = [Blackout(start="23:45", end="00:45")]

# Thu 2026-11-26 is Thanksgiving (CLOSED); Fri 2026-11-27 closes early at 13:00.
WEEK = market_hours(
    "America/New_York",
    trading_hours=(
        "20261125:0400-20261125:2000;20261126:CLOSED;20261127:0400-20261127:1700;"
        "20261128:CLOSED;20261129:CLOSED;20261130:0400-20261130:2000"
    ),
    liquid_hours=(
        "20261125:0930-20261125:1600;20261126:CLOSED;20261127:0930-20261127:1300;"
        "20261128:CLOSED;20261129:CLOSED;20261130:0930-20261130:1600"
    ),
)


def ny(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK)


def test_current_form_with_closed_day() -> None:
    sessions, closed = parse_hours("20261130:0930-20261130:1600;20261201:CLOSED", NEW_YORK)
    assert [(s.open, s.close) for s in sessions] == [
        (ny(2026, 11, 30, 9, 30), ny(2026, 11, 30, 16))
    ]
    assert closed == frozenset({date(2026, 12, 1)})


def test_older_form_without_end_date_and_several_ranges() -> None:
    sessions, _ = parse_hours("20261130:0700-1000,1100-1600;20261201:CLOSED", NEW_YORK)
    assert [(s.open, s.close) for s in sessions] == [
        (ny(2026, 11, 30, 7), ny(2026, 11, 30, 10)),
        (ny(2026, 11, 30, 11), ny(2026, 11, 30, 16)),
    ]


def test_overnight_session_in_both_forms() -> None:
    current, _ = parse_hours("20261130:2000-20261201:0350", NEW_YORK)
    older, _ = parse_hours("20261130:2000-0350", NEW_YORK)
    assert current == older
    assert (current[0].open, current[0].close) == (ny(2026, 11, 30, 20), ny(2026, 12, 1, 3, 50))


def test_always_open_days_join_into_one_session() -> None:
    sessions, _ = parse_hours("20261129:0000-20261129:2359;20261130:0000-20261130:2359", NEW_YORK)
    assert [(s.open, s.close) for s in sessions] == [(ny(2026, 11, 29, 0), ny(2026, 12, 1, 0))]


def test_sessions_are_in_the_contracts_time_zone() -> None:
    hours = market_hours("Europe/London", "20261130:0800-20261130:1630", "20261130:0800-1630")
    assert hours.regular[0].open == datetime(2026, 11, 30, 8, tzinfo=ZoneInfo("Europe/London"))
    assert hours.regular[0].open.astimezone(NEW_YORK).hour == 3


@pytest.mark.parametrize("text", ["2026113:0930-1600", "20261130:0930", "20261130:25x0-1600"])
def test_malformed_hours_are_errors(text: str) -> None:
    with pytest.raises(HoursFormatError):
        parse_hours(text, NEW_YORK)


def allocation_hold(now: datetime, hours: MarketHours | None = WEEK, **kwargs: bool) -> str | None:
    hold = hold_reason(
        hours=hours,
        now=now,
        allocation=kwargs.get("allocation", True),
        market_order=kwargs.get("market_order", True),
        protective=kwargs.get("protective", False),
        outside_rth=kwargs.get("outside_rth", False),
        window=TradingWindow(),
        blackouts=DEFAULT_BLACKOUTS,
    )
    return None if hold is None else hold.describe("America/New_York")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Saturday: held until Monday's window opens.
        (ny(2026, 11, 28, 12), "held until Mon 2026-11-30 09:35 America/New_York"),
        # Thanksgiving: CLOSED, the next window is Friday's.
        (ny(2026, 11, 26, 11), "held until Fri 2026-11-27 09:35 America/New_York"),
        # Before the open and inside the opening auction margin.
        (ny(2026, 11, 25, 8), "held until Wed 2026-11-25 09:35 America/New_York"),
        (ny(2026, 11, 25, 9, 31), "held until Wed 2026-11-25 09:35 America/New_York"),
        # Inside the window.
        (ny(2026, 11, 25, 9, 35), None),
        (ny(2026, 11, 25, 15, 49), None),
        # Near the close, and near the early close.
        (ny(2026, 11, 25, 15, 55), "held until Fri 2026-11-27 09:35 America/New_York"),
        (ny(2026, 11, 27, 12, 55), "held until Mon 2026-11-30 09:35 America/New_York"),
        # IB's daily reset.
        (ny(2026, 11, 25, 23, 50), "held until Thu 2026-11-26 00:45 America/New_York"),
    ],
)
def test_allocation_hold_table(now: datetime, expected: str | None) -> None:
    described = allocation_hold(now)
    if expected is None:
        assert described is None
    else:
        assert described is not None and described.startswith(expected), described


def test_holiday_is_named() -> None:
    described = allocation_hold(ny(2026, 11, 26, 11))
    assert described is not None and "market closed today" in described


def test_market_bracket_entry_waits_for_the_open_but_not_for_the_window() -> None:
    assert allocation_hold(ny(2026, 11, 25, 9, 31), allocation=False) is None
    described = allocation_hold(ny(2026, 11, 25, 7), allocation=False)
    assert described is not None and described.startswith(
        "held until Wed 2026-11-25 09:30 America/New_York"
    )


def test_limit_orders_rest_outside_hours_but_not_on_a_holiday() -> None:
    assert allocation_hold(ny(2026, 11, 25, 21), allocation=False, market_order=False) is None
    assert allocation_hold(ny(2026, 11, 26, 11), allocation=False, market_order=False) is not None


def test_protective_orders_wait_only_for_the_blackout() -> None:
    assert allocation_hold(ny(2026, 11, 28, 12), allocation=False, protective=True) is None
    assert allocation_hold(ny(2026, 11, 26, 0, 10), allocation=False, protective=True) is not None


def test_outside_rth_allocations_trade_in_the_extended_session() -> None:
    assert allocation_hold(ny(2026, 11, 25, 18), market_order=False, outside_rth=True) is None
    assert allocation_hold(ny(2026, 11, 25, 21), market_order=False, outside_rth=True) is not None


def test_unknown_hours_hold_everything_but_protection() -> None:
    described = allocation_hold(ny(2026, 11, 25, 12), hours=None)
    assert described is not None and "no trading hours" in described
    assert allocation_hold(ny(2026, 11, 25, 12), hours=None, protective=True) is None


def test_blackout_spanning_midnight_and_a_second_schedule() -> None:
    both = [*DEFAULT_BLACKOUTS, Blackout(start="00:15", end="01:45")]
    assert in_blackout(ny(2026, 11, 25, 23, 44), both, None) is None
    assert in_blackout(ny(2026, 11, 26, 0, 30), both, None) == ny(2026, 11, 26, 0, 45)
    assert in_blackout(ny(2026, 11, 26, 1, 0), both, None) == ny(2026, 11, 26, 1, 45)
    assert in_blackout(ny(2026, 11, 26, 1, 45), both, None) is None


def test_a_regular_session_through_the_blackout_means_no_reset() -> None:
    always_open = market_hours(
        "America/New_York",
        "20261125:0000-20261125:2359;20261126:0000-20261126:2359",
        "20261125:0000-20261125:2359;20261126:0000-20261126:2359",
    )
    assert in_blackout(ny(2026, 11, 25, 23, 50), DEFAULT_BLACKOUTS, always_open) is None
    assert in_blackout(ny(2026, 11, 25, 23, 50), DEFAULT_BLACKOUTS, WEEK) is not None


def test_window_margins_are_configurable() -> None:
    hold = hold_reason(
        hours=WEEK,
        now=ny(2026, 11, 25, 9, 31),
        allocation=True,
        market_order=True,
        protective=False,
        outside_rth=False,
        window=TradingWindow(after_open=timedelta(0), before_close=timedelta(0)),
        blackouts=[],
    )
    assert hold is None


@settings(max_examples=300, deadline=None)
@given(
    now=st.datetimes(
        min_value=datetime(2026, 11, 24), max_value=datetime(2026, 12, 2), timezones=st.just(UTC)
    ),
    allocation=st.booleans(),
    market_order=st.booleans(),
    protective=st.booleans(),
)
def test_no_market_order_or_allocation_goes_while_the_market_is_closed(
    now: datetime, allocation: bool, market_order: bool, protective: bool
) -> None:
    hold = hold_reason(
        hours=WEEK,
        now=now,
        allocation=allocation,
        market_order=market_order,
        protective=protective,
        outside_rth=False,
        window=TradingWindow(),
        blackouts=DEFAULT_BLACKOUTS,
    )
    if hold is not None:
        assert hold.until is None or hold.until > now
        return
    assert in_blackout(now, DEFAULT_BLACKOUTS, WEEK) is None
    if protective:
        return
    session = WEEK.regular_session(now)
    if market_order or allocation:
        assert session is not None, f"{now} is outside regular hours"
    if allocation:
        assert session is not None
        assert session.open + timedelta(minutes=5) <= now < session.close - timedelta(minutes=10)
    local_day = now.astimezone(NEW_YORK).date()
    assert local_day not in WEEK.closed_days
