"""Bracket rules, docs/planning.md: entry forms, stop/target forms, sizing, edits, fills, removal.

AAPL trades at 152 on a 0.01 tick. The base rule buys 100 at limit 150 with a 5 % stop
(150 x 0.95 = 142.50) and a 10 % target (150 x 1.10 = 165.00).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.planner.builders import NOW, observed, rule_set, working
from tradectl.planner import plan
from tradectl.planner.domain import Execution, Plan
from tradectl.planner.legs import order_ref
from tradectl.schemas.models import rule_generation

NAME = "aapl-pullback"
BASE: dict[str, Any] = {
    "symbol": "AAPL",
    "side": "BUY",
    "quantity": 100,
    "entry": {"limit": 150.0},
    "stop_loss": {"percent": 5},
    "take_profit": {"percent": 10},
}


def rules_with(risk: dict[str, Any] | None = None, **changes: Any) -> Any:
    return rule_set(brackets={NAME: {**BASE, **changes}}, risk=risk)


def gen(rules: Any) -> str:
    return rule_generation(rules.brackets[NAME])


def wire(result: Plan) -> list[tuple[Any, ...]]:
    """(action, leg, side, type, quantity, limit, aux, trailing, blocked) per intent."""
    rows = []
    for intent in result.intents:
        order = intent.order
        if order is None:
            rows.append((intent.action, intent.leg, intent.order_id, intent.blocked_by))
            continue
        rows.append(
            (
                intent.action,
                intent.leg,
                order.action,
                order.order_type,
                order.quantity,
                order.limit_price,
                order.aux_price,
                order.trailing_percent,
                intent.blocked_by,
            )
        )
    return rows


def account(**kwargs: Any) -> Any:
    return observed(prices={"AAPL": 152.0}, **kwargs)


def legs_of(
    generation: str, quantity: float = 100, *, entry: bool = True, **entry_kw: Any
) -> list[Any]:
    group = f"tctl:{NAME}:{generation}"
    orders = []
    if entry:
        orders.append(
            working(
                1,
                "AAPL",
                "BUY",
                quantity,
                ref=order_ref(NAME, generation, "entry"),
                limit=150.0,
                tif="GTC",
                **entry_kw,
            )
        )
    orders += [
        working(
            2,
            "AAPL",
            "SELL",
            quantity,
            ref=order_ref(NAME, generation, "stop"),
            order_type="STP",
            aux=142.5,
            tif="GTC",
            oca=group,
        ),
        working(
            3,
            "AAPL",
            "SELL",
            quantity,
            ref=order_ref(NAME, generation, "target"),
            limit=165.0,
            tif="GTC",
            oca=group,
        ),
    ]
    return orders


def test_new_bracket_is_parent_then_two_oca_children_transmitted_by_the_last() -> None:
    rules = rules_with()
    g = gen(rules)
    result = plan(rules, account(), NOW)
    assert wire(result) == [
        ("place", "entry", "BUY", "LMT", 100, 150.0, None, None, None),
        ("place", "stop", "SELL", "STP", 100, None, 142.5, None, None),
        ("place", "target", "SELL", "LMT", 100, 165.0, None, None, None),
    ]
    entry, stop, target = (intent.order for intent in result.intents)
    assert entry is not None and stop is not None and target is not None
    assert entry.order_ref == order_ref(NAME, g, "entry") == result.intents[0].key
    assert (entry.transmit, stop.transmit, target.transmit) == (False, False, True)
    assert stop.parent_ref == target.parent_ref == entry.order_ref
    assert stop.oca_group == target.oca_group == f"tctl:{NAME}:{g}"
    assert [intent.purpose for intent in result.intents] == ["opening", "protective", "protective"]
    assert all(order.tif == "GTC" for order in (entry, stop, target))


def test_entry_forms() -> None:
    # Market: percent levels from the quote 152: stop 144.40, target 167.20.
    market = plan(rules_with(entry={"market": True}), account(), NOW)
    assert wire(market)[:2] == [
        ("place", "entry", "BUY", "MKT", 100, None, None, None, None),
        ("place", "stop", "SELL", "STP", 100, None, 144.4, None, None),
    ]
    assert market.intents[0].estimated_price == 152.0
    assert market.intents[2].order is not None and market.intents[2].order.limit_price == 167.2
    # Stop-limit: percent levels from the stop trigger 152.
    stop_limit = plan(rules_with(entry={"stop": 152.0, "limit": 152.5}), account(), NOW)
    assert wire(stop_limit) == [
        ("place", "entry", "BUY", "STP LMT", 100, 152.5, 152.0, None, None),
        ("place", "stop", "SELL", "STP", 100, None, 144.4, None, None),
        ("place", "target", "SELL", "LMT", 100, 167.2, None, None, None),
    ]


def test_market_entry_without_a_fresh_quote_is_not_planned() -> None:
    stale = observed(prices={"AAPL": 152.0}, quote_age=timedelta(hours=1))
    result = plan(rules_with(entry={"market": True}), stale, NOW)
    assert result.intents == ()
    assert any("quote is stale" in note for note in result.notes)
    # A limit entry states its own prices and needs no quote.
    assert len(plan(rules_with(), stale, NOW).intents) == 3


def test_stop_and_target_prices_round_towards_the_entry() -> None:
    # BUY: stop rounds up (tighter), target rounds down (nearer).
    result = plan(
        rules_with(stop_loss={"price": 142.374}, take_profit={"price": 165.006}), account(), NOW
    )
    assert wire(result)[1:] == [
        ("place", "stop", "SELL", "STP", 100, None, 142.38, None, None),
        ("place", "target", "SELL", "LMT", 100, 165.0, None, None, None),
    ]
    # SELL: entry 150 limit, stop 5 % above = 157.50, target 10 % below = 135.00.
    short = plan(rules_with(side="SELL", stop_loss={"percent": 5.003}), account(), NOW)
    # 150 x 1.05003 = 157.5045 -> rounded down to 157.50 (towards the entry).
    assert wire(short) == [
        ("place", "entry", "SELL", "LMT", 100, 150.0, None, None, None),
        ("place", "stop", "BUY", "STP", 100, None, 157.5, None, None),
        ("place", "target", "BUY", "LMT", 100, 135.0, None, None, None),
    ]


def test_trailing_stop_is_a_trail_order() -> None:
    result = plan(rules_with(stop_loss={"trailing_percent": 2}), account(), NOW)
    assert wire(result)[1] == ("place", "stop", "SELL", "TRAIL", 100, None, None, 2.0, None)


def test_risk_sized_quantity() -> None:
    # 1 % of 100,000 = 1,000 at risk over 150 - 142.50 = 7.50 per share -> 133 shares.
    result = plan(rules_with(quantity={"risk_fraction": 0.01}), account(), NOW)
    assert [intent.order.quantity for intent in result.intents if intent.order] == [133] * 3
    # Trailing 2 %: 150 x 0.02 = 3.00 per share -> 333 shares.
    trailing = plan(
        rules_with(quantity={"risk_fraction": 0.01}, stop_loss={"trailing_percent": 2}),
        account(),
        NOW,
    )
    assert trailing.intents[0].order is not None
    assert trailing.intents[0].order.quantity == 333


def test_edit_before_fill_modifies_every_leg_in_place_with_the_new_generation() -> None:
    old = gen(rules_with())
    edited = rules_with(entry={"limit": 149.0})
    new = gen(edited)
    result = plan(edited, account(orders=legs_of(old)), NOW)
    # 149 x 0.95 = 141.55; 149 x 1.10 = 163.90.
    assert wire(result) == [
        ("modify", "entry", "BUY", "LMT", 100, 149.0, None, None, None),
        ("modify", "stop", "SELL", "STP", 100, None, 141.55, None, None),
        ("modify", "target", "SELL", "LMT", 100, 163.9, None, None, None),
    ]
    for intent, order_id in zip(result.intents, (1, 2, 3), strict=True):
        assert intent.order_id == order_id
        assert intent.order is not None and intent.order.order_ref == order_ref(
            NAME, new, intent.leg
        )
        assert intent.key.startswith(order_ref(NAME, old, intent.leg) + "#mod:")
    # Unchanged rule, legs as written: nothing to do.
    assert plan(rules_with(), account(orders=legs_of(old)), NOW).intents == ()


def test_edit_ib_cannot_modify_cancels_now_and_places_on_the_next_pass() -> None:
    old = gen(rules_with())
    result = plan(
        rules_with(entry={"stop": 152.0, "limit": 152.5}), account(orders=legs_of(old)), NOW
    )
    assert wire(result) == [
        ("cancel", "entry", 1, None),
        ("cancel", "stop", 2, None),
        ("cancel", "target", 3, None),
    ]


def test_filled_entry_is_never_entered_again_and_its_legs_cover_the_position() -> None:
    rules = rules_with()
    g = gen(rules)
    filled = account(
        positions={"AAPL": 100}, entry_fills={(NAME, g): 100}, orders=legs_of(g, entry=False)
    )
    assert plan(rules, filled, NOW).intents == ()
    # The stop has since closed the position: nothing is placed again, even with legs gone.
    closed = account(entry_fills={(NAME, g): 100}, exit_fills={(NAME, g): 100})
    assert plan(rules, closed, NOW).intents == ()
    # Even when another rule holds AAPL, the exit fills say this bracket's shares are gone.
    other_holder = account(
        positions={"AAPL": 500}, entry_fills={(NAME, g): 100}, exit_fills={(NAME, g): 100}
    )
    assert plan(rules, other_holder, NOW).intents == ()


def test_partial_fill_shrinks_the_children_to_the_filled_quantity() -> None:
    rules = rules_with()
    g = gen(rules)
    orders = legs_of(g, filled=40)
    result = plan(
        rules, account(positions={"AAPL": 40}, entry_fills={(NAME, g): 40}, orders=orders), NOW
    )
    assert wire(result) == [
        ("modify", "stop", "SELL", "STP", 40, None, 142.5, None, None),
        ("modify", "target", "SELL", "LMT", 40, 165.0, None, None, None),
    ]


def test_fill_seen_only_in_executions_counts_too() -> None:
    rules = rules_with()
    g = gen(rules)
    fill = Execution("e1", 1, "AAPL", "BUY", 100, 149.8, NOW, order_ref=order_ref(NAME, g, "entry"))
    result = plan(
        rules,
        account(positions={"AAPL": 100}, executions=[fill], orders=legs_of(g, entry=False)),
        NOW,
    )
    assert result.intents == ()


def test_editing_stop_after_fill_moves_the_protective_legs_relative_to_the_fill() -> None:
    old = gen(rules_with())
    edited = rules_with(stop_loss={"percent": 3})
    fill = Execution(
        "e1", 1, "AAPL", "BUY", 100, 149.8, NOW, order_ref=order_ref(NAME, old, "entry")
    )
    state = account(positions={"AAPL": 100}, executions=[fill], orders=legs_of(old, entry=False))
    result = plan(edited, state, NOW)
    # 149.80 x 0.97 = 145.306 -> 145.31 (up); 149.80 x 1.10 = 164.78 -> 164.78.
    assert wire(result) == [
        ("modify", "stop", "SELL", "STP", 100, None, 145.31, None, None),
        ("modify", "target", "SELL", "LMT", 100, 164.78, None, None, None),
    ]
    assert all(intent.purpose == "protective" for intent in result.intents)
    assert result.intents[0].order is not None
    assert result.intents[0].order.oca_group == f"tctl:{NAME}:{old}"


def test_after_fill_a_new_stop_form_is_placed_before_the_old_stop_is_cancelled() -> None:
    old = gen(rules_with())
    edited = rules_with(stop_loss={"trailing_percent": 2})
    state = account(
        positions={"AAPL": 100},
        entry_fills={(NAME, old): 100},
        entry_fill_prices={(NAME, old): 150.0},
        orders=legs_of(old, entry=False),
    )
    result = plan(edited, state, NOW)
    assert wire(result) == [
        ("place", "stop", "SELL", "TRAIL", 100, None, None, 2.0, None),
        ("cancel", "stop", 2, None),
        ("modify", "target", "SELL", "LMT", 100, 165.0, None, None, None),
    ]
    assert result.intents[0].order is not None
    assert result.intents[0].order.oca_group == f"tctl:{NAME}:{old}"


def test_missing_stop_of_a_held_position_is_placed_again() -> None:
    rules = rules_with()
    g = gen(rules)
    target_only = [order for order in legs_of(g, entry=False) if order.leg == "target"]
    state = account(
        positions={"AAPL": 100},
        entry_fills={(NAME, g): 100},
        entry_fill_prices={(NAME, g): 150.0},
        orders=target_only,
    )
    result = plan(rules, state, NOW)
    assert wire(result) == [("place", "stop", "SELL", "STP", 100, None, 142.5, None, None)]
    assert result.intents[0].order is not None
    assert result.intents[0].order.oca_group == f"tctl:{NAME}:{g}"


def test_removed_rule_cancels_an_unfilled_entry_and_its_children() -> None:
    g = gen(rules_with())
    result = plan(rule_set(), account(orders=legs_of(g)), NOW)
    assert wire(result) == [
        ("cancel", "entry", 1, None),
        ("cancel", "stop", 2, None),
        ("cancel", "target", 3, None),
    ]


def test_removed_rule_keeps_the_protection_of_a_filled_entry() -> None:
    g = gen(rules_with())
    filled = account(
        positions={"AAPL": 100}, entry_fills={(NAME, g): 100}, orders=legs_of(g, entry=False)
    )
    assert plan(rule_set(), filled, NOW).intents == ()
    # Partly filled: the rest of the entry is cancelled, the children shrink to the 40 held.
    partial = account(
        positions={"AAPL": 40}, entry_fills={(NAME, g): 40}, orders=legs_of(g, filled=40)
    )
    assert wire(plan(rule_set(), partial, NOW)) == [
        ("cancel", "entry", 1, None),
        ("modify", "stop", "SELL", "STP", 40, None, 142.5, None, None),
        ("modify", "target", "SELL", "LMT", 40, 165.0, None, None, None),
    ]


def test_children_without_an_entry_and_no_fill_are_cancelled() -> None:
    g = gen(rules_with())
    result = plan(rules_with(), account(orders=legs_of(g, entry=False)), NOW)
    assert wire(result) == [("cancel", "stop", 2, None), ("cancel", "target", 3, None)]


def test_gate_blocks_the_whole_bracket_and_lets_protection_through_the_breaker() -> None:
    # 100 x (150 - 142.50) = 750 at risk > 0.5 % of 100,000 = 500.
    strict = {"max_risk_per_trade_fraction": 0.005}
    result = plan(rules_with(risk=strict), account(), NOW)
    assert [intent.blocked_by for intent in result.intents] == [
        "risk.max_risk_per_trade_fraction: 750 at risk > 500 (0.50% of NAV)"
    ] * 3
    tripped = plan(rules_with(), account(breaker_tripped=True), NOW)
    assert all(intent.blocked for intent in tripped.intents)
    old = gen(rules_with())
    moved = plan(
        rules_with(stop_loss={"percent": 3}),
        account(
            positions={"AAPL": 100},
            entry_fills={(NAME, old): 100},
            entry_fill_prices={(NAME, old): 150.0},
            orders=legs_of(old, entry=False),
            breaker_tripped=True,
        ),
        NOW,
    )
    assert moved.intents and not moved.blocked


def test_risk_sized_working_entry_keeps_its_size_while_nav_moves() -> None:
    rules = rules_with(quantity={"risk_fraction": 0.01})
    g = gen(rules)
    orders = legs_of(g, quantity=133)
    assert plan(rules, account(nav=100_600.0, orders=orders), NOW).intents == ()


def test_in_flight_bracket_is_not_planned_again_in_part() -> None:
    rules = rules_with()
    entry_key = order_ref(NAME, gen(rules), "entry")
    result = plan(rules, account(in_flight=frozenset({entry_key})), NOW)
    assert result.intents == ()
    assert any("waiting for the broker to acknowledge" in note for note in result.notes)


def test_halt_blocks_the_bracket_and_orders_per_minute_never_split_it() -> None:
    halted = plan(rules_with(), account(halted=True), NOW)
    assert [intent.blocked_by for intent in halted.intents] == ["halt"] * 3
    # Room for 2 orders: the 3-leg bracket is blocked whole, the 1-order ladder goes.
    rules = rule_set(
        brackets={NAME: BASE},
        scales={"ladder": {"symbol": "AAPL", "side": "BUY", "total_quantity": 10, "levels": 1,
                           "start_price": 140.0, "step": 1.0}},
        risk={"max_orders_per_minute": 3},
    )  # fmt: skip
    result = plan(rules, account(orders_sent_last_minute=1), NOW)
    assert [(intent.rule, intent.blocked) for intent in result.intents] == [
        (NAME, True),
        (NAME, True),
        (NAME, True),
        ("ladder", False),
    ]
