"""The one home of tradectl's time zone: New York, where the US exchanges keep their day.

US equities: the trading day (for "since the day start", the breaker's day and journal keys,
rejection caps, report and records dates) begins at midnight New York time. The sim keeps its
own copy on IB's side of the wire (daemon/sim/hours.py), as it imports nothing from the product.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

TRADING_TIME_ZONE = ZoneInfo("America/New_York")


def trading_day(moment: datetime) -> date:
    """The trading day ``moment`` falls on (its New York date)."""
    return moment.astimezone(TRADING_TIME_ZONE).date()


def trading_day_start(moment: datetime) -> datetime:
    """Midnight New York time at the start of ``moment``'s trading day."""
    return datetime.combine(trading_day(moment), time(0), tzinfo=TRADING_TIME_ZONE)
