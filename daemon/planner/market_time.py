"""Market time, as a pure function of the gateway's trading hours and the gateway's clock.

IB's contract details carry ``tradingHours`` (extended session) and ``liquidHours`` (regular
session) in the contract's ``timeZoneId``, in two forms (docs/planning.md, "Market time"):

* ``20261130:0930-20261130:1600;20261201:CLOSED`` (current: both ends carry their date, so an
  overnight session reads ``20261130:2000-20261201:0350``);
* ``20261130:0930-1600,1700-1800;20261201:CLOSED`` (older: the end has no date; several ranges
  of one day are separated by commas).

``hold_reason`` says whether an intent must wait and until when. Nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tradectl.schemas.models import Blackout, TradingWindow

# IB writes a session that runs to midnight as ending at 2359.
_END_OF_DAY = "2359"


class HoursFormatError(ValueError):
    """The gateway's hours string is not in either of IB's forms."""


@dataclass(frozen=True)
class Session:
    open: datetime
    close: datetime

    def contains(self, moment: datetime) -> bool:
        return self.open <= moment < self.close


@dataclass(frozen=True)
class MarketHours:
    """One contract's sessions as the gateway reported them (aware datetimes)."""

    time_zone: str
    regular: tuple[Session, ...]
    extended: tuple[Session, ...]
    closed_days: frozenset[date] = frozenset()

    def regular_session(self, moment: datetime) -> Session | None:
        return _containing(self.regular, moment)

    def extended_session(self, moment: datetime) -> Session | None:
        return _containing(self.extended, moment)


def parse_hours(text: str, zone: ZoneInfo) -> tuple[tuple[Session, ...], frozenset[date]]:
    """Sessions (joined where they touch) and the days marked ``CLOSED``."""
    sessions: list[Session] = []
    closed: set[date] = set()
    for day_text in filter(None, (part.strip() for part in text.split(";"))):
        day_part, _, ranges = day_text.partition(":")
        day = _parse_date(day_part, day_text)
        if ranges == "CLOSED":
            closed.add(day)
            continue
        for range_text in ranges.split(","):
            sessions.append(_parse_range(day, range_text, zone, day_text))
    return _joined(sorted(sessions, key=lambda session: session.open)), frozenset(closed)


def market_hours(time_zone: str, trading_hours: str, liquid_hours: str) -> MarketHours:
    zone = ZoneInfo(time_zone)
    regular, closed_regular = parse_hours(liquid_hours, zone)
    extended, closed_extended = parse_hours(trading_hours, zone)
    return MarketHours(
        time_zone=time_zone,
        regular=regular,
        extended=extended,
        closed_days=closed_regular | closed_extended,
    )


@dataclass(frozen=True)
class Hold:
    """Why an intent waits, and the first moment it may go (None: not known yet)."""

    reason: str
    until: datetime | None

    def describe(self, zone: str) -> str:
        if self.until is None:
            return f"held: {self.reason}; it goes when the gateway reports the next session"
        local = self.until.astimezone(ZoneInfo(zone))
        return f"held until {local:%a %Y-%m-%d %H:%M} {zone}: {self.reason}"


def in_blackout(
    moment: datetime, blackouts: Sequence[Blackout], hours: MarketHours | None
) -> datetime | None:
    """The end of the blackout ``moment`` falls in, or None.

    A gateway that reports a regular session running through the whole blackout (the simulated
    gateway's ``always_open`` hours) has no nightly reset then: no US stock's regular session
    spans midnight at IB, so this never lifts a real blackout."""
    for blackout in blackouts:
        zone = ZoneInfo(blackout.timezone)
        local = moment.astimezone(zone)
        for start_day in (local.date() - timedelta(days=1), local.date()):
            start = datetime.combine(start_day, blackout.start_time, tzinfo=zone)
            end = datetime.combine(start_day, blackout.end_time, tzinfo=zone)
            if end <= start:
                end += timedelta(days=1)
            if not start <= moment < end:
                continue
            if hours is not None and any(
                session.open <= start and end <= session.close for session in hours.regular
            ):
                continue
            return end
    return None


def hold_reason(
    *,
    hours: MarketHours | None,
    now: datetime,
    allocation: bool,
    market_order: bool,
    protective: bool,
    outside_rth: bool,
    window: TradingWindow,
    blackouts: Sequence[Blackout],
) -> Hold | None:
    """Whether an order intent (place or modify) must wait; cancels never wait for the market.

    Protective orders (a filled entry's stop and target) rest GTC at IB whatever the hour, so
    only a blackout holds them."""
    blackout_end = in_blackout(now, blackouts, hours)
    if blackout_end is not None:
        return Hold("inside IB's daily reset blackout", blackout_end)
    if protective:
        return None
    if hours is None:
        return Hold("the gateway reported no trading hours for this symbol", None)
    if allocation:
        if outside_rth:
            return _wait_for(
                hours.extended, now, "outside the extended session (outside_rth)", hours
            )
        # Inside the window (the usual answer, asked for every allocation order of a pass):
        # known without building the window's sessions or the reason.
        if _in_window(hours.regular, window, now):
            return None
        reason = (
            "outside the allocation window "
            f"({_minutes(window.after_open)} min after the open to "
            f"{_minutes(window.before_close)} min before the close)"
        )
        return _wait_for(_windows(hours.regular, window), now, reason, hours)
    if market_order:
        return _wait_for(hours.regular, now, "a market order waits for regular hours", hours)
    if not outside_rth and not _is_trading_day(hours, now):
        return _wait_for(hours.extended, now, "no session today (market closed)", hours)
    return None


def session_close(hours: MarketHours, now: datetime) -> datetime | None:
    """The close of the regular session open at ``now``, else of the next one."""
    return next((session.close for session in hours.regular if now < session.close), None)


def _wait_for(
    sessions: Sequence[Session], now: datetime, reason: str, hours: MarketHours
) -> Hold | None:
    for session in sessions:
        if session.contains(now):
            return None
        if session.open > now:
            local_day = now.astimezone(ZoneInfo(hours.time_zone)).date()
            if local_day in hours.closed_days:
                reason = f"market closed today; {reason}"
            return Hold(reason, session.open)
    return Hold(reason, None)


def _is_trading_day(hours: MarketHours, now: datetime) -> bool:
    local_day = now.astimezone(ZoneInfo(hours.time_zone)).date()
    return local_day not in hours.closed_days


def _in_window(sessions: Sequence[Session], window: TradingWindow, moment: datetime) -> bool:
    """Whether ``_wait_for`` on ``_windows(sessions, window)`` says None, worked out on the
    sessions as they are (no trimmed copies): the same scan, in the same order."""
    for session in sessions:
        opens = session.open + window.after_open
        closes = session.close - window.before_close
        if opens >= closes:
            continue
        if opens <= moment < closes:
            return True
        if opens > moment:
            return False
    return False


def _windows(sessions: Sequence[Session], window: TradingWindow) -> tuple[Session, ...]:
    trimmed = (
        Session(session.open + window.after_open, session.close - window.before_close)
        for session in sessions
    )
    return tuple(session for session in trimmed if session.open < session.close)


def _containing(sessions: Sequence[Session], moment: datetime) -> Session | None:
    return next((session for session in sessions if session.contains(moment)), None)


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


def _joined(sessions: list[Session]) -> tuple[Session, ...]:
    joined: list[Session] = []
    for session in sessions:
        if joined and session.open <= joined[-1].close:
            last = joined[-1]
            joined[-1] = Session(last.open, max(last.close, session.close))
        else:
            joined.append(session)
    return tuple(joined)


def _parse_date(text: str, context: str) -> date:
    return _parse_digits(text, "%Y%m%d", context).date()


def _parse_clock(text: str, context: str) -> time:
    return _parse_digits(text, "%H%M", context).time()


def _parse_digits(text: str, layout: str, context: str) -> datetime:
    # strptime alone would read "2026113" as 2026-11-3: IB always writes every digit.
    digits = 8 if layout == "%Y%m%d" else 4
    if len(text) != digits or not text.isdigit():
        raise HoursFormatError(f"bad trading-hours entry {context!r}")
    try:
        return datetime.strptime(text, layout)
    except ValueError as exc:
        raise HoursFormatError(f"bad trading-hours entry {context!r}") from exc


def _parse_range(day: date, text: str, zone: ZoneInfo, context: str) -> Session:
    start_text, separator, end_text = text.partition("-")
    if not separator:
        raise HoursFormatError(f"bad trading-hours entry {context!r}")
    start = datetime.combine(day, _parse_clock(start_text, context), tzinfo=zone)
    if ":" in end_text:
        end_day_text, _, end_clock = end_text.partition(":")
        end_day = _parse_date(end_day_text, context)
    else:
        end_day, end_clock = day, end_text
    end = datetime.combine(end_day, _parse_clock(end_clock, context), tzinfo=zone)
    if end <= start:
        # The older form writes an overnight session's end without its date.
        end += timedelta(days=1)
    if end_clock == _END_OF_DAY:
        end += timedelta(minutes=1)
    return Session(start, end)
