"""Scale rules: a ladder of limit orders ``L1``..``Ln`` that together trade ``total_quantity``.

Level i (1-based) is priced ``start_price -/+ step x (i - 1)`` (minus for BUY), rounded to the
tick on the less aggressive side, for ``Scale.level_quantities()[i - 1]`` shares.

Fills are counted per rule over all its generations (journal ``entry_fills`` per
``(rule, generation)`` or today's executions of its ``L*`` orderRefs, the larger per
generation) and assigned to the levels in order, L1 first: L1 is nearest the market, so it
fills first. A level whose share is filled is not placed again; a partly filled level keeps
its working order for the rest. So the ladder never trades more than ``total_quantity`` in all,
whatever edits happen in between.
"""

from __future__ import annotations

import math

from tradectl.planner.common import (
    Book,
    Draft,
    OwnedOrder,
    already_this_spec,
    cancel_intent,
    place_or_modify,
    reduces,
    round_passive,
    shares,
    signed,
    unusable_price,
)
from tradectl.planner.domain import Intent, OrderSpec, Purpose
from tradectl.planner.legs import leg_kind, order_ref, scale_leg
from tradectl.schemas.models import RuleKind, RuleSet, Scale, rule_generation

KIND: RuleKind = "scales"


def plan_scales(rules: RuleSet, book: Book) -> Draft:
    draft = Draft()
    for name in sorted(set(rules.scales) | set(book.owned_rules(KIND))):
        orders = book.owned_by(KIND, name)
        scale = rules.scales.get(name)
        if scale is None:
            for owned in orders:
                if not owned.pending_cancel:
                    draft.add(cancel_intent(owned, KIND, f"rule scales.{name} removed"))
            continue
        for intent in _plan_rule(name, scale, orders, book, draft.notes):
            draft.add(intent)
    return draft


def _plan_rule(
    name: str, scale: Scale, orders: list[OwnedOrder], book: Book, notes: list[str]
) -> list[Intent]:
    where = f"scales.{name}"
    pending = [owned.order.order_id for owned in orders if owned.pending_cancel]
    if pending:
        notes.append(f"{where}: waiting for the cancel of order {pending[0]} to be confirmed")
        return []
    facts = book.facts(scale.symbol)
    if facts is None:
        notes.append(f"{where}: {scale.symbol}: no contract details (min tick); not planned")
        return []
    generation = rule_generation(scale)
    observed = book.observed
    filled = book.fills(name, lambda leg: leg_kind(leg) == KIND, "entry").quantity

    by_leg: dict[str, OwnedOrder] = {}
    intents: list[Intent] = []
    blocked = False
    for owned in orders:
        if owned.leg in by_leg:
            intents.append(cancel_intent(owned, KIND, f"duplicate {owned.leg} order"))
            continue
        by_leg[owned.leg] = owned
        order = owned.order
        if (order.action, order.symbol, order.order_type) != (scale.side, scale.symbol, "LMT"):
            blocked = True
    if blocked:
        notes.append(
            f"{where}: side, symbol or order type changed; the working ladder is cancelled and "
            "the new one placed on the next pass"
        )
        return [*intents, *(cancel_intent(o, KIND, "rule changed") for o in by_leg.values())]

    prices = [round_passive(price, facts.increments, scale.side) for price in scale.level_prices()]
    if any(price <= 0 for price in prices):
        notes.append(f"{where}: a level price rounds to 0 or below; not planned")
        return []
    unusable = next(
        filter(None, (unusable_price(price, facts.increments) for price in prices)), None
    )
    if unusable is not None:
        notes.append(f"{where}: level price {unusable}; not planned")
        return []
    quantities = scale.level_quantities()
    expired = observed.entries_expired.get((name, generation))
    today = observed.trading_day
    # DAY levels that expired unfilled come back only with `reenter: daily`, the next day.
    held_back = expired is not None and not (
        scale.reenter == "daily" and today is not None and expired < today
    )
    unassigned = filled
    running = observed.position(scale.symbol)
    wanted_legs = set()
    for index, (price, quantity) in enumerate(zip(prices, quantities, strict=True), start=1):
        leg = scale_leg(index)
        wanted_legs.add(leg)
        level_filled = min(float(quantity), max(0.0, unassigned))
        unassigned -= level_filled
        remaining = math.floor(quantity - level_filled + 1e-9)
        working = by_leg.get(leg)
        if remaining <= 0:
            if working is not None:
                intents.append(
                    cancel_intent(working, KIND, f"{leg} is filled ({shares(quantity)})")
                )
            continue
        purpose: Purpose = "closing" if reduces(running, scale.side, remaining) else "opening"
        running += signed(scale.side, remaining)
        already = 0 if working is None else int(working.order.filled)
        spec = OrderSpec(
            symbol=scale.symbol,
            action=scale.side,
            quantity=already + remaining,
            order_type="LMT",
            order_ref=order_ref(name, generation, leg),
            tif=scale.tif,
            limit_price=price,
        )
        reason = (
            f"level {index} of {scale.levels}: {scale.side} {shares(remaining)} at {price:g}"
            f" ({shares(level_filled)} of {shares(quantity)} filled)"
        )
        if working is None and held_back:
            assert expired is not None
            notes.append(
                f"{where}: {leg} expired unfilled on {expired.isoformat()}; reenter: "
                f"{scale.reenter}, so it is not placed again"
                + (" today" if scale.reenter == "daily" else " (edit the rule to place it anew)")
            )
        elif working is None:
            intents.append(_intent(spec, name, leg, purpose, reason, quantity, level_filled))
        elif not already_this_spec(working.order, spec):
            intents.append(
                _intent(spec, name, leg, purpose, reason, quantity, level_filled, working)
            )
    for leg, owned in sorted(by_leg.items()):
        if leg not in wanted_legs:
            intents.append(cancel_intent(owned, KIND, f"{leg} is no longer a level"))
    return intents


def _intent(
    spec: OrderSpec,
    name: str,
    leg: str,
    purpose: Purpose,
    reason: str,
    quantity: int,
    level_filled: float,
    owned: OwnedOrder | None = None,
) -> Intent:
    assert spec.limit_price is not None
    return place_or_modify(
        spec,
        kind=KIND,
        rule=name,
        leg=leg,
        purpose=purpose,
        reason=reason,
        estimated_price=spec.limit_price,
        current=level_filled,
        target=float(quantity),
        existing=None if owned is None else owned.order,
    )
