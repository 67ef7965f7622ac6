"""What the records module reads from the journal: one ``FillRecord`` per execution and one
``OrderRecord`` per order that reached a final status.

The journal owns how executions are stored; this module only needs the ``FillSource`` protocol,
so the exporter and its tests do not depend on the journal's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from tradectl.timezones import TRADING_TIME_ZONE

# US equities settle and are reported by the exchange's calendar day, not UTC's: a fill at
# 19:30 New York time is on that day's statement although it is already tomorrow in UTC.
DEFAULT_TRADE_ZONE: ZoneInfo = TRADING_TIME_ZONE


@dataclass(frozen=True)
class FillRecord:
    """One execution as the journal recorded it.

    ``seq`` is the journal's sequence number of the execution: it increases in commit order and
    never changes, which is what makes export batches deterministic.
    """

    seq: int
    time: datetime
    account: str | None
    symbol: str
    con_id: int | None
    side: str
    quantity: float
    price: float
    order_id: int
    perm_id: int
    exec_id: str
    commission: float | None = None
    commission_currency: str | None = None
    order_ref: str | None = None
    rule: str | None = None
    leg: str | None = None
    rule_generation: str | None = None
    intent_reason: str | None = None
    config_generation: str | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError(f"execution {self.exec_id}: time must be timezone-aware")

    @property
    def complete(self) -> bool:
        """Nothing more is expected for it: its commission report has arrived."""
        return self.commission is not None


@dataclass(frozen=True)
class OrderRecord:
    """One order at its final status (Filled, Cancelled, ApiCancelled, Inactive).

    ``time`` is when the journal first saw the final status; ``seq`` numbers orders in that
    order. ``filled`` is the broker's cumulative filled quantity, ``average_price`` the
    quantity-weighted price of the order's executions in the journal (None without any).
    """

    seq: int
    time: datetime
    account: str | None
    symbol: str
    con_id: int | None
    side: str
    order_type: str
    quantity: float
    status: str
    filled: float
    order_id: int
    perm_id: int
    client_id: int
    average_price: float | None = None
    limit_price: float | None = None
    aux_price: float | None = None
    executions: int = 0
    commission: float | None = None
    submitted: datetime | None = None
    order_ref: str | None = None
    rule: str | None = None
    leg: str | None = None
    rule_generation: str | None = None
    intent_reason: str | None = None
    config_generation: str | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError(f"order {self.order_id}: time must be timezone-aware")

    @property
    def complete(self) -> bool:
        # Executions and commissions may still arrive after the final status (IB does not
        # order its messages), so an order is exported only after the settle time.
        return False


class FillSource(Protocol):
    """Read access to the journal's executions, ordered by ``seq``."""

    def fills_after(self, seq: int, limit: int) -> Sequence[FillRecord]:
        """Executions with a sequence number above ``seq``, at most ``limit``, by ``seq``."""
        ...

    def fills_in_range(self, first: int, last: int) -> Sequence[FillRecord]:
        """Executions with ``first <= seq <= last``, by ``seq``."""
        ...

    def fills_between(self, start: datetime, end: datetime) -> Sequence[FillRecord]:
        """Executions with ``start <= time < end``, by ``seq``."""
        ...


class OrderSource(Protocol):
    """Read access to the journal's final orders, ordered by ``seq``."""

    def orders_after(self, seq: int, limit: int) -> Sequence[OrderRecord]: ...

    def orders_in_range(self, first: int, last: int) -> Sequence[OrderRecord]: ...

    def orders_between(self, start: datetime, end: datetime) -> Sequence[OrderRecord]: ...


def trade_date(moment: datetime, zone: ZoneInfo = DEFAULT_TRADE_ZONE) -> date:
    return moment.astimezone(zone).date()


def trade_day_bounds(
    since: date, until: date, zone: ZoneInfo = DEFAULT_TRADE_ZONE
) -> tuple[datetime, datetime]:
    """The instants ``[start, end)`` covering trade dates ``since`` through ``until``."""
    start = datetime(since.year, since.month, since.day, tzinfo=zone)
    after = until + timedelta(days=1)
    end = datetime(after.year, after.month, after.day, tzinfo=zone)
    return start, end
