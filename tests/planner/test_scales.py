"""Scale rules, docs/planning.md: level prices and quantities, edits, fills, removal.

BUY 503 MSFT over 5 levels from 150.00, step 0.105: prices 150.00, 149.895 -> 149.89,
149.79, 149.685 -> 149.68, 149.58 (BUY rounds down); quantities 101, 101, 101, 100, 100.
"""

from __future__ import annotations

from typing import Any

from tests.planner.builders import NOW, observed, rule_set, working
from tradectl.planner import plan
from tradectl.planner.domain import Execution, Plan
from tradectl.planner.legs import order_ref
from tradectl.schemas.models import rule_generation

NAME = "msft-ladder"
BASE: dict[str, Any] = {
    "symbol": "MSFT",
    "side": "BUY",
    "total_quantity": 503,
    "levels": 5,
    "start_price": 150.0,
    "step": 0.105,
}
PRICES = [150.0, 149.89, 149.79, 149.68, 149.58]
QUANTITIES = [101, 101, 101, 100, 100]


def rules_with(**changes: Any) -> Any:
    return rule_set(scales={NAME: {**BASE, **changes}})


def gen(rules: Any) -> str:
    return rule_generation(rules.scales[NAME])


def wire(result: Plan) -> list[tuple[Any, ...]]:
    return [
        (
            intent.action,
            intent.leg,
            None if intent.order is None else intent.order.action,
            None if intent.order is None else intent.order.quantity,
            None if intent.order is None else intent.order.limit_price,
        )
        for intent in result.intents
    ]


def ladder(generation: str, *, filled_l2: float = 0.0, skip: tuple[str, ...] = ()) -> list[Any]:
    orders = []
    for index, (price, quantity) in enumerate(zip(PRICES, QUANTITIES, strict=True), start=1):
        leg = f"L{index}"
        if leg in skip:
            continue
        orders.append(
            working(10 + index, "MSFT", "BUY", quantity, ref=order_ref(NAME, generation, leg),
                    limit=price, tif="GTC", filled=filled_l2 if leg == "L2" else 0.0)
        )  # fmt: skip
    return orders


def account(**kwargs: Any) -> Any:
    return observed(prices={"MSFT": 150.2}, **kwargs)


def test_new_ladder_places_every_level_with_rounded_prices_and_exact_total() -> None:
    rules = rules_with()
    result = plan(rules, account(), NOW)
    assert wire(result) == [
        ("place", f"L{i}", "BUY", q, p)
        for i, (p, q) in enumerate(zip(PRICES, QUANTITIES, strict=True), start=1)
    ]
    assert sum(q for *_, q, _ in wire(result)) == 503
    for intent in result.intents:
        assert intent.order is not None and intent.order.order_type == "LMT"
        assert intent.key == intent.order.order_ref == order_ref(NAME, gen(rules), intent.leg)
        assert intent.order.tif == "GTC"


def test_sell_ladder_steps_up_and_rounds_up() -> None:
    result = plan(rules_with(side="SELL"), account(positions={"MSFT": 503}), NOW)
    assert [row[4] for row in wire(result)] == [150.0, 150.11, 150.21, 150.32, 150.42]
    assert all(intent.purpose == "closing" for intent in result.intents)


def test_working_ladder_as_written_needs_nothing() -> None:
    rules = rules_with()
    assert plan(rules, account(orders=ladder(gen(rules))), NOW).intents == ()


def test_filled_levels_are_not_placed_again_and_fills_go_to_the_first_levels() -> None:
    # 150 filled in all: L1 (101) is done, L2 has 49 of 101; its working order shows the same.
    rules = rules_with()
    g = gen(rules)
    state = account(entry_fills={(NAME, g): 150}, orders=ladder(g, filled_l2=49, skip=("L1",)))
    assert plan(rules, state, NOW).intents == ()
    # The same fills known only from today's executions.
    fills = [
        Execution("e1", 11, "MSFT", "BUY", 101, 150.0, NOW, order_ref=order_ref(NAME, g, "L1")),
        Execution("e2", 12, "MSFT", "BUY", 49, 149.89, NOW, order_ref=order_ref(NAME, g, "L2")),
    ]
    state = account(executions=fills, orders=ladder(g, filled_l2=49, skip=("L1",)))
    assert plan(rules, state, NOW).intents == ()


def test_edit_before_fill_modifies_every_level_in_place() -> None:
    old = gen(rules_with())
    edited = rules_with(step=0.2)
    result = plan(edited, account(orders=ladder(old)), NOW)
    assert wire(result) == [
        ("modify", "L1", "BUY", 101, 150.0),
        ("modify", "L2", "BUY", 101, 149.8),
        ("modify", "L3", "BUY", 101, 149.6),
        ("modify", "L4", "BUY", 100, 149.4),
        ("modify", "L5", "BUY", 100, 149.2),
    ]
    for intent in result.intents:
        assert intent.order is not None
        assert intent.order.order_ref == order_ref(NAME, gen(edited), intent.leg)
        assert intent.key.startswith(order_ref(NAME, old, intent.leg) + "#mod:")


def test_edit_after_partial_fill_keeps_the_total_exact() -> None:
    # 150 filled under the old generation; the new ladder starts at 149.
    old = gen(rules_with())
    edited = rules_with(start_price=149.0)
    state = account(entry_fills={(NAME, old): 150}, orders=ladder(old, filled_l2=49, skip=("L1",)))
    result = plan(edited, state, NOW)
    # L2 keeps its 49 filled and 52 to go: total 101 at the new 148.89.
    assert wire(result) == [
        ("modify", "L2", "BUY", 101, 148.89),
        ("modify", "L3", "BUY", 101, 148.79),
        ("modify", "L4", "BUY", 100, 148.68),
        ("modify", "L5", "BUY", 100, 148.58),
    ]
    remaining = sum(
        intent.order.quantity - (49 if intent.leg == "L2" else 0)
        for intent in result.intents
        if intent.order
    )
    assert remaining + 150 == 503


def test_fewer_levels_cancel_the_extra_ones() -> None:
    old = gen(rules_with())
    edited = rules_with(levels=3, total_quantity=303)
    result = plan(edited, account(orders=ladder(old)), NOW)
    assert [(row[0], row[1]) for row in wire(result)] == [
        ("cancel", "L4"),
        ("cancel", "L5"),
        ("modify", "L1"),
        ("modify", "L2"),
        ("modify", "L3"),
    ]


def test_removed_rule_cancels_its_working_levels() -> None:
    old = gen(rules_with())
    result = plan(rule_set(), account(orders=ladder(old, skip=("L1",))), NOW)
    assert [(row[0], row[1]) for row in wire(result)] == [
        ("cancel", "L2"),
        ("cancel", "L3"),
        ("cancel", "L4"),
        ("cancel", "L5"),
    ]


def test_side_change_cancels_the_ladder_and_places_on_the_next_pass() -> None:
    old = gen(rules_with())
    result = plan(rules_with(side="SELL"), account(orders=ladder(old)), NOW)
    assert [row[0] for row in wire(result)] == ["cancel"] * 5
    assert any("next pass" in note for note in result.notes)


def test_missing_contract_details_mean_no_ladder() -> None:
    result = plan(rules_with(), observed(prices={"MSFT": 150.2}, contracts={}), NOW)
    assert result.intents == ()
    assert any("no contract details" in note for note in result.notes)
