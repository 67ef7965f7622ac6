"""Allocation rules: keep each target symbol within its drift band of the target weight.

Per symbol of each allocation rule (docs/planning.md, "Allocations"):

* targets are inline weights, or come from a file (``targets_from``, decided in
  ``tradectl.planner.targets``): weights, or shares (desired = the shares, to the lot; exact, no
  drift band; the rule holds when they are worth more than its capital);
* desired = round_down(weight x capital / price) to the lot; effective = position + signed
  remaining of the rule's current-generation working orders on that symbol;
* act only when |effective weight - target| > drift band and the gap is worth at least
  ``min_trade_value``; weight 0 means "sell everything", regardless of band and minimum;
* one working order per symbol: an existing one on the right side is modified (quantity, price,
  a new orderRef when the rule's generation changed), others are cancelled; a change IB cannot
  modify (side, order type) is a cancel now and a place on the next pass, so that an order and
  its replacement can never both fill;
* orders are sized down to ``risk.max_order_value``, and opening buys to what
  ``risk.max_position_fraction`` leaves after the position and every other working buy of the
  symbol (the gate's worst case); buys share the cash left after the buffer and every working
  buy, scaled down proportionally when short.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Literal

from tradectl.planner.cash import working_buys_value
from tradectl.planner.common import (
    BUYS,
    MAX_ORDER_QUANTITY,
    SAME_PRICE,
    SELLS,
    Book,
    Draft,
    OwnedOrder,
    already_this_spec,
    buy_price,
    cancel_intent,
    lots_down,
    money,
    place_or_modify,
    reduces,
    shares,
    signed,
    unusable_price,
    within,
    working_shares,
)
from tradectl.planner.domain import (
    ContractFacts,
    DeferredReason,
    Intent,
    OrderSpec,
    OrderType,
    Purpose,
    TargetsMode,
    WorkingOrder,
    affixed,
    new_intent,
    new_order_spec,
    stored_reason,
)
from tradectl.planner.legs import allocation_leg, order_ref
from tradectl.planner.money import Rates, base_rate, no_rate_reason
from tradectl.planner.targets import decide_targets
from tradectl.planner.ticks import PriceBand, PriceIncrements
from tradectl.schemas.models import Allocation, Risk, RuleKind, RuleSet, Side, rule_generation

KIND: RuleKind = "allocations"


class _Rule:
    """What is constant over one allocation rule's symbols in a pass, read once: the rule's
    settings, its limits in the base currency and the account's positions."""

    __slots__ = (
        "band",
        "band_text",
        "capital",
        "generation",
        "least_share_value",
        "max_order_value",
        "max_position_value",
        "min_trade_value",
        "mode",
        "name",
        "offset",
        "offset_bps",
        "order_type",
        "positions",
        "ref_prefix",
        "tif",
        "working_buys",
    )

    def __init__(
        self,
        name: str,
        allocation: Allocation,
        mode: TargetsMode,
        risk: Risk,
        book: Book,
        working_buys: Mapping[str, float],
    ) -> None:
        observed = book.observed
        self.name = name
        self.mode = mode
        self.generation = rule_generation(allocation)
        self.ref_prefix = order_ref(name, self.generation, "")
        self.capital = capital_of(allocation, observed.net_liquidation)
        # A share worth this much or less: the capital buys IB's limit of shares.
        self.least_share_value = self.capital / MAX_ORDER_QUANTITY
        self.band = allocation.drift.absolute
        self.band_text = f"{self.band:.4f}"
        self.min_trade_value = allocation.min_trade_value
        self.order_type: OrderType = "MKT" if allocation.order.type == "market" else "LMT"
        self.offset_bps = allocation.order.limit_offset_bps
        self.offset = self.offset_bps / 10_000
        self.tif: Literal["DAY", "GTC"] = allocation.order.tif
        self.max_position_value = risk.max_position_fraction * observed.net_liquidation
        self.max_order_value = risk.max_order_value
        self.positions = observed.positions
        self.working_buys = working_buys


# What ``_describe`` writes a trade's reason from: the rule's mode and band text, the target's
# amount, the position, the effective position, the desired shares, whether the position limit
# capped them, and the target's, the effective and the capped target weight.
_Description = tuple[TargetsMode, str, float, float, float, int, bool, float, float, float]


@dataclass(slots=True)
class _Want:
    """The order one symbol of one rule needs after sizing, before the cash check.
    ``tolerance``: how far the carrier's limit may lag the fresh one (0 without a carrier)."""

    rule: _Rule
    symbol: str
    action: Side
    quantity: int
    order_type: OrderType
    limit_price: float | None
    estimated_price: float
    fx_rate: float
    lot: int
    tolerance: float
    desired: int
    position: float
    reason: str | DeferredReason
    carrier: OwnedOrder | None
    # The order and its leg, once built for the carrier check (``_unchanged``), for ``_emit``;
    # None until then, and again when the cash check changes the quantity.
    built_order: tuple[OrderSpec, str] | None = None

    @property
    def unit_value(self) -> float:
        """One share at the estimated price, in the account's base currency."""
        return self.estimated_price * self.fx_rate


@dataclass
class _RuleOutcome:
    """One allocation rule's targets, and its buys waiting for the cash check (``_plan_buys``):
    each buy's intent already built, as its own group, in target order (when the cash is
    enough, as it mostly is, they join the plan as they are). ``demand`` is their value in the
    base currency, ``carriers`` the ids of the working orders they modify."""

    name: str
    allocation: Allocation
    targets: Mapping[str, float]
    mode: TargetsMode
    buys: list[list[Intent]] = field(default_factory=list)
    demand: float = 0.0
    carriers: set[int] = field(default_factory=set)
    # The general code's wants, by their place in ``buys``; and the rule, read once per pass.
    wants: dict[int, _Want] = field(default_factory=dict)
    rule: _Rule | None = None


class _Listings:
    """What the targets' contracts share, looked up once per pass and listing (currency, price
    magnifier and market rule) instead of per target: the rate to the base currency
    (``Rates``) and the price increments (``Book.increments``)."""

    __slots__ = ("_book", "_known", "_rates")

    def __init__(self, book: Book) -> None:
        self._book = book
        self._rates = Rates(book.observed)
        self._known: dict[
            tuple[str | None, int, tuple[PriceBand, ...], float],
            tuple[float | None, PriceIncrements],
        ] = {}

    def of(self, symbol: str, facts: ContractFacts) -> tuple[float | None, PriceIncrements]:
        """``symbol``'s rate (None without one) and increments; ``facts`` are its contract's."""
        listing = (facts.currency, facts.price_magnifier, facts.price_bands, facts.min_tick)
        known = self._known.get(listing)
        if known is None:
            known = self._known[listing] = (self._rates.of(symbol), self._book.increments(facts))
        return known


def capital_of(allocation: Allocation, net_liquidation: float) -> float:
    if allocation.capital.amount is not None:
        return allocation.capital.amount
    assert allocation.capital.fraction_of_nav is not None
    return allocation.capital.fraction_of_nav * net_liquidation


def cash_buffer_of(allocation: Allocation, net_liquidation: float) -> float:
    if allocation.cash_buffer.amount is not None:
        return allocation.cash_buffer.amount
    assert allocation.cash_buffer.fraction_of_nav is not None
    return allocation.cash_buffer.fraction_of_nav * net_liquidation


def plan_allocations(rules: RuleSet, book: Book, other_buys_value: float) -> Draft:
    """Intents for every allocation rule. ``other_buys_value`` is the cash that buys planned in
    this pass by other rule kinds will take."""
    draft = Draft()
    observed = book.observed

    for rule in book.owned_rules(KIND):
        if rule in rules.allocations:
            continue
        for owned in book.owned_by(KIND, rule):
            if not owned.pending_cancel:
                draft.add(cancel_intent(owned, KIND, f"rule allocations.{rule} was removed"))

    if rules.allocations and rules.schedule.rebalance is not None and not observed.allocations_due:
        cron = rules.schedule.rebalance.cron
        draft.notes.append(
            f"allocations: not due (schedule.rebalance {cron!r}); nothing planned until then"
        )
        return draft

    # Every live buy of each symbol (manual orders and every rule's included), as the gate's
    # ``risk.max_position_fraction`` check counts them.
    working_buys, _ = working_shares(book.live)
    outcomes: list[_RuleOutcome] = []
    for name in sorted(rules.allocations):
        allocation = rules.allocations[name]
        if allocation.targets_from is None:
            outcome = _RuleOutcome(name, allocation, allocation.inline_targets, "weight")
        else:
            decision = decide_targets(
                name,
                allocation.targets_from,
                observed.targets_sources.get(name),
                observed.accepted_targets.get(name),
                observed.quotes,
                book.now,
            )
            draft.targets.append(decision)
            if decision.status != "trading" or decision.targets is None:
                _hold(name, decision.reason, book, draft)
                continue
            targets = decision.targets
            outcome = _RuleOutcome(name, allocation, targets.targets, targets.mode)
            if not _shares_within_capital(outcome, book, draft):
                continue
        _plan_rule(outcome, rules, book, draft, working_buys)
        outcomes.append(outcome)

    _plan_buys(outcomes, book, draft, other_buys_value)
    return draft


def _hold(name: str, reason: str, book: Book, draft: Draft) -> None:
    """A held allocation places and modifies nothing; its working orders, which chase targets
    that are no longer confirmed, are cancelled. Positions stay as they are."""
    draft.notes.append(f"allocations.{name}: {reason}")
    for owned in book.owned_by(KIND, name):
        if not owned.pending_cancel:
            draft.add(cancel_intent(owned, KIND, f"allocation held: {reason}"))


def _shares_within_capital(outcome: _RuleOutcome, book: Book, draft: Draft) -> bool:
    """Target shares are bounded by the rule's capital: a file asking for more (a strategy
    writing 10,000 instead of 100, say) holds the allocation instead of being traded."""
    if outcome.mode != "shares":
        return True
    capital = capital_of(outcome.allocation, book.observed.net_liquidation)
    value = 0.0
    for symbol, quantity in outcome.targets.items():
        price, _ = book.fresh_price(symbol)
        value += quantity * (price or 0.0) * base_rate(book.observed, symbol)
    if value <= capital + 1e-9:
        return True
    _hold(
        outcome.name,
        f"target shares are worth {money(value)}, more than the rule's capital "
        f"{money(capital)}; holding",
        book,
        draft,
    )
    return False


def _plan_rule(
    outcome: _RuleOutcome,
    rules: RuleSet,
    book: Book,
    draft: Draft,
    working_buys: Mapping[str, float],
) -> None:
    name, allocation = outcome.name, outcome.allocation
    rule = _Rule(name, allocation, outcome.mode, rules.risk, book, working_buys)
    if not rule.capital > 0:
        draft.notes.append(f"allocations.{name}: capital is {money(rule.capital)}; nothing planned")
        return
    by_symbol: dict[str, list[OwnedOrder]] = {}
    for owned in book.owned_by(KIND, name):
        by_symbol.setdefault(owned.order.symbol, []).append(owned)

    for symbol in sorted(by_symbol):
        if symbol in outcome.targets:
            continue
        for owned in by_symbol[symbol]:
            if not owned.pending_cancel:
                reason = f"{symbol} is no longer a target of allocations.{name}"
                draft.add(cancel_intent(owned, KIND, reason))

    unreachable = (
        sorted(symbol for symbol, weight in outcome.targets.items() if 0 < weight <= rule.band)
        if outcome.mode == "weight"
        else []
    )
    if unreachable:
        listed = ", ".join(unreachable[:5]) + (", ..." if len(unreachable) > 5 else "")
        draft.notes.append(
            f"allocations.{name}: {len(unreachable)} target(s) ({listed}) weigh no more than the "
            f"drift band {allocation.drift.absolute:g}: from zero they are never bought; "
            "narrow drift.absolute"
        )

    outcome.rule = rule
    _plan_targets(rule, outcome, by_symbol, _Listings(book), book, draft)


def _plan_targets(
    rule: _Rule,
    outcome: _RuleOutcome,
    by_symbol: Mapping[str, list[OwnedOrder]],
    listings: _Listings,
    book: Book,
    draft: Draft,
) -> None:
    """Every target of ``rule``, in symbol order.

    One loop with the common cases written out in it, for a weight target with a fresh quote
    (at or after ``Book.fresh_since``), valid contract facts and a rate: without a working
    order of the rule, a trade that needs no cap, slice or room (most targets of a rebalance);
    with one working order of the rule, inside the band, that stays as it is (most targets
    of the passes after it). Per target every call and every read of the rule's settings is a
    measurable share of the plan (benchmarks/README.md, round six); here the settings are read
    once and the arithmetic is ``_decide_symbol``'s. A target with its one working order that
    must change goes to the decision (``_decided``) with what the loop found usable; every other
    target, and every case this loop leaves open, goes to the general code (``_plan_symbol``),
    which writes the notes (tests/planner/test_alloc_fast_paths.py compares the loop with the
    general code on random accounts that reach every case)."""
    quotes, contracts = book.observed.quotes, book.observed.contracts
    fresh_since = book.fresh_since if rule.mode == "weight" else None
    capital, band, min_trade_value = rule.capital, rule.band, rule.min_trade_value
    max_position_value, max_order_value = rule.max_position_value, rule.max_order_value
    positions, working_buys = rule.positions, rule.working_buys
    order_type, band_text = rule.order_type, rule.band_text
    market = order_type == "MKT"
    buy_through, sell_through = 1 + rule.offset, 1 - rule.offset
    generation, tif = rule.generation, rule.tif
    general = (book, listings, outcome, draft)
    no_orders: list[OwnedOrder] = []
    least_value = rule.least_share_value
    for symbol, amount in sorted(outcome.targets.items()):
        orders = by_symbol.get(symbol)
        quote, facts = quotes.get(symbol), contracts.get(symbol)
        if fresh_since is None or not amount > 0 or quote is None or facts is None:
            _plan_symbol(rule, symbol, amount, orders or no_orders, *general)
            continue
        price, quoted = quote.last, quote.time
        if (
            not 0 < price < math.inf
            or quote.halted
            or quoted.tzinfo is None
            or quoted < fresh_since
            or not (facts.min_tick > 0 and facts.lot_size >= 1)
        ):
            _plan_symbol(rule, symbol, amount, orders or no_orders, *general)
            continue
        rate, tick = listings.of(symbol, facts)
        if rate is None or not tick.lowest <= price < tick.highest or price * rate <= least_value:
            _plan_symbol(rule, symbol, amount, orders or no_orders, *general)
            continue
        # The one working order of the rule a target can have here: of this generation and
        # not being cancelled (any other case is the general code's).
        carried: WorkingOrder | None = None
        if orders is not None:
            (owned, *others) = orders
            if others or owned.generation != generation or owned.pending_cancel:
                _plan_symbol(rule, symbol, amount, orders, *general)
                continue
            carried = owned.order
        lot = facts.lot_size
        value = price * rate
        held = positions.get(symbol)
        position = 0.0 if held is None else held.quantity
        # As ``_decide_symbol`` sums the working orders of this generation.
        working = 0.0 if carried is None else 0.0 + signed(carried.action, carried.remaining)
        effective = position + working
        # ``lots_down`` written out, here and below: of a quantity that cannot be negative, or
        # of a limit whose ``lots_down`` would be 0 when negative, where the written-out form
        # sends the target to the general code (an account with a negative NAV).
        desired = math.floor(amount * capital / value / lot + 1e-9) * lot
        if desired > math.floor(max_position_value / value / lot + 1e-9) * lot:
            # Capped by risk.max_position_fraction.
            _plan_symbol(rule, symbol, amount, orders or no_orders, *general)
            continue
        effective_weight = effective * value / capital
        act = (
            abs(effective_weight - amount) > band
            and abs(desired - effective) * value >= min_trade_value
        )
        if carried is not None:
            # Everything ``_plan_symbol`` checks before it decides was found usable above: its
            # decision is asked for directly (``_decided``).
            assert orders is not None
            if act or carried.order_type not in ("LMT", "MKT"):
                _decided(rule, symbol, amount, price, rate, tick, lot, orders, outcome, draft)
                continue
            # Inside the band, the order stays as it is (``_kept``) unless its limit lags the
            # fresh one by more than the tolerance, or its size or time in force changed
            # (``_unchanged``): then the decision modifies it.
            fresh = (
                None
                if market or carried.order_type == "MKT"
                else tick.passive(
                    price * (buy_through if carried.action == "BUY" else sell_through),
                    carried.action,
                )
            )
            if (
                # The size ``_spec`` would send: what is filled and what remains.
                carried.total_quantity == int(carried.filled) + int(carried.remaining)
                and carried.tif == tif
                and within(carried.limit_price, fresh, _tolerance(rule, price, tick) + SAME_PRICE)
            ):
                continue
            _decided(rule, symbol, amount, price, rate, tick, lot, orders, outcome, draft)
            continue
        if not act:
            continue
        quantity = math.floor(abs(desired - position) / lot + 1e-9) * lot
        if quantity == 0:
            continue
        action: Side = "BUY" if desired - position > 0 else "SELL"
        limit_price = (
            None
            if market
            else tick.passive(price * (buy_through if action == "BUY" else sell_through), action)
        )
        estimated = limit_price if limit_price is not None else price
        if quantity > math.floor(max_order_value / (estimated * rate) / lot + 1e-9) * lot or (
            action == "BUY"
            and (position + working_buys.get(symbol, 0.0) + quantity) * value > max_position_value
        ):
            # Sliced to risk.max_order_value, or limited by the room under
            # risk.max_position_fraction.
            _plan_symbol(rule, symbol, amount, no_orders, *general)
            continue
        description: _Description = (
            "weight",
            band_text,
            amount,
            position,
            effective,
            desired,
            False,
            amount,
            effective_weight,
            amount,
        )
        reason: DeferredReason = (_describe, description)
        intent = _placed(
            rule, symbol, action, quantity, order_type, limit_price, estimated, rate, desired,
            position, reason,
        )  # fmt: skip
        if action == "SELL":
            draft.add_one(intent, SELLS)
        else:
            # A buy waits for the cash check (``_plan_buys``).
            outcome.buys.append([intent])
            outcome.demand += quantity * (estimated * rate)


def _plan_symbol(
    rule: _Rule,
    symbol: str,
    amount: float,
    orders: list[OwnedOrder],
    book: Book,
    listings: _Listings,
    outcome: _RuleOutcome,
    draft: Draft,
) -> None:
    """One target of ``rule``, any case: the notes of a target that cannot be planned now,
    else the decision (``_decide_symbol``)."""
    name = rule.name
    for owned in orders:
        if owned.pending_cancel:
            draft.notes.append(
                f"allocations.{name}: {symbol}: waiting for the cancel of order "
                f"{owned.order.order_id} to be confirmed"
            )
            return
    price, why = book.fresh_price(symbol)
    if price is None:
        draft.notes.append(f"allocations.{name}: {why}; {symbol} not planned")
        return
    facts = book.facts(symbol)
    if facts is None:
        draft.notes.append(
            f"allocations.{name}: {symbol}: no contract details (min tick, lot size); not planned"
        )
        return
    rate, tick = listings.of(symbol, facts)
    if rate is None:
        draft.notes.append(f"allocations.{name}: {no_rate_reason(book.observed, symbol)}")
        return
    unusable = unusable_price(price, tick)
    if unusable is not None:
        draft.notes.append(f"allocations.{name}: {symbol}: last price {unusable}: not planned")
        return
    if price * rate <= rule.least_share_value:
        draft.notes.append(
            f"allocations.{name}: {symbol}: at {price:g} its capital of {rule.capital:,.6g} "
            f"buys {MAX_ORDER_QUANTITY:,} shares or more (IB's limit): not planned"
        )
        return
    _decided(rule, symbol, amount, price, rate, tick, facts.lot_size, orders, outcome, draft)


def _decided(
    rule: _Rule,
    symbol: str,
    amount: float,
    price: float,
    rate: float,
    tick: PriceIncrements,
    lot: int,
    orders: list[OwnedOrder],
    outcome: _RuleOutcome,
    draft: Draft,
) -> None:
    """The decision for one target whose orders, price, contract and rate ``_plan_symbol``
    found usable (``_decide_symbol``), into the plan (``_wanted``)."""
    for want in _decide_symbol(rule, symbol, amount, price, rate, tick, lot, orders, draft):
        _wanted(want, outcome, draft)


def _wanted(want: _Want, outcome: _RuleOutcome, draft: Draft) -> None:
    """A want that changes the account (not a carrier ``_unchanged``): a sell goes now, a buy
    waits for the cash check (``_plan_buys``)."""
    if want.carrier is not None and _unchanged(want):
        return
    if want.action == "SELL":
        _emit(want, draft)
        return
    outcome.wants[len(outcome.buys)] = want
    outcome.buys.append([_built(want)])
    outcome.demand += want.quantity * want.unit_value
    if want.carrier is not None:
        outcome.carriers.add(want.carrier.order.order_id)


def _describe(
    mode: TargetsMode,
    band_text: str,
    amount: float,
    position: float,
    effective: float,
    desired: int,
    capped: bool,
    weight: float,
    effective_weight: float,
    target_weight: float,
) -> str:
    """Why a symbol trades, in words (a ``_Description``). ``target_weight`` is the target
    weight after the position cap (``capped``). ``desired`` is a whole number of shares, so it
    is written as ``shares`` would write it."""
    if amount == 0:
        return f"target {mode} 0: sell all {shares(position)} shares"
    if mode == "shares":
        text = f"target {shares(amount)} shares; {shares(effective)} → {desired:,} shares"
        if capped:
            text += " (capped by risk.max_position_fraction)"
        return text
    text = (
        f"weight {effective_weight:.4f} vs target {target_weight:.4f} (band "
        f"{band_text}); {shares(effective)} → {desired:,} shares"
    )
    if capped:
        text += f" (target {weight:g} capped by risk.max_position_fraction)"
    return text


def _decide_symbol(
    rule: _Rule,
    symbol: str,
    amount: float,
    price: float,
    rate: float,
    tick: PriceIncrements,
    lot: int,
    orders: list[OwnedOrder],
    draft: Draft,
) -> list[_Want]:
    # ``price`` is in the contract's currency (limit prices); ``value`` is one share in the
    # account's base currency, what capital, weights and risk limits are measured in.
    value = price * rate
    capital = rule.capital
    mode = rule.mode
    generation = rule.generation
    weight = amount if mode == "weight" else amount * value / capital
    held = rule.positions.get(symbol)
    position = 0.0 if held is None else held.quantity
    working = 0.0
    for owned in orders:
        if owned.generation == generation:
            working += signed(owned.order.action, owned.order.remaining)
    effective = position + working
    if amount == 0:
        desired = 0
    elif mode == "shares":
        desired = lots_down(amount, lot)
    else:
        desired = lots_down(weight * capital / value, lot)
    # A capital above NAV can ask for more than the gate allows; aim at what it allows
    # rather than planning a buy that stays blocked and holds cash from the other targets.
    # The gate checks the same limit again (defence in depth, planner/gate.py).
    position_cap = lots_down(rule.max_position_value / value, lot)
    capped = desired > position_cap
    if capped:
        desired = position_cap
    target_weight = desired * value / capital if capped else weight
    effective_weight = effective * value / capital
    description: _Description = (
        mode,
        rule.band_text,
        amount,
        position,
        effective,
        desired,
        capped,
        weight,
        effective_weight,
        target_weight,
    )

    if amount == 0:
        act = position != 0 or effective != 0
        wanted_quantity = math.floor(abs(position) + 1e-9)
    elif mode == "shares":
        # Shares targets are exact: no drift band, only the minimum trade value.
        gap = desired - effective
        act = gap != 0 and abs(gap) * value >= rule.min_trade_value
        wanted_quantity = lots_down(abs(desired - position), lot) if act else 0
    else:
        gap = desired - effective
        act = (
            abs(effective_weight - target_weight) > rule.band
            and abs(gap) * value >= rule.min_trade_value
        )
        wanted_quantity = lots_down(abs(desired - position), lot) if act else 0

    if not act:
        if not orders:
            return []
        wants: list[_Want] = []
        for owned in orders:
            if owned.generation != generation:
                reason = affixed(
                    (_describe, description), prefix="left by an earlier version of the rule; "
                )
                draft.add(cancel_intent(owned, KIND, reason))
                continue
            kept = _kept(owned, rule, price, rate, tick, lot, desired, position)
            if kept is not None:
                wants.append(kept)
        return wants

    need = (0 if amount == 0 else desired) - position
    action: Side = "BUY" if need > 0 else "SELL"
    order_type = rule.order_type
    limit_price = _limit_price(rule, price, tick, action)
    estimated = limit_price if limit_price is not None else price

    carrier: OwnedOrder | None = None
    if orders:
        blocking_change = False
        if len(orders) > 1:
            orders = sorted(orders, key=lambda o: (o.generation != generation, o.order.order_id))
        for owned in orders:
            order = owned.order
            same_form = order.action == action and order.order_type == order_type
            if carrier is None and same_form and wanted_quantity > 0:
                carrier = owned
                continue
            if not same_form:
                blocking_change = True
            reason = affixed((_describe, description), prefix="replaced: ")
            draft.add(cancel_intent(owned, KIND, reason))
        if wanted_quantity == 0:
            return []
        if blocking_change and carrier is None:
            draft.notes.append(
                f"allocations.{rule.name}: {symbol}: a working order on the other side or of "
                "another type is being cancelled; the new order follows on the next pass"
            )
            return []
    elif wanted_quantity == 0:
        return []

    already_filled = 0 if carrier is None else int(carrier.order.filled)
    quantity = wanted_quantity
    suffix = ""
    # Sliced to the gate's limit, which the gate checks again (defence in depth, planner/gate.py).
    per_order_cap = lots_down(rule.max_order_value / (estimated * rate), lot)
    if per_order_cap == 0 and carrier is not None:
        # Modified to one lot, the order would still be above the limit: the gate blocks that
        # modify and the old order would keep working (and holding cash) as it is. A cancel is
        # always allowed; the one lot follows on the next pass, for the gate to show the block.
        one_lot = f"one lot of {symbol} ({money(lot * estimated * rate)})"
        draft.add(
            cancel_intent(
                carrier,
                KIND,
                f"{one_lot} is worth more than risk.max_order_value "
                f"({money(rule.max_order_value)}); {_describe(*description)}",
            )
        )
        return []
    if per_order_cap == 0:
        quantity = min(wanted_quantity, lot)
    elif already_filled + wanted_quantity > per_order_cap:
        quantity = per_order_cap - already_filled
        if quantity <= 0:
            assert carrier is not None
            draft.add(
                cancel_intent(
                    carrier,
                    KIND,
                    "partly filled order at risk.max_order_value; a new slice follows",
                )
            )
            return []
        suffix = (
            f"; sliced: {shares(quantity)} of {shares(wanted_quantity)} shares, "
            "risk.max_order_value"
        )
    if action == "BUY":
        # The gate's worst case, counted before cash is shared (``_room_to_buy``); the sum
        # first, so that a buy well inside the limit costs one look-up.
        others = rule.working_buys.get(symbol, 0.0)
        if carrier is not None:
            others -= carrier.order.remaining
        if (position + others + quantity) * value > rule.max_position_value and not reduces(
            position, action, quantity
        ):
            room = _room_to_buy(rule, value, position, others, carrier, lot)
            if quantity > room:
                why = _room_text(rule, position, others, value, room)
                if room == 0:
                    draft.notes.append(f"allocations.{rule.name}: {symbol}: no buy: {why}")
                    return []
                suffix = f"{suffix}; limited: {room:,} of {quantity:,} shares, {why}"
                quantity = room

    return [
        _Want(  # positional, in field order: keywords cost a third of a µs per target
            rule,
            symbol,
            action,
            quantity,
            order_type,
            limit_price,
            estimated,
            rate,
            lot,
            # Only a carrier's limit is compared with the fresh one (``_already``).
            0.0 if carrier is None else _tolerance(rule, price, tick),
            desired,
            position,
            # Written when it is read (``Intent.reason``): most reasons of a large plan never are.
            (_describe, description)
            if not suffix
            else affixed((_describe, description), suffix=suffix),
            carrier,
        )
    ]


def _room_to_buy(
    rule: _Rule,
    value: float,
    position: float,
    others: float,
    carrier: OwnedOrder | None,
    lot: int,
) -> int:
    """Shares an opening buy may leave working under ``risk.max_position_fraction``: the
    position plus every other working buy of the symbol (``others``: manual orders, other
    rules' orders, this rule's orders being cancelled) plus this buy may not exceed the fraction
    of NAV, as the gate counts it. A buy the gate would block would keep its share of the cash
    in this pass and leave the other buys short (docs/planning.md, "Room under the position
    limit"). The carrier, which this buy modifies, is not another buy; a modify that does not
    grow it adds nothing, so it keeps at least its remaining quantity, as the gate lets it."""
    room = lots_down(rule.max_position_value / value - position - others, lot)
    return room if carrier is None else max(room, int(carrier.order.remaining))


def _room_text(rule: _Rule, position: float, others: float, value: float, room: int) -> str:
    return (
        f"risk.max_position_fraction {money(rule.max_position_value)}: position "
        f"{shares(position)} and other working buys of {shares(others)} shares at "
        f"{money(value)} leave room for {room:,}"
    )


def _tolerance(rule: _Rule, price: float, tick: PriceIncrements) -> float:
    """How far a working limit may lag the fresh one before it is repriced: the order's own
    offset, at least one tick. Repricing on every tick of the market would churn (OER)."""
    return max(price * rule.offset_bps / 10_000, tick.increment_at(price))


def _limit_price(rule: _Rule, price: float, tick: PriceIncrements, action: Side) -> float | None:
    if rule.order_type == "MKT":
        return None
    through = price * (1 + rule.offset) if action == "BUY" else price * (1 - rule.offset)
    return tick.passive(through, action)


def _kept(
    owned: OwnedOrder,
    rule: _Rule,
    price: float,
    rate: float,
    tick: PriceIncrements,
    lot: int,
    desired: int,
    position: float,
) -> _Want | None:
    """A current-generation order inside the band stays as it is; only its limit follows the
    market when it lags by more than the tolerance."""
    order = owned.order
    if order.order_type not in ("LMT", "MKT"):
        return None
    fresh = _limit_price(rule, price, tick, order.action) if order.order_type == "LMT" else None
    reason = "working order kept"
    if fresh is not None and order.limit_price is not None:
        reason = (
            f"repriced: limit {order.limit_price:g} is more than "
            f"{rule.offset_bps:g} bps (or a tick) away from {fresh:g}"
        )
    return _Want(
        rule,
        order.symbol,
        order.action,
        int(order.remaining),
        order.order_type,
        fresh,
        fresh if fresh is not None else price,
        rate,
        lot,
        _tolerance(rule, price, tick),
        desired,
        position,
        reason,
        owned,
    )


def _trade_digest(action: Side, quantity: int, desired: int, position: float) -> str:
    """``short_hash(action, quantity, desired, position)[:6]``, the hash in an allocation's
    leg, with the text written in one format string: the same bytes, so the same orderRef
    (tests/planner/test_hot_paths.py)."""
    text = f"{action!r}|{quantity!r}|{desired!r}|{position!r}"
    return sha256(text.encode()).hexdigest()[:6]


def _spec(want: _Want) -> tuple[OrderSpec, str]:
    """The order as ``want`` wants it at the broker, and its leg: a carrier of the rule's
    current generation keeps its orderRef; IB's quantity is the order's total, filled plus
    what should remain."""
    carrier = want.carrier
    if carrier is not None and carrier.generation == want.rule.generation:
        ref = carrier.order.order_ref
        assert ref is not None
        leg = carrier.leg
    else:
        digest = _trade_digest(want.action, want.quantity, want.desired, want.position)
        leg = allocation_leg(want.symbol, digest)
        ref = want.rule.ref_prefix + leg
    quantity = want.quantity if carrier is None else int(carrier.order.filled) + want.quantity
    order = _order(
        want.symbol, want.action, quantity, want.order_type, ref, want.rule.tif, want.limit_price
    )
    return order, leg


def _order(
    symbol: str,
    action: Side,
    quantity: int,
    order_type: OrderType,
    ref: str,
    tif: Literal["DAY", "GTC"],
    limit_price: float | None,
) -> OrderSpec:
    """An allocation's order of ``quantity`` shares in all, named ``ref``."""
    return new_order_spec(
        symbol,
        action,
        quantity,
        order_type,
        ref,
        tif,
        limit_price,
        None,
        None,
        None,
        None,
        True,
        False,
    )


def _already(want: _Want, spec: OrderSpec) -> bool:
    """The carrier already is ``spec``: its limit may lag the fresh one by the tolerance."""
    carrier = want.carrier
    return carrier is not None and already_this_spec(
        carrier.order, spec, price_tolerance=want.tolerance + SAME_PRICE
    )


def _unchanged(want: _Want) -> bool:
    """The carrier already is the want (see ``_already``). The order built to tell is kept
    for ``_emit`` (``_Want.order``)."""
    if want.carrier is None:
        return False
    want.built_order = _spec(want)
    return _already(want, want.built_order[0])


def _emit(want: _Want, draft: Draft) -> None:
    """Add a want's intent to the plan (``_built``)."""
    draft.add_one(_built(want), BUYS if want.action == "BUY" else SELLS)


def _built(want: _Want) -> Intent:
    """A want as a place or modify intent (a want with a carrier: one that is not
    ``_unchanged``)."""
    if want.carrier is not None:
        return _modify(want)
    return _placed(
        want.rule, want.symbol, want.action, want.quantity, want.order_type, want.limit_price,
        want.estimated_price, want.fx_rate, want.desired, want.position, want.reason,
    )  # fmt: skip


def _placed(
    rule: _Rule,
    symbol: str,
    action: Side,
    quantity: int,
    order_type: OrderType,
    limit_price: float | None,
    estimated_price: float,
    fx_rate: float,
    desired: int,
    position: float,
    reason: str | DeferredReason,
) -> Intent:
    """A new order of ``rule`` as an intent: ``_spec`` and ``place_or_modify`` without a
    carrier, written out, for most intents of a large plan are built here
    (tests/planner/test_alloc_fast_paths.py compares the two)."""
    leg = allocation_leg(symbol, _trade_digest(action, quantity, desired, position))
    ref = rule.ref_prefix + leg
    return new_intent(
        ref,
        "place",
        KIND,
        rule.name,
        leg,
        symbol,
        # ``reduces`` is False for no position (most new buys): not asked then.
        "closing" if position != 0 and reduces(position, action, quantity) else "opening",
        reason,
        _order(symbol, action, quantity, order_type, ref, rule.tif, limit_price),
        None,
        estimated_price,
        position,
        float(desired),
        None,
        None,
        fx_rate,
    )


def _modify(want: _Want) -> Intent:
    """The modify of ``want``'s carrier (``_built``)."""
    carrier = want.carrier
    assert carrier is not None
    spec, leg = _spec(want) if want.built_order is None else want.built_order
    position = want.position
    purpose: Purpose = "closing" if reduces(position, want.action, want.quantity) else "opening"
    return place_or_modify(
        spec,
        kind=KIND,
        rule=want.rule.name,
        leg=leg,
        purpose=purpose,
        reason=want.reason,
        estimated_price=want.estimated_price,
        current=position,
        target=float(want.desired),
        existing=carrier.order,
        fx_rate=want.fx_rate,
    )


def _plan_buys(
    outcomes: list[_RuleOutcome],
    book: Book,
    draft: Draft,
    other_buys_value: float,
) -> None:
    """Buys never spend cash below the rule's buffer. Spent already: every working buy that no
    buy below changes, at its own price (manual orders, other rules' orders, orders kept as
    they are, and orders being cancelled, which may still fill until IB confirms the cancel),
    and the buys other rule kinds plan in this pass. The working orders that the buys below
    change count at their new size."""
    observed = book.observed
    changed = set().union(*(outcome.carriers for outcome in outcomes))
    spent, unvalued = working_buys_value(book.live, observed, other_buys_value, changed)
    if unvalued and any(outcome.buys for outcome in outcomes):
        # The cash left is unknown: any buy might spend cash that is not there.
        for why in unvalued:
            draft.notes.append(
                f"allocations: {why}: its cash is unknown; no allocation buys are placed or changed"
            )
        return

    for outcome in outcomes:
        if not outcome.buys:
            continue
        buffer = cash_buffer_of(outcome.allocation, observed.net_liquidation)
        available = observed.cash - buffer - spent
        demand = outcome.demand
        if demand <= available:
            draft.extend_phase(BUYS, outcome.buys)
            spent += demand
            continue
        changing = _wants(outcome, observed.contracts)
        budget = max(available, 0.0)
        draft.notes.append(
            f"allocations.{outcome.name}: buys limited by cash: {money(budget)} available "
            f"(cash {money(observed.cash)} - buffer {money(buffer)} - working and planned buys "
            f"{money(spent)}) for {money(demand)} wanted; buys scaled down proportionally"
        )
        quantities = _share_cash_dropping(changing, budget, outcome.allocation.min_trade_value)
        for want, quantity in zip(changing, quantities, strict=True):
            if quantity == 0:
                if want.carrier is not None:
                    draft.add(cancel_intent(want.carrier, KIND, "no cash left for this buy"))
                    spent += _held_by_cancel(want)
                continue
            want.reason = affixed(
                want.reason,
                suffix=f"; cash-limited: {shares(quantity)} of {shares(want.quantity)} shares",
            )
            want.quantity = quantity
            want.built_order = None
            # Scaled down, a modify may come back to what its order already is.
            if not _unchanged(want):
                _emit(want, draft)
            spent += quantity * want.unit_value


def _wants(outcome: _RuleOutcome, contracts: Mapping[str, ContractFacts]) -> list[_Want]:
    """The rule's buys as wants again, for the cash to be shared among them: the general code's
    as it made them, a new order's intent as the want it is built from (the contract's lot, no
    carrier)."""
    rule = outcome.rule
    assert rule is not None
    wants: list[_Want] = []
    for index, (intent,) in enumerate(outcome.buys):
        want = outcome.wants.get(index)
        if want is None:
            order = intent.order
            assert order is not None and order.action == "BUY"
            assert intent.estimated_price is not None
            want = _Want(
                rule, intent.symbol, "BUY", order.quantity, order.order_type, order.limit_price,
                intent.estimated_price, intent.fx_rate, contracts[intent.symbol].lot_size, 0.0,
                int(intent.target_quantity), intent.current_quantity, stored_reason(intent),
                None,
            )  # fmt: skip
        wants.append(want)
    return wants


def _held_by_cancel(want: _Want) -> float:
    """Cash the working order of a dropped buy keeps: until IB confirms its cancel, it may still
    fill at its own limit."""
    if want.carrier is None:
        return 0.0
    order = want.carrier.order
    price = buy_price(order, want.estimated_price)
    # Unknown, it holds all the cash there is (``buy_price``).
    return math.inf if price is None else order.remaining * price * want.fx_rate


def _share_cash_dropping(wants: list[_Want], budget: float, min_trade_value: float) -> list[int]:
    """Each buy's quantity within ``budget``, 0 for a dropped one. A buy whose share comes to 0
    or below ``min_trade_value`` is dropped; its working order, cancelled, still holds its cash
    until IB confirms, so the budget of the others shrinks by that and they are shared again."""
    sharing = list(range(len(wants)))
    held = 0.0
    while sharing:
        shared = _share_cash([wants[index] for index in sharing], max(budget - held, 0.0))
        dropped = [
            index
            for index, quantity in zip(sharing, shared, strict=True)
            if quantity == 0 or quantity * wants[index].unit_value < min_trade_value
        ]
        if not dropped:
            quantities = [0] * len(wants)
            for index, quantity in zip(sharing, shared, strict=True):
                quantities[index] = quantity
            return quantities
        held += sum(_held_by_cancel(wants[index]) for index in dropped)
        gone = set(dropped)
        sharing = [index for index in sharing if index not in gone]
    return [0] * len(wants)


def _share_cash(wants: list[_Want], budget: float) -> list[int]:
    """Quantities within ``budget``: each want scaled by budget / demand and rounded down to
    the lot, then what rounding left over filled in target order (sorted by symbol), a lot at a
    time, so that one pass spends what it can instead of leaving crumbs for the next."""
    demand = sum(want.quantity * want.unit_value for want in wants)
    factor = budget / demand
    quantities = [lots_down(want.quantity * factor, want.lot) for want in wants]
    left = budget - sum(q * w.unit_value for q, w in zip(quantities, wants, strict=True))
    for index, want in enumerate(wants):
        extra = min(want.quantity - quantities[index], lots_down(left / want.unit_value, want.lot))
        if extra > 0:
            quantities[index] += extra
            left -= extra * want.unit_value
    return quantities
