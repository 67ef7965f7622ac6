"""The gate's and the plan assembly's fast paths give exactly what the code they replaced gave
(benchmarks/README.md, "Round five: linear planner, gate"): the one-loop checks, the stops
looked up once per pass, the rate limit cut by rank, the verdicts written into the drafted
intents, the unique-key pass that returns the groups when no key repeats, and market time
asking about the blackout once. Each is compared with a reference copy of the code as it
was before, on random plans: random mixes of limits, purposes, actions, working orders, foreign
currencies, bracket units and intents that arrive already blocked."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import re
from datetime import datetime, timedelta
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.planner.builders import NOW, observed, rule_set, working
from tests.planner.test_gate import intent as gate_test_intent
from tests.planner.test_market_time import WEEK
from tests.planner.test_plan_equivalence import random_account
from tradectl.planner import plan
from tradectl.planner.allocations import cash_buffer_of
from tradectl.planner.breaker import RULE as BREAKER_RULE
from tradectl.planner.breaker import breaker_reason
from tradectl.planner.cash import (
    CashCheck,
    _admit_standing,
    buy_value,
    check_cash,
    commitment_change,
    funding_of,
    needs_cash,
)
from tradectl.planner.common import (
    TERMINAL_STATUSES,
    Book,
    Draft,
    Group,
    OwnedOrder,
    money,
    unvalued_buy,
    working_shares,
)
from tradectl.planner.domain import ContractFacts, Intent, Observed, OrderSpec, Plan, WorkingOrder
from tradectl.planner.gate import (
    HALT,
    _checked,
    _limit_rate,
    gate,
    gate_drafted,
)
from tradectl.planner.legs import (
    ENTRY_LEG,
    STOP_LEG,
    TARGET_LEG,
    ParsedRef,
    conversion_leg,
    converted_currency,
    leg_kind,
    order_ref,
    parse_order_ref,
)
from tradectl.planner.market_time import (
    Hold,
    MarketHours,
    Session,
    _wait_for,
    hold_reason,
    in_blackout,
    market_hours,
)
from tradectl.planner.money import (
    FX_RULE,
    Rates,
    check_currencies,
    is_conversion,
    no_rate_reason,
)
from tradectl.planner.plan import (
    _assembled,
    _not_in_flight,
    _with_unique_keys,
    hold_for_market_time,
)
from tradectl.schemas.models import Risk, RuleSet, TradingWindow, instrument_allowed

# --- reference: the gate as it was before round five (6b889ff), checks one call per intent ---

_PRIORITY = {"protective": 0, "closing": 1, "opening": 2}
_ACTION_ORDER = {"cancel": 0, "modify": 1, "place": 2}


class _ReferenceExposure:
    def __init__(self, observed: Observed) -> None:
        self.positions = observed.positions
        live = [order for order in observed.working_orders if order.status not in TERMINAL_STATUSES]
        self.orders_by_id: dict[int, WorkingOrder] = {order.order_id: order for order in live}
        self.long, self.short = working_shares(live)

    def growth(self, intent: Intent) -> float:
        assert intent.order is not None
        if intent.action == "modify":
            before = self.orders_by_id.get(intent.order_id or -1)
            if before is not None:
                if before.action != intent.order.action:
                    return float(intent.order.quantity)
                return max(0.0, intent.order.quantity - before.filled - before.remaining)
        return float(intent.order.quantity)

    def after(self, intent: Intent, growth: float) -> float:
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


class _ReferenceChecks:
    def __init__(self, risk: Risk, observed: Observed, intents: list[Intent]) -> None:
        self.risk = risk
        self.observed = observed
        self.intents = intents
        if observed.breaker_tripped:
            self.breaker: str | None = (
                f"{BREAKER_RULE}: circuit breaker tripped (until `tradectl resume`)"
            )
        else:
            self.breaker = breaker_reason(observed, risk.max_daily_loss_fraction)
        self.exposure = _ReferenceExposure(observed)
        self.rates = Rates(observed)
        self.quotes = observed.quotes
        self.order_value_limit = risk.max_order_value + 1e-6
        self.position_limit = risk.max_position_fraction * observed.net_liquidation

    def check(self, intent: Intent) -> str | None:
        order = intent.order
        if order is None or intent.action == "cancel":
            return None
        risk = self.risk
        purpose = intent.purpose
        opening = purpose == "opening"
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
        value = intent.value
        if value > self.order_value_limit:
            return f"risk.max_order_value: {money(value)} > {money(risk.max_order_value)}"
        if not opening:
            return None
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
            return _reference_risk_per_trade(intent, risk, self.observed, self.intents)
        return None


def _reference_risk_per_trade(
    entry: Intent, risk: Risk, observed: Observed, intents: list[Intent]
) -> str | None:
    """The risk per trade before round five: every entry searched the plan and the working
    orders for its stop."""
    assert entry.order is not None and entry.estimated_price is not None
    distance = _reference_stop_distance(entry, observed, intents)
    if distance is None:
        return "risk.max_risk_per_trade_fraction: no stop loss found for this entry"
    at_risk = distance * entry.order.quantity * entry.fx_rate
    limit = risk.max_risk_per_trade_fraction * observed.net_liquidation
    if at_risk > limit + 1e-6:
        return (
            f"risk.max_risk_per_trade_fraction: {money(at_risk)} at risk > {money(limit)} "
            f"({risk.max_risk_per_trade_fraction:.2%} of NAV)"
        )
    return None


def _reference_stop_distance(
    entry: Intent, observed: Observed, intents: list[Intent]
) -> float | None:
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


def _reference_rate_limit(
    intents: list[Intent], units: list[list[int]], blocked_by: dict[int, str], room: int
) -> set[int]:
    """The rate limit as it was written before round four: one stable sort by priority."""

    def priority(unit: list[int]) -> tuple[int, int]:
        return (
            max(_PRIORITY[intents[index].purpose] for index in unit),
            max(_ACTION_ORDER[intents[index].action] for index in unit),
        )

    candidates = [unit for unit in units if unit[0] not in blocked_by]
    if sum(len(unit) for unit in candidates) <= room:
        return set()
    blocked: set[int] = set()
    used = 0
    for unit in sorted(candidates, key=priority):
        if used + len(unit) <= room:
            used += len(unit)
        else:
            blocked.update(unit)
    return blocked


def _reference_check_cash(
    intents: list[Intent], blocked_by: dict[int, str], observed: Observed
) -> CashCheck:
    """``check_cash`` before round seven: every intent read, each working buy valued by
    ``buy_value`` (through its contract), every change worked out by ``commitment_change``."""
    live = {
        order.order_id: order
        for order in observed.working_orders
        if order.status not in TERMINAL_STATUSES
    }
    check = CashCheck(funding=funding_of(observed), committed=0.0)
    unvalued: str | None = None
    for order in live.values():
        value = buy_value(order, observed)
        if value is None:
            quote = observed.quotes.get(order.symbol)
            unvalued = unvalued or unvalued_buy(order, None if quote is None else quote.last)
        else:
            check.committed += value
    standing: list[tuple[int, float]] = []
    for index, intent in enumerate(intents):
        if index in blocked_by or intent.order is None or intent.purpose == "protective":
            continue
        if is_conversion(intent):
            continue
        change = commitment_change(intent, live, observed)
        if (
            unvalued is not None
            and change > 0
            and (intent.kind == "allocations" or needs_cash(intent))
        ):
            check.blocked[index] = f"cash: {unvalued}: buys blocked"
            continue
        if intent.kind == "allocations":
            if change <= 0:
                check.committed += change
            else:
                check.allocation_additions.append((index, change))
        elif needs_cash(intent) and change > 0:
            standing.append((index, change))
        else:
            check.committed += max(0.0, change)

    _admit_standing(check, standing, intents)
    return check


def _reference_limit_cash(
    intents: list[Intent], blocked_by: dict[int, str], rules: RuleSet, observed: Observed
) -> None:
    """The cash check before round five: each blocked bracket entry searched the whole plan
    for its rule's intents; each allocation buy worked out its rule's buffer."""
    check = _reference_check_cash(intents, blocked_by, observed)
    assert check == check_cash(intents, blocked_by, observed)
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


def _reference_units(intents: list[Intent]) -> list[list[int]]:
    """The gate's units before round six: a list for every unit, one intent or several."""
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


def _reference_marked(intent: Intent, blocked_by: str | None) -> Intent:
    return (
        intent
        if intent.blocked_by == blocked_by
        else dataclasses.replace(intent, blocked_by=blocked_by)
    )


def _reference_gate(plan: Plan, rules: RuleSet, observed: Observed) -> Plan:
    intents = list(plan.intents)
    if observed.halted:
        return dataclasses.replace(
            plan, intents=tuple(_reference_marked(intent, HALT) for intent in intents)
        )
    units = _reference_units(intents)
    blocked_by: dict[int, str] = {}
    checks = _ReferenceChecks(rules.risk, observed, intents)
    for unit in units:
        reason = None
        for index in unit:
            reason = checks.check(intents[index])
            if reason is not None:
                break
        if reason is not None:
            for index in unit:
                blocked_by[index] = reason
            continue
        for index in unit:
            checks.exposure.add(intents[index])
    room = rules.risk.max_orders_per_minute - observed.orders_sent_last_minute
    rate_blocked = _reference_rate_limit(intents, units, blocked_by, room)
    if rate_blocked:
        planned = sum(len(unit) for unit in units if unit[0] not in blocked_by)
        reason = (
            f"risk.max_orders_per_minute: {observed.orders_sent_last_minute} sent in the last "
            f"minute + {planned} planned > {rules.risk.max_orders_per_minute}"
        )
        blocked_by.update(dict.fromkeys(rate_blocked, reason))
    _reference_limit_cash(intents, blocked_by, rules, observed)
    blocked_by.update(check_currencies(intents, blocked_by, observed, rules.account.fx))
    return dataclasses.replace(
        plan,
        intents=tuple(
            _reference_marked(intent, blocked_by.get(index)) for index, intent in enumerate(intents)
        ),
    )


# --- random plans ---

SYMBOLS = ("AAA", "BBB", "CCC", "EUR1", "ZZZ")
RULES = ("r1", "r2", "r3")
# Cash buffers for the allocation buys of r1 and r2 (r3 is no allocation: no buffer).
ALLOCATIONS = {
    "r1": {
        "capital": {"amount": 10_000},
        "cash_buffer": {"amount": 2_000},
        "targets": {"AAA": 0.5},
    },
    "r2": {
        "capital": {"fraction_of_nav": 0.5},
        "cash_buffer": {"fraction_of_nav": 0.1},
        "targets": {"BBB": 0.5},
    },
}


@st.composite
def intents(draw: st.DrawFn) -> Intent:
    kind = draw(st.sampled_from(("allocations", "brackets", "scales")))
    rule = draw(st.sampled_from(RULES))
    symbol = draw(st.sampled_from(SYMBOLS))
    if kind == "brackets":
        leg = draw(
            st.sampled_from(
                (ENTRY_LEG, ENTRY_LEG, STOP_LEG, TARGET_LEG, conversion_leg("EUR", "d1"))
            )
        )
    else:
        leg = draw(st.sampled_from((f"{symbol}.abc123", "L1", conversion_leg("EUR", "d2"))))
    action = draw(st.sampled_from(("place", "modify", "cancel")))
    ref = order_ref(rule, "gen0000000", leg)
    side = draw(st.sampled_from(("BUY", "SELL")))
    order = None
    if action != "cancel" or draw(st.booleans()):
        stop = draw(st.none() | st.floats(1, 300))
        order = OrderSpec(
            symbol=symbol,
            action=side,  # type: ignore[arg-type]
            quantity=draw(st.integers(0, 400)),
            order_type="STP" if stop is not None else "LMT",
            order_ref=ref,
            aux_price=stop,
            trailing_percent=draw(st.none() | st.floats(0.5, 10)),
            parent_ref=draw(st.none() | st.just(order_ref(rule, "gen0000000", ENTRY_LEG))),
        )
    return Intent(
        key=f"{ref}#{draw(st.integers(0, 10**6))}",
        action=action,  # type: ignore[arg-type]
        kind=kind,  # type: ignore[arg-type]
        rule=rule,
        leg=leg,
        symbol=symbol,
        purpose=draw(st.sampled_from(("opening", "opening", "closing", "protective"))),  # type: ignore[arg-type]
        reason="why",
        order=order,
        order_id=draw(st.none() | st.integers(1, 5)),
        estimated_price=draw(st.none() | st.floats(1, 300) | st.sampled_from((50.0, 100.0))),
        blocked_by=draw(st.none() | st.sampled_from(("stale", HALT))),
        fx_rate=draw(st.sampled_from((1.0, 0.5, 1.1))),
    )


@st.composite
def working_orders(draw: st.DrawFn) -> WorkingOrder:
    rule = draw(st.sampled_from(RULES))
    leg = draw(st.sampled_from((ENTRY_LEG, STOP_LEG, "AAA.abc123")))
    return working(
        draw(st.integers(1, 5)),
        draw(st.sampled_from(SYMBOLS)),
        draw(st.sampled_from(("BUY", "SELL"))),
        draw(st.integers(1, 300)),
        ref=order_ref(rule, "gen0000000", leg),
        order_type="STP",
        aux=draw(st.none() | st.floats(1, 300)),
        trailing=draw(st.none() | st.floats(0.5, 10)),
        filled=draw(st.sampled_from((0.0, 5.0))),
        status=draw(st.sampled_from(("Submitted", "PreSubmitted", "Cancelled", "Filled"))),
    )


@st.composite
def accounts(draw: st.DrawFn) -> Observed:
    nav = draw(st.sampled_from((20_000.0, 100_000.0, 1_000_000.0)))
    euro_rate = draw(st.none() | st.sampled_from((1.1, 0.0)))
    return observed(
        nav=nav,
        cash=draw(st.sampled_from((0.0, 5_000.0, nav))),
        day_start_nav=draw(st.sampled_from((nav, nav * 1.2))),
        prices={
            symbol: draw(st.sampled_from((0.0, 20.0, 100.0, 250.0)))
            for symbol in SYMBOLS
            if symbol != "ZZZ"
        },
        positions={
            symbol: draw(st.sampled_from((0.0, 10.0, 500.0, -200.0))) for symbol in SYMBOLS[:3]
        },
        orders=draw(st.lists(working_orders(), max_size=6)),
        contracts={
            **{symbol: ContractFacts(symbol, con_id=i + 1) for i, symbol in enumerate(SYMBOLS)},
            "EUR1": ContractFacts("EUR1", con_id=99, currency="EUR"),
            "BBB": ContractFacts("BBB", con_id=98, currency="EUR", price_magnifier=100),
            "CCC": ContractFacts("CCC", con_id=97, currency="USD"),
        },
        exchange_rates={} if euro_rate is None else {"EUR": euro_rate},
        cash_balances=draw(st.sampled_from(({}, {"USD": 10_000.0, "EUR": 500.0}))),
        orders_sent_last_minute=draw(st.integers(0, 12)),
        halted=draw(st.sampled_from((False,) * 9 + (True,))),
        breaker_tripped=draw(st.sampled_from((False,) * 4 + (True,))),
        margin_account=draw(st.booleans()),
    )


@st.composite
def risks(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "max_order_value": draw(st.sampled_from((500, 5_000, 50_000, 1_000_000))),
        "max_position_fraction": draw(st.sampled_from((0.01, 0.1, 0.35, 1.0))),
        "max_risk_per_trade_fraction": draw(st.sampled_from((0.001, 0.02, 1.0))),
        "max_daily_loss_fraction": draw(st.sampled_from((0.05, 0.5))),
        "max_orders_per_minute": draw(st.integers(1, 30)),
        "allowed_symbols": draw(
            st.none() | st.lists(st.sampled_from(SYMBOLS), min_size=1, unique=True)
        ),
    }


@settings(max_examples=500, deadline=None)
@given(st.lists(intents(), max_size=30), accounts(), st.data())
def test_the_cash_check_is_what_it_was(
    planned: list[Intent], account: Observed, data: st.DataObject
) -> None:
    """``check_cash`` reading only the intents not blocked, valuing working buys with the
    pass's rates, a place's change written out and sells that replace nothing passed over:
    the same outcome as before, with and without verdicts from the other checks (plan() asks
    it with none, for the standing intents)."""
    blocked = data.draw(st.sets(st.integers(0, max(0, len(planned) - 1))))
    blocked_by = dict.fromkeys(sorted(blocked), "checked")
    for verdicts in ({}, blocked_by):
        assert check_cash(planned, verdicts, account) == _reference_check_cash(
            planned, verdicts, account
        )


def fresh(intents: tuple[Intent, ...]) -> tuple[Intent, ...]:
    """New intent objects with the same fields, as plan() drafts them."""
    return tuple(copy.copy(intent) for intent in intents)


@settings(max_examples=600, deadline=None)
@given(st.lists(intents(), max_size=30), accounts(), risks())
def test_the_gate_gives_what_the_per_intent_checks_gave(
    planned: list[Intent], account: Observed, risk: dict[str, Any]
) -> None:
    rules = rule_set(risk=risk, allocations=ALLOCATIONS)
    drafted = Plan(intents=tuple(planned), notes=("a note",))
    expected = _reference_gate(drafted, rules, account)
    inputs = fresh(drafted.intents)

    assert gate(drafted, rules, account) == expected
    assert drafted.intents == inputs, "gate() leaves its input as it was"
    # The rate check by each intent's contract, as a small plan in a large account asks it,
    # instead of one proof over every contract's currency.
    with patch("tradectl.planner.gate._CONTRACTS_PER_LOOKUP", 0):
        assert gate(drafted, rules, account) == expected

    own = Plan(intents=fresh(drafted.intents), notes=("a note",))
    published = gate_drafted(own, rules, account, distinct=True)
    assert published == expected
    assert [repr(intent) for intent in published.intents] == [
        repr(intent) for intent in expected.intents
    ]
    assert all(a is b for a, b in zip(published.intents, own.intents, strict=True))
    assert [hash(intent) for intent in published.intents] == [
        hash(intent) for intent in expected.intents
    ]
    # Gated again (plan() does when it adds conversions): every verdict recomputed.
    assert gate_drafted(published, rules, account) == _reference_gate(expected, rules, account)


@settings(max_examples=200, deadline=None)
@given(st.lists(intents(), min_size=1, max_size=12), accounts(), risks(), st.data())
def test_an_intent_in_the_plan_twice_is_copied_not_written(
    planned: list[Intent], account: Observed, risk: dict[str, Any], data: st.DataObject
) -> None:
    rules = rule_set(risk=risk, allocations=ALLOCATIONS)
    twice = data.draw(st.sampled_from(planned))
    drafted = Plan(intents=(*planned, twice))
    inputs = fresh(drafted.intents)
    assert gate_drafted(drafted, rules, account) == _reference_gate(drafted, rules, account)
    assert drafted.intents == inputs


def test_a_published_plan_is_frozen_and_its_own() -> None:
    """plan() writes the gate's verdicts into intents it drafted in that call; once it returns
    they are frozen, and the next plan() does not touch them."""
    rules, account = random_account(0, 300)
    first = plan(rules, account, NOW)
    assert first.blocked, "the account is meant to have blocked intents"
    snapshot = [repr(intent) for intent in first.intents]
    second = plan(rules, account, NOW)
    assert second == first
    assert [repr(intent) for intent in first.intents] == snapshot
    assert not {id(intent) for intent in first.intents} & {id(intent) for intent in second.intents}
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.intents[0].blocked_by = None  # type: ignore[misc]


purposes = st.sampled_from(("opening", "closing", "protective"))
intent_actions = st.sampled_from(("place", "modify", "cancel"))


@settings(max_examples=300)
@given(
    st.lists(st.lists(st.tuples(purposes, intent_actions), min_size=1, max_size=3), max_size=40),
    st.integers(1, 30),
    st.integers(0, 40),
    st.sets(st.integers(0, 39)),
    st.booleans(),
)
def test_the_rate_limit_by_rank_is_the_stable_sort(
    shape: list[list[tuple[str, str]]],
    limit: int,
    sent: int,
    checked_out: set[int],
    one_intent_units: bool,
) -> None:
    """Units of intents without orders pass every check; the first intent of some units has
    an order without a price, which a check blocks first (with its whole unit). Half the
    plans have one-intent units only (no bracket: each rank is cut where the room ends)."""
    if one_intent_units:
        shape = [unit_shape[:1] for unit_shape in shape]
    planned: list[Intent] = []
    for unit_number, unit_shape in enumerate(shape):
        rule = f"b{len(planned)}"
        for position, (purpose, action) in enumerate(unit_shape):
            fields: dict[str, Any] = {"purpose": purpose, "action": action}
            if position == 0 and unit_number in checked_out:
                fields = {"purpose": "closing", "action": "place", "order": NO_PRICE_ORDER}
            planned.append(
                Intent(
                    key=f"k{len(planned)}",
                    kind="brackets" if len(unit_shape) > 1 else "allocations",
                    rule=rule,
                    leg=ENTRY_LEG,
                    symbol="AAA",
                    reason="why",
                    **fields,
                )
            )
    units = _reference_units(planned)
    assert [len(unit) for unit in units] == [len(unit_shape) for unit_shape in shape]
    checked_out_indices = {
        index for number, unit in enumerate(units) if number in checked_out for index in unit
    }
    rules = rule_set(risk={"max_orders_per_minute": limit})
    account = observed(orders_sent_last_minute=sent)
    blocked_by = dict.fromkeys(checked_out_indices, "checked")
    expected = _reference_rate_limit(planned, units, blocked_by, limit - sent)

    found, candidates = _checked(planned, rules.risk, account)
    assert set(found) == checked_out_indices
    _limit_rate(candidates, found, rules.risk, account)
    assert set(found) == expected | checked_out_indices


NO_PRICE_ORDER = OrderSpec(
    symbol="AAA", action="SELL", quantity=1, order_type="LMT", order_ref="tctl:r:g:entry"
)


def _in_plan_order(groups: list[Group]) -> list[Group]:
    """Cancels, then sells, then buys, stable within a phase (the plan's order, which Draft
    keeps by phase)."""
    return sorted(groups, key=lambda group: group.phase)


def _reference_unique_keys(groups: list[Group]) -> list[Group]:
    """``_with_unique_keys`` before round five: always the loop (it also put the groups in
    plan order itself; plan() now hands them over in that order)."""
    seen: set[str] = set()
    result: list[Group] = []
    for group in _in_plan_order(groups):
        if len(group.intents) == 1 and group.intents[0].key not in seen:
            seen.add(group.intents[0].key)
            result.append(group)
            continue
        renamed: list[Intent] = []
        for intent in group.intents:
            if intent.key in seen and intent.order_id is not None:
                intent = dataclasses.replace(intent, key=f"{intent.key}@{intent.order_id}")
            seen.add(intent.key)
            renamed.append(intent)
        result.append(Group(renamed, group.phase))
    return result


CANCEL = gate_test_intent("AAA", "SELL", 1, 10.0, purpose="closing", verb="cancel")


# Groups of one to three intents keyed from eight keys (so that keys repeat), with order ids
# or none, in random phases.
GROUP_SHAPES = st.lists(
    st.tuples(
        st.lists(
            st.tuples(st.sampled_from("abcdefgh"), st.none() | st.integers(1, 3)),
            min_size=1,
            max_size=3,
        ),
        st.integers(0, 2),
    ),
    max_size=12,
)


@settings(max_examples=400)
@given(GROUP_SHAPES)
def test_unique_keys_are_the_loop(shape: list[tuple[list[tuple[str, int | None]], int]]) -> None:
    groups = [
        Group(
            [dataclasses.replace(CANCEL, key=key, order_id=order_id) for key, order_id in members],
            phase,
        )
        for members, phase in shape
    ]
    expected = _reference_unique_keys(groups)
    found = _with_unique_keys(_in_plan_order(groups))
    assert [(group.intents, group.phase) for group in found] == [
        (group.intents, group.phase) for group in expected
    ]


@settings(max_examples=400)
@given(
    GROUP_SHAPES,
    st.sets(st.sampled_from(("a#cancel", "b", "c@2", "tctl:r:g:l#modify", "x"))),
)
def test_the_assembled_intents_are_both_steps_on_every_plan(
    shape: list[tuple[list[tuple[str, int | None]], int]], in_flight: set[str]
) -> None:
    """plan() looks at the keys once and rebuilds groups only when a key repeats or something
    is in flight: the same intents, notes and order as the unique-key loop and the in-flight
    filter run on every plan (keys with and without repeats, in flight or not)."""
    keys = ("a#cancel", "b", "c", "tctl:r:g:l#modify", "tctl:r:g:l#cancel", "x", "y", "z")
    groups = [
        Group(
            [
                dataclasses.replace(
                    CANCEL, key=keys["abcdefgh".index(key)], order_id=order_id, action="modify"
                )
                for key, order_id in members
            ],
            phase,
        )
        for members, phase in shape
    ]
    expected_notes: list[str] = []
    expected_groups = _reference_unique_keys(groups)
    if in_flight:
        expected_groups = _not_in_flight(expected_groups, frozenset(in_flight), expected_notes)
    notes: list[str] = []
    draft = Draft()
    for group in groups:
        draft.phases[group.phase].append(group.intents)
    found, keys_unique = _assembled(draft, frozenset(in_flight), notes)
    assert found == tuple(intent for group in expected_groups for intent in group.intents)
    assert notes == expected_notes
    drafted_keys = [intent.key for group in groups for intent in group.intents]
    assert keys_unique == (len(set(drafted_keys)) == len(drafted_keys))


ALWAYS_OPEN = market_hours(
    "America/New_York",
    "20261125:0000-20261125:2359;20261126:0000-20261126:2359;20261127:0000-20261127:2359",
    "20261125:0000-20261125:2359;20261126:0000-20261126:2359;20261127:0000-20261127:2359",
)


def _reference_hold_for_market_time(
    plan: Plan, rules: RuleSet, observed: Observed, now: datetime
) -> Plan:
    """``hold_for_market_time`` before round five: every intent asks ``in_blackout``."""
    assert observed.market_hours is not None
    schedule = rules.schedule
    held: dict[str, str] = {}
    marked: list[Intent] = []
    for intent in plan.intents:
        order = intent.order
        reason = None
        if order is not None and order.parent_ref in held:
            reason = held[order.parent_ref]
        elif order is None and not intent.blocked:
            hours = observed.market_hours.get(intent.symbol)
            blackout_end = in_blackout(now, schedule.blackouts, hours)
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
                blackouts=schedule.blackouts,
            )
            if hold is not None:
                zone = "America/New_York" if hours is None else hours.time_zone
                reason = hold.describe(zone)
                held[order.order_ref] = reason
        marked.append(intent if reason is None else dataclasses.replace(intent, blocked_by=reason))
    return dataclasses.replace(plan, intents=tuple(marked))


@st.composite
def timed_intents(draw: st.DrawFn) -> Intent:
    symbol = draw(st.sampled_from(("AAA", "BBB", "CCC")))
    kind = draw(st.sampled_from(("allocations", "brackets", "scales")))
    leg = draw(st.sampled_from((ENTRY_LEG, STOP_LEG, f"{symbol}.abc123")))
    return gate_test_intent(
        symbol,
        draw(st.sampled_from(("BUY", "SELL"))),
        10,
        100.0,
        purpose=draw(st.sampled_from(("opening", "closing", "protective"))),
        kind=kind,
        rule="r1",
        leg=leg,
        order_type=draw(st.sampled_from(("LMT", "MKT"))),
        parent=draw(st.none() | st.just(order_ref("r1", "gen0000000", ENTRY_LEG))),
        verb=draw(st.sampled_from(("place", "modify", "cancel"))),
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(timed_intents(), max_size=8),
    st.integers(0, 3 * 24 * 60 - 1),
    st.sampled_from(
        (
            [],
            [{"start": "23:45", "end": "00:45"}],
            [{"start": "00:15", "end": "01:45"}, {"start": "23:45", "end": "00:45"}],
        )
    ),
    st.fixed_dictionaries({}, optional={"AAA": st.just(WEEK), "BBB": st.just(ALWAYS_OPEN)}),
    st.booleans(),
)
def test_market_time_asks_the_blackout_once_and_holds_what_it_held(
    planned: list[Intent],
    minutes: int,
    blackouts: list[dict[str, str]],
    hours: dict[str, MarketHours],
    blocked_first: bool,
) -> None:
    """Outside every blackout hold_for_market_time no longer asks in_blackout per intent; the
    intents it holds, and why, are the same: minute by minute over three days (Thanksgiving,
    an early close), with the default blackout, none and two, for a symbol with a week's
    hours, one always open (no reset) and one without hours."""
    now = datetime(2026, 11, 25, tzinfo=ZoneInfo("America/New_York")) + timedelta(minutes=minutes)
    rules = rule_set(schedule={"blackouts": blackouts})
    account = observed(market_hours=hours)
    if blocked_first and planned:
        planned[0] = dataclasses.replace(planned[0], blocked_by="risk.max_order_value: test")
    drafted = Plan(intents=tuple(planned))
    assert hold_for_market_time(drafted, rules, account, now) == _reference_hold_for_market_time(
        drafted, rules, account, now
    )


@st.composite
def bracket_plans(draw: st.DrawFn) -> list[Intent]:
    """Several bracket rules, each an entry with its stop and target attached (or the
    protective legs of an entry that filled earlier, not attached), in a shuffled plan."""
    planned: list[Intent] = []
    for rule in draw(st.lists(st.sampled_from(("b1", "b2", "b3", "b4")), unique=True)):
        entry_ref = order_ref(rule, "gen0000000", ENTRY_LEG)
        price = draw(st.sampled_from((20.0, 50.0, 100.0)))
        quantity = draw(st.integers(1, 200))
        attached = draw(st.booleans())
        if attached:
            planned.append(
                gate_test_intent(
                    "AAA", "BUY", quantity, price, kind="brackets", rule=rule, leg=ENTRY_LEG
                )
            )
        parent = entry_ref if attached else None
        if draw(st.booleans()):
            stop = draw(st.sampled_from((None, 45.0, 90.0)))
            planned.append(
                dataclasses.replace(
                    gate_test_intent(
                        "AAA",
                        "SELL",
                        quantity,
                        price,
                        purpose="protective",
                        kind="brackets",
                        rule=rule,
                        leg=STOP_LEG,
                        order_type="STP",
                        aux=stop,
                        parent=parent,
                    ),
                    key=f"{rule}-stop-{draw(st.integers(0, 9))}",
                )
            )
        planned.append(
            gate_test_intent(
                "AAA",
                "SELL",
                quantity,
                price * 1.2,
                purpose="protective",
                kind="brackets",
                rule=rule,
                leg=TARGET_LEG,
                parent=parent,
            )
        )
    return draw(st.permutations(planned))


@settings(max_examples=300, deadline=None)
@given(
    bracket_plans(),
    st.lists(working_orders(), max_size=4),
    st.sampled_from((0.0, 2_000.0, 10_000.0, 1_000_000.0)),
    st.sampled_from((0.0005, 0.002, 0.02)),
)
def test_bracket_stops_and_cash_are_what_the_searches_found(
    planned: list[Intent], orders: list[WorkingOrder], cash: float, risk_per_trade: float
) -> None:
    """The stops looked up once per pass and the cash check's index of bracket intents give
    what searching the plan per entry gave: entries with and without a planned stop (a stop
    without a price falls back to the next, then to a working stop), short of cash or not."""
    rules = rule_set(risk={"max_risk_per_trade_fraction": risk_per_trade})
    working_stops = [
        dataclasses.replace(order, order_ref=order_ref(f"b{index + 1}", "gen0000000", STOP_LEG))
        for index, order in enumerate(orders)
    ]
    account = observed(cash=cash, prices={"AAA": 50.0}, orders=working_stops)
    drafted = Plan(intents=tuple(planned))
    assert gate(drafted, rules, account) == _reference_gate(drafted, rules, account)


# --- Book: each orderRef parsed once ---

_REFERENCE_SCALE_LEG = re.compile(r"^L[1-9][0-9]*$")
_REFERENCE_ALLOCATION_LEG = re.compile(
    r"^(?P<symbol>[A-Z][A-Z0-9 .@/|~]*|conid[|][0-9]+)[.][0-9a-f]{4,}$"
)


def _reference_parse_order_ref(ref: str | None) -> ParsedRef | None:
    """``parse_order_ref`` before round seven."""
    if not ref:
        return None
    parts = ref.split(":")
    if len(parts) != 4 or parts[0] != "tctl" or not all(parts[1:]):
        return None
    return ParsedRef(parts[1], parts[2], parts[3])


def _reference_leg_kind(leg: str) -> str | None:
    """``leg_kind`` before round seven: a regular expression per kind, one after the other."""
    if leg in (ENTRY_LEG, STOP_LEG, TARGET_LEG):
        return "brackets"
    if converted_currency(leg) is not None:
        return None
    if _REFERENCE_SCALE_LEG.match(leg):
        return "scales"
    if _REFERENCE_ALLOCATION_LEG.match(leg):
        return "allocations"
    return None


# Pieces of legs and orderRefs, well-formed and not: separators, the prefix, digests, the
# characters an instrument key may hold, a trailing newline (which ``$`` lets through), and
# characters no form allows.
_LEG_PIECES = st.sampled_from(
    (
        "L",
        "L1",
        "L0",
        "L12",
        "0",
        "9",
        "AAA",
        "A",
        "a",
        "Z9",
        ".",
        "abc123",
        "abcd",
        "abc",
        "ABCD",
        "fx.",
        "fx",
        "EUR",
        "conid",
        "|",
        "conid|42",
        " ",
        "@",
        "/",
        "~",
        "-",
        ":",
        "\n",
        "tctl",
        "entry",
        "stop",
        "target",
        "-kept",
        "é",
        "\x00",
        "",
    )
)
_HOSTILE_LEGS = st.lists(_LEG_PIECES, max_size=6).map("".join)
_HOSTILE_REFS = st.one_of(
    st.none(),
    st.lists(_HOSTILE_LEGS, max_size=6).map(":".join),
    st.tuples(
        st.sampled_from(("tctl", "TCTL", "tctl ", "")), _HOSTILE_LEGS, _HOSTILE_LEGS, _HOSTILE_LEGS
    ).map(":".join),
    st.text(max_size=40),
)


@settings(max_examples=1500)
@given(_HOSTILE_REFS, _HOSTILE_LEGS | st.text(max_size=20))
def test_order_refs_and_legs_parse_as_before(ref: str | None, leg: str) -> None:
    """``parse_order_ref`` unpacking the split instead of slicing it, and ``leg_kind`` with
    one regular expression for scales and allocations, give the old answers on hostile
    orderRefs and legs: wrong field counts, empty fields, near-miss prefixes and digests,
    trailing newlines, characters outside every form."""
    parsed = parse_order_ref(ref)
    assert parsed == _reference_parse_order_ref(ref)
    assert parsed is None or type(parsed) is ParsedRef
    for one in (leg, *(() if parsed is None else (parsed.leg,))):
        assert leg_kind(one) == _reference_leg_kind(one)
    if parsed is not None:
        assert parsed.kind == _reference_leg_kind(parsed.leg)


def _reference_book_index(account: Observed) -> tuple[Any, ...]:
    """``Book.__init__``'s index of the orders before round six: working orders parsed for the
    owned ones, working and completed orders parsed again for IB's fills."""
    live = tuple(order for order in account.working_orders if order.status not in TERMINAL_STATUSES)
    owned: list[OwnedOrder] = []
    by_rule: dict[tuple[str | None, str], list[OwnedOrder]] = {}
    for order in live:
        parsed = _reference_parse_order_ref(order.order_ref)
        if parsed is None:
            continue
        rule, generation, leg = parsed
        one = OwnedOrder(order, rule, generation, leg, _reference_leg_kind(leg))  # type: ignore[arg-type]
        owned.append(one)
        by_rule.setdefault((one.kind, rule), []).append(one)
    for orders in by_rule.values():
        orders.sort(key=lambda one: one.order.order_id)
    completed: dict[tuple[str, str], WorkingOrder] = {}
    for order in account.completed_orders:
        parsed = _reference_parse_order_ref(order.order_ref)
        if parsed is not None:
            completed[(parsed.rule, parsed.leg)] = order
    ib_filled: dict[str, dict[tuple[str, str], float]] = {}
    for order in (*account.working_orders, *account.completed_orders):
        parsed = _reference_parse_order_ref(order.order_ref)
        if parsed is not None and order.filled > 0:
            by_ref = ib_filled.setdefault(parsed.rule, {})
            key = (order.order_ref or "", parsed.leg)
            by_ref[key] = max(by_ref.get(key, 0.0), order.filled)
    return live, owned, by_rule, completed, ib_filled


@st.composite
def indexed_orders(draw: st.DrawFn) -> WorkingOrder:
    rule = draw(st.sampled_from(RULES))
    leg = draw(
        st.sampled_from(
            (ENTRY_LEG, STOP_LEG, "L2", "AAA.abc123", "conid|7.abcd", "fx.EUR.d1", "odd-leg")
        )
    )
    ref = draw(
        st.sampled_from(
            (order_ref(rule, "gen0000000", leg), order_ref(rule, "gen1", leg), None, "", "manual")
        )
    )
    return working(
        draw(st.integers(1, 8)),
        draw(st.sampled_from(SYMBOLS)),
        draw(st.sampled_from(("BUY", "SELL"))),
        draw(st.integers(1, 300)),
        ref=ref,
        filled=draw(st.sampled_from((0.0, 5.0, 20.0, -1.0, float("nan")))),
        status=draw(st.sampled_from(("Submitted", "PreSubmitted", "Cancelled", "Filled"))),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(indexed_orders(), max_size=10), st.lists(indexed_orders(), max_size=6))
def test_the_book_parses_each_order_ref_once_and_indexes_what_it_did(
    working_orders: list[WorkingOrder], completed: list[WorkingOrder]
) -> None:
    account = dataclasses.replace(
        observed(), working_orders=tuple(working_orders), completed_orders=tuple(completed)
    )
    book = Book(account, NOW)
    live, owned, by_rule, completed_by_leg, ib_filled = _reference_book_index(account)
    assert book.live == live
    assert book.owned == owned
    assert [repr(one) for one in book.owned] == [repr(one) for one in owned]
    assert book._by_rule == by_rule
    assert list(book._by_rule) == list(by_rule)
    assert book._completed == completed_by_leg
    assert repr(book._ib_filled) == repr(ib_filled)
    assert book.manual == account.manual_orders


# --- market time: the allocation window without its trimmed copies ---


def _reference_allocation_hold(
    hours: MarketHours, now: datetime, outside_rth: bool, window: TradingWindow
) -> Hold | None:
    """``hold_reason``'s allocation branch before round six (the rest is unchanged): the
    window's sessions and its reason built on every call, held or not."""
    trimmed = (
        Session(session.open + window.after_open, session.close - window.before_close)
        for session in hours.regular
    )
    windows = tuple(session for session in trimmed if session.open < session.close)
    sessions = hours.extended if outside_rth else windows
    reason = (
        "outside the extended session (outside_rth)"
        if outside_rth
        else "outside the allocation window "
        f"({int(window.after_open.total_seconds() // 60)} min after the open to "
        f"{int(window.before_close.total_seconds() // 60)} min before the close)"
    )
    return _wait_for(sessions, now, reason, hours)


SHUFFLED_WEEK = dataclasses.replace(WEEK, regular=WEEK.regular[::-1])
WINDOWS = [
    TradingWindow(after_open=timedelta(minutes=after), before_close=timedelta(minutes=before))
    for after, before in ((0, 0), (5, 10), (30, 45), (200, 190), (600, 600))
]


@pytest.mark.parametrize("hours", [WEEK, ALWAYS_OPEN, SHUFFLED_WEEK])
def test_the_allocation_window_is_what_its_sessions_said(hours: MarketHours) -> None:
    """An allocation order's hold, every five minutes over four days (Thanksgiving, an early
    close, a weekend), windows from none to one that takes a whole session and longer, market
    and limit orders, inside and outside regular hours, for a week's hours, hours always open
    and the week's sessions out of order (outside a blackout: what comes before the
    allocation's branch did not change)."""
    start = datetime(2026, 11, 25, tzinfo=ZoneInfo("America/New_York"))
    checked = 0
    for minutes in range(0, 4 * 24 * 60, 5):
        now = start + timedelta(minutes=minutes)
        for window in WINDOWS:
            for market_order, outside_rth in itertools.product((True, False), repeat=2):
                found = hold_reason(
                    hours=hours,
                    now=now,
                    allocation=True,
                    market_order=market_order,
                    protective=False,
                    outside_rth=outside_rth,
                    window=window,
                    blackouts=[],
                )
                assert found == _reference_allocation_hold(hours, now, outside_rth, window)
                checked += 1
    assert checked == 1152 * len(WINDOWS) * 4
