"""The risk gate: marks the intents of a plan that break a risk limit as blocked.

Blocked intents stay in the plan with ``blocked_by`` naming the limit, so the user sees what
tradectl would have done and why it did not. The gate is pure and idempotent: it recomputes
every ``blocked_by`` from the rules and the observed account.
``plan()`` runs it as ``gate_drafted``, which writes the verdicts into the intents it has just
drafted instead of onto copies (see there).

Checks, in order (the first that fails names the block):

* ``halt`` blocks everything.
* ``risk.allowed_symbols`` and ``risk.max_daily_loss_fraction`` (the circuit breaker) block
  opening intents only: closing, protective and cancel intents reduce risk and always go.
* ``risk.max_order_value`` blocks opening and closing orders whose value exceeds it;
  protective orders (the stop and target of a position) are never blocked by size, since
  blocking them would leave a position unprotected.
* ``risk.max_position_fraction`` blocks opening orders after which the symbol's position,
  assuming every working and planned order on that side fills, would exceed the fraction of NAV.
* ``risk.max_risk_per_trade_fraction`` blocks bracket entries whose |entry - stop| x quantity
  exceeds the fraction of NAV.
* ``risk.max_orders_per_minute`` blocks the excess over the limit, opening intents first,
  then closing ones, protective ones last.
* An order in a currency IB gives no exchange rate for is held (daemon/planner/money.py);
  values, limits and cash are in the account's base currency, converted with IB's rates.
* Last, cash (docs/planning.md, "Cash": buys never spend cash below zero;
  daemon/planner/cash.py): the buy commitment of what actually passes (every working buy at its
  current size, except those an unblocked modify changes, plus unblocked places and modifies)
  may not exceed the funding.
  Bracket entries and scale levels are admitted first, in a fixed order, against cash (in a
  margin account: IB's buying power); allocation buys last, against cash minus their rule's
  buffer. The planner sizes allocation buys with the same arithmetic, assuming all its intents
  go through; when one is blocked (say a modify that was to free cash), the buys it would have
  funded are blocked here instead.
  Then cash per currency: opening buys in a currency may commit no more than the account holds
  in it (a margin account's base currency excepted); what happens to the others is
  ``account.fx`` (daemon/planner/money.py).

A bracket's intents are one unit: if one of them is blocked, all of them are, so a parent is
never sent without its children and a protective leg is never cancelled without its successor.
The cash check alone is narrower: an entry it blocks takes along the children attached to that
entry and the rule's other non-protective intents, never the protective legs of a filled entry
(they need no cash, and a position must not lose its stop over a new entry's cash).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from operator import attrgetter

from tradectl.planner.allocations import cash_buffer_of
from tradectl.planner.breaker import RULE as BREAKER_RULE
from tradectl.planner.breaker import breaker_reason
from tradectl.planner.cash import check_cash
from tradectl.planner.common import TERMINAL_STATUSES, money, working_shares
from tradectl.planner.domain import Intent, Observed, Plan, with_blocked_by
from tradectl.planner.legs import ENTRY_LEG, STOP_LEG
from tradectl.planner.money import (
    FX_RULE,
    check_currencies,
    is_conversion,
    no_rate_reason,
    rate_to_base,
)
from tradectl.schemas.models import FxPolicy, Risk, RuleSet, instrument_allowed

HALT = "halt"
# The slot's own setter (an Intent has slots and no instance dict).
_SET_BLOCKED_BY = Intent.__dict__["blocked_by"].__set__
_CURRENCY_OF = attrgetter("currency")
# How many contracts one pass over the account's contracts may read per intent of the plan and
# still cost less than looking each intent's contract up (see _every_currency_rated).
_CONTRACTS_PER_LOOKUP = 8
# The rate limit lets units through in rank order: protective before closing before opening
# and, within a purpose, cancels and modifies before places (a modify that shrinks a buy frees
# the cash that the places were sized with). A unit of several intents ranks by the highest
# purpose and the highest action among them, each apart.
_PRIORITY = {"protective": 0, "closing": 1, "opening": 2}
_ACTION_ORDER = {"cancel": 0, "modify": 1, "place": 2}
_RANKS = len(_PRIORITY) * len(_ACTION_ORDER)
_RANK = {
    purpose: {
        action: priority * len(_ACTION_ORDER) + action_order
        for action, action_order in _ACTION_ORDER.items()
    }
    for purpose, priority in _PRIORITY.items()
}


def breaker_block(risk: Risk, observed: Observed) -> str | None:
    """Why opening intents are blocked by the daily-loss circuit breaker, or None."""
    if observed.breaker_tripped:
        return f"{BREAKER_RULE}: circuit breaker tripped (until `tradectl resume`)"
    return breaker_reason(observed, risk.max_daily_loss_fraction)


def gate(plan: Plan, rules: RuleSet, observed: Observed) -> Plan:
    """``plan`` with every intent's ``blocked_by`` as the risk limits find it, on copies of the
    intents whose verdict changes (``plan`` itself is left as it is)."""
    return replace(
        plan, intents=_all_marked(plan.intents, _verdicts(plan.intents, rules, observed))
    )


def gate_drafted(plan: Plan, rules: RuleSet, observed: Observed, *, distinct: bool = False) -> Plan:
    """``gate`` for the plan ``plan()`` drafted in this call: the verdicts are written into the
    intents themselves instead of onto copies, and ``plan`` is returned.

    Build, then publish: the planner built these intents in this call and nobody else holds
    them before ``plan()`` returns; from then on they are frozen like any other (a copy per
    blocked intent cost 0.5 µs, and the rate limit blocks most intents of a large plan). An
    intent that appears twice in the plan could need two verdicts: then the intents are copied,
    as ``gate`` does. ``distinct`` is the caller's word that no intent object appears twice
    (``plan()`` knows it when every key differs: one object has one key); without it the
    objects are compared. A gated plan given to the gate again (plan() gates once more when it
    adds conversions) gets every verdict recomputed."""
    intents = plan.intents
    if not distinct and len(set(map(id, intents))) != len(intents):
        return gate(plan, rules, observed)
    _write_verdicts(intents, _verdicts(intents, rules, observed))
    return plan


def _write_verdicts(intents: Sequence[Intent], blocked_by: Mapping[int, str]) -> None:
    """Set every intent's ``blocked_by`` to its verdict, None for those not blocked (an earlier
    verdict is cleared). One pass in C over the intents, each touched once: a Python loop
    reading every intent to clear it and another writing the blocked ones took twice as long
    at 20,000 targets. The slot is written as a frozen dataclass's own ``__init__`` writes
    it, bypassing the frozen ``__setattr__``."""
    deque(map(_SET_BLOCKED_BY, intents, map(blocked_by.get, range(len(intents)))), maxlen=0)


def _verdicts(intents: Sequence[Intent], rules: RuleSet, observed: Observed) -> dict[int, str]:
    """Index to reason, for every intent a limit blocks (see the module docstring)."""
    if observed.halted:
        return dict.fromkeys(range(len(intents)), HALT)
    blocked_by, candidates = _checked(intents, rules.risk, observed)
    _limit_rate(candidates, blocked_by, rules.risk, observed)
    _limit_cash(intents, blocked_by, rules, observed)
    blocked_by.update(check_currencies(intents, blocked_by, observed, _fx_policy(rules)))
    return blocked_by


def recheck_cash(plan: Plan, rules: RuleSet, observed: Observed) -> Plan:
    """The gate's cash check again, on a gated plan in which more intents were held since (the
    runtime holds intents IB rejected earlier): a held modify that was to free cash leaves its
    order as it is, so buys it funded may no longer fit. Only adds blocks.

    Deliberate repetition, as defence in depth: the planner sized allocation buys with this
    arithmetic, the gate checked it, and this last recheck runs on exactly what will be sent."""
    intents = list(plan.intents)
    blocked_by = {
        index: intent.blocked_by
        for index, intent in enumerate(intents)
        if intent.blocked_by is not None
    }
    _limit_cash(intents, blocked_by, rules, observed)
    blocked_by.update(check_currencies(intents, blocked_by, observed, _fx_policy(rules)))
    return replace(plan, intents=_all_marked(intents, blocked_by))


def _fx_policy(rules: RuleSet) -> FxPolicy:
    return rules.account.fx


def _all_marked(intents: Sequence[Intent], blocked_by: Mapping[int, str]) -> tuple[Intent, ...]:
    """The intents with ``blocked_by`` as the gate found it (most keep theirs: no copy)."""
    marked = []
    for index, intent in enumerate(intents):
        reason = blocked_by.get(index)
        marked.append(intent if intent.blocked_by == reason else with_blocked_by(intent, reason))
    return tuple(marked)


def _bracket_units(intents: Sequence[Intent]) -> dict[int, list[int]]:
    """The bracket rules' units, which stand or fall together: all intents of one bracket rule
    (but a conversion for its entry, which goes first and alone), in plan order, under the
    index of each of them. Every other intent is a unit of its own and has no entry here:
    made once per pass, when the first bracket intent is checked (most plans have none, and a
    list per intent was a twentieth of the gate)."""
    by_rule: dict[str, list[int]] = {}
    for index, intent in enumerate(intents):
        if intent.kind == "brackets" and not is_conversion(intent):
            by_rule.setdefault(intent.rule, []).append(index)
    return {index: unit for unit in by_rule.values() for index in unit}


def _unit_of(first: int, bracket_units: Mapping[int, list[int]]) -> Sequence[int]:
    """The indices of the unit whose first intent is ``first``."""
    return bracket_units.get(first) or (first,)


@dataclass
class _Candidates:
    """The units every check passed, for the rate limit: ``by_rank[rank]`` their first indices
    in plan order (see ``_RANK``); ``sizes[rank]`` how many intents those units hold;
    ``bracket_units`` the bracket rules' units (``_bracket_units``)."""

    by_rank: list[list[int]]
    sizes: list[int]
    bracket_units: Mapping[int, list[int]]


def _every_currency_rated(observed: Observed, intent_count: int) -> bool:
    """True when IB gives a rate for the currency of every contract the account knows (the
    base currency, that of a symbol without facts, always has one): then the rate check
    passes every intent, and the gate need not look up each intent's contract to know it.

    Asked only when one pass over the contracts costs less than a lookup per intent (in
    ``plan()`` a contract's currency reads in about a fourteenth of the time of an intent's
    lookup); a small plan in a large account looks its few contracts up instead. False
    means "look each one up", never "blocked"."""
    contracts = observed.contracts
    if len(contracts) > _CONTRACTS_PER_LOOKUP * intent_count:
        return False
    currencies = set(map(_CURRENCY_OF, contracts.values()))
    return all(
        rate_to_base(observed, currency) is not None
        for currency in currencies
        if currency is not None
    )


def _checked(
    intents: Sequence[Intent], risk: Risk, observed: Observed
) -> tuple[dict[int, str], _Candidates]:
    """Every intent against every limit but the rate limit and cash, unit by unit in plan
    order (a unit at its first intent): the first limit an intent breaks blocks its whole
    unit. Returns the blocks and the units that passed, for the rate limit.

    The exposure ``risk.max_position_fraction`` counts is the position plus every working order
    on one side as it is now, plus what the opening intents admitted so far add. Working
    orders count as they are even when the plan modifies or cancels them: the modify or cancel
    may itself be blocked, or come too late, and the order may fill meanwhile. So a modify adds
    only what it grows the order by, and one that does not grow it adds nothing.

    One loop with the limits and rates in locals and no method call per intent: a large plan
    checks every one of its intents here (tests/planner/test_gate_fast_paths.py compares it with the
    per-intent checks it replaced)."""
    allowed = risk.allowed_symbols
    # instrument_allowed's own first test, with the set built once instead of per intent.
    allowed_keys = set(allowed or ())
    breaker = breaker_block(risk, observed)
    contracts = observed.contracts
    base = observed.base_currency
    every_currency_rated = _every_currency_rated(observed, len(intents))
    # Per currency: whether IB gives a rate for it (symbol_rate is None exactly when not).
    rated: dict[str, bool] = {}
    quotes = observed.quotes
    positions = observed.positions
    order_value_limit = risk.max_order_value + 1e-6
    position_limit = risk.max_position_fraction * observed.net_liquidation
    position_limit_with_slack = position_limit + 1e-6
    live = [order for order in observed.working_orders if order.status not in TERMINAL_STATUSES]
    orders_by_id = {order.order_id: order for order in live}
    long, short = working_shares(live)

    inf = math.inf
    blocked_by: dict[int, str] = {}
    bracket_units: dict[int, list[int]] | None = None
    by_rank: list[list[int]] = [[] for _ in range(_RANKS)]
    # Per rank, the intents its units hold beyond one each (only bracket units hold more).
    beyond_one = [0] * _RANKS
    stops: _Stops | None = None
    # (symbol, side, shares) the unit's opening intents add once the whole unit passes
    adds: list[tuple[str, dict[str, float], float]] = []
    for first, first_intent in enumerate(intents):
        unit: Sequence[int] = (first,)
        if first_intent.kind == "brackets":
            if bracket_units is None:
                bracket_units = _bracket_units(intents)
            unit = _unit_of(first, bracket_units)
            if unit[0] != first:
                # Checked with its unit, at the unit's first intent.
                continue
        unit_size = len(unit)
        reason: str | None = None
        adds_to: dict[str, float] | None = None
        for index in unit:
            intent = intents[index]
            purpose = intent.purpose
            action = intent.action
            order = intent.order
            if order is None:
                continue
            opening = purpose == "opening"
            symbol = intent.symbol
            buying = order.action == "BUY"
            growth = 0.0
            if opening:
                # The shares this intent adds on its side if it fills (a whole number: the
                # sums below are floats all the same).
                growth = order.quantity
                if action == "modify":
                    before = orders_by_id.get(intent.order_id or -1)
                    if before is not None and before.action == order.action:
                        growth = max(0.0, order.quantity - before.filled - before.remaining)
                adds_to = long if buying else short
                if unit_size > 1:
                    adds.append((symbol, adds_to, growth))
            if action == "cancel":
                continue
            # A conversion (account.fx: convert) trades a currency pair, not an instrument of
            # the rules.
            if (
                opening
                and allowed is not None
                and symbol not in allowed_keys
                and not instrument_allowed(symbol, allowed)
                and not is_conversion(intent)
            ):
                reason = f"risk.allowed_symbols: {symbol} is not in the allow-list"
                break
            if opening and breaker is not None:
                reason = breaker
                break
            if purpose == "protective":
                continue
            if not every_currency_rated:
                facts = contracts.get(symbol)
                currency = base if facts is None or facts.currency is None else facts.currency
                usable = rated.get(currency)
                if usable is None:
                    usable = rated[currency] = rate_to_base(observed, currency) is not None
                if not usable:
                    reason = f"{FX_RULE}: {no_rate_reason(observed, symbol)}"
                    break
            price = intent.estimated_price
            if price is None:
                reason = "risk.max_order_value: no price to value the order"
                break
            if not 0 < price < inf:
                # NaN passes every comparison below, and 0 would value the order at nothing.
                reason = f"risk.max_order_value: no usable price to value the order ({price:g})"
                break
            # Allocations already size their orders to this limit and to the position limit
            # below (allocations.py), and `validate` checks a bracket's or scale's own prices
            # against it (schemas/checks.py); checked again here on purpose (defence in depth):
            # every intent of every kind passes the gate, whatever its planner or its file said.
            fx_rate = intent.fx_rate
            value = abs(order.quantity) * price * fx_rate
            if value > order_value_limit:
                reason = f"risk.max_order_value: {money(value)} > {money(risk.max_order_value)}"
                break
            if not opening:
                continue
            # A modify that does not grow its order adds no exposure and is not held to the
            # limit; nor is a conversion (asked last: the position is cheaper to work out).
            if growth > 0:
                held = positions.get(symbol)
                position = 0.0 if held is None else held.quantity
                if buying:
                    after = position + long.get(symbol, 0.0) + growth
                else:
                    after = position - short.get(symbol, 0.0) - growth
                quote = quotes.get(symbol)
                last = 0.0 if quote is None else quote.last
                mark = last if 0 < last < inf else price
                after_value = abs(after) * mark * fx_rate
                if after_value > position_limit_with_slack and not is_conversion(intent):
                    reason = (
                        f"risk.max_position_fraction: {symbol} position after fill "
                        f"{money(after_value)} > {money(position_limit)} "
                        f"({risk.max_position_fraction:.2%} of NAV)"
                    )
                    break
            if intent.kind == "brackets" and intent.leg == ENTRY_LEG:
                if stops is None:
                    stops = _stops_by_rule(intents, observed)
                reason = _risk_per_trade(intent, risk, observed, stops)
                if reason is not None:
                    break
        if reason is not None:
            for index in unit:
                blocked_by[index] = reason
            adds.clear()
            continue
        if unit_size == 1:
            # Most units are one intent: its fields are still in the loop's variables.
            if adds_to is not None:
                adds_to[symbol] = adds_to.get(symbol, 0.0) + growth
            rank = _RANK[purpose][action]
        else:
            for symbol, side, growth in adds:
                side[symbol] = side.get(symbol, 0.0) + growth
            adds.clear()
            rank = _unit_rank([intents[index] for index in unit])
            beyond_one[rank] += unit_size - 1
        by_rank[rank].append(first)
    sizes = [len(firsts) + beyond for firsts, beyond in zip(by_rank, beyond_one, strict=True)]
    return blocked_by, _Candidates(by_rank, sizes, bracket_units or {})


def _unit_rank(unit: list[Intent]) -> int:
    return max(_PRIORITY[intent.purpose] for intent in unit) * len(_ACTION_ORDER) + max(
        _ACTION_ORDER[intent.action] for intent in unit
    )


# Per bracket rule: the stop that bounds its entry's risk, as (trailing percent, stop price).
_Stops = dict[str, tuple[float | None, float | None]]


def _stops_by_rule(intents: Sequence[Intent], observed: Observed) -> _Stops:
    """Per bracket rule, the first stop leg planned with a trailing percent or a stop price,
    else the first live working one with either. Made once per gate pass, when the first
    bracket entry is checked (each entry used to search the plan and the working orders)."""
    planned: _Stops = {}
    for intent in intents:
        order = intent.order
        if (
            intent.kind == "brackets"
            and intent.leg == STOP_LEG
            and order is not None
            and intent.rule not in planned
            and (order.trailing_percent is not None or order.aux_price is not None)
        ):
            planned[intent.rule] = (order.trailing_percent, order.aux_price)
    working: _Stops = {}
    for working_order in observed.working_orders:
        rule = working_order.rule
        if (
            rule is not None
            and rule not in working
            and working_order.leg == STOP_LEG
            and working_order.status not in TERMINAL_STATUSES
            and (working_order.trailing_percent is not None or working_order.aux_price is not None)
        ):
            working[rule] = (working_order.trailing_percent, working_order.aux_price)
    return {**working, **planned}


def _risk_per_trade(entry: Intent, risk: Risk, observed: Observed, stops: _Stops) -> str | None:
    assert entry.order is not None and entry.estimated_price is not None
    stop = stops.get(entry.rule)
    if stop is None:
        return "risk.max_risk_per_trade_fraction: no stop loss found for this entry"
    # |entry - stop| per share, from the stop planned with this entry or else the working one.
    price = entry.estimated_price
    trailing_percent, stop_price = stop
    if trailing_percent is not None:
        distance = price * trailing_percent / 100
    else:
        assert stop_price is not None
        distance = abs(price - stop_price)
    quantity = entry.order.quantity
    at_risk = distance * quantity * entry.fx_rate
    limit = risk.max_risk_per_trade_fraction * observed.net_liquidation
    if at_risk > limit + 1e-6:
        return (
            f"risk.max_risk_per_trade_fraction: {money(at_risk)} at risk > {money(limit)} "
            f"({risk.max_risk_per_trade_fraction:.2%} of NAV)"
        )
    return None


def _limit_rate(
    candidates: _Candidates, blocked_by: dict[int, str], risk: Risk, observed: Observed
) -> None:
    """Block the units over ``risk.max_orders_per_minute``: the candidates in rank order, each
    rank in plan order, pass while they fit in the room the last minute's orders leave.

    A rank that fits whole passes without a look at its units, a rank of one-intent units (no
    bracket in the plan) is cut where the room ends, and once the room is used up every later
    unit is blocked in one step: at 20,000 targets most of 16,000 units are over
    the limit (tests/planner/test_gate_fast_paths.py compares this with the stable sort by
    priority it replaced)."""
    planned = sum(candidates.sizes)
    limit = risk.max_orders_per_minute
    room = limit - observed.orders_sent_last_minute
    if planned <= room:
        return
    reason = (
        f"risk.max_orders_per_minute: {observed.orders_sent_last_minute} sent in the last "
        f"minute + {planned} planned > {limit}"
    )
    bracket_units = candidates.bracket_units
    used = 0
    for firsts, size in zip(candidates.by_rank, candidates.sizes, strict=True):
        if used + size <= room:
            used += size
            continue
        if not bracket_units:
            # Every unit is one intent: as many pass as there is room for, the rest are over.
            passing = max(0, room - used)
            used += passing
            blocked_by.update(dict.fromkeys(firsts[passing:], reason))
            continue
        for position, first in enumerate(firsts):
            if used >= room:
                over = firsts[position:]
                if bracket_units:
                    over = list(chain.from_iterable(_unit_of(i, bracket_units) for i in over))
                blocked_by.update(dict.fromkeys(over, reason))
                break
            unit = _unit_of(first, bracket_units)
            if used + len(unit) <= room:
                used += len(unit)
            else:
                for index in unit:
                    blocked_by[index] = reason


def _limit_cash(
    intents: Sequence[Intent], blocked_by: dict[int, str], rules: RuleSet, observed: Observed
) -> None:
    """Block the buys that would take the buy commitment of what passes above the account's
    funding (daemon/planner/cash.py). Run last, on the verdicts of every other check.

    Bracket entries and scale levels are admitted first (cash, or buying power in a margin
    account); an entry that does not fit takes with it the children attached to it, so a
    parent and its children go together or not at all. Protective legs of what already filled
    are not attached to a new entry and still go. Allocation buys come last, in plan order
    while they fit within cash minus their rule's buffer.

    Deliberate repetition, as defence in depth: the planner ran the same arithmetic
    (``check_cash``) to size allocation buys, and ``recheck_cash`` runs it once more on what
    the runtime will send; all three call daemon/planner/cash.py, none restates it.
    """
    check = check_cash(intents, blocked_by, observed)
    # Per bracket rule, its intents' indices in plan order: made when the first entry is
    # blocked, so a plan of many brackets short of cash is not searched once per entry.
    brackets: dict[str, list[int]] | None = None
    for index, reason in check.blocked.items():
        blocked_by[index] = reason
        entry = intents[index]
        if entry.kind != "brackets" or entry.order is None:
            continue
        if brackets is None:
            brackets = {}
            for other, intent in enumerate(intents):
                if intent.kind == "brackets":
                    brackets.setdefault(intent.rule, []).append(other)
        for other in brackets[entry.rule]:
            intent = intents[other]
            if other in blocked_by:
                continue
            attached = intent.order is not None and intent.order.parent_ref == entry.order.order_ref
            if attached or intent.purpose != "protective":
                blocked_by[other] = reason
    committed = check.committed
    # Per rule: its cash buffer (a large plan has thousands of buys of one allocation).
    buffers: dict[str, float] = {}
    for index, change in check.allocation_additions:
        rule = intents[index].rule
        buffer = buffers.get(rule)
        if buffer is None:
            allocation = rules.allocations.get(rule)
            buffer = buffers[rule] = (
                0.0 if allocation is None else cash_buffer_of(allocation, observed.net_liquidation)
            )
        available = observed.cash - buffer
        if committed + change > available + 1e-6:
            blocked_by[index] = (
                f"cash: buys would commit {money(committed + change)} > {money(available)} "
                f"available (cash {money(observed.cash)} - buffer {money(buffer)})"
            )
            continue
        committed += change
