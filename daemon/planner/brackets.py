"""Bracket rules: an entry with a stop loss and a take profit, as standing orders.

Life of a bracket (docs/planning.md, "Brackets"):

* not entered and no working entry: place parent (transmit False), stop (transmit False) and
  target (transmit True); the children name the parent by orderRef and share the OCA group
  ``tctl:<rule>:<generation>``;
* rule edited before any fill: modify the working legs in place (new generation in the ref,
  new prices and quantities). A change IB cannot modify (side, symbol, entry form) cancels the
  bracket now and places the new one on the next pass, so the two can never both fill;
* entry filled, partly or fully, in any generation: the rule is done and never entered again
  under that name; the stop and target cover the open quantity and follow the rule's current
  ``stop_loss`` and ``take_profit`` (percent forms relative to the average fill price).
  While a partly filled entry still works, they are standalone orders (``<generation>-kept``,
  no parent): IB may hold attached children until the parent completes;
* rule removed: cancel the unfilled entry; keep the protective legs of a filled entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date

from tradectl.planner.common import (
    MAX_ORDER_QUANTITY,
    Book,
    Draft,
    Fills,
    OwnedOrder,
    already_this_spec,
    cancel_intent,
    lots_down,
    opposite,
    place_or_modify,
    round_passive,
    round_to_tick,
    shares,
    unusable_price,
)
from tradectl.planner.domain import (
    Intent,
    OrderSpec,
    OrderType,
    Position,
    Purpose,
    TimeInForce,
    WorkingOrder,
)
from tradectl.planner.legs import (
    ENTRY_LEG,
    KEPT_SUFFIX,
    PROTECTIVE_LEGS,
    STOP_LEG,
    TARGET_LEG,
    is_protective_leg,
    kept_generation,
    leg_of,
    oca_group_name,
    order_ref,
    parse_order_ref,
)
from tradectl.planner.money import base_rate
from tradectl.planner.ticks import PriceIncrements
from tradectl.schemas.models import Bracket, RuleKind, RuleSet, Side, rule_generation

KIND: RuleKind = "brackets"
PROTECTIVE_TIF: TimeInForce = "GTC"
_EPSILON = 1e-9


@dataclass(frozen=True)
class _Protection:
    """Stop and target prices of one bracket (the stop is a price or a trailing percent)."""

    stop_price: float | None
    trailing_percent: float | None
    target_price: float

    @property
    def stop_type(self) -> OrderType:
        return "TRAIL" if self.trailing_percent is not None else "STP"

    def stop_value_price(self, reference: float, side: Side) -> float:
        if self.stop_price is not None:
            return self.stop_price
        assert self.trailing_percent is not None
        direction = -1 if side == "BUY" else 1
        return reference * (1 + direction * self.trailing_percent / 100)


class Allowance:
    """The account's position per (symbol, entry side), handed out to the bracket rules that
    hold it: several rules on one symbol never protect more than the account holds in total
    (their stops together would open a position the other way)."""

    def __init__(self, book: Book) -> None:
        self._book = book
        self._taken: dict[tuple[str, Side], float] = {}

    def take(self, symbol: str, side: Side, wanted: float) -> int:
        held = self._book.observed.position(symbol) * (1 if side == "BUY" else -1)
        left = held - self._taken.get((symbol, side), 0.0)
        granted = math.floor(max(0.0, min(wanted, left)) + _EPSILON)
        self._taken[(symbol, side)] = self._taken.get((symbol, side), 0.0) + granted
        return granted


def plan_brackets(rules: RuleSet, book: Book) -> Draft:
    draft = Draft()
    allowance = Allowance(book)
    # Rules whose stop or target works take their share of the position first: IB shows what
    # they protect now, while a rule without working legs may count fills IB no longer shows.
    names = sorted(
        set(rules.brackets) | set(book.owned_rules(KIND)) | _protection_finished_today(book),
        key=lambda name: (not _has_working_protection(book, name), name),
    )
    for name in names:
        intents = _plan_rule(name, rules.brackets.get(name), book, draft.notes, allowance)
        draft.add(*intents)
    return draft


def _protection_finished_today(book: Book) -> set[str]:
    """Rules the ledger knows to have entered, with a stop or target that ended filled today.
    A removed rule whose legs are all gone may still hold shares (its stop filled for less
    than the entry went on to fill), so it is planned like one with working legs, to protect
    the rest again. Cancelled legs do not count, even partly filled: that is how `tradectl
    release` ends them, and a lost journal forgets the release, not IB's cancels."""
    found = set()
    for order in book.observed.completed_orders:
        parsed = parse_order_ref(order.order_ref)
        if parsed is not None and is_protective_leg(parsed.leg) and order.status == "Filled":
            found.add(parsed.rule)
    return {name for name in found if book.journaled_entry(name) > 0}


def _has_working_protection(book: Book, name: str) -> bool:
    return any(owned.leg in PROTECTIVE_LEGS for owned in book.owned_by(KIND, name))


def _plan_rule(
    name: str, rule: Bracket | None, book: Book, notes: list[str], allowance: Allowance
) -> list[Intent]:
    where = f"brackets.{name}"
    owned_orders = book.owned_by(KIND, name)
    # A leg replaced by a standalone copy is cancelled after the copy is placed: until IB
    # confirms that cancel, both work, and the rule waits rather than calling it a duplicate.
    pending = [owned.order.order_id for owned in owned_orders if owned.pending_cancel]
    if pending:
        notes.append(f"{where}: waiting for the cancel of order {pending[0]} to be confirmed")
        return []
    legs: dict[str, OwnedOrder] = {}
    superseded: list[OwnedOrder] = []
    for owned in owned_orders:
        replacing = _standalone_beside_attached(legs.get(owned.leg), owned)
        if replacing is not None:
            # A standalone copy was placed, but the cancel of the attached child that should
            # have followed it never reached IB (a crash, a lost connection): finish the job.
            standalone, attached = replacing
            legs[owned.leg] = standalone
            superseded.append(attached)
            continue
        if owned.leg in legs:
            ids = f"{legs[owned.leg].order.order_id} and {owned.order.order_id}"
            notes.append(
                f"{where}: two working {owned.leg} orders ({ids}); not touched, resolve by hand"
            )
            return []
        legs[owned.leg] = owned
    if superseded:
        return [
            cancel_intent(owned, KIND, f"replaced by standalone {owned.leg}", "protective")
            for owned in superseded
        ]

    entered, exited, proof = holdings(name, legs, book)
    if proof is not None:
        notes.append(f"{where}: {proof}")
    if rule is None:
        return _removed(name, legs, entered, exited, book, notes, allowance)
    generation = rule_generation(rule)
    entry = legs.get(ENTRY_LEG)
    held = entered.quantity - exited.quantity
    if entered.quantity > 0:
        # A new day's entry of a `reenter: daily` rule, placed after the last one closed, is
        # managed like a first entry until it fills.
        new_cycle = entry is not None and entry.order.filled <= 0 and held <= 0
        closed = held <= 0 and not legs
        if not (new_cycle or (closed and _reenters(name, rule, book, notes))):
            return _protect(name, rule, generation, legs, entered, exited, book, notes, allowance)
    elif entry is None:
        expired = book.observed.entries_expired.get((name, generation))
        if expired is not None and not _may_enter_after(rule, expired, book):
            notes.append(
                f"{where}: its entry expired unfilled on {expired.isoformat()}; reenter: "
                f"{rule.reenter}, so it is not entered again"
                + (" today" if rule.reenter == "daily" else " (edit the rule to enter anew)")
            )
            return [
                cancel_intent(owned, KIND, "child of an expired entry")
                for leg, owned in legs.items()
                if leg in PROTECTIVE_LEGS
            ]
    return _unfilled(name, rule, generation, legs, book, notes)


def _standalone_beside_attached(
    first: OwnedOrder | None, second: OwnedOrder
) -> tuple[OwnedOrder, OwnedOrder] | None:
    """(standalone, attached) when two working orders of one protective leg are a `-kept`
    standalone copy and the attached child it replaces; else None."""
    if first is None or second.leg not in PROTECTIVE_LEGS:
        return None
    for standalone, attached in ((first, second), (second, first)):
        if (
            standalone.generation.endswith(KEPT_SUFFIX)
            and standalone.order.parent_id == 0
            and attached.order.parent_id != 0
        ):
            return standalone, attached
    return None


def _reenters(name: str, rule: Bracket, book: Book, notes: list[str]) -> bool:
    """A filled bracket whose position is closed is entered again only with `reenter: daily`,
    once per trading day, and never after `tradectl release`."""
    where = f"brackets.{name}"
    if name in book.observed.released:
        return False
    last = book.last_entry_day(name)
    if rule.reenter == "never":
        notes.append(f"{where}: filled and closed; reenter: never, so it is not entered again")
        return False
    if last is None:
        notes.append(f"{where}: filled and closed on a day nobody recorded; not entered again")
        return False
    if not _may_enter_after(rule, last, book):
        notes.append(f"{where}: filled and closed today; reenter: daily, so again tomorrow")
        return False
    return True


def _may_enter_after(rule: Bracket, ended_on: date, book: Book) -> bool:
    today = book.observed.trading_day
    return rule.reenter == "daily" and today is not None and ended_on < today


@dataclass(frozen=True)
class Reconstruction:
    """A bracket rule's entered quantity that IB proves and the journal does not know."""

    rule: str
    symbol: str
    side: Side
    entered: float


def holdings(name: str, legs: dict[str, OwnedOrder], book: Book) -> tuple[Fills, Fills, str | None]:
    """What the rule entered and exited, from the journal's ledger and IB's truth
    (docs/planning.md, "Protection from the broker's truth"), and, when IB's order graph proved
    more than the fills show, why."""
    entered = book.fills(name, lambda leg: leg == ENTRY_LEG, "entry")
    exited = book.fills(name, is_protective_leg, "exit")
    if name in book.observed.released:
        # `tradectl release`: the rule protects nothing any more, whatever it filled.
        return entered, Fills(max(entered.quantity, exited.quantity), None), None
    if exited.quantity > entered.quantity:
        # A stop or target only works once its entry has filled.
        entered = Fills(exited.quantity, entered.average_price)
    proof = _children_prove(name, legs, exited, book)
    if proof is None or proof[0] + exited.quantity <= entered.quantity:
        return entered, exited, None
    held, leg = proof
    why = (
        f"its {leg} works without its entry: at IB that means the entry filled; protecting "
        f"the {shares(held)} shares held"
    )
    return Fills(held + exited.quantity, entered.average_price), exited, why


def reconstructed_entries(book: Book) -> list[Reconstruction]:
    """Bracket rules whose entered quantity IB proves beyond what the journal knows (a lost or
    fresh journal, a fill on an earlier day); the runtime writes them to the ledger, so the proof
    outlives the orders that gave it."""
    found = []
    for name in book.owned_rules(KIND):
        legs = {owned.leg: owned for owned in book.owned_by(KIND, name)}
        entered, _, _ = holdings(name, legs, book)
        if entered.quantity > book.journaled_entry(name):
            order = next(iter(legs.values())).order
            side = order.action if ENTRY_LEG in legs else opposite(order.action)
            found.append(Reconstruction(name, order.symbol, side, entered.quantity))
    return found


def _children_prove(
    name: str, legs: dict[str, OwnedOrder], exited: Fills, book: Book
) -> tuple[int, str] | None:
    """At IB, cancelling a parent cancels its attached children, so a stop or target working
    without its entry means the entry filled, unless the journal saw that entry end unfilled
    (then the legs are on their way out). The rule then holds what the account holds on the
    entry's side, up to the leg's size: (held, leg)."""
    if ENTRY_LEG in legs:
        return None
    for leg in PROTECTIVE_LEGS:
        owned = legs.get(leg)
        if owned is None or owned.pending_cancel:
            continue
        if order_ref(name, owned.generation, ENTRY_LEG) in book.observed.unfilled_entry_refs:
            continue
        order = owned.order
        side = opposite(order.action)
        on_side = book.observed.position(order.symbol) * (1 if side == "BUY" else -1)
        held = math.floor(max(0.0, min(order.remaining, on_side)) + _EPSILON)
        if held > 0:
            return held, leg
    return None


# --- prices and quantities -----------------------------------------------------------------


def _entry_order(
    rule: Bracket, tick: PriceIncrements, quote: float | None
) -> tuple[OrderType, float | None, float | None, float] | str:
    """(order type, limit, stop trigger, reference price) of the entry, or why not."""
    side = rule.side
    entry = rule.entry
    if entry.kind == "market":
        if quote is None:
            return "market entry needs a fresh quote"
        return "MKT", None, None, quote
    assert entry.limit is not None
    limit = round_passive(entry.limit, tick, side)
    if entry.kind == "limit":
        return "LMT", limit, None, limit
    assert entry.stop is not None
    trigger = round_to_tick(entry.stop, tick, "up" if side == "BUY" else "down")
    return "STP LMT", limit, trigger, trigger


def _protection(
    rule: Bracket, reference: float, tick: PriceIncrements, check_order: bool
) -> _Protection | str:
    """Stop and target from the rule, relative to ``reference`` for percent forms, rounded to
    the tick towards the reference (a tighter stop, a nearer target: the conservative side)."""
    side = rule.side
    towards_up = side == "BUY"
    direction = 1 if side == "BUY" else -1
    loss = rule.stop_loss
    stop_price: float | None = None
    if loss.price is not None:
        stop_price = round_to_tick(loss.price, tick, "up" if towards_up else "down")
    elif loss.percent is not None:
        raw = reference * (1 - direction * loss.percent / 100)
        stop_price = round_to_tick(raw, tick, "up" if towards_up else "down")
    profit = rule.take_profit
    if profit.price is not None:
        raw_target = profit.price
    else:
        assert profit.percent is not None
        raw_target = reference * (1 + direction * profit.percent / 100)
    target = round_to_tick(raw_target, tick, "down" if towards_up else "up")
    if stop_price is not None and stop_price <= 0:
        return f"stop price {stop_price:g} is not positive"
    if not target > 0:
        # A SELL's take profit of 100 % or more of its reference.
        return f"target price {target:g} is not positive"
    if check_order:
        if stop_price is not None and (stop_price - reference) * direction >= 0:
            return f"stop {stop_price:g} is not beyond the entry reference {reference:g}"
        if (target - reference) * direction <= 0:
            return f"target {target:g} is not beyond the entry reference {reference:g}"
    return _Protection(stop_price, loss.trailing_percent, target)


def _quantity(
    rule: Bracket, worst_entry: float, protection: _Protection, lot: int, nav: float
) -> int | None:
    """Fixed, or risk-sized: floor(risk_fraction x NAV / distance) to the lot, the distance
    measured from the worst fill the entry allows (its limit; the quote for market entries).
    None when the risk sizes it at IB's limit of shares or more (a stop a hair from the
    entry): no such order is real, and the floor of an infinity would raise."""
    if isinstance(rule.quantity, int):
        return rule.quantity
    distance = abs(worst_entry - protection.stop_value_price(worst_entry, rule.side))
    if distance <= 0:
        return 0
    sized = rule.quantity.risk_fraction * nav / distance
    if not sized < MAX_ORDER_QUANTITY:
        return None
    return lots_down(sized, lot)


# --- specs and intents ---------------------------------------------------------------------


def _leg_spec(
    rule: Bracket,
    name: str,
    generation: str,
    leg: str,
    quantity: int,
    protection: _Protection,
    *,
    parent_ref: str | None,
    oca: str | None,
    transmit: bool,
) -> OrderSpec:
    action = opposite(rule.side)
    ref = order_ref(name, generation, leg)
    # The rule's tif is the entry's. A DAY stop would expire at the close and leave the filled
    # position unprotected overnight (found by the simulated week, docs/reliability.md), so
    # protective legs rest at IB until tradectl cancels them.
    if leg == TARGET_LEG:
        return OrderSpec(
            symbol=rule.symbol,
            action=action,
            quantity=quantity,
            order_type="LMT",
            order_ref=ref,
            tif=PROTECTIVE_TIF,
            limit_price=protection.target_price,
            parent_ref=parent_ref,
            oca_group=oca,
            transmit=transmit,
        )
    return OrderSpec(
        symbol=rule.symbol,
        action=action,
        quantity=quantity,
        order_type=protection.stop_type,
        order_ref=ref,
        tif=PROTECTIVE_TIF,
        aux_price=protection.stop_price,
        trailing_percent=protection.trailing_percent,
        parent_ref=parent_ref,
        oca_group=oca,
        transmit=transmit,
    )


def _estimate(spec: OrderSpec, reference: float) -> float:
    if spec.order_type == "TRAIL":
        assert spec.trailing_percent is not None
        direction = -1 if spec.action == "SELL" else 1
        return reference * (1 + direction * spec.trailing_percent / 100)
    price = spec.price_for_value
    return reference if price is None else price


def _intent(
    spec: OrderSpec,
    name: str,
    leg: str,
    purpose: Purpose,
    reason: str,
    estimated_price: float,
    current: float,
    target: float,
    existing: WorkingOrder | None = None,
) -> Intent:
    return place_or_modify(
        spec,
        kind=KIND,
        rule=name,
        leg=leg,
        purpose=purpose,
        reason=reason,
        estimated_price=estimated_price,
        current=current,
        target=target,
        existing=existing,
    )


def _same_form(order: WorkingOrder, spec: OrderSpec) -> bool:
    """IB modifies quantity, prices, tif and orderRef in place, not side, symbol or type."""
    return (
        order.action == spec.action
        and order.symbol == spec.symbol
        and order.order_type == spec.order_type
    )


def _follow(
    owned: OwnedOrder | None,
    spec: OrderSpec,
    name: str,
    purpose: Purpose,
    reason: str,
    reference: float,
    current: float,
) -> list[Intent]:
    """Make the working leg ``owned`` look like ``spec``: nothing, a modify, or (for a change
    of order type) the new leg first and then the cancel of the old one, in one OCA group so
    that at most one of them can fill."""
    leg = leg_of(spec.order_ref)
    estimated = _estimate(spec, reference)
    if owned is None:
        return [_intent(spec, name, leg, purpose, reason, estimated, current, spec.quantity)]
    order = owned.order
    if not _same_form(order, spec):
        placed = _intent(spec, name, leg, purpose, reason, estimated, current, spec.quantity)
        replaced = cancel_intent(owned, KIND, f"replaced by {spec.order_type} {leg}", purpose)
        return [placed, replaced]
    # IB's quantity is the order's total: what already filled plus what should remain.
    modify_spec = replace(
        spec,
        quantity=int(order.filled) + spec.quantity,
        parent_ref=None,
        oca_group=order.oca_group or None,
        transmit=True,
    )
    if already_this_spec(order, modify_spec):
        return []
    return [
        _intent(modify_spec, name, leg, purpose, reason, estimated, current, spec.quantity, order)
    ]


def _cover(side: Side, symbol: str, entered: Fills, exited: Fills, allowance: Allowance) -> int:
    """Shares the protective legs must cover: filled minus exited, and never more than the
    account holds in the entry's direction beyond what other rules already protect (a stop
    larger than the position would open a new one the other way)."""
    return allowance.take(symbol, side, entered.quantity - exited.quantity)


# --- the three states ----------------------------------------------------------------------


def _unfilled(
    name: str,
    rule: Bracket,
    generation: str,
    legs: dict[str, OwnedOrder],
    book: Book,
    notes: list[str],
) -> list[Intent]:
    where = f"brackets.{name}"
    entry = legs.get(ENTRY_LEG)
    children = [legs[leg] for leg in PROTECTIVE_LEGS if leg in legs]
    if entry is None and children:
        notes.append(f"{where}: children without an entry are cancelled; entry on the next pass")
        return [
            cancel_intent(owned, KIND, "child of a bracket with no entry") for owned in children
        ]

    facts = book.facts(rule.symbol)
    if facts is None:
        notes.append(f"{where}: {rule.symbol}: no contract details (min tick); not planned")
        return []
    quote, why = book.fresh_price(rule.symbol)
    if entry is not None and rule.entry.kind == "market":
        notes.append(f"{where}: market entry working (order {entry.order.order_id}); waiting")
        return []
    shaped = _entry_order(rule, facts.increments, quote)
    if isinstance(shaped, str):
        notes.append(f"{where}: {why}; {shaped}; not planned")
        return []
    order_type, limit, trigger, reference = shaped
    unusable = unusable_price(reference, facts.increments)
    if unusable is not None:
        source = "last price" if rule.entry.kind == "market" else "entry price"
        notes.append(f"{where}: {rule.symbol}: {source} {unusable}; not planned")
        return []
    protection = _protection(rule, reference, facts.increments, check_order=True)
    if isinstance(protection, str):
        notes.append(f"{where}: {protection}; not planned")
        return []
    worst = limit if limit is not None else reference
    # Risk is a fraction of NAV, which is in the base currency; the stop distance is in the
    # contract's currency.
    nav = book.observed.net_liquidation / base_rate(book.observed, rule.symbol)
    quantity = _quantity(rule, worst, protection, facts.lot_size, nav)
    if quantity is None:
        notes.append(
            f"{where}: risk-sized quantity is {MAX_ORDER_QUANTITY:,} shares or more (IB's "
            "limit); not planned"
        )
        return []
    if entry is not None and entry.generation == generation and not isinstance(rule.quantity, int):
        # Sized when placed; resizing it as NAV moves would modify the order on every pass.
        quantity = int(entry.order.total_quantity)
    if quantity <= 0:
        notes.append(f"{where}: risk-sized quantity rounds to 0 shares; not planned")
        return []

    entry_ref = order_ref(name, generation, ENTRY_LEG)
    entry_spec = OrderSpec(
        symbol=rule.symbol,
        action=rule.side,
        quantity=quantity,
        order_type=order_type,
        order_ref=entry_ref,
        tif=rule.tif,
        limit_price=limit,
        aux_price=trigger,
        transmit=entry is not None,
    )
    describe = _describe(rule, quantity, limit, trigger, protection)
    if entry is None:
        group = oca_group_name(name, generation)
        stop = _leg_spec(
            rule,
            name,
            generation,
            STOP_LEG,
            quantity,
            protection,
            parent_ref=entry_ref,
            oca=group,
            transmit=False,
        )
        target = _leg_spec(
            rule,
            name,
            generation,
            TARGET_LEG,
            quantity,
            protection,
            parent_ref=entry_ref,
            oca=group,
            transmit=True,
        )
        estimated = limit if limit is not None else reference
        return [
            _intent(
                entry_spec, name, ENTRY_LEG, "opening", f"enter: {describe}", estimated, 0, quantity
            ),
            _intent(
                stop,
                name,
                STOP_LEG,
                "protective",
                f"stop of {describe}",
                _estimate(stop, reference),
                0,
                quantity,
            ),
            _intent(
                target,
                name,
                TARGET_LEG,
                "protective",
                f"target of {describe}",
                _estimate(target, reference),
                0,
                quantity,
            ),
        ]

    if not _same_form(entry.order, entry_spec):
        notes.append(
            f"{where}: entry changed side, symbol or form; the working bracket is cancelled and "
            "the new one placed on the next pass"
        )
        return [
            cancel_intent(owned, KIND, "rule changed in a way IB cannot modify")
            for owned in [entry, *children]
        ]
    intents = _follow(entry, entry_spec, name, "opening", f"rule edited: {describe}", reference, 0)
    sibling_group = next(
        (owned.order.oca_group for owned in children if owned.order.oca_group), None
    )
    for leg in PROTECTIVE_LEGS:
        owned = legs.get(leg)
        spec = _leg_spec(
            rule,
            name,
            generation,
            leg,
            quantity,
            protection,
            parent_ref=entry.order.order_ref,
            oca=sibling_group or oca_group_name(name, generation),
            transmit=True,
        )
        intents += _follow(owned, spec, name, "protective", f"{leg} of {describe}", reference, 0)
    return intents


def _protect(
    name: str,
    rule: Bracket,
    generation: str,
    legs: dict[str, OwnedOrder],
    entered: Fills,
    exited: Fills,
    book: Book,
    notes: list[str],
    allowance: Allowance,
) -> list[Intent]:
    where = f"brackets.{name}"
    working = list(legs.values())
    if any(
        owned.order.symbol != rule.symbol
        or (owned.leg == ENTRY_LEG) != (owned.order.action == rule.side)
        for owned in working
    ):
        notes.append(
            f"{where}: symbol or side changed after the entry filled; the filled position keeps "
            "its protective orders unchanged (give a new setup a new rule name)"
        )
        return []
    cover = _cover(rule.side, rule.symbol, entered, exited, allowance)
    children = {leg: legs.get(leg) for leg in PROTECTIVE_LEGS}
    if cover == 0:
        flat = "the bracket's position is closed; a protective order would open a new one"
        return [
            cancel_intent(owned, KIND, flat, "protective")
            for owned in children.values()
            if owned is not None
        ]
    facts = book.facts(rule.symbol)
    if facts is None:
        notes.append(f"{where}: {rule.symbol}: no contract details (min tick); not planned")
        return []
    held = book.observed.positions.get(rule.symbol)
    entered = _priced(entered, held, facts.increments, where, notes)
    protection = _post_fill_protection(rule, entered, facts.increments)
    reference = entered.average_price or rule.entry.reference_price or 0.0
    sibling_group = next(
        (owned.order.oca_group for owned in children.values() if owned and owned.order.oca_group),
        oca_group_name(name, generation),
    )
    filled = f"{shares(entered.quantity)} filled"
    if exited.quantity:
        filled += f", {shares(exited.quantity)} exited"
    entry = legs.get(ENTRY_LEG)
    working_entry = None if entry is None else entry.order.order_id
    detached: list[Intent] = []
    released_children: list[Intent] = []
    intents: list[Intent] = []
    for leg, owned in children.items():
        if owned is not None and owned.generation in (generation, kept_generation(generation)):
            # The rule is unchanged since this leg was placed: its prices stand, only the
            # quantity follows the fills.
            spec = _as_spec(owned.order, cover)
        elif isinstance(protection, str):
            notes.append(f"{where}: {leg}: {protection}")
            if owned is None:
                continue
            # Keep protecting the position at the old prices rather than not at all.
            spec = _as_spec(owned.order, cover)
        else:
            spec = _leg_spec(
                rule, name, generation, leg, cover, protection,
                parent_ref=None, oca=sibling_group, transmit=True,
            )  # fmt: skip
        reason = f"protect {shares(cover)} shares ({filled}): {leg} {_leg_price(spec)}"
        if (
            owned is not None
            and working_entry is not None
            and owned.order.parent_id == working_entry
        ):
            # Whether IB works a child while its parent is only partly filled is unknown
            # (docs/sim.md, "Brackets on a partial parent fill"): it may hold it until the
            # parent completes, leaving the filled shares without a stop at the exchange. So
            # the fill is protected by a standalone copy, placed first, and the attached child
            # is cancelled after it. Both are in one OCA group of type 2 (reduce on fill):
            # while the cancel is on its way, a fill of either reduces the other by as much,
            # so together they never close more than the position.
            standalone = _detached(spec, name, leg, sibling_group)
            estimated = _estimate(standalone, reference)
            detached.append(
                _intent(standalone, name, leg, "protective", reason, estimated, 0, cover)
            )
            released_children.append(
                cancel_intent(owned, KIND, f"replaced by standalone {leg}", "protective")
            )
            continue
        intents += _follow(owned, spec, name, "protective", reason, reference, cover)
    return detached + released_children + intents


def _detached(spec: OrderSpec, name: str, leg: str, oca: str) -> OrderSpec:
    """``spec`` as a standalone protective order (no parent) under the `-kept` orderRef."""
    parsed = parse_order_ref(spec.order_ref)
    assert parsed is not None
    return replace(
        spec,
        order_ref=order_ref(name, kept_generation(parsed.generation), leg),
        parent_ref=None,
        oca_group=oca,
        transmit=True,
    )


def _priced(
    entered: Fills, held: Position | None, tick: PriceIncrements, where: str, notes: list[str]
) -> Fills:
    """``entered`` with a price to protect from. Without its own fills' price (a lost journal,
    the fill on an earlier day), or with one no order can be priced from (``unusable_price``),
    a held position is still protected, from IB's average cost of the position when that is
    usable: an approximate reference beats no stop at all (docs/planning.md)."""
    fill = entered.average_price
    unusable = None if fill is None else unusable_price(fill, tick)
    if fill is not None and unusable is None:
        return entered
    if held is None or unusable_price(held.average_cost, tick) is not None:
        return entered
    why = "is unknown" if unusable is None else unusable
    notes.append(
        f"{where}: the entry's fill price {why}; percent stop and target are priced from "
        f"IB's average cost of the position ({held.average_cost:g})"
    )
    return replace(entered, average_price=held.average_cost)


def _post_fill_protection(
    rule: Bracket, entered: Fills, tick: PriceIncrements
) -> _Protection | str:
    """Stop and target of a filled entry; percent forms are relative to the average fill."""
    uses_fill = rule.stop_loss.percent is not None or rule.take_profit.percent is not None
    if entered.average_price is None and uses_fill:
        return "average fill price unknown, so a percent stop or target cannot be priced"
    reference = entered.average_price or rule.entry.reference_price or 0.0
    unusable = unusable_price(reference, tick)
    if unusable is not None and uses_fill:
        return f"average fill price {unusable}, so a percent stop or target cannot be priced"
    return _protection(rule, reference, tick, check_order=False)


def _removed(
    name: str,
    legs: dict[str, OwnedOrder],
    entered: Fills,
    exited: Fills,
    book: Book,
    notes: list[str],
    allowance: Allowance,
) -> list[Intent]:
    """A rule no longer in the files: cancel its unfilled entry; what it filled stays protected
    (an orphaned protection) until the position is closed or `tradectl release` releases it."""
    where = f"brackets.{name}"
    entry = legs.get(ENTRY_LEG)
    cancel_entry = (
        []
        if entry is None
        else [cancel_intent(entry, KIND, f"rule {where} removed: unfilled entry")]
    )
    children = [legs[leg] for leg in PROTECTIVE_LEGS if leg in legs]
    if entered.quantity <= 0:
        return cancel_entry + [
            cancel_intent(owned, KIND, f"rule {where} removed; nothing filled")
            for owned in children
        ]
    # The removed rule's prices live on in its protective orders: the working ones, else the
    # last of today's finished ones.
    templates = {leg: owned.order for leg, owned in legs.items() if leg in PROTECTIVE_LEGS}
    for leg in PROTECTIVE_LEGS:
        finished = book.last_completed(name, leg)
        if leg not in templates and finished is not None:
            templates[leg] = finished
    if not templates:
        if entry is not None and entry.order.filled > 0:
            notes.append(
                f"{where}: rule removed with {shares(entry.order.filled)} filled and no stop or "
                "target to copy prices from: the position is NOT protected; place a stop by hand"
            )
        return cancel_entry
    some = next(iter(templates.values()))
    cover = _cover(opposite(some.action), some.symbol, entered, exited, allowance)
    if cover == 0:
        if name in book.observed.released:
            why = f"released by `tradectl release {name}`: the position is left alone"
        else:
            why = "the bracket's position is closed; a protective order would open a new one"
        return cancel_entry + [cancel_intent(owned, KIND, why, "protective") for owned in children]
    notes.append(
        f"{where}: rule removed; orphaned protection of the {shares(cover)} shares it still holds "
        f"(until closed or `tradectl release {name}`)"
    )
    reason = f"rule removed; protect the {shares(cover)} shares still held"
    kept: list[Intent] = []
    followed: list[Intent] = []
    for leg, order in templates.items():
        owned = legs.get(leg)
        reference = _reference(entered, order)
        spec = _as_spec(order, cover)
        if owned is None or (entry is not None and order.parent_id == entry.order.order_id):
            # At IB, cancelling the parent cancels its attached children: a modify of this
            # one would be lost with it. Place a standalone copy first, in the same OCA group
            # (so at most one of them can fill meanwhile); the entry's cancel comes after. A
            # leg that finished while the rule still holds shares is placed again the same way.
            parsed = parse_order_ref(order.order_ref)
            assert parsed is not None
            spec = replace(spec, order_ref=order_ref(name, kept_generation(parsed.generation), leg))
            kept.append(_intent(spec, name, leg, "protective", reason, reference, 0, cover))
        else:
            followed += _follow(owned, spec, name, "protective", reason, reference, cover)
    return kept + cancel_entry + followed


def _reference(entered: Fills, order: WorkingOrder) -> float:
    return entered.average_price or order.limit_price or order.aux_price or 0.0


def _as_spec(order: WorkingOrder, quantity: int) -> OrderSpec:
    """A working protective leg as a spec, with a new remaining quantity (and GTC: a leg placed
    as DAY before protective legs were always GTC is modified once)."""
    assert order.order_ref is not None
    return OrderSpec(
        symbol=order.symbol,
        action=order.action,
        quantity=quantity,
        order_type=order.order_type,
        order_ref=order.order_ref,
        tif=PROTECTIVE_TIF,
        limit_price=order.limit_price,
        aux_price=order.aux_price,
        trailing_percent=order.trailing_percent,
        oca_group=order.oca_group or None,
    )


def _leg_price(spec: OrderSpec) -> str:
    if spec.trailing_percent is not None:
        return f"trailing {spec.trailing_percent:g}%"
    price = spec.price_for_value
    return "" if price is None else f"{price:g}"


def _describe(
    rule: Bracket,
    quantity: int,
    limit: float | None,
    trigger: float | None,
    protection: _Protection,
) -> str:
    entry = "market" if limit is None else f"limit {limit:g}"
    if trigger is not None:
        entry = f"stop {trigger:g} {entry}"
    stop = (
        f"trailing {protection.trailing_percent:g}%"
        if protection.trailing_percent is not None
        else f"stop {protection.stop_price:g}"
    )
    return (
        f"{rule.side} {shares(quantity)} {rule.symbol} {entry}, {stop}, "
        f"target {protection.target_price:g}"
    )
