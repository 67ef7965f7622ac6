"""Plain data exchanged by the planner: what the account looks like (``Observed``) and what
should be done about it (``Plan`` of ``Intent``).

These are the contract between the pure planner, the IB adapter that fills ``Observed`` and
executes intents, and the journal that records them. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from tradectl.planner.legs import parse_order_ref
from tradectl.planner.market_time import MarketHours
from tradectl.planner.ticks import PriceBand, PriceIncrements
from tradectl.schemas.models import RuleKind, Side

OrderType = Literal["MKT", "LMT", "STP", "STP LMT", "TRAIL"]
TimeInForce = Literal["DAY", "GTC", "IOC"]
IntentAction = Literal["place", "modify", "cancel"]
# Opening intents add exposure and stop when the circuit breaker trips; protective (stops and
# targets of a filled entry) and closing intents always go.
Purpose = Literal["opening", "closing", "protective"]


@dataclass(frozen=True, slots=True)
class ContractFacts:
    """What the planner needs to know of a contract. ``price_bands`` is its market rule on its
    exchange (IB's ``reqMarketRule``); without one, ``min_tick`` applies at every price.
    ``currency`` is the currency its prices are in; None means the account's base currency.
    ``price_magnifier`` is IB's: prices are quoted in 1/magnifier of the currency (LSE shares
    in pence: 100)."""

    symbol: str
    con_id: int
    min_tick: float = 0.01
    lot_size: int = 1
    price_bands: tuple[PriceBand, ...] = ()
    currency: str | None = None
    price_magnifier: int = 1

    @property
    def increments(self) -> PriceIncrements:
        return PriceIncrements.from_bands(self.price_bands, self.min_tick)


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    last: float
    time: datetime
    bid: float | None = None
    ask: float | None = None
    halted: bool = False


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    quantity: float
    average_cost: float = 0.0


@dataclass(frozen=True, slots=True)
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
        return None if parsed is None else parsed.rule

    @property
    def generation(self) -> str | None:
        parsed = parse_order_ref(self.order_ref)
        return None if parsed is None else parsed.generation

    @property
    def leg(self) -> str | None:
        parsed = parse_order_ref(self.order_ref)
        return None if parsed is None else parsed.leg


@dataclass(frozen=True, slots=True)
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


TargetsMode = Literal["weight", "shares"]


@dataclass(frozen=True)
class FileTargets:
    """One valid version of a targets file (``targets_from``). ``as_of`` is the file's own
    ``as_of`` column when it has one, else its modification time; ``content_hash`` covers the
    mode and the targets only, so rewriting the same signal is not a new file."""

    path: str
    mode: TargetsMode
    targets: Mapping[str, float]
    as_of: datetime
    as_of_source: Literal["as_of column", "modification time"]
    content_hash: str


@dataclass(frozen=True)
class TargetsSource:
    """What the runtime read for one ``targets_from`` allocation: the last good version of the
    file (None when there never was one) and, when the file as it is now cannot be used, why."""

    path: str
    targets: FileTargets | None
    problem: str | None = None


@dataclass(frozen=True)
class AcceptedTargets:
    """The targets of a file an allocation last traded on (journaled): the baseline a new
    file's turnover is measured against."""

    content_hash: str
    mode: TargetsMode
    targets: Mapping[str, float]


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
    planner plans nothing for them (docs/apply.md, exactly once).
    ``day_start_nav`` is the equity the daily-loss breaker measures against: the previous
    session's closing equity as IB reports it (``PreviousDayEquityWithLoanValue``), else the
    first net liquidation tradectl saw that day. ``daily_pnl`` is IB's P&L for the day
    (``reqPnL``; deposits and withdrawals left out), None when the gateway sends none
    (daemon/planner/breaker.py).
    ``margin_account`` is True when the account can borrow (IB reports a ``BuyingPower`` above
    its ``AvailableFunds``): bracket entries and scale levels are then counted against
    ``buying_power`` instead of ``cash`` (daemon/planner/cash.py).

    These come from the journal's ledger (docs/planning.md, "The ledger"), for every rule it
    ever entered, whether or not the rule still exists. ``entered_floor`` is, per rule, an
    entered quantity IB's order graph proved when the journal did not know it (a lost journal).
    ``released`` names the rules `tradectl release` took out of protection: they protect
    nothing any more.
    ``unfilled_entry_refs`` are entry orderRefs the journal saw end without any fill: protective
    legs still working without such an entry are on their way out, not evidence of a fill.
    ``completed_orders`` are the day's finished orders as IB reports them (their filled
    quantities count as fills). ``entries_expired`` and ``entries_filled`` are, per
    ``(rule, generation)`` of a bracket or scale, the last trading day one of its entry orders
    expired unfilled at IB (cancelled without tradectl asking) or filled: with
    ``reenter: never`` it is not entered again, with ``daily`` not again that day.
    ``trading_day`` is the trading day of this observation.
    ``base_currency`` is the account's: NAV, cash, weights and risk limits are in it.
    ``cash_balances`` is IB's ``CashBalance`` per currency, in that currency (empty: only the
    base-currency total is known). ``exchange_rates`` is IB's ``ExchangeRate`` per currency: the
    base-currency value of one unit (daemon/planner/money.py).
    """

    account_id: str
    net_liquidation: float
    cash: float
    buying_power: float
    day_start_nav: float
    daily_pnl: float | None = None
    positions: Mapping[str, Position] = field(default_factory=dict)
    working_orders: tuple[WorkingOrder, ...] = ()
    executions: tuple[Execution, ...] = ()
    quotes: Mapping[str, Quote] = field(default_factory=dict)
    contracts: Mapping[str, ContractFacts] = field(default_factory=dict)
    entry_fills: Mapping[tuple[str, str], float] = field(default_factory=dict)
    entry_fill_prices: Mapping[tuple[str, str], float] = field(default_factory=dict)
    exit_fills: Mapping[tuple[str, str], float] = field(default_factory=dict)
    in_flight: frozenset[str] = frozenset()
    entered_floor: Mapping[str, float] = field(default_factory=dict)
    released: frozenset[str] = frozenset()
    unfilled_entry_refs: frozenset[str] = frozenset()
    completed_orders: tuple[WorkingOrder, ...] = ()
    entries_expired: Mapping[tuple[str, str], date] = field(default_factory=dict)
    entries_filled: Mapping[tuple[str, str], date] = field(default_factory=dict)
    trading_day: date | None = None
    orders_sent_last_minute: int = 0
    halted: bool = False
    breaker_tripped: bool = False
    allocations_due: bool = True
    targets_sources: Mapping[str, TargetsSource] = field(default_factory=dict)
    accepted_targets: Mapping[str, AcceptedTargets] = field(default_factory=dict)
    margin_account: bool = False
    market_hours: Mapping[str, MarketHours] | None = None
    base_currency: str = "USD"
    cash_balances: Mapping[str, float] = field(default_factory=dict)
    exchange_rates: Mapping[str, float] = field(default_factory=dict)

    def position(self, symbol: str) -> float:
        held = self.positions.get(symbol)
        return 0.0 if held is None else held.quantity

    @property
    def owned_orders(self) -> tuple[WorkingOrder, ...]:
        return tuple(order for order in self.working_orders if order.owned)

    @property
    def manual_orders(self) -> tuple[WorkingOrder, ...]:
        return tuple(order for order in self.working_orders if not order.owned)


@dataclass(frozen=True, slots=True)
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


# An intent's reason can be kept as the function that writes it and its arguments until someone
# reads it: a large plan has tens of thousands of intents, most of whose reasons are never shown
# (the plan table shows the first ones, the journal those sent), and writing the text (numbers
# formatted with separators and decimals) was a fifth of an allocation's planning
# (benchmarks/README.md, round five). The intent's ``reason`` slot holds ``(render, args)``;
# ``_ReasonText`` writes the text the first time ``reason`` is read, so ``reason``, the repr,
# equality and ``dataclasses.replace`` see the same text.
DeferredReason = tuple[Callable[..., str], tuple[Any, ...]]


def reason_text(reason: str | DeferredReason) -> str:
    """The text of a reason, written now if it was deferred."""
    if isinstance(reason, str):
        return reason
    render, args = reason
    return render(*args)


def affixed(
    reason: str | DeferredReason, prefix: str = "", suffix: str = ""
) -> str | DeferredReason:
    """``reason`` with text before and after it; still deferred if it was."""
    if isinstance(reason, str):
        return f"{prefix}{reason}{suffix}"
    return (_affixed_text, (prefix, reason, suffix))


def _affixed_text(prefix: str, reason: str | DeferredReason, suffix: str) -> str:
    return prefix + reason_text(reason) + suffix


@dataclass(frozen=True, slots=True)
class Intent:
    """One thing the plan wants done, with the reason in words.

    ``key`` is deterministic: planning the same rules against the same state gives the same key,
    which is how the journal recognises an intent already sent (exactly once, docs/apply.md).
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
    replaces: WorkingOrder | None = None
    """For a modify: the working order as it is now (what the plan table shows as old → new)."""
    # Left out of the repr, which plan digests are taken of (test_plan_equivalence.py);
    # ``value`` shows its effect.
    fx_rate: float = field(default=1.0, repr=False)
    """The account's base currency per unit of the currency the order is priced in."""

    @property
    def value(self) -> float:
        """The order's value in the account's base currency."""
        if self.order is None or self.estimated_price is None:
            return 0.0
        return abs(self.order.quantity) * self.estimated_price * self.fx_rate

    @property
    def blocked(self) -> bool:
        return self.blocked_by is not None


_REASON_SLOT = Intent.__dict__["reason"]


class _ReasonText:
    """``Intent.reason``: the slot holds the text, or how to write it (``DeferredReason``),
    which is written the first time it is read and kept. A data descriptor over the slot, so
    the dataclass's ``__init__``, ``replace``, equality, the repr and pickling all see the
    text."""

    __slots__ = ()

    def __get__(self, intent: Intent | None, owner: type[Intent]) -> Any:
        if intent is None:
            return self
        reason = _REASON_SLOT.__get__(intent, owner)
        if reason.__class__ is str:
            return reason
        text = reason_text(reason)
        _REASON_SLOT.__set__(intent, text)
        return text

    def __set__(self, intent: Intent, reason: str | DeferredReason) -> None:
        _REASON_SLOT.__set__(intent, reason)

    def __delete__(self, intent: Intent) -> None:
        _REASON_SLOT.__delete__(intent)


# Set after the class is made: the dataclass made the slot, this reads through it.
setattr(Intent, "reason", _ReasonText())  # noqa: B010


def _fields_of(cls: type) -> type:
    """A class with ``cls``'s slots and nothing else: mutable, so its slots are stored at the
    speed of any attribute; then the instance becomes a ``cls`` (the same layout)."""
    return type(f"_{cls.__name__}Fields", (), {"__slots__": vars(cls)["__slots__"]})


_ORDER_SPEC_FIELDS = _fields_of(OrderSpec)
_INTENT_FIELDS = _fields_of(Intent)
_new = object.__new__
_set = object.__setattr__


def new_order_spec(
    symbol: str,
    action: Side,
    quantity: int,
    order_type: OrderType,
    order_ref: str,
    tif: TimeInForce,
    limit_price: float | None,
    aux_price: float | None,
    trailing_percent: float | None,
    parent_ref: str | None,
    oca_group: str | None,
    transmit: bool,
    outside_rth: bool,
) -> OrderSpec:
    """``OrderSpec(...)`` with every field given in order, at a third of the cost (a frozen
    dataclass's ``__init__`` sets each field through ``object.__setattr__``; a large plan builds
    tens of thousands). tests/planner/test_hot_paths.py compares the two."""
    spec: Any = _new(_ORDER_SPEC_FIELDS)
    spec.symbol = symbol
    spec.action = action
    spec.quantity = quantity
    spec.order_type = order_type
    spec.order_ref = order_ref
    spec.tif = tif
    spec.limit_price = limit_price
    spec.aux_price = aux_price
    spec.trailing_percent = trailing_percent
    spec.parent_ref = parent_ref
    spec.oca_group = oca_group
    spec.transmit = transmit
    spec.outside_rth = outside_rth
    _set(spec, "__class__", OrderSpec)
    built: OrderSpec = spec
    return built


def new_intent(
    key: str,
    action: IntentAction,
    kind: RuleKind,
    rule: str,
    leg: str,
    symbol: str,
    purpose: Purpose,
    reason: str | DeferredReason,
    order: OrderSpec | None,
    order_id: int | None,
    estimated_price: float | None,
    current_quantity: float,
    target_quantity: float,
    blocked_by: str | None,
    replaces: WorkingOrder | None,
    fx_rate: float,
) -> Intent:
    """``Intent(...)`` with every field given in order (``new_order_spec``); ``reason`` may be
    deferred (written when first read)."""
    intent: Any = _new(_INTENT_FIELDS)
    intent.key = key
    intent.action = action
    intent.kind = kind
    intent.rule = rule
    intent.leg = leg
    intent.symbol = symbol
    intent.purpose = purpose
    intent.reason = reason
    intent.order = order
    intent.order_id = order_id
    intent.estimated_price = estimated_price
    intent.current_quantity = current_quantity
    intent.target_quantity = target_quantity
    intent.blocked_by = blocked_by
    intent.replaces = replaces
    intent.fx_rate = fx_rate
    _set(intent, "__class__", Intent)
    built: Intent = intent
    return built


def stored_reason(intent: Intent) -> str | DeferredReason:
    """The reason as the intent holds it: its text, or how to write it if nobody has read it."""
    reason: str | DeferredReason = _REASON_SLOT.__get__(intent, Intent)
    return reason


def with_blocked_by(intent: Intent, blocked_by: str | None) -> Intent:
    """``replace(intent, blocked_by=...)`` without rendering a deferred reason."""
    return new_intent(
        intent.key,
        intent.action,
        intent.kind,
        intent.rule,
        intent.leg,
        intent.symbol,
        intent.purpose,
        stored_reason(intent),
        intent.order,
        intent.order_id,
        intent.estimated_price,
        intent.current_quantity,
        intent.target_quantity,
        blocked_by,
        intent.replaces,
        intent.fx_rate,
    )


TargetsStatus = Literal["trading", "stale", "held", "invalid"]


@dataclass(frozen=True)
class TargetsDecision:
    """What an allocation with ``targets_from`` does with its file this pass.

    ``trading``: the file's targets are planned. Otherwise the allocation is held (nothing
    placed or modified, its working orders cancelled) for ``reason``: ``stale`` (older than
    max_age), ``held`` (a jump above max_turnover, waiting for `tradectl accept`), ``invalid``
    (no valid version of the file). ``targets`` is the file version the decision is about.
    """

    rule: str
    status: TargetsStatus
    reason: str
    targets: FileTargets | None = None
    turnover: float | None = None

    @property
    def needs_acceptance(self) -> bool:
        return self.status == "held"


@dataclass(frozen=True)
class Plan:
    intents: tuple[Intent, ...] = ()
    notes: tuple[str, ...] = ()
    manual_orders: tuple[WorkingOrder, ...] = ()
    targets: tuple[TargetsDecision, ...] = ()

    @property
    def actionable(self) -> tuple[Intent, ...]:
        return tuple(intent for intent in self.intents if not intent.blocked)

    @property
    def blocked(self) -> tuple[Intent, ...]:
        return tuple(intent for intent in self.intents if intent.blocked)

    @property
    def is_empty(self) -> bool:
        return not self.intents
