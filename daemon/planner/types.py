"""Plain data exchanged by the planner: what the account looks like (``Observed``) and what
should be done about it (``Plan`` of ``Intent``).

These are the contract between the pure planner, the IB adapter that fills ``Observed`` and
executes intents, and the journal that records them. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from daemon.planner.market_time import MarketHours
from schemas.models import RuleKind, Side, parse_order_ref

OrderType = Literal["MKT", "LMT", "STP", "STP LMT", "TRAIL"]
TimeInForce = Literal["DAY", "GTC", "IOC"]
IntentAction = Literal["place", "modify", "cancel"]
# Opening intents add exposure and stop when the circuit breaker trips; protective (stops and
# targets of a filled entry) and closing intents always go.
Purpose = Literal["opening", "closing", "protective"]


@dataclass(frozen=True)
class ContractFacts:
    symbol: str
    con_id: int
    min_tick: float = 0.01
    lot_size: int = 1


@dataclass(frozen=True)
class Quote:
    symbol: str
    last: float
    time: datetime
    bid: float | None = None
    ask: float | None = None
    halted: bool = False


@dataclass(frozen=True)
class Position:
    symbol: str
    quantity: float
    average_cost: float = 0.0


@dataclass(frozen=True)
class WorkingOrder:
    """An order that is live at the broker (or sent and not yet acknowledged)."""

    order_id: int
    symbol: str
    action: Side
    order_type: OrderType
    total_quantity: float
    filled: float = 0.0
    limit_price: float | None = None
    aux_price: float | None = None
    trailing_percent: float | None = None
    tif: TimeInForce = "DAY"
    order_ref: str | None = None
    perm_id: int = 0
    client_id: int = 0
    parent_id: int = 0
    oca_group: str = ""
    status: str = "Submitted"

    @property
    def remaining(self) -> float:
        return self.total_quantity - self.filled

    @property
    def owned(self) -> bool:
        """True when tradectl sent it (its orderRef carries the tradectl prefix)."""
        return parse_order_ref(self.order_ref) is not None

    @property
    def rule(self) -> str | None:
        parsed = parse_order_ref(self.order_ref)
        return None if parsed is None else parsed[0]

    @property
    def generation(self) -> str | None:
        parsed = parse_order_ref(self.order_ref)
        return None if parsed is None else parsed[1]

    @property
    def leg(self) -> str | None:
        parsed = parse_order_ref(self.order_ref)
        return None if parsed is None else parsed[2]


@dataclass(frozen=True)
class Execution:
    exec_id: str
    order_id: int
    symbol: str
    side: Side
    shares: float
    price: float
    time: datetime
    order_ref: str | None = None
    perm_id: int = 0
    commission: float | None = None


@dataclass(frozen=True)
class Observed:
    """Everything the planner may know about the account at one instant.

    ``entry_fills`` is the cumulative filled quantity of each bracket or scale entry,
    keyed by ``(rule, generation)``, taken from the journal and today's executions, so that a
    filled entry is never entered again even across days and restarts.
    ``entry_fill_prices`` is the average fill price of those entries (same keys), so that a
    bracket's percent stop and target can follow the fill price on a later day, when today's
    executions no longer show it. ``exit_fills`` is the cumulative filled quantity of a bracket's
    ``stop`` and ``target`` legs, keyed by ``(rule, generation)``, so that a position its stop
    has already closed is never protected again (a stop on a flat position would open a new one).
    ``market_hours`` holds each symbol's sessions as the gateway reported them; ``None`` means
    market time is not checked at all (planner unit tests), whereas a symbol missing from the
    mapping has unknown hours and its orders are held.
    ``in_flight`` holds the intent keys that were sent and are not yet seen at the broker: the
    planner plans nothing for them (DESIGN.md §3, Expectations).
    """

    account_id: str
    net_liquidation: float
    cash: float
    buying_power: float
    day_start_nav: float
    positions: Mapping[str, Position] = field(default_factory=dict)
    working_orders: tuple[WorkingOrder, ...] = ()
    executions: tuple[Execution, ...] = ()
    quotes: Mapping[str, Quote] = field(default_factory=dict)
    contracts: Mapping[str, ContractFacts] = field(default_factory=dict)
    entry_fills: Mapping[tuple[str, str], float] = field(default_factory=dict)
    entry_fill_prices: Mapping[tuple[str, str], float] = field(default_factory=dict)
    exit_fills: Mapping[tuple[str, str], float] = field(default_factory=dict)
    in_flight: frozenset[str] = frozenset()
    orders_sent_last_minute: int = 0
    halted: bool = False
    breaker_tripped: bool = False
    allocations_due: bool = True
    market_hours: Mapping[str, MarketHours] | None = None

    def position(self, symbol: str) -> float:
        held = self.positions.get(symbol)
        return 0.0 if held is None else held.quantity

    @property
    def owned_orders(self) -> tuple[WorkingOrder, ...]:
        return tuple(order for order in self.working_orders if order.owned)

    @property
    def manual_orders(self) -> tuple[WorkingOrder, ...]:
        return tuple(order for order in self.working_orders if not order.owned)


@dataclass(frozen=True)
class OrderSpec:
    """The fields of an order as tradectl wants it at the broker.

    Children of a bracket name their parent by ``parent_ref`` (the parent's orderRef), since
    order ids are assigned only when the adapter sends.
    """

    symbol: str
    action: Side
    quantity: int
    order_type: OrderType
    order_ref: str
    tif: TimeInForce = "DAY"
    limit_price: float | None = None
    aux_price: float | None = None
    trailing_percent: float | None = None
    parent_ref: str | None = None
    oca_group: str | None = None
    transmit: bool = True
    outside_rth: bool = False

    @property
    def price_for_value(self) -> float | None:
        """The price that bounds this order's value: its limit, else its stop."""
        return self.limit_price if self.limit_price is not None else self.aux_price


@dataclass(frozen=True)
class Intent:
    """One thing the plan wants done, with the reason in words.

    ``key`` is deterministic: planning the same rules against the same state gives the same key,
    which is how the journal recognises an intent already sent (exactly once, DESIGN.md §3).
    ``order_id`` names the working order a modify or cancel acts on.
    ``blocked_by`` is set by the risk gate with the limit that stopped the intent.
    """

    key: str
    action: IntentAction
    kind: RuleKind
    rule: str
    leg: str
    symbol: str
    purpose: Purpose
    reason: str
    order: OrderSpec | None = None
    order_id: int | None = None
    estimated_price: float | None = None
    current_quantity: float = 0.0
    target_quantity: float = 0.0
    blocked_by: str | None = None

    @property
    def value(self) -> float:
        if self.order is None or self.estimated_price is None:
            return 0.0
        return abs(self.order.quantity) * self.estimated_price

    @property
    def blocked(self) -> bool:
        return self.blocked_by is not None


@dataclass(frozen=True)
class Plan:
    intents: tuple[Intent, ...] = ()
    notes: tuple[str, ...] = ()
    manual_orders: tuple[WorkingOrder, ...] = ()

    @property
    def actionable(self) -> tuple[Intent, ...]:
        return tuple(intent for intent in self.intents if not intent.blocked)

    @property
    def blocked(self) -> tuple[Intent, ...]:
        return tuple(intent for intent in self.intents if intent.blocked)

    @property
    def is_empty(self) -> bool:
        return not self.intents
