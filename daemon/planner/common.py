"""Helpers shared by the planner's rule kinds: tick and lot arithmetic, deterministic short
hashes, an index over the observed working orders, and the plan builder.

Everything here is pure: the same inputs give the same outputs on every machine.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from operator import attrgetter
from typing import Any, Literal, TypeVar

from tradectl.planner.domain import (
    ContractFacts,
    DeferredReason,
    Execution,
    Intent,
    IntentAction,
    Observed,
    OrderSpec,
    Purpose,
    TargetsDecision,
    WorkingOrder,
    affixed,
    new_intent,
)
from tradectl.planner.legs import ENTRY_LEG, ParsedRef, leg_kind, parse_order_ref
from tradectl.planner.ticks import Direction, PriceBand, PriceIncrements
from tradectl.schemas.models import RuleKind, Side

QUOTE_MAX_AGE = timedelta(minutes=15)

# Statuses after which an order can no longer fill; the adapter should not report them as
# working, but the planner must not act on them if it does.
TERMINAL_STATUSES = frozenset({"Filled", "Cancelled", "ApiCancelled"})
PENDING_CANCEL = "PendingCancel"


def _as_utc(moment: datetime) -> datetime:
    """Times without a zone are UTC, so that aware and naive times compare."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def short_hash(*parts: object) -> str:
    """Eight hex digits of SHA-256 over the parts' reprs: stable across processes."""
    text = "|".join(map(repr, parts))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


_Frozen = TypeVar("_Frozen")
# Per class: its defaults, and how many fields it has.
_SHAPES: dict[type, tuple[dict[str, Any], int]] = {}


def built(cls: type[_Frozen], **values: Any) -> _Frozen:
    """``cls(**values)`` for a frozen dataclass without slots, ``__post_init__`` or default
    factories (``OwnedOrder``: one per working order of a large account), at a third of the
    cost: a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``.
    Equal to what ``__init__`` builds; a missing or unknown field is a TypeError as there.
    ``Intent`` and ``OrderSpec`` have slots and their own builders (``new_intent``,
    ``new_order_spec``)."""
    shape = _SHAPES.get(cls)
    if shape is None:
        declared = fields(cls)  # type: ignore[arg-type]
        if any(item.default_factory is not MISSING for item in declared):
            raise TypeError(f"built() cannot fill the default factories of {cls.__name__}")
        defaults = {item.name: item.default for item in declared if item.default is not MISSING}
        shape = _SHAPES[cls] = (defaults, len(declared))
    defaults, count = shape
    instance: _Frozen = object.__new__(cls)
    state = instance.__dict__
    state.update(defaults)
    state.update(values)
    if len(state) != count:
        raise TypeError(f"{cls.__name__}: fields {sorted(values)} do not match its declaration")
    return instance


def spec_hash(spec: OrderSpec) -> str:
    """``short_hash`` of the order's fields in their order, but ``outside_rth`` only as the
    word ``"outside_rth"`` at the end when it is set, with the text written in one format
    string (the same bytes: tests/planner/test_alloc_fast_paths.py). ``outside_rth`` came
    after the first release: left out of the hash while False, so a modify journaled by an
    earlier tradectl keeps its key across an upgrade (exactly once)."""
    text = (
        f"{spec.symbol!r}|{spec.action!r}|{spec.quantity!r}|{spec.order_type!r}|"
        f"{spec.order_ref!r}|{spec.tif!r}|{spec.limit_price!r}|{spec.aux_price!r}|"
        f"{spec.trailing_percent!r}|{spec.parent_ref!r}|{spec.oca_group!r}|{spec.transmit!r}"
    )
    if spec.outside_rth:
        text += "|'outside_rth'"
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def round_to_tick(price: float, increments: PriceIncrements, direction: Direction) -> float:
    """The nearest price IB accepts on one side of ``price`` (daemon/planner/ticks.py)."""
    return increments.round(price, direction)


def round_passive(price: float, increments: PriceIncrements, action: Side) -> float:
    """Round a limit price to the tick on the less aggressive side: BUY down, SELL up."""
    return increments.passive(price, action)


def unusable_price(price: float, increments: PriceIncrements) -> str | None:
    """Why no order can be priced from ``price`` (a last price, a fill price, a rule's own
    price) on this contract's grid, in words that follow the price, or None when one can
    (docs/planning.md, "Prices IB cannot use"): below one tick a buy limit rounds to 0 and
    the shares it buys are nonsense or overflow; at or above ``increments.highest`` the
    orders' prices are no longer sent exactly, and it is a data error more likely than a
    price."""
    lowest = increments.lowest
    if price != price:
        return "is not a number"
    if price < lowest:
        return f"{price:g} is below one tick ({lowest:g})"
    if not price < increments.highest:
        finest = min(band.increment for band in increments.bands)
        return (
            f"{price:g} is not below {increments.highest:g}, the highest price tradectl "
            f"plans with a {finest:g} tick"
        )
    return None


# The most shares one order may carry, exclusive: ib_insync sends a quantity as a float
# (``str`` of ``Order.totalQuantity``), which counts whole shares exactly only below 2**53.
# No order near it is real: it is a sizing from a price or value that is a data error.
MAX_ORDER_QUANTITY = 2**53


def working_shares(
    orders: Iterable[WorkingOrder],
) -> tuple[dict[str, float], dict[str, float]]:
    """Shares the given live orders may still add per symbol, buys and sells apart: the worst
    case ``risk.max_position_fraction`` counts, in the gate and in the allocations' room."""
    buys: dict[str, float] = {}
    sells: dict[str, float] = {}
    for order in orders:
        side = buys if order.action == "BUY" else sells
        side[order.symbol] = side.get(order.symbol, 0.0) + order.remaining
    return buys, sells


def lots_down(quantity: float, lot: int) -> int:
    """``quantity`` rounded down to a whole number of lots (a hair of float noise tolerated)."""
    if quantity <= 0:
        return 0
    return math.floor(quantity / lot + 1e-9) * lot


def signed(action: Side, quantity: float) -> float:
    return quantity if action == "BUY" else -quantity


def opposite(action: Side) -> Side:
    return "SELL" if action == "BUY" else "BUY"


def reduces(position: float, action: Side, quantity: float) -> bool:
    """True when the order only shrinks the position towards zero, never past it."""
    after = position + signed(action, quantity)
    return position != 0 and abs(after) < abs(position) and after * position >= 0


def money(value: float) -> str:
    """``31250.0`` -> ``"31,250"``; ``9515.5`` -> ``"9,515.50"``; a NaN or an infinity as
    ``nan`` or ``inf``: a note about a broken figure must not stop the plan."""
    if not math.isfinite(value):
        return f"{value}"
    if abs(value - round(value)) < 0.005:
        return f"{round(value):,}"
    return f"{value:,.2f}"


def shares(quantity: float) -> str:
    whole = int(quantity)
    if quantity == whole:
        return f"{whole:,}"
    return f"{quantity:,}"


def working_price(order: WorkingOrder, fallback: float | None) -> float | None:
    """The price that bounds a working order's value: its limit, else its stop, else the quote."""
    if order.limit_price is not None:
        return order.limit_price
    if order.aux_price is not None:
        return order.aux_price
    return fallback


def buy_price(order: WorkingOrder, last: float | None) -> float | None:
    """The price that bounds a working buy's value (``working_price``); None when there is no
    usable one: a limit or stop that is not a finite number of 0 or more, or, for a market
    order, no quote or a last price that is not a finite number above 0. A buy without one
    must not count as worth 0: that would free cash for other buys."""
    price = working_price(order, last)
    if price is None or not 0 <= price < math.inf:
        return None
    if price == 0 and order.limit_price is None and order.aux_price is None:
        return None
    return price


def unvalued_buy(order: WorkingOrder, last: float | None) -> str:
    """Why a working buy has no ``buy_price``, in words."""
    if order.limit_price is not None:
        detail = f"limit {order.limit_price:g}"
    elif order.aux_price is not None:
        detail = f"stop {order.aux_price:g}"
    elif last is None:
        detail = "no quote"
    else:
        detail = f"last price {last:g}"
    return (
        f"no usable price to value the working buy of {order.symbol} "
        f"(order {order.order_id}, {detail})"
    )


FillKind = Literal["entry", "exit"]


def _generations_by_rule(journal: Mapping[tuple[str, str], float]) -> dict[str, set[str]]:
    by_rule: dict[str, set[str]] = {}
    for rule, generation in journal:
        by_rule.setdefault(rule, set()).add(generation)
    return by_rule


@dataclass(frozen=True)
class Fills:
    quantity: float
    average_price: float | None


@dataclass(frozen=True)
class OwnedOrder:
    """A working order with a tradectl orderRef, its ref parsed."""

    order: WorkingOrder
    rule: str
    generation: str
    leg: str
    kind: RuleKind | None

    @property
    def pending_cancel(self) -> bool:
        return self.order.status == PENDING_CANCEL


_ORDER_ID_OF_OWNED = attrgetter("order.order_id")


class Book:
    """Read-only index over an ``Observed``: live owned orders by rule, fills by rule, fresh
    prices, contract facts. Built once per pass, so planning stays linear in the account."""

    def __init__(self, observed: Observed, now: datetime) -> None:
        self.observed = observed
        self.now = now
        self._now_utc = _as_utc(now)
        # A quote older than the limit is one from before this instant: compared, not
        # subtracted (no timedelta per quote), which is the same answer when ``now`` is in UTC,
        # as the runtime passes it; in another zone (whose offset may change within the limit)
        # the age is subtracted.
        self._stale_before = self._now_utc - QUOTE_MAX_AGE if self._now_utc.tzinfo is UTC else None
        self._market_hours = observed.market_hours
        self._quotes = observed.quotes
        self.owned: list[OwnedOrder] = []
        self._by_rule: dict[tuple[RuleKind | None, str], list[OwnedOrder]] = {}
        self._completed: dict[tuple[str, str], WorkingOrder] = {}
        self._ib_filled: dict[str, dict[tuple[str, str], float]] = {}
        # One pass per list, each orderRef parsed once: the live, owned and manual orders, the
        # completed ones and IB's fills read the same parse.
        live: list[WorkingOrder] = []
        manual: list[WorkingOrder] = []
        filled: list[tuple[WorkingOrder, ParsedRef]] = []
        for order in observed.working_orders:
            is_live = order.status not in TERMINAL_STATUSES
            if is_live:
                live.append(order)
            parsed = parse_order_ref(order.order_ref)
            if parsed is None:
                manual.append(order)
                continue
            if is_live:
                rule, generation, leg = parsed
                kind = leg_kind(leg)
                # Built without the dataclass __init__ (thousands of orders in a large account).
                owned = built(
                    OwnedOrder, order=order, rule=rule, generation=generation, leg=leg, kind=kind
                )
                self.owned.append(owned)
                by_rule = self._by_rule.get((kind, rule))
                if by_rule is None:
                    by_rule = self._by_rule[(kind, rule)] = []
                by_rule.append(owned)
            if order.filled > 0:
                filled.append((order, parsed))
        for order in observed.completed_orders:
            parsed = parse_order_ref(order.order_ref)
            if parsed is not None:
                self._completed[(parsed.rule, parsed.leg)] = order
                if order.filled > 0:
                    filled.append((order, parsed))
        for order, parsed in filled:
            by_ref = self._ib_filled.setdefault(parsed.rule, {})
            key = (order.order_ref or "", parsed.leg)
            by_ref[key] = max(by_ref.get(key, 0.0), order.filled)
        # ``observed.manual_orders`` (working orders without a tradectl orderRef), from the
        # same parse.
        self.manual: tuple[WorkingOrder, ...] = tuple(manual)
        self.live: tuple[WorkingOrder, ...] = tuple(live)
        for orders in self._by_rule.values():
            orders.sort(key=_ORDER_ID_OF_OWNED)
        self._journaled = {
            "entry": _generations_by_rule(observed.entry_fills),
            "exit": _generations_by_rule(observed.exit_fills),
        }
        self._increments: dict[tuple[tuple[PriceBand, ...], float], PriceIncrements] = {}
        self._executions: dict[str, list[tuple[str, str, Execution]]] = {}
        for execution in observed.executions:
            parsed = parse_order_ref(execution.order_ref)
            if parsed is not None:
                rule, generation, leg = parsed
                self._executions.setdefault(rule, []).append((generation, leg, execution))

    def owned_by(self, kind: RuleKind | None, rule: str) -> list[OwnedOrder]:
        return self._by_rule.get((kind, rule), [])

    def owned_rules(self, kind: RuleKind | None) -> list[str]:
        return sorted(rule for (found, rule) in self._by_rule if found == kind)

    def fills(self, rule: str, legs: Callable[[str], bool], which: FillKind) -> Fills:
        """Filled quantity of the rule's legs matching ``legs`` over all its generations, with
        the journal's ``entry_fills`` (and prices) or ``exit_fills`` as ``which`` says.

        Per generation the journal's cumulative quantity and today's executions are two views
        of the same fills, so the larger one counts (never their sum). The average price comes
        from the journal when it has one, else from today's executions when they cover the
        whole quantity; None when unknown.
        """
        observed = self.observed
        journal = observed.entry_fills if which == "entry" else observed.exit_fills
        journal_prices = observed.entry_fill_prices if which == "entry" else None
        executed: dict[str, list[Execution]] = {}
        for generation, leg, execution in self._executions.get(rule, []):
            if legs(leg):
                executed.setdefault(generation, []).append(execution)
        generations = self._journaled[which].get(rule, set()) | set(executed)
        quantity = 0.0
        notional = 0.0
        priced = True
        for generation in sorted(generations):
            from_journal = journal.get((rule, generation), 0.0)
            today = executed.get(generation, [])
            from_executions = sum(execution.shares for execution in today)
            filled = max(from_journal, from_executions)
            if filled <= 0:
                continue
            quantity += filled
            price = None if journal_prices is None else journal_prices.get((rule, generation))
            if price is None and from_executions >= filled:
                price = sum(e.shares * e.price for e in today) / from_executions
            if price is None:
                priced = False
            else:
                notional += filled * price
        average = notional / quantity if priced and quantity > 0 else None
        # IB's own counts of the same fills: the filled quantity of the rule's working and
        # today's completed orders (by orderRef; an order modified to a new generation keeps
        # its fills, so only the rule's total compares), and the ledger's reconstruction.
        seen_at_ib = sum(
            filled for (found, leg), filled in self._ib_filled.get(rule, {}).items() if legs(leg)
        )
        floor = observed.entered_floor.get(rule, 0.0) if which == "entry" else 0.0
        return Fills(max(quantity, seen_at_ib, floor), average)

    def last_entry_day(self, rule: str) -> date | None:
        """The last trading day an entry order of ``rule`` filled or expired: today when today's
        executions show an entry fill, else from the journal; None when nobody knows."""
        today = self.observed.trading_day
        if today is not None and any(
            leg == ENTRY_LEG for _, leg, _ in self._executions.get(rule, [])
        ):
            return today
        days = [
            day
            for ended in (self.observed.entries_filled, self.observed.entries_expired)
            for (found, _), day in ended.items()
            if found == rule
        ]
        return max(days, default=None)

    def last_completed(self, rule: str, leg: str) -> WorkingOrder | None:
        """The last of today's finished orders of ``rule``'s ``leg``, as IB reported it."""
        return self._completed.get((rule, leg))

    def journaled_entry(self, rule: str) -> float:
        """Entered shares of ``rule`` the journal's ledger knows."""
        journaled = sum(
            filled for (found, _), filled in self.observed.entry_fills.items() if found == rule
        )
        return max(journaled, self.observed.entered_floor.get(rule, 0.0))

    def fresh_price(self, symbol: str) -> tuple[float | None, str]:
        """The last price of ``symbol`` and ``""``, or None and why it cannot be used."""
        quote = self._quotes.get(symbol)
        if quote is None:
            return None, f"{symbol}: no quote"
        last = quote.last
        if not (math.isfinite(last) and last > 0):
            return None, f"{symbol}: no usable last price ({last})"
        if quote.halted:
            return None, f"{symbol}: trading is halted (IB tick 49)"
        quoted = quote.time
        if quoted.tzinfo is None:
            quoted = _as_utc(quoted)
        stale_before = self._stale_before
        fresh = quoted >= stale_before if stale_before is not None else not self._stale(quoted)
        if fresh:
            return last, ""
        hours = None if self._market_hours is None else self._market_hours.get(symbol)
        # Outside the session no trade is expected, so the last trade is as fresh as it gets;
        # with no hours at all (planner unit tests) the age always counts.
        if hours is None or hours.extended_session(self.now) is not None:
            minutes = int((self._now_utc - quoted).total_seconds() // 60)
            return None, f"{symbol}: quote is stale ({minutes} min old, limit 15 min)"
        return last, ""

    @property
    def fresh_since(self) -> datetime | None:
        """The oldest quote time that is fresh whatever the market hours (``fresh_price``),
        when ``now`` is in UTC; None when the age must be subtracted instead."""
        return self._stale_before

    def _stale(self, quoted: datetime) -> bool:
        return self._now_utc - quoted > QUOTE_MAX_AGE

    def increments(self, facts: ContractFacts) -> PriceIncrements:
        """``facts.increments``, built once per market rule in this pass: the listings of a
        large account share a handful of them."""
        rule = (facts.price_bands, facts.min_tick)
        increments = self._increments.get(rule)
        if increments is None:
            increments = self._increments[rule] = facts.increments
        return increments

    def facts(self, symbol: str) -> ContractFacts | None:
        facts = self.observed.contracts.get(symbol)
        if facts is None or not (facts.min_tick > 0 and facts.lot_size >= 1):
            return None
        return facts


# A group's phase: its place in the plan.
CANCELS, SELLS, BUYS = 0, 1, 2


@dataclass(slots=True)
class Group:
    """Intents that must stay together and in this order (a bracket's parent and children).

    ``phase`` orders groups in the plan: ``CANCELS``, ``SELLS``, ``BUYS``, so that sells free
    cash before buys spend it and cancels free working-order slots first.
    """

    intents: list[Intent]
    phase: int


def _no_groups() -> tuple[list[list[Intent]], list[list[Intent]], list[list[Intent]]]:
    return ([], [], [])


@dataclass
class Draft:
    """What one rule kind contributes to a plan: its groups of intents by phase, its notes and
    its targets decisions.

    ``phases[CANCELS]``, ``phases[SELLS]`` and ``phases[BUYS]`` each hold that phase's groups
    (a group is a list of intents that stay together, mostly one) in the order they were
    added: the plan's order, with no ``Group`` object per intent and nothing to sort (a large
    plan is tens of thousands of one-intent groups)."""

    phases: tuple[list[list[Intent]], list[list[Intent]], list[list[Intent]]] = field(
        default_factory=_no_groups
    )
    notes: list[str] = field(default_factory=list)
    targets: list[TargetsDecision] = field(default_factory=list)

    def add_one(self, intent: Intent, phase: int) -> None:
        """``add(intent)`` when the caller knows its ``phase``: one intent, its own group (most
        of a large plan)."""
        self.phases[phase].append([intent])

    def extend_phase(self, phase: int, groups: list[list[Intent]]) -> None:
        """``groups`` (each intent's group) added to ``phase`` in their order."""
        self.phases[phase].extend(groups)

    def add(self, *intents: Intent) -> None:
        if intents:
            first = next((intent.order for intent in intents if intent.order is not None), None)
            self.phases[_phase(first)].append(list(intents))

    def extend(self, other: Draft) -> None:
        for mine, theirs in zip(self.phases, other.phases, strict=True):
            mine.extend(theirs)
        self.notes.extend(other.notes)
        self.targets.extend(other.targets)

    @property
    def groups(self) -> list[Group]:
        """The groups in plan order: cancels, sells, buys, each phase in the order added."""
        return [
            Group(intents, phase) for phase, groups in enumerate(self.phases) for intents in groups
        ]

    def intents(self) -> tuple[Intent, ...]:
        """Every intent in plan order."""
        return tuple(chain.from_iterable(chain.from_iterable(self.phases)))


def _phase(order: OrderSpec | None) -> int:
    """A group's place in the plan, from its first order: cancels (no order), sells, buys."""
    if order is None:
        return CANCELS
    return SELLS if order.action == "SELL" else BUYS


def cancel_intent(
    owned: OwnedOrder,
    kind: RuleKind,
    reason: str | DeferredReason,
    purpose: Purpose = "closing",
) -> Intent:
    """The cancel of ``owned``; ``reason`` is the text, or how to write it when it is first
    read (``DeferredReason``)."""
    order = owned.order
    return new_intent(
        f"{order.order_ref}#cancel",
        "cancel",
        kind,
        owned.rule,
        owned.leg,
        order.symbol,
        purpose,
        reason,
        None,
        order.order_id,
        working_price(order, None),
        order.remaining,
        0.0,
        None,
        None,
        1.0,
    )


# Two prices closer than this are the same price (float noise, far below any tick).
SAME_PRICE = 1e-9
_STOP_TYPES = frozenset({"STP", "STP LMT", "TRAIL"})


def within(working: float | None, wanted: float | None, tolerance: float) -> bool:
    """Two prices no further apart than ``tolerance``, or no price on both sides."""
    if working is None or wanted is None:
        return working is wanted
    return abs(working - wanted) <= tolerance


def already_this_spec(
    order: WorkingOrder, spec: OrderSpec, price_tolerance: float = SAME_PRICE
) -> bool:
    """Whether the working ``order`` already is ``spec``, so that no modify is due: the same
    orderRef, total quantity, order type and time in force, a limit no further away than
    ``price_tolerance`` (or none on both), and for a stop or trailing order the same stop price
    and trailing percent. A rule kind that lets a working limit lag the market (allocations, by
    their ``limit_offset_bps``) passes its own tolerance. Side and symbol are not compared: IB
    cannot modify them, so the rule kinds cancel and place anew instead."""
    if not (
        order.order_ref == spec.order_ref
        and order.total_quantity == spec.quantity
        and order.order_type == spec.order_type
        and order.tif == spec.tif
        and within(order.limit_price, spec.limit_price, price_tolerance)
    ):
        return False
    # Only these types use the stop fields; on a limit or market order they mean nothing.
    if spec.order_type not in _STOP_TYPES:
        return True
    return within(order.aux_price, spec.aux_price, price_tolerance) and within(
        order.trailing_percent, spec.trailing_percent, price_tolerance
    )


def modify_key(existing_ref: str, spec: OrderSpec) -> str:
    return f"{existing_ref}#mod:{spec_hash(spec)}"


def place_or_modify(
    spec: OrderSpec,
    *,
    kind: RuleKind,
    rule: str,
    leg: str,
    purpose: Purpose,
    reason: str | DeferredReason,
    estimated_price: float,
    current: float,
    target: float,
    existing: WorkingOrder | None,
    fx_rate: float = 1.0,
) -> Intent:
    """A standing order as ``spec`` says: placed afresh, or the working ``existing`` modified in
    place (docs/planning.md: modify, don't churn). ``fx_rate`` values it in the base currency.
    ``reason`` is the text, or how to write it when it is first read (``DeferredReason``)."""
    action: IntentAction = "place"
    key, order_id = spec.order_ref, None
    if existing is not None:
        assert existing.order_ref is not None
        action, key = "modify", modify_key(existing.order_ref, spec)
        order_id = existing.order_id
        reason = affixed(reason, prefix=f"order {existing.order_id}: ")
    return new_intent(
        key,
        action,
        kind,
        rule,
        leg,
        spec.symbol,
        purpose,
        reason,
        spec,
        order_id,
        estimated_price,
        current,
        target,
        None,
        existing,
        fx_rate,
    )
