"""Market hours of the simulated gateway: an NYSE calendar, or a market that never closes.

US stocks trade pre-market from 04:00, in regular hours 09:30-16:00 and after
hours until 20:00, New York time. NYSE holidays and early closes (13:00, with
after hours until 17:00) come from ``exchange_calendars``, imported on first use
so that nothing but a sim with ``calendar: nyse`` pays for pandas.

Times are Unix seconds (floats), as everywhere in the sim.
"""

from __future__ import annotations

import enum
import warnings
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
# The zone name IB puts into contract details for US stocks.
IB_TIME_ZONE_ID = "US/Eastern"
PRE_MARKET_OPEN = time(4, 0)
AFTER_HOURS_CLOSE = time(20, 0)
EARLY_AFTER_HOURS_CLOSE = time(17, 0)
# exchange_calendars computes holidays from rules; this range covers the years
# the sim promises (2026 and 2027) with margin on both sides.
CALENDAR_FIRST_DAY = date(2025, 1, 1)
CALENDAR_LAST_DAY = date(2028, 12, 31)
CONTRACT_DETAILS_DAYS = 7


class Phase(enum.Enum):
    CLOSED = "closed"
    PRE_MARKET = "pre_market"
    REGULAR = "regular"
    AFTER_HOURS = "after_hours"


class Boundary(enum.Enum):
    """Moments at which the gateway's behaviour changes, in the order they occur in a day."""

    DAY_ROLL = "day_roll"  # midnight New York: a new execution day
    PRE_MARKET_OPEN = "pre_market_open"
    OPEN = "open"
    CLOSE = "close"
    AFTER_HOURS_CLOSE = "after_hours_close"


@dataclass(frozen=True)
class TradingDay:
    day: date
    pre_market_open: float
    open: float
    close: float
    after_hours_close: float

    @property
    def early_close(self) -> bool:
        return datetime.fromtimestamp(self.close, NEW_YORK).time() < time(16, 0)


class MarketHours:
    """``always_open``: every moment is regular hours and there is no day roll.

    This is the sim's default, so that tests and ``--sim`` runs that do not care
    about market time behave the same at any hour of the host clock.
    """

    name = "always_open"

    def phase(self, ts: float) -> Phase:
        return Phase.REGULAR

    def boundaries(self, after: float, until: float) -> list[tuple[float, Boundary]]:
        """Every boundary in ``(after, until]``, in time order."""
        return []

    def day_start(self, ts: float) -> float:
        """Start of the execution day containing ``ts`` (reqExecutions reports from here)."""
        return float("-inf")

    def next_open(self, ts: float) -> float:
        return ts

    def last_traded(self, ts: float) -> float:
        """The latest moment at or before ``ts`` when the market was open."""
        return ts

    def session(self, day: date, *, regular: bool) -> tuple[float, float] | None:
        """Start and end of ``day``'s session (a New York date): regular hours only, or
        pre-market to after hours; None on a day without one. Always open: the whole day."""
        return _midnight(day), _midnight(day + timedelta(days=1))

    def hours(self, ts: float) -> tuple[str, str]:
        """``tradingHours`` and ``liquidHours`` for the coming days, in IB's format, from
        yesterday on: the session running now began before midnight, so a client sees it run
        through IB's nightly reset (23:45-00:45 New York) after midnight too, as before it."""
        days = [_ny_date(ts) + timedelta(days=i) for i in range(-1, CONTRACT_DETAILS_DAYS)]
        whole = ";".join(f"{_ib_day(d)}:0000-{_ib_day(d + timedelta(days=1))}:0000" for d in days)
        return whole, whole


class NyseHours(MarketHours):
    """US equity sessions on the NYSE calendar, in New York time."""

    name = "nyse"

    def trading_day(self, day: date) -> TradingDay | None:
        return _nyse_days().get(day)

    def phase(self, ts: float) -> Phase:
        session = self.trading_day(_ny_date(ts))
        if session is None or not session.pre_market_open <= ts < session.after_hours_close:
            return Phase.CLOSED
        if ts < session.open:
            return Phase.PRE_MARKET
        if ts < session.close:
            return Phase.REGULAR
        return Phase.AFTER_HOURS

    def boundaries(self, after: float, until: float) -> list[tuple[float, Boundary]]:
        found: list[tuple[float, Boundary]] = []
        day = _ny_date(after)
        while _midnight(day) <= until:
            found.append((_midnight(day), Boundary.DAY_ROLL))
            session = self.trading_day(day)
            if session is not None:
                found += [
                    (session.pre_market_open, Boundary.PRE_MARKET_OPEN),
                    (session.open, Boundary.OPEN),
                    (session.close, Boundary.CLOSE),
                    (session.after_hours_close, Boundary.AFTER_HOURS_CLOSE),
                ]
            day += timedelta(days=1)
        return [(ts, kind) for ts, kind in found if after < ts <= until]

    def day_start(self, ts: float) -> float:
        return _midnight(_ny_date(ts))

    def next_open(self, ts: float) -> float:
        day = _ny_date(ts)
        while day <= CALENDAR_LAST_DAY:
            session = self.trading_day(day)
            if session is not None and session.open >= ts:
                return session.open
            day += timedelta(days=1)
        raise ValueError(f"no NYSE session after {day}: the calendar ends {CALENDAR_LAST_DAY}")

    def last_traded(self, ts: float) -> float:
        day = _ny_date(ts)
        while day >= CALENDAR_FIRST_DAY:
            session = self.trading_day(day)
            if session is not None and session.pre_market_open <= ts:
                return min(ts, session.after_hours_close)
            day -= timedelta(days=1)
        return ts

    def session(self, day: date, *, regular: bool) -> tuple[float, float] | None:
        found = self.trading_day(day)
        if found is None:
            return None
        if regular:
            return found.open, found.close
        return found.pre_market_open, found.after_hours_close

    def hours(self, ts: float) -> tuple[str, str]:
        trading: list[str] = []
        liquid: list[str] = []
        for i in range(CONTRACT_DETAILS_DAYS):
            day = _ny_date(ts) + timedelta(days=i)
            session = self.trading_day(day)
            if session is None:
                trading.append(f"{_ib_day(day)}:CLOSED")
                liquid.append(f"{_ib_day(day)}:CLOSED")
                continue
            trading.append(
                f"{_ib_moment(session.pre_market_open)}-{_ib_moment(session.after_hours_close)}"
            )
            liquid.append(f"{_ib_moment(session.open)}-{_ib_moment(session.close)}")
        return ";".join(trading), ";".join(liquid)


def market_hours(calendar: str) -> MarketHours:
    if calendar == "nyse":
        return NyseHours()
    return MarketHours()


def check_supported(ts: float) -> None:
    """Raise ValueError if ``ts`` lies outside the years the NYSE calendar covers."""
    day = _ny_date(ts)
    if not CALENDAR_FIRST_DAY <= day <= CALENDAR_LAST_DAY:
        raise ValueError(
            f"{day} is outside the NYSE calendar's range {CALENDAR_FIRST_DAY}..{CALENDAR_LAST_DAY}"
        )


@cache
def _nyse_days() -> dict[date, TradingDay]:
    import exchange_calendars  # deferred: pulls in pandas (about a second)

    with warnings.catch_warnings():
        # exchange_calendars uses pandas APIs that newer pandas marks as deprecated
        warnings.simplefilter("ignore")
        calendar = exchange_calendars.get_calendar(
            "XNYS", start=CALENDAR_FIRST_DAY.isoformat(), end=CALENDAR_LAST_DAY.isoformat()
        )
    days: dict[date, TradingDay] = {}
    for label, row in calendar.schedule.iterrows():
        day = label.date()
        close = row["close"].timestamp()
        early = datetime.fromtimestamp(close, NEW_YORK).time() < time(16, 0)
        days[day] = TradingDay(
            day=day,
            pre_market_open=_at(day, PRE_MARKET_OPEN),
            open=row["open"].timestamp(),
            close=close,
            after_hours_close=_at(day, EARLY_AFTER_HOURS_CLOSE if early else AFTER_HOURS_CLOSE),
        )
    return days


def _at(day: date, moment: time) -> float:
    return datetime.combine(day, moment, NEW_YORK).timestamp()


def _midnight(day: date) -> float:
    return _at(day, time(0, 0))


def _ny_date(ts: float) -> date:
    return datetime.fromtimestamp(ts, NEW_YORK).date()


def _ib_day(day: date) -> str:
    return day.strftime("%Y%m%d")


def _ib_moment(ts: float) -> str:
    return datetime.fromtimestamp(ts, NEW_YORK).strftime("%Y%m%d:%H%M")
