"""The risk gate: marks the intents of a plan that break a risk limit as blocked.

Blocked intents stay in the plan with ``blocked_by`` naming the limit, so the user sees what
tradectl would have done and why it did not. The gate is pure and idempotent: it recomputes
every ``blocked_by`` from the rules and the observed account.

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

from dataclasses import replace

from tradectl.planner.allocations import cash_buffer_of
from tradectl.planner.breaker import RULE as BREAKER_RULE
from tradectl.planner.breaker import breaker_reason
from tradectl.planner.cash import check_cash
from tradectl.planner.common import TERMINAL_STATUSES, frozen_instance, money, working_shares
from tradectl.planner.domain import Intent, Observed, Plan, WorkingOrder
from tradectl.planner.legs import ENTRY_LEG, STOP_LEG
from tradectl.planner.money import (
    FX_RULE,
    Rates,
    check_currencies,
    is_conversion,
    no_rate_reason,
)
from tradectl.schemas.models import FxPolicy, Risk, RuleSet, instrument_allowed

HALT = "halt"
_PRIORITY = {"protective": 0, "closing": 1, "opening": 2}
_ACTION_ORDER = {"cancel": 0, "modify": 1, "place": 2}


def breaker_block(risk: Risk, observed: Observed) -> str | None:
    """Why opening intents are blocked by the daily-loss circuit breaker, or None."""
    if observed.breaker_tripped:
        return f"{BREAKER_RULE}: circuit breaker tripped (until `tradectl resume`)"
    return breaker_reason(observed, risk.max_daily_loss_fraction)


def gate(plan: Plan, rules: RuleSet, observed: Observed) -> Plan:
    # Every check below reads only the intents' other fields; blocked_by is recomputed.
    intents = list(plan.intents)
    if observed.halted:
        return replace(plan, intents=tuple(_marked(intent, HALT) for intent in intents))

    groups = _units(intents)
    blocked_by: dict[int, str] = {}
    checks = _Checks(rules.risk, observed, intents)
    check, admit = checks.check, checks.exposure.add
    for unit in groups:
        if len(unit) == 1:
            intent = intents[unit[0]]
            reason = check(intent)
            if reason is None:
                admit(intent)
            else:
                blocked_by[unit[0]] = reason
            continue
        reason = None
        for index in unit:
            reason = check(intents[index])
            if reason is not None:
                break
        if reason is not None:
            for index in unit:
                blocked_by[index] = reason
            continue
        for index in unit:
            admit(intents[index])

    _limit_rate(intents, groups, blocked_by, rules.risk, observed)
    _limit_cash(intents, blocked_by, rules, observed)
    blocked_by.update(check_currencies(intents, blocked_by, observed, _fx_policy(rules)))
    return replace(plan, intents=_all_marked(intents, blocked_by))


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


def _all_marked(intents: list[Intent], blocked_by: dict[int, str]) -> tuple[Intent, ...]:
    """The intents with ``blocked_by`` as the gate found it (most keep theirs: no copy)."""
    marked = []
    for index, intent in enumerate(intents):
        reason = blocked_by.get(index)
        marked.append(intent if intent.blocked_by == reason else _marked(intent, reason))
    return tuple(marked)


def _marked(intent: Intent, blocked_by: str | None) -> Intent:
    if intent.blocked_by == blocked_by:
        return intent
    # The same as replace(intent, blocked_by=...) at a seventh of the cost (a large plan marks
    # thousands of intents): Intent is a frozen dataclass with no __post_init__, so a copy of
    # its fields with one changed is exactly what its __init__ would build.
    state = intent.__dict__.copy()
    state["blocked_by"] = blocked_by
    return frozen_instance(Intent, state)


def _units(intents: list[Intent]) -> list[list[int]]:
    """Indices of intents that stand or fall together: all intents of one bracket rule (but a
    conversion for its entry, which goes first and alone); every other intent alone. Units keep
    plan order (by their first intent)."""
    units: list[list[int]] = []
    bracket_unit: dict[str, list[int]] = {}
    for index, intent in enumerate(intents):
        if intent.kind == "brackets" and not is_conversion(intent):
            unit = bracket_unit.get(intent.rule)
            if unit is None:
                unit = bracket_unit[intent.rule] = []
                units.append(unit)
            unit.append(index)
        else:
            units.append([index])
    return units


class _Exposure:
    """Worst-case position per symbol: the position plus every working order on one side, as
    it is now, plus what the opening intents admitted so far add.

    Working orders count as they are even when the plan modifies or cancels them: the modify
    or cancel may itself be blocked, or come too late, and the order may fill meanwhile. So a
    modify adds only what it grows the order by, and one that does not grow it adds nothing.
    """

    def __init__(self, observed: Observed) -> None:
        self.positions = observed.positions
        live = [order for order in observed.working_orders if order.status not in TERMINAL_STATUSES]
        self.orders_by_id: dict[int, WorkingOrder] = {order.order_id: order for order in live}
        self.long, self.short = working_shares(live)

    def growth(self, intent: Intent) -> float:
        """Shares this intent adds on its side if it fills."""
        assert intent.order is not None
        if intent.action == "modify":
            before = self.orders_by_id.get(intent.order_id or -1)
            if before is not None:
                if before.action != intent.order.action:
                    return float(intent.order.quantity)
                return max(0.0, intent.order.quantity - before.filled - before.remaining)
        return float(intent.order.quantity)

    def after(self, intent: Intent, growth: float) -> float:
        """The signed position if this order (adding ``growth``) and all same-side orders
        fill."""
        assert intent.order is not None
        symbol = intent.symbol
        held = self.positions.get(symbol)
        position = 0.0 if held is None else held.quantity
        if intent.order.action == "BUY":
            return position + self.long.get(symbol, 0.0) + growth
        return position - self.short.get(symbol, 0.0) - growth

    def add(self, intent: Intent) -> None:
        order = intent.order
        if order is None or intent.purpose != "opening":
            return
        book = self.long if order.action == "BUY" else self.short
        book[intent.symbol] = book.get(intent.symbol, 0.0) + self.growth(intent)


class _Checks:
    """The per-intent checks of the gate, with what is constant over one gate pass (limits,
    the breaker's verdict, exchange rates) read once: a large plan checks every intent."""

    def __init__(self, risk: Risk, observed: Observed, intents: list[Intent]) -> None:
        self.risk = risk
        self.observed = observed
        self.intents = intents
        self.breaker = breaker_block(risk, observed)
        self.exposure = _Exposure(observed)
        self.rates = Rates(observed)
        self.quotes = observed.quotes
        self.order_value_limit = risk.max_order_value + 1e-6
        self.position_limit = risk.max_position_fraction * observed.net_liquidation

    def check(self, intent: Intent) -> str | None:
        """The first limit ``intent`` breaks, or None."""
        order = intent.order
        if order is None or intent.action == "cancel":
            return None
        risk = self.risk
        purpose = intent.purpose
        opening = purpose == "opening"
        # A conversion (account.fx: convert) trades a currency pair, not an instrument of the
        # rules.
        if (
            opening
            and risk.allowed_symbols is not None
            and not is_conversion(intent)
            and not instrument_allowed(intent.symbol, risk.allowed_symbols)
        ):
            return f"risk.allowed_symbols: {intent.symbol} is not in the allow-list"
        if opening and self.breaker is not None:
            return self.breaker
        if purpose == "protective":
            return None
        if self.rates.of(intent.symbol) is None:
            return f"{FX_RULE}: {no_rate_reason(self.observed, intent.symbol)}"
        if intent.estimated_price is None:
            return "risk.max_order_value: no price to value the order"
        # Allocations already size their orders to this limit and to the position limit below
        # (allocations.py), and `validate` checks a bracket's or scale's own prices against it
        # (schemas/checks.py); checked again here on purpose (defence in depth): every intent
        # of every kind passes the gate, whatever its planner or its file said.
        value = intent.value
        if value > self.order_value_limit:
            return f"risk.max_order_value: {money(value)} > {money(risk.max_order_value)}"
        if not opening:
            return None
        # A modify that does not grow its order adds no exposure and is not held to the limit.
        growth = self.exposure.growth(intent)
        if growth > 0 and not is_conversion(intent):
            quote = self.quotes.get(intent.symbol)
            price = quote.last if quote is not None and quote.last > 0 else intent.estimated_price
            after_value = abs(self.exposure.after(intent, growth)) * price * intent.fx_rate
            limit_value = self.position_limit
            if after_value > limit_value + 1e-6:
                return (
                    f"risk.max_position_fraction: {intent.symbol} position after fill "
                    f"{money(after_value)} > {money(limit_value)} "
                    f"({risk.max_position_fraction:.2%} of NAV)"
                )
        if intent.kind == "brackets" and intent.leg == ENTRY_LEG:
            return _risk_per_trade(intent, risk, self.observed, self.intents)
        return None


def _risk_per_trade(
    entry: Intent, risk: Risk, observed: Observed, intents: list[Intent]
) -> str | None:
    assert entry.order is not None and entry.estimated_price is not None
    distance = _stop_distance(entry, observed, intents)
    if distance is None:
        return "risk.max_risk_per_trade_fraction: no stop loss found for this entry"
    quantity = entry.order.quantity
    at_risk = distance * quantity * entry.fx_rate
    limit = risk.max_risk_per_trade_fraction * observed.net_liquidation
    if at_risk > limit + 1e-6:
        return (
            f"risk.max_risk_per_trade_fraction: {money(at_risk)} at risk > {money(limit)} "
            f"({risk.max_risk_per_trade_fraction:.2%} of NAV)"
        )
    return None


def _stop_distance(entry: Intent, observed: Observed, intents: list[Intent]) -> float | None:
    """|entry - stop| per share, from the stop planned with this entry or else the working one."""
    assert entry.estimated_price is not None
    price = entry.estimated_price
    for intent in intents:
        if (
            intent.kind == "brackets"
            and intent.rule == entry.rule
            and intent.leg == STOP_LEG
            and intent.order is not None
        ):
            if intent.order.trailing_percent is not None:
                return price * intent.order.trailing_percent / 100
            if intent.order.aux_price is not None:
                return abs(price - intent.order.aux_price)
    for order in observed.working_orders:
        if (
            order.rule == entry.rule
            and order.leg == STOP_LEG
            and order.status not in TERMINAL_STATUSES
        ):
            if order.trailing_percent is not None:
                return price * order.trailing_percent / 100
            if order.aux_price is not None:
                return abs(price - order.aux_price)
    return None


def _limit_rate(
    intents: list[Intent],
    units: list[list[int]],
    blocked_by: dict[int, str],
    risk: Risk,
    observed: Observed,
) -> None:
    candidates = [unit for unit in units if unit[0] not in blocked_by]
    planned = sum(len(unit) for unit in candidates)
    limit = risk.max_orders_per_minute
    room = limit - observed.orders_sent_last_minute
    if planned <= room:
        return
    reason = (
        f"risk.max_orders_per_minute: {observed.orders_sent_last_minute} sent in the last "
        f"minute + {planned} planned > {limit}"
    )

    def priority(unit: list[int]) -> tuple[int, int]:
        # Within a purpose, cancels and modifies before places: a modify that shrinks a buy
        # frees the cash that the places were sized with.
        if len(unit) == 1:
            intent = intents[unit[0]]
            return _PRIORITY[intent.purpose], _ACTION_ORDER[intent.action]
        return (
            max(_PRIORITY[intents[index].purpose] for index in unit),
            max(_ACTION_ORDER[intents[index].action] for index in unit),
        )

    # A stable sort by priority, done as one pass into its few buckets: at 20,000 targets the
    # plan has over 16,000 units here.
    buckets: dict[tuple[int, int], list[list[int]]] = {}
    for unit in candidates:
        key = priority(unit)
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = []
        bucket.append(unit)
    used = 0
    for key in sorted(buckets):
        for unit in buckets[key]:
            if used + len(unit) <= room:
                used += len(unit)
            else:
                for index in unit:
                    blocked_by[index] = reason


def _limit_cash(
    intents: list[Intent], blocked_by: dict[int, str], rules: RuleSet, observed: Observed
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
    for index, reason in check.blocked.items():
        blocked_by[index] = reason
        entry = intents[index]
        if entry.kind != "brackets" or entry.order is None:
            continue
        for other, intent in enumerate(intents):
            if other in blocked_by or intent.kind != "brackets" or intent.rule != entry.rule:
                continue
            attached = intent.order is not None and intent.order.parent_ref == entry.order.order_ref
            if attached or intent.purpose != "protective":
                blocked_by[other] = reason
    committed = check.committed
    for index, change in check.allocation_additions:
        allocation = rules.allocations.get(intents[index].rule)
        buffer = 0.0 if allocation is None else cash_buffer_of(allocation, observed.net_liquidation)
        available = observed.cash - buffer
        if committed + change > available + 1e-6:
            blocked_by[index] = (
                f"cash: buys would commit {money(committed + change)} > {money(available)} "
                f"available (cash {money(observed.cash)} - buffer {money(buffer)})"
            )
            continue
        committed += change
