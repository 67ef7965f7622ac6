"""The simulator's data: instruments, orders, executions, positions and events.

The engine mutates these; the server reads them to build wire messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pydantic import ConfigDict

# SimOrder and Execution are also state-file sections (written by --persist):
# pydantic validates them there, rejecting unknown keys like the rest of the file.
_STRICT = ConfigDict(extra="forbid")

ACTIVE = frozenset({"PreSubmitted", "Submitted"})
DONE = frozenset({"Filled", "Cancelled", "Inactive", "ApiCancelled"})


@dataclass
class Instrument:
    """One listing. ``symbol`` is the sim's key for it (state file, control ops,
    snapshot); ``ib_symbol`` is what IB calls it on the wire."""

    symbol: str
    con_id: int
    exchange: str
    name: str
    min_tick: float
    lot_size: int
    last: float
    close: float
    half_spread: float
    halted: int = 0  # tick type 49: 0 trading, 1 regulatory halt, 2 volatility halt
    halted_since: float = 0.0
    ib_symbol: str = ""
    sec_type: str = "STK"
    currency: str = "USD"
    price_magnifier: int = 1
    market_rule: int = 26
    # (lowEdge, increment) from the lowest band up, as reqMarketRule answers
    bands: tuple[tuple[float, float], ...] = ((0.0, 0.0001), (1.0, 0.01))

    @property
    def local_symbol(self) -> str:
        """IB's localSymbol: ``EUR.USD`` for a currency pair, the symbol for a stock."""
        return f"{self.ib_symbol}.{self.currency}" if self.sec_type == "CASH" else self.ib_symbol

    @property
    def venues(self) -> list[str]:
        """validExchanges: a stock trades on SMART and its primary exchange."""
        return [self.exchange] if self.sec_type == "CASH" else ["SMART", self.exchange]

    def increment(self, price: float) -> float:
        """The price step of the band ``price`` falls in (a price on an edge is in the band
        that starts there)."""
        step = self.bands[0][1]
        for low_edge, band_step in self.bands:
            if price + 1e-12 >= low_edge:
                step = band_step
        return step

    def conforms(self, price: float) -> bool:
        return on_tick(price, self.increment(price))

    @property
    def bid(self) -> float:
        raw = self.last - self.half_spread
        return max(self.bands[0][1], round_to_tick(raw, self.increment(raw)))

    @property
    def ask(self) -> float:
        raw = self.last + self.half_spread
        return round_to_tick(raw, self.increment(raw))

    def value(self, quantity: float, price: float | None = None) -> float:
        """What ``quantity`` at ``price`` (default last) is worth in the listing's currency."""
        return quantity * (self.last if price is None else price) / self.price_magnifier


@dataclass
class SimOrder:
    __pydantic_config__ = _STRICT

    order_id: int
    client_id: int
    perm_id: int
    account: str
    symbol: str
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    aux_price: float | None
    trailing_percent: float | None
    trail_stop_price: float | None
    tif: str
    oca_group: str
    oca_type: int
    order_ref: str
    parent_id: int
    outside_rth: bool
    status: str = "PendingSubmit"
    transmitted: bool = False
    triggered: bool = False
    # held by the gateway until a session in which it may trade (IB's warning 399)
    held: bool = False
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    commission: float = 0.0
    filled_value: float = 0.0
    completed_time: str = ""
    completed_status: str = ""
    completed_at: float = 0.0

    @property
    def remaining(self) -> float:
        return max(0.0, self.quantity - self.filled)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def done(self) -> bool:
        return self.status in DONE

    @property
    def sign(self) -> int:
        return 1 if self.action == "BUY" else -1


@dataclass(frozen=True)
class WhatIfEstimate:
    """What a whatIf order would do to the account's margin, and what it would cost."""

    init_margin_before: float
    maint_margin_before: float
    equity_with_loan_before: float
    init_margin_after: float
    maint_margin_after: float
    equity_with_loan_after: float
    commission: float
    currency: str
    warning: str = ""


@dataclass
class Execution:
    __pydantic_config__ = _STRICT

    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    account: str
    symbol: str
    side: str  # BOT / SLD, as IB reports it
    shares: float
    price: float
    time: float
    cum_qty: float
    avg_price: float
    order_ref: str
    commission: float
    realized_pnl: float | None


@dataclass
class Position:
    quantity: float = 0.0
    avg_cost: float = 0.0
    realized_pnl: float = 0.0


# -- events ---------------------------------------------------------------------


@dataclass(frozen=True)
class OrderChanged:
    """New, modified, released or cancelled order: openOrder + orderStatus."""

    order: SimOrder
    cancelled: bool = False


@dataclass(frozen=True)
class OrderFilled:
    """An execution: execDetails, openOrder, orderStatus, commissionReport."""

    order: SimOrder
    execution: Execution


@dataclass(frozen=True)
class ErrorNotice:
    client_id: int
    req_id: int
    code: int
    message: str


@dataclass(frozen=True)
class QuoteChanged:
    symbol: str


@dataclass(frozen=True)
class AccountChanged:
    symbols: frozenset[str]


@dataclass(frozen=True)
class HaltChanged:
    """A symbol was halted or resumed: tick type 49 to its subscribers."""

    symbol: str


Event = OrderChanged | OrderFilled | ErrorNotice | QuoteChanged | AccountChanged | HaltChanged


def round_to_tick(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, 10)


def on_tick(price: float, tick: float) -> bool:
    return math.isclose(price, round_to_tick(price, tick), abs_tol=tick * 1e-6)


@dataclass
class AccountSnapshot:
    """A point-in-time copy of the account for assertions in tests."""

    account: str
    cash: float
    net_liquidation: float
    buying_power: float
    positions: dict[str, Position]
    prices: dict[str, float]
    open_orders: list[SimOrder]
    orders: list[SimOrder]
    executions: list[Execution] = field(default_factory=list)
    previous_day_equity: float = 0.0
    daily_pnl: float = 0.0
    # the base currency; ``cash`` is all cash in it, ``cash_balances`` the cash per currency
    currency: str = "USD"
    cash_balances: dict[str, float] = field(default_factory=dict)
    accounts: list[str] = field(default_factory=list)  # every account of the login
