"""``plan(rules, observed, now) -> Plan``: the whole reconcile decision, as a pure function.

Order of work: index the observed account; plan brackets and scales (standing orders) and then
allocations (which need to know the cash those standing orders take); drop what is already in
flight; order the intents (cancels, sells, buys); run the risk gate last.
"""

from __future__ import annotations

import gc
import math
from dataclasses import replace
from datetime import datetime
from itertools import chain
from operator import attrgetter

from tradectl.planner.allocations import plan_allocations
from tradectl.planner.brackets import plan_brackets
from tradectl.planner.cash import check_cash, needs_cash
from tradectl.planner.common import Book, Draft, Group
from tradectl.planner.conversions import plan_conversions, with_conversions
from tradectl.planner.domain import Intent, Observed, Plan
from tradectl.planner.gate import gate_drafted
from tradectl.planner.legs import converted_currency
from tradectl.planner.market_time import Hold, hold_reason, in_blackout
from tradectl.planner.money import is_conversion, with_fx_rates
from tradectl.planner.scales import plan_scales
from tradectl.schemas.models import RuleSet


def plan(rules: RuleSet, observed: Observed, now: datetime) -> Plan:
    # A large plan allocates hundreds of thousands of objects and no reference cycles; the
    # cyclic collector's full passes over the whole heap (the observed account included) made
    # planning grow faster than the account. Reference counting still frees everything.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _plan(rules, observed, now)
    finally:
        if collecting:
            gc.enable()


def _plan(rules: RuleSet, observed: Observed, now: datetime) -> Plan:
    values = (observed.net_liquidation, observed.cash, observed.day_start_nav)
    if not all(math.isfinite(value) for value in values):
        return Plan(
            notes=(
                "account values are not all numbers (net liquidation, cash, day-start NAV): "
                "nothing planned",
            ),
            manual_orders=observed.manual_orders,
        )
    book = Book(observed, now)
    manual = book.manual
    draft = Draft()
    for owned in book.owned:
        if owned.kind is None and converted_currency(owned.leg) is None:
            draft.notes.append(
                f"order {owned.order.order_id} ({owned.order.symbol}) has a tradectl orderRef "
                f"of unknown form {owned.order.order_ref!r}; not touched"
            )

    standing = plan_brackets(rules, book)
    standing.extend(plan_scales(rules, book))
    for group in chain.from_iterable(standing.phases):
        with_fx_rates(group, observed)
    draft.extend(standing)
    # The gate runs the same cash check again on the whole plan (defence in depth): here it
    # tells allocations how much cash the bracket entries and scale levels that fit will take.
    standing_intents = standing.intents()
    standing_added = 0.0
    if standing_intents:
        # Without standing intents nothing is added: the check (which values every working
        # buy) is not run for nothing.
        standing_cash = check_cash(standing_intents, {}, observed)
        standing_added = standing_cash.standing_added
        if any(needs_cash(intent) for intent in standing_intents):
            draft.notes.append(
                "cash: bracket entries and scale levels that buy are counted against "
                f"{standing_cash.funding.describe()}, brackets first, then scales, by rule name"
            )
    draft.extend(plan_allocations(rules, book, standing_added))

    intents, keys_unique = _assembled(draft, observed.in_flight, draft.notes)
    if manual:
        draft.notes.append(
            f"{len(manual)} manual order(s) without a tradectl orderRef observed; not touched"
        )
    outside_rth = _outside_rth_rules(rules)
    if outside_rth:
        intents = tuple(
            replace(intent, order=replace(intent.order, outside_rth=True))
            if intent.order is not None and (intent.kind, intent.rule) in outside_rth
            else intent
            for intent in intents
        )
    drafted = Plan(
        intents=intents,
        notes=tuple(draft.notes),
        manual_orders=manual,
        targets=tuple(draft.targets),
    )
    # Built, then published: these intents are this call's own until it returns
    # (gate_drafted writes the verdicts into them). Unique keys mean distinct intent objects.
    gated = gate_drafted(drafted, rules, observed, distinct=keys_unique)
    conversions = plan_conversions(gated, rules, observed)
    if conversions:
        gated = gate_drafted(with_conversions(drafted, conversions), rules, observed)
    return hold_for_market_time(gated, rules, observed, now)


def _assembled(
    draft: Draft, in_flight: frozenset[str], notes: list[str]
) -> tuple[tuple[Intent, ...], bool]:
    """The drafted intents in plan order, with unique keys, and without what waits for an
    acknowledgement (a note each); and whether every drafted key differed (so no intent
    object is there twice, which the gate then need not check).

    Almost always every key is unique already and nothing is in flight: then the draft's
    intents are the plan, with one look at each key and no group rebuilt
    (tests/planner/test_gate_fast_paths.py compares this with both steps run on every plan)."""
    intents = draft.intents()
    # The keys listed first, so that the set is made at its size instead of growing.
    repeated = len(set(list(map(attrgetter("key"), intents)))) != len(intents)
    if not (repeated or in_flight):
        return intents, True
    groups = draft.groups
    if repeated:
        groups = _with_unique_keys(groups)
    # A modify or cancel in flight still changes its order: plan nothing else for that order
    # until IB has acknowledged it, even when the market has moved and the new fields differ.
    if in_flight:
        groups = _not_in_flight(groups, in_flight, notes)
    return _flattened(groups), not repeated


def _flattened(groups: list[Group]) -> tuple[Intent, ...]:
    return tuple(chain.from_iterable(map(attrgetter("intents"), groups)))


def _not_in_flight(groups: list[Group], in_flight: frozenset[str], notes: list[str]) -> list[Group]:
    """The groups without an intent in flight or acting on an order with a modify or cancel in
    flight; a note for each group left out."""
    busy_refs = {key.split("#", 1)[0] for key in in_flight if "#" in key}
    kept: list[Group] = []
    for group in groups:
        waiting = [
            intent.key
            for intent in group.intents
            if intent.key in in_flight
            or (intent.action != "place" and intent.key.split("#", 1)[0] in busy_refs)
        ]
        if waiting:
            notes.append(
                f"{group.intents[0].kind}.{group.intents[0].rule}: waiting for the broker to "
                f"acknowledge {waiting[0]}; not planned again"
            )
            continue
        kept.append(group)
    return kept


def _outside_rth_rules(rules: RuleSet) -> set[tuple[str, str]]:
    """The (kind, rule) of every rule whose orders may fill outside regular trading hours."""
    return {
        *(
            ("allocations", name)
            for name, rule in rules.allocations.items()
            if rule.order.outside_rth
        ),
        *(("brackets", name) for name, rule in rules.brackets.items() if rule.outside_rth),
        *(("scales", name) for name, rule in rules.scales.items() if rule.outside_rth),
    }


def hold_for_market_time(plan: Plan, rules: RuleSet, observed: Observed, now: datetime) -> Plan:
    """Mark the intents the market's hours hold back (docs/planning.md, "Market time"); a held
    bracket entry holds the children sent with it. Held intents stay in the plan, like blocked
    ones, so ``plan`` shows them with the time they will go."""
    if observed.market_hours is None:
        return plan
    schedule = rules.schedule
    # A symbol's hours can only lift a blackout (in_blackout), never start one: outside every
    # blackout none is asked again per intent (it works out the blackout's local times).
    blackouts = schedule.blackouts if in_blackout(now, schedule.blackouts, None) is not None else ()
    held: dict[str, str] = {}
    marked: list[Intent] = []
    for intent in plan.intents:
        order = intent.order
        reason = None
        if order is not None and order.parent_ref in held:
            reason = held[order.parent_ref]
        elif order is None and not intent.blocked:
            hours = observed.market_hours.get(intent.symbol)
            blackout_end = in_blackout(now, blackouts, hours)
            if blackout_end is not None:
                reason = Hold("inside IB's daily reset blackout", blackout_end).describe(
                    "America/New_York"
                )
        elif order is not None and not intent.blocked and not is_conversion(intent):
            hours = observed.market_hours.get(intent.symbol)
            hold = hold_reason(
                hours=hours,
                now=now,
                allocation=intent.kind == "allocations",
                market_order=order.order_type == "MKT",
                protective=intent.purpose == "protective",
                outside_rth=order.outside_rth,
                window=schedule.trading_window,
                blackouts=blackouts,
            )
            if hold is not None:
                zone = "America/New_York" if hours is None else hours.time_zone
                reason = hold.describe(zone)
                held[order.order_ref] = reason
        marked.append(intent if reason is None else replace(intent, blocked_by=reason))
    return replace(plan, intents=tuple(marked))


def _with_unique_keys(groups: list[Group]) -> list[Group]:
    """Two working orders can share an orderRef (a duplicate tradectl must clean up); their
    cancel or modify intents then get the order id in the key, so keys stay unique. ``groups``
    come in the plan's final order, so the same inputs always give the same keys."""
    seen: set[str] = set()
    result: list[Group] = []
    for group in groups:
        if len(group.intents) == 1 and group.intents[0].key not in seen:
            seen.add(group.intents[0].key)
            result.append(group)
            continue
        intents: list[Intent] = []
        for intent in group.intents:
            if intent.key in seen and intent.order_id is not None:
                intent = replace(intent, key=f"{intent.key}@{intent.order_id}")
            seen.add(intent.key)
            intents.append(intent)
        result.append(Group(intents, group.phase))
    return result
