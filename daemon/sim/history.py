"""Historical bars and the head timestamp, generated from a deterministic price path.

The sim keeps no price history, so the past is a function of time: for each
symbol a smooth seeded curve (a few slow waves plus per-minute noise), scaled so
that it passes through the symbol's current price at the sim's clock. The same
request at the same sim time and price gives the same bars; a bar of any size
aggregates the same underlying points, and bars exist only inside the
calendar's sessions (regular hours with ``useRTH``, pre-market to after hours
without).

Limits follow IB's "Historical data limitations" page: a duration
caps the smallest bar size (``1 D`` needs 1 min or more, ``1 M`` 30 mins, more
than a month 1 day).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tradectl.sim.hours import CALENDAR_FIRST_DAY, IB_TIME_ZONE_ID, NEW_YORK, MarketHours
from tradectl.sim.model import round_to_tick

DAY = 86400
BAR_SECONDS: dict[str, int] = {
    "1 min": 60,
    "2 mins": 120,
    "3 mins": 180,
    "5 mins": 300,
    "10 mins": 600,
    "15 mins": 900,
    "20 mins": 1200,
    "30 mins": 1800,
    "1 hour": 3600,
    "2 hours": 7200,
    "3 hours": 10800,
    "4 hours": 14400,
    "8 hours": 28800,
    "1 day": DAY,
}
# (longest duration in seconds, smallest bar in seconds) from IB's table of valid
# duration and bar size combinations; beyond a month only daily bars.
DURATION_LIMITS = (
    (DAY, 60),
    (2 * DAY, 120),
    (7 * DAY, 180),
    (31 * DAY, 1800),
)
WHAT_TO_SHOW = frozenset({"TRADES", "MIDPOINT", "BID", "ASK", "ADJUSTED_LAST"})
WITH_VOLUME = frozenset({"TRADES", "ADJUSTED_LAST"})
HMDS = "Historical Market Data Service error message:"


class HistoryRefused(Exception):
    """A historical data request IB would refuse; the message is IB's error 162 text."""


@dataclass(frozen=True)
class Bar:
    date: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    average: float
    bar_count: int


@dataclass(frozen=True)
class BarRequest:
    symbol: str
    end: float
    duration: str
    bar_size: str
    what_to_show: str
    use_rth: bool
    format_date: int


class PricePath:
    """The deterministic past of one symbol, anchored at ``price`` at time ``now``."""

    def __init__(self, seed: int, symbol: str, price: float, now: float, tick: float) -> None:
        rng = random.Random(f"{seed}:{symbol}")
        self._phases = [rng.uniform(0, 2 * math.pi) for _ in range(4)]
        self._salt = rng.getrandbits(32)
        self._tick = tick
        self._scale = price / self._shape(int(now // 60))

    def _noise(self, minute: int, lane: int = 0) -> float:
        mixed = ((minute * 0x9E3779B1) ^ (self._salt + lane * 0x632BE5AB)) & 0xFFFFFFFF
        mixed = (mixed * 0x85EBCA6B) & 0xFFFFFFFF
        mixed ^= mixed >> 13
        return ((mixed * 0xC2B2AE35) & 0xFFFFFFFF) / 2**32

    def _shape(self, minute: int) -> float:
        p = self._phases
        return (
            1.0
            + 0.08 * math.sin(2 * math.pi * minute / 150_000 + p[0])
            + 0.03 * math.sin(2 * math.pi * minute / 7_800 + p[1])
            + 0.01 * math.sin(2 * math.pi * minute / 1_170 + p[2])
            + 0.003 * math.sin(2 * math.pi * minute / 97 + p[3])
            + 0.002 * (self._noise(minute) - 0.5)
        )

    def price(self, ts: float) -> float:
        return max(self._tick, round_to_tick(self._scale * self._shape(int(ts // 60)), self._tick))

    def volume(self, ts: float) -> int:
        return 100 + int(900 * self._noise(int(ts // 60), lane=1))


def head_timestamp(hours: MarketHours, *, use_rth: bool) -> float:
    """The earliest moment with data: the first session the calendar knows."""
    day = CALENDAR_FIRST_DAY
    while (found := hours.session(day, regular=use_rth)) is None:
        day += timedelta(days=1)
    return found[0]


def parse_end(text: str, now: float) -> float:
    """IB's endDateTime: empty for now; 'yyyymmdd hh:mm:ss' with an optional zone name
    (none means the sim's US/Eastern), 'yyyymmdd-hh:mm:ss' in UTC, or 'yyyymmdd'."""
    text = text.strip()
    if not text:
        return now
    try:
        if len(text) == 8:
            day = datetime.strptime(text, "%Y%m%d").replace(hour=23, minute=59, second=59)
            return min(now, day.replace(tzinfo=NEW_YORK).timestamp())
        if "-" in text[:9]:
            moment = datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
        else:
            day_part, time_part, *zone = text.split()
            zone_info = ZoneInfo(zone[0]) if zone else NEW_YORK
            moment = datetime.strptime(day_part + time_part, "%Y%m%d%H:%M:%S")
            moment = moment.replace(tzinfo=zone_info)
    except (ValueError, KeyError) as exc:
        raise HistoryRefused(f"{HMDS}invalid endDateTime {text!r}") from exc
    return min(now, moment.timestamp())


def _start(duration: str, end: float, hours: MarketHours, use_rth: bool) -> tuple[float, int]:
    """Start of the requested span and its nominal length in seconds."""
    try:
        count_text, unit = duration.split()
        count = int(count_text)
    except ValueError as exc:
        raise HistoryRefused(f"{HMDS}invalid duration {duration!r}") from exc
    if count <= 0 or unit not in ("S", "D", "W", "M", "Y"):
        raise HistoryRefused(f"{HMDS}invalid duration {duration!r}")
    if unit == "S":
        if count > DAY:
            raise HistoryRefused(f"{HMDS}invalid duration {duration!r}: at most {DAY} S")
        return end - count, count
    if unit == "D":
        # IB counts days of data: the last `count` sessions up to the end.
        day = datetime.fromtimestamp(end, NEW_YORK).date()
        start = end
        found = 0
        while found < count and day >= CALENDAR_FIRST_DAY:
            session = hours.session(day, regular=use_rth)
            if session is not None and session[0] < end:
                start = session[0]
                found += 1
            day -= timedelta(days=1)
        return start, count * DAY
    days = {"W": 7, "M": 30, "Y": 365}[unit] * count
    return end - days * DAY, days * DAY


def _check_bar_size(bar_seconds: int, span: int, duration: str, bar_size: str) -> None:
    for longest, smallest in DURATION_LIMITS:
        if span <= longest:
            if bar_seconds < smallest:
                break
            return
    else:
        if bar_seconds >= DAY:
            return
    raise HistoryRefused(
        f"{HMDS}Time length exceed max. ({duration} of {bar_size} bars: use a larger bar size)"
    )


def bars(
    req: BarRequest, path: PricePath, hours: MarketHours, tick: float
) -> tuple[float, list[Bar]]:
    """The bars of ``req``, oldest first, and the start of the span they cover."""
    bar_seconds = BAR_SECONDS.get(req.bar_size)
    if bar_seconds is None:
        sizes = ", ".join(BAR_SECONDS)
        raise HistoryRefused(f"{HMDS}bar size {req.bar_size!r} is not simulated (use {sizes})")
    if req.what_to_show not in WHAT_TO_SHOW:
        raise HistoryRefused(f"{HMDS}whatToShow {req.what_to_show!r} is not simulated")
    start, span = _start(req.duration, req.end, hours, req.use_rth)
    _check_bar_size(bar_seconds, span, req.duration, req.bar_size)
    start = max(start, head_timestamp(hours, use_rth=req.use_rth))
    step = 60 if bar_seconds <= 3600 else 300
    out: list[Bar] = []
    day = datetime.fromtimestamp(start, NEW_YORK).date() - timedelta(days=1)
    last_day = datetime.fromtimestamp(req.end, NEW_YORK).date()
    while day <= last_day:
        session = hours.session(day, regular=req.use_rth)
        if session is not None:
            opens, closes = max(session[0], start), min(session[1], req.end)
            if bar_seconds >= DAY:
                spans = [(opens, closes, day.strftime("%Y%m%d"))] if opens < closes else []
            else:
                spans = _intraday_spans(opens, closes, bar_seconds, req.format_date)
            for begin, finish, label in spans:
                bar = _bar(label, begin, finish, step, path, req.what_to_show, tick)
                if bar is not None:
                    out.append(bar)
        day += timedelta(days=1)
    return start, out


def _intraday_spans(
    opens: float, closes: float, bar_seconds: int, format_date: int
) -> list[tuple[float, float, str]]:
    spans: list[tuple[float, float, str]] = []
    begin = opens
    while begin < closes:
        # bars align to whole multiples of their size (a 1 hour bar after 09:30 ends at 10:00)
        finish = min(closes, (begin // bar_seconds + 1) * bar_seconds)
        spans.append((begin, finish, format_bar_time(begin, format_date)))
        begin = finish
    return spans


def _bar(
    label: str,
    begin: float,
    finish: float,
    step: int,
    path: PricePath,
    what_to_show: str,
    tick: float,
) -> Bar | None:
    first = math.ceil(begin / step) * step
    moments = range(first, math.ceil(finish), step)
    if not moments:
        return None
    prices = [path.price(t) for t in moments]
    if what_to_show not in WITH_VOLUME:
        return Bar(label, prices[0], max(prices), min(prices), prices[-1], -1.0, -1.0, -1)
    volumes = [path.volume(t) * step // 60 for t in moments]
    total = sum(volumes)
    average = round_to_tick(sum(p * v for p, v in zip(prices, volumes, strict=True)) / total, tick)
    return Bar(
        label, prices[0], max(prices), min(prices), prices[-1], float(total), average, len(moments)
    )


def format_bar_time(ts: float, format_date: int) -> str:
    """An intraday bar's time: 'yyyymmdd hh:mm:ss US/Eastern', or Unix seconds (formatDate 2)."""
    if format_date == 2:
        return str(int(ts))
    return datetime.fromtimestamp(ts, NEW_YORK).strftime("%Y%m%d %H:%M:%S ") + IB_TIME_ZONE_ID


def format_head_timestamp(ts: float, format_date: int) -> str:
    if format_date == 2:
        return str(int(ts))
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d-%H:%M:%S")
