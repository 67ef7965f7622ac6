"""The allocation window's hold worked out session by session (``_wait_for_window``) gives
what the market-time check gave when it built the trimmed sessions first (the reference copy of
that code is test_gate_fast_paths.py's, which also checks it every five minutes over a week of
IB's hours): here over random hours in three zones across the March clock changes, at and
beside each trimmed session's edges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.planner.test_gate_fast_paths import _reference_allocation_hold
from tradectl.planner.market_time import MarketHours, Session, hold_reason
from tradectl.schemas.models import TradingWindow

ZONES = [ZoneInfo("America/New_York"), ZoneInfo("Europe/London"), ZoneInfo("Asia/Tokyo")]
FIRST_DAY = date(2026, 3, 5)  # the US and UK clocks change within the days drawn below


@st.composite
def week_of_hours(draw: st.DrawFn) -> MarketHours:
    zone = draw(st.sampled_from(ZONES))
    sessions: list[Session] = []
    closed: set[date] = set()
    for offset in range(draw(st.integers(0, 21))):
        day = FIRST_DAY + timedelta(days=offset)
        if draw(st.booleans()):
            closed.add(day)
            continue
        opens = draw(st.integers(0, 22 * 60))
        length = draw(st.integers(1, 24 * 60 - opens))
        start = datetime.combine(day, datetime.min.time(), tzinfo=zone) + timedelta(minutes=opens)
        sessions.append(Session(start, start + timedelta(minutes=length)))
    return MarketHours(zone.key, tuple(sessions), tuple(sessions), frozenset(closed))


@st.composite
def hours_window_and_now(draw: st.DrawFn) -> tuple[MarketHours, TradingWindow, datetime]:
    """Hours, a window, and an instant: anywhere in the weeks drawn, or on (or a microsecond
    either side of) a trimmed session's ends, where ``<`` and ``<=`` part."""
    hours = draw(week_of_hours())
    window = TradingWindow(
        after_open=timedelta(minutes=draw(st.integers(0, 180))),
        before_close=timedelta(minutes=draw(st.integers(0, 180))),
    )
    now = draw(
        st.datetimes(
            min_value=datetime(2026, 3, 4), max_value=datetime(2026, 3, 28), timezones=st.just(UTC)
        )
    )
    if hours.regular and draw(st.booleans()):
        session = draw(st.sampled_from(hours.regular))
        edge = draw(
            st.sampled_from([session.open + window.after_open, session.close - window.before_close])
        )
        now = edge.astimezone(UTC) + timedelta(microseconds=draw(st.sampled_from([-1, 0, 1])))
    return hours, window, now


@settings(max_examples=1000, deadline=None)
@given(case=hours_window_and_now())
def test_the_allocation_window_holds_as_the_trimmed_sessions_did(
    case: tuple[MarketHours, TradingWindow, datetime],
) -> None:
    hours, window, now = case
    hold = hold_reason(
        hours=hours,
        now=now,
        allocation=True,
        market_order=False,
        protective=False,
        outside_rth=False,
        window=window,
        blackouts=(),
    )
    assert hold == _reference_allocation_hold(hours, now, False, window)
