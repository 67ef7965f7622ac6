"""Property tests of the planner over random rule sets and random accounts (hypothesis).

1. Convergence: applying a plan and planning again reaches a plan with nothing to do; the
   allocation plans no buy that the gate blocks on the position limit.
2. No unblocked intent breaks a risk limit (checked here independently of the gate's code).
3. Orders without the tradectl orderRef prefix are never modified or cancelled.
4. The same inputs give the same plan and the same intent keys.
5. Buys never spend more than the cash minus the buffer.
6. Opening buys of every kind that pass never commit more than the funding: cash, or buying
   power in a margin account.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.planner.builders import NOW, observed, rule_set, working
from tests.planner.simulator import apply
from tradectl.planner import plan
from tradectl.planner.allocations import capital_of, cash_buffer_of
from tradectl.planner.cash import funding_of, needs_cash
from tradectl.planner.domain import ContractFacts, Intent, Observed, Plan, WorkingOrder
from tradectl.planner.legs import parse_order_ref
from tradectl.schemas.models import RuleSet, rule_generation

POOL = ["AAPL", "MSFT", "GOOGL", "SPY", "TSLA", "NVDA", "AMZN", "META"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Scenario:
    rules: RuleSet
    account: Observed


def money_amount(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False).map(lambda value: round(value, 2))


@st.composite
def scenarios(
    draw: st.DrawFn, *, rate_limit: bool = False, separate_symbols: bool = False
) -> Scenario:
    prices = {symbol: draw(money_amount(1.0, 1000.0)) for symbol in POOL}
    contracts = {
        symbol: ContractFacts(
            symbol,
            con_id=i + 1,
            min_tick=draw(st.sampled_from([0.01, 0.01, 0.05])),
            lot_size=draw(st.sampled_from([1, 1, 1, 10, 100])),
        )
        for i, symbol in enumerate(POOL)
    }
    max_position = draw(st.sampled_from([0.25, 0.35, 0.5, 1.0]))
    symbols = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=6, unique=True))
    raw = draw(st.lists(st.integers(0, 100), min_size=len(symbols), max_size=len(symbols)))
    share = draw(st.floats(0.3, 1.0))
    total = sum(raw) or 1
    targets = {
        symbol: min(max_position, math.floor(value / total * share * 10_000) / 10_000)
        for symbol, value in zip(symbols, raw, strict=True)
    }
    capital = draw(
        st.one_of(
            st.builds(lambda f: {"fraction_of_nav": f}, st.floats(0.5, 1.0)),
            st.builds(lambda a: {"amount": a}, money_amount(1_000, 500_000)),
        )
    )
    order = draw(
        st.one_of(
            st.just({"type": "market"}),
            st.builds(lambda bps: {"type": "limit", "offset_bps": bps}, st.integers(0, 50)),
        )
    )
    allocation = {
        "capital": capital,
        "drift": {"absolute": draw(st.floats(0.005, 0.05))},
        "min_trade_value": draw(st.sampled_from([0, 50, 100, 500])),
        "cash_buffer": {"amount": draw(money_amount(0, 5_000))},
        "order": order,
        "targets": targets,
    }
    others = [symbol for symbol in POOL if symbol not in targets] if separate_symbols else POOL
    brackets: dict[str, Any] = {}
    for i in range(draw(st.integers(0, 2)) if others else 0):
        symbol = draw(st.sampled_from(others))
        limit = round(prices[symbol] * draw(st.floats(0.90, 0.99)), 2)
        brackets[f"dip-{i}"] = {
            "symbol": symbol,
            "side": "BUY",
            "quantity": draw(st.integers(1, 200)),
            "entry": {"limit": limit},
            "stop_loss": {"percent": draw(st.integers(1, 10))},
            "take_profit": {"percent": draw(st.integers(1, 20))},
        }
    scales: dict[str, Any] = {}
    if others and draw(st.booleans()):
        symbol = draw(st.sampled_from(others))
        levels = draw(st.integers(1, 5))
        start = round(prices[symbol] * 0.95, 2)
        step = round(start / 100, 2) or 0.01
        scales["ladder"] = {
            "symbol": symbol,
            "side": "BUY",
            "total_quantity": draw(st.integers(levels, 500)),
            "levels": levels,
            "start_price": start,
            "step": step,
        }
    risk = {
        "max_order_value": draw(money_amount(500, 200_000)),
        "max_position_fraction": max_position,
        "max_risk_per_trade_fraction": draw(st.sampled_from([0.01, 0.02, 0.1])),
        "max_daily_loss_fraction": 0.05,
        "max_orders_per_minute": draw(st.integers(1, 12)) if rate_limit else 3000,
    }
    if draw(st.booleans()):
        # As schemas.checks requires: every symbol a rule names is allowed.
        named = set(targets) | {rule["symbol"] for rule in [*brackets.values(), *scales.values()]}
        extra = draw(st.lists(st.sampled_from(POOL)))
        risk["allowed_symbols"] = sorted(named | set(extra))
    rules = rule_set(allocations={"core": allocation}, brackets=brackets, scales=scales, risk=risk)

    positions = {
        symbol: float(draw(st.integers(0, 2000)))
        for symbol in draw(st.lists(st.sampled_from(POOL), unique=True, max_size=5))
    }
    cash = draw(money_amount(0, 1_000_000))
    margin_account = draw(st.booleans())
    buying_power = cash * draw(st.sampled_from([1.0, 2.0, 4.0])) if margin_account else cash
    nav = cash + sum(quantity * prices[symbol] for symbol, quantity in positions.items())
    manual = [
        working(
            900 + i,
            draw(st.sampled_from(POOL)),
            draw(st.sampled_from(["BUY", "SELL"])),
            draw(st.integers(1, 100)),
            ref=draw(st.sampled_from([None, "", "manual:1", "tctl-lookalike"])),
            limit=draw(money_amount(1, 1000)),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    stale_owned = [
        working(
            800 + i,
            symbol,
            draw(st.sampled_from(["BUY", "SELL"])),
            draw(st.integers(1, 50)),
            ref=f"tctl:core:0ldgen0000:{symbol}.abc123",
            limit=prices[symbol],
        )
        for i, symbol in enumerate(draw(st.lists(st.sampled_from(symbols), unique=True)))
    ]
    standing, entry_fills = draw(standing_orders(rules, prices))
    day_start = nav * draw(st.sampled_from([1.0, 1.0, 1.0, 1.2]))
    account = observed(
        nav=max(nav, 1.0),
        cash=cash,
        buying_power=buying_power,
        margin_account=margin_account,
        day_start_nav=max(day_start, 1.0),
        prices=prices,
        positions=positions,
        orders=[*manual, *stale_owned, *standing],
        entry_fills=entry_fills,
        contracts=contracts,
        orders_sent_last_minute=draw(st.integers(0, 5)) if rate_limit else 0,
    )
    return Scenario(rules, account)


@st.composite
def standing_orders(
    draw: st.DrawFn, rules: RuleSet, prices: dict[str, float]
) -> tuple[list[WorkingOrder], dict[tuple[str, str], float]]:
    """Working bracket legs and scale levels of current, earlier and removed rules, and
    journal fills for some of them."""
    names = [*rules.brackets, *rules.scales, "gone"]
    orders: list[WorkingOrder] = []
    fills: dict[tuple[str, str], float] = {}
    for i in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(names))
        rule = rules.brackets.get(name) or rules.scales.get(name)
        generation = draw(
            st.sampled_from([rule_generation(rule), "0ldgen0000"] if rule else ["0ldgen0000"])
        )
        symbol = rule.symbol if rule else draw(st.sampled_from(POOL))
        leg = draw(
            st.sampled_from(["L1", "L2"] if name in rules.scales else ["entry", "stop", "target"])
        )
        action = "BUY" if leg in ("entry", "L1", "L2") else "SELL"
        orders.append(
            working(
                700 + i,
                symbol,
                action,
                draw(st.integers(1, 100)),
                ref=f"tctl:{name}:{generation}:{leg}",
                order_type="STP" if leg == "stop" else "LMT",
                limit=None if leg == "stop" else prices[symbol],
                aux=prices[symbol] * 0.9 if leg == "stop" else None,
                tif="GTC",
            )
        )
        if draw(st.booleans()):
            fills[(name, generation)] = float(draw(st.integers(1, 50)))
    return orders, fills


def passes_needed(scenario: Scenario) -> int:
    """The brief's bound, ceil(largest gap / order size) + 1, where the order size is the whole
    lots that fit in max_order_value at the order's limit (at least one lot when one lot fits
    at all), taken over sells and buys separately and added: buys never count the proceeds of
    unfilled sells, so an account short of cash sells first and buys after, in series. One more
    pass for the cash that cancelled orders release once IB confirms the cancel."""
    rules, account = scenario.rules, scenario.account
    allocation = rules.allocations["core"]
    capital = capital_of(allocation, account.net_liquidation)
    worst = {True: 0, False: 0}
    for symbol, weight in allocation.targets.items():
        last = account.quotes[symbol].last
        lot = account.contracts[symbol].lot_size
        cap = rules.risk.max_position_fraction * account.net_liquidation
        desired = math.floor(min(weight * capital, cap) / last / lot) * lot
        gap = abs(desired - account.position(symbol))
        buying = desired > account.position(symbol)
        highest = last * 1.005 if buying else last  # offset_bps <= 50
        lowest = last if buying else last * 0.995
        if lot * lowest > rules.risk.max_order_value:
            continue  # one lot is over the limit: the gate blocks it, nothing to converge
        slice_size = max(lot, math.floor(rules.risk.max_order_value / highest / lot) * lot)
        worst[buying] = max(worst[buying], math.ceil(gap / slice_size))
    return worst[False] + worst[True] + 2


@SETTINGS
@given(scenarios(separate_symbols=True))
def test_applying_plans_converges(scenario: Scenario) -> None:
    """Brackets and scales here trade symbols the allocation does not target: rules that share
    a symbol meet in the gate's worst-case exposure, and a buy the gate blocks keeps its share
    of the cash (conservative), which can cost the allocation extra passes."""
    assert_converges(scenario)


def assert_converges(scenario: Scenario) -> None:
    """Plans applied one after the other reach a plan with nothing to do within
    ``passes_needed`` passes."""
    account = scenario.account
    limit = passes_needed(scenario)
    history: list[str] = []
    for _ in range(limit):
        result = plan(scenario.rules, account, NOW)
        if not result.actionable:
            return
        history.append(_describe(result))
        account = apply(result, account)
        assert account.cash >= -1e-6, "buys spent more cash than the account has"
    leftover = plan(scenario.rules, account, NOW)
    history.append(_describe(leftover))
    passes = "\n".join(history)
    assert leftover.actionable == (), f"not converged after {limit} passes:\n{passes}"


@st.composite
def crowded_targets(draw: st.DrawFn) -> Scenario:
    """A scenario with manual buys on the allocation's targets worth up to 1.5 times the
    position limit: the gate's worst case, which the allocation must count before it shares
    cash."""
    scenario = draw(scenarios(separate_symbols=True))
    account = scenario.account
    limit = scenario.rules.risk.max_position_fraction * account.net_liquidation
    crowding = [
        working(
            950 + i,
            symbol,
            "BUY",
            max(1, math.floor(draw(st.floats(0.05, 1.5)) * limit / account.quotes[symbol].last)),
            ref=None,
            limit=account.quotes[symbol].last,
        )
        for i, symbol in enumerate(sorted(scenario.rules.allocations["core"].targets))
    ]
    orders = (*account.working_orders, *crowding)
    return Scenario(scenario.rules, replace(account, working_orders=orders))


@SETTINGS
@given(crowded_targets())
def test_allocations_plan_no_buy_the_position_limit_blocks(scenario: Scenario) -> None:
    """The allocation counts the gate's worst case (the position and every other working buy of
    the symbol) before it shares cash, so the gate never blocks one of its buys on
    risk.max_position_fraction: such a buy would hold cash back from the buys that can go."""
    result = plan(scenario.rules, scenario.account, NOW)
    blocked = [
        intent
        for intent in result.intents
        if intent.kind == "allocations"
        and (intent.blocked_by or "").startswith("risk.max_position_fraction")
    ]
    assert blocked == []


@SETTINGS
@given(crowded_targets())
def test_applying_plans_converges_around_manual_buys(scenario: Scenario) -> None:
    """Convergence (above) with manual buys crowding the position limit of the targets."""
    assert_converges(scenario)


def _describe(result: Plan) -> str:
    """One line per pass, for the failure message: intents, blocks, cash notes."""
    rows = [
        f"{i.action} {i.kind}.{i.rule} {i.symbol} {i.order.action if i.order else ''} "
        f"{i.order.quantity if i.order else ''} @{i.estimated_price} [{i.blocked_by or ''}]"
        for i in result.intents
    ]
    notes = [note for note in result.notes if "cash" in note]
    return "PASS: " + "; ".join(rows) + " | " + " | ".join(notes)


@SETTINGS
@given(scenarios(rate_limit=True))
def test_no_unblocked_intent_breaks_a_risk_limit(scenario: Scenario) -> None:
    rules, account = scenario.rules, scenario.account
    risk = rules.risk
    result = plan(rules, account, NOW)
    actionable = result.actionable
    assert len(actionable) <= max(0, risk.max_orders_per_minute - account.orders_sent_last_minute)
    tripped = account.net_liquidation < account.day_start_nav * (1 - risk.max_daily_loss_fraction)
    # Worst case: every working order fills as it is now (a modify or cancel may be late),
    # plus what each admitted opening intent adds to its side.
    by_id = {order.order_id: order for order in account.working_orders}
    exposure: dict[tuple[str, str], float] = {}
    for order in account.working_orders:
        key = (order.symbol, order.action)
        exposure[key] = exposure.get(key, 0.0) + order.remaining
    for intent in actionable:
        order = intent.order
        if intent.action == "cancel" or order is None:
            continue
        if intent.purpose == "opening":
            assert not tripped
            if risk.allowed_symbols is not None:
                assert intent.symbol in risk.allowed_symbols
        if intent.purpose == "protective":
            continue
        assert intent.estimated_price is not None
        assert order.quantity * intent.estimated_price <= risk.max_order_value + 1e-6
        if intent.purpose != "opening":
            continue
        if intent.kind == "brackets" and intent.leg == "entry":
            planned = [o.order for o in actionable if o.rule == intent.rule and o.leg == "stop"]
            working_stops = [
                o for o in account.working_orders if (o.rule, o.leg) == (intent.rule, "stop")
            ]
            stop = (planned + working_stops)[0]
            assert stop is not None and stop.aux_price is not None
            at_risk = abs(intent.estimated_price - stop.aux_price) * order.quantity
            assert at_risk <= risk.max_risk_per_trade_fraction * account.net_liquidation + 1e-6
        before = by_id.get(intent.order_id) if intent.action == "modify" else None
        grows = order.quantity - (0 if before is None else before.filled + before.remaining)
        if grows <= 0:
            continue
        key = (intent.symbol, order.action)
        exposure[key] = exposure.get(key, 0.0) + grows
        sign = 1 if order.action == "BUY" else -1
        after = account.position(intent.symbol) + sign * exposure[key]
        value = abs(after) * account.quotes[intent.symbol].last
        assert value <= risk.max_position_fraction * account.net_liquidation + 1e-6


@SETTINGS
@given(scenarios())
def test_orders_without_the_tradectl_prefix_are_never_touched(scenario: Scenario) -> None:
    result = plan(scenario.rules, scenario.account, NOW)
    by_id = {order.order_id: order for order in scenario.account.working_orders}
    for intent in result.intents:
        if intent.action in ("modify", "cancel"):
            assert intent.order_id in by_id
            assert parse_order_ref(by_id[intent.order_id].order_ref) is not None
    assert set(result.manual_orders) == {
        order
        for order in scenario.account.working_orders
        if parse_order_ref(order.order_ref) is None
    }


@SETTINGS
@given(scenarios())
def test_same_inputs_same_plan_and_keys(scenario: Scenario) -> None:
    first = plan(scenario.rules, scenario.account, NOW)
    second = plan(scenario.rules, scenario.account, NOW)
    assert first == second
    keys = [intent.key for intent in first.intents]
    assert len(keys) == len(set(keys)), "intent keys must be unique within a plan"


def _buy_commitment(result: Plan, account: Observed) -> float:
    """Working buys at their size (a cancelled one may fill until IB confirms the cancel), the
    ones an unblocked modify changes at their new size, plus unblocked new buys."""
    touched = {
        intent.order_id
        for intent in result.actionable
        if intent.action == "modify" and intent.order_id is not None
    }
    by_id = {order.order_id: order for order in account.working_orders}
    committed = 0.0
    for order in account.working_orders:
        if order.action == "BUY" and order.order_id not in touched:
            price = order.limit_price or order.aux_price or account.quotes[order.symbol].last
            committed += order.remaining * price
    for intent in result.actionable:
        order = intent.order
        if order is None or order.action != "BUY" or intent.purpose == "protective":
            continue
        assert intent.estimated_price is not None
        filled = by_id[intent.order_id].filled if intent.action == "modify" else 0.0
        committed += (order.quantity - filled) * intent.estimated_price
    return committed


@SETTINGS
@given(scenarios())
def test_buys_never_exceed_cash_minus_buffer(scenario: Scenario) -> None:
    rules, account = scenario.rules, scenario.account
    result = plan(rules, account, NOW)
    allocation_buys = [
        intent
        for intent in result.actionable
        if intent.kind == "allocations" and intent.order and intent.order.action == "BUY"
    ]
    if not allocation_buys:
        return
    buffer = cash_buffer_of(rules.allocations["core"], account.net_liquidation)
    assert _buy_commitment(result, account) <= account.cash - buffer + 1e-6


@SETTINGS
@given(scenarios())
def test_opening_buys_that_pass_never_exceed_the_funding(scenario: Scenario) -> None:
    """Whenever a bracket entry, scale level or allocation buy that takes more cash passes, the
    whole buy commitment (working buys and everything that passes) fits the funding: cash in a
    cash account, IB's buying power in a margin account (generated at or above cash here).
    A modify that makes a buy smaller may always pass: it lowers the commitment."""
    rules, account = scenario.rules, scenario.account
    result = plan(rules, account, NOW)
    by_id = {order.order_id: order for order in account.working_orders}

    def takes_more(intent: Intent) -> bool:
        assert intent.order is not None and intent.estimated_price is not None
        before = by_id.get(intent.order_id) if intent.action == "modify" else None
        if before is None:
            return True
        old_price = before.limit_price or before.aux_price or account.quotes[before.symbol].last
        new_value = (intent.order.quantity - before.filled) * intent.estimated_price
        return new_value > before.remaining * old_price + 1e-9

    growing_buys = [
        intent
        for intent in result.actionable
        if (
            needs_cash(intent)
            or (intent.kind == "allocations" and intent.order and intent.order.action == "BUY")
        )
        and takes_more(intent)
    ]
    if not growing_buys:
        return
    assert _buy_commitment(result, account) <= funding_of(account).amount + 1e-6
