"""The sim's NYSE calendar and clock, without sockets."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from tradectl.planner.market_time import in_blackout, market_hours
from tradectl.schemas.models import DEFAULT_BLACKOUTS
from tradectl.sim.clock import SimClock, parse_iso
from tradectl.sim.engine import Engine
from tradectl.sim.hours import IB_TIME_ZONE_ID, Boundary, MarketHours, NyseHours, Phase
from tradectl.sim.model import ErrorNotice
from tradectl.sim.server import SimGateway

from .helpers import order, small_state

NY = ZoneInfo("America/New_York")


def ny(*args: int) -> float:
    return datetime(*args, tzinfo=NY).timestamp()  # type: ignore[misc]


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 11, 26),  # Thanksgiving
        date(2026, 12, 25),  # Christmas
        date(2027, 1, 1),
        date(2027, 3, 26),  # Good Friday
        date(2027, 7, 5),  # Independence Day, observed on Monday
        date(2027, 12, 24),  # Christmas, observed on Friday
        date(2026, 11, 28),  # Saturday
    ],
)
def test_holidays_and_weekends_have_no_session(day: date) -> None:
    assert NyseHours().trading_day(day) is None


@pytest.mark.parametrize("day", [date(2026, 11, 27), date(2026, 12, 24), date(2027, 11, 26)])
def test_early_closes_end_at_13_with_after_hours_until_17(day: date) -> None:
    session = NyseHours().trading_day(day)
    assert session is not None and session.early_close
    close = datetime.fromtimestamp(session.close, NY)
    after_hours = datetime.fromtimestamp(session.after_hours_close, NY)
    assert (close.hour, after_hours.hour) == (13, 17)


def test_phases_of_a_regular_day_in_new_york_time() -> None:
    hours = NyseHours()
    assert hours.phase(ny(2026, 11, 30, 3, 59)) is Phase.CLOSED
    assert hours.phase(ny(2026, 11, 30, 4, 0)) is Phase.PRE_MARKET
    assert hours.phase(ny(2026, 11, 30, 9, 30)) is Phase.REGULAR
    assert hours.phase(ny(2026, 11, 30, 16, 0)) is Phase.AFTER_HOURS
    assert hours.phase(ny(2026, 11, 30, 20, 0)) is Phase.CLOSED
    # summer time: the open is 13:30 UTC instead of 14:30
    assert hours.phase(datetime(2026, 7, 1, 13, 30, tzinfo=ZoneInfo("UTC")).timestamp()) is (
        Phase.REGULAR
    )


def test_boundaries_come_in_time_order_across_a_holiday_and_an_early_close() -> None:
    crossed = NyseHours().boundaries(ny(2026, 11, 25, 17, 0), ny(2026, 11, 28, 0, 0))
    assert crossed == [
        (ny(2026, 11, 25, 20, 0), Boundary.AFTER_HOURS_CLOSE),
        (ny(2026, 11, 26, 0, 0), Boundary.DAY_ROLL),  # Thanksgiving: a day roll only
        (ny(2026, 11, 27, 0, 0), Boundary.DAY_ROLL),
        (ny(2026, 11, 27, 4, 0), Boundary.PRE_MARKET_OPEN),
        (ny(2026, 11, 27, 9, 30), Boundary.OPEN),
        (ny(2026, 11, 27, 13, 0), Boundary.CLOSE),
        (ny(2026, 11, 27, 17, 0), Boundary.AFTER_HOURS_CLOSE),
        (ny(2026, 11, 28, 0, 0), Boundary.DAY_ROLL),
    ]


def test_always_open_has_no_boundaries_and_whole_day_hours() -> None:
    hours = MarketHours()
    assert hours.phase(ny(2026, 11, 28, 3, 0)) is Phase.REGULAR
    assert hours.boundaries(ny(2026, 11, 1, 0, 0), ny(2026, 12, 1, 0, 0)) == []
    trading, liquid = hours.hours(ny(2026, 11, 28, 3, 0))
    assert trading == liquid
    assert liquid.split(";")[:2] == ["20261127:0000-20261128:0000", "20261128:0000-20261129:0000"]


@pytest.mark.parametrize(
    "moment",
    [(2026, 11, 30, 23, 50), (2026, 12, 1, 0, 0), (2026, 12, 1, 0, 5), (2026, 12, 1, 0, 44)],
    ids=["before midnight", "midnight", "after midnight", "at the end"],
)
def test_always_open_hours_run_through_ibs_nightly_reset_on_both_sides_of_midnight(
    moment: tuple[int, ...],
) -> None:
    # The suite, --sim and CI trade at any host hour: tradectl lifts its default blackout
    # (23:45-00:45 New York) only while the reported regular session runs through all of it.
    ts = ny(*moment)
    trading, liquid = MarketHours().hours(ts)
    reported = market_hours(IB_TIME_ZONE_ID, trading, liquid)
    now = datetime.fromtimestamp(ts, UTC)
    assert in_blackout(now, DEFAULT_BLACKOUTS, reported) is None
    assert in_blackout(now, DEFAULT_BLACKOUTS, None) is not None


def test_clock_runs_from_its_set_point_unless_frozen() -> None:
    host = [1000.0]
    running = SimClock(5000.0, host=lambda: host[0])
    frozen = SimClock(5000.0, frozen=True, host=lambda: host[0])
    host[0] += 7
    assert (running.now(), frozen.now()) == (5007.0, 5000.0)
    running.set(9000.0)
    host[0] += 1
    assert running.now() == 9001.0
    assert parse_iso("2026-11-30T09:30:00-05:00") == ny(2026, 11, 30, 9, 30)
    with pytest.raises(ValueError, match="UTC offset"):
        parse_iso("2026-11-30T09:30:00")


def test_held_bracket_child_waits_for_its_parent_then_for_the_session() -> None:
    now = [ny(2026, 11, 30, 8, 0)]
    engine = Engine(small_state(calendar="nyse"), clock=lambda: now[0])
    engine.place(1, order(1, "BUY", 10, "LMT", lmt=101.0, transmit=False))
    events = engine.place(1, order(2, "SELL", 10, "LMT", lmt=120.0, parent_id=1))
    assert [e.code for e in events if isinstance(e, ErrorNotice)] == [399, 399]
    now[0] = ny(2026, 11, 30, 9, 30)
    engine.on_boundary(Boundary.OPEN)
    statuses = {o.order_id: o.status for o in engine.orders.values()}
    assert statuses == {1: "Filled", 2: "Submitted"}


def walked_week() -> SimGateway:
    state = small_state(
        calendar="nyse",
        clock={"start": "2026-11-30T09:30:00-05:00", "frozen": True},
        market={"random_walk": True, "volatility_bps": 50, "seed": 3},
    )
    gateway = SimGateway(state)
    gateway.engine.place(1, order(1, "BUY", 10, "LMT", lmt=99.0, tif="GTC"))
    gateway.advance(ny(2026, 12, 5, 12, 0))
    return gateway


def test_advance_walks_prices_in_sessions_and_fills_on_the_way() -> None:
    engine = walked_week().engine
    [filled] = engine.orders.values()
    assert filled.status == "Filled"
    [execution] = engine.executions
    assert engine.hours.phase(execution.time) is Phase.REGULAR
    assert engine.instruments["AAPL"].last != 100.0
    # the same seed walks the same path
    assert walked_week().engine.snapshot().prices == engine.snapshot().prices


def test_setting_outside_rth_on_a_held_order_releases_it_after_hours() -> None:
    now = [ny(2026, 11, 30, 17, 0)]
    engine = Engine(small_state(calendar="nyse"), clock=lambda: now[0])
    engine.place(1, order(1, "BUY", 10, "LMT", lmt=101.0))
    assert engine.orders[(1, 1)].status == "PreSubmitted"
    modify = order(1, "BUY", 10, "LMT", lmt=101.0)
    modify.outside_rth = True
    engine.place(1, modify)
    assert engine.orders[(1, 1)].status == "Filled"


def test_child_activated_after_hours_trades_only_in_its_session() -> None:
    now = [ny(2026, 11, 30, 17, 0)]
    engine = Engine(small_state(calendar="nyse"), clock=lambda: now[0])
    entry = order(1, "BUY", 10, "LMT", lmt=101.0, transmit=False)
    entry.outside_rth = True
    engine.place(1, entry)
    engine.place(1, order(2, "SELL", 10, "STP", aux=99.0, parent_id=1))
    assert engine.orders[(1, 1)].status == "Filled"
    engine.set_price("AAPL", 98.0)
    assert engine.orders[(1, 2)].filled == 0  # the stop has no outsideRth: not after hours
    now[0] = ny(2026, 12, 1, 9, 30)
    engine.on_boundary(Boundary.OPEN)
    assert engine.orders[(1, 2)].status == "Filled"
