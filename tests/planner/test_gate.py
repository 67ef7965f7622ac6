"""The risk gate (docs/planning.md): each limit blocks what it should and names itself."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tests.planner.builders import observed, rule_set, working
from tradectl.planner import gate
from tradectl.planner.domain import Intent, OrderSpec, Plan

CASH_ALLOCATION: dict[str, Any] = {
    "capital": {"fraction_of_nav": 1.0},
    "cash_buffer": {"amount": 0},
    "targets": {"AAPL": 0.25, "MSFT": 0.25},
}
RISK: dict[str, Any] = {
    "max_order_value": 25_000,
    "max_position_fraction": 0.35,
    "max_risk_per_trade_fraction": 0.02,
    "max_daily_loss_fraction": 0.05,
    "max_orders_per_minute": 120,
}


def intent(
    symbol: str,
    action: str,
    quantity: int,
    price: float,
    *,
    purpose: str = "opening",
    kind: str = "allocations",
    rule: str = "core",
    leg: str | None = None,
    order_type: str = "LMT",
    aux: float | None = None,
    parent: str | None = None,
    verb: str = "place",
) -> Intent:
    leg = leg or f"{symbol}.abc123"
    ref = f"tctl:{rule}:gen0000000:{leg}"
    order = OrderSpec(
        symbol=symbol,
        action=action,  # type: ignore[arg-type]
        quantity=quantity,
        order_type=order_type,  # type: ignore[arg-type]
        order_ref=ref,
        limit_price=price if order_type == "LMT" else None,
        aux_price=aux,
        parent_ref=parent,
    )
    return Intent(
        key=ref if verb == "place" else f"{ref}#cancel",
        action=verb,  # type: ignore[arg-type]
        kind=kind,  # type: ignore[arg-type]
        rule=rule,
        leg=leg,
        symbol=symbol,
        purpose=purpose,  # type: ignore[arg-type]
        reason="test",
        order=None if verb == "cancel" else order,
        order_id=1 if verb == "cancel" else None,
        estimated_price=price,
    )


def gated(
    *intents: Intent,
    risk: dict[str, Any] | None = None,
    allocations: dict[str, Any] | None = None,
    **account: Any,
) -> list[Any]:
    rules = rule_set(risk={**RISK, **(risk or {})}, allocations=allocations)
    result = gate(Plan(intents=intents), rules, observed(**account))
    return [found.blocked_by for found in result.intents]


def test_max_order_value_names_the_values() -> None:
    assert gated(intent("AAPL", "BUY", 250, 125.0), prices={"AAPL": 125.0}) == [
        "risk.max_order_value: 31,250 > 25,000"
    ]
    assert gated(intent("AAPL", "BUY", 200, 125.0), prices={"AAPL": 125.0}) == [None]


def test_max_order_value_never_blocks_a_protective_order() -> None:
    stop = intent("AAPL", "SELL", 1000, 100.0, purpose="protective", order_type="STP", aux=100.0)
    assert gated(stop, prices={"AAPL": 101.0}, positions={"AAPL": 1000}) == [None]


def test_max_position_fraction_counts_position_and_working_orders_on_that_side() -> None:
    # 300 held at 100 = 30,000; +100 = 40,000 > 35,000 of a 100,000 NAV.
    assert gated(
        intent("AAPL", "BUY", 100, 100.0), prices={"AAPL": 100.0}, positions={"AAPL": 300}
    ) == ["risk.max_position_fraction: AAPL position after fill 40,000 > 35,000 (35.00% of NAV)"]
    assert gated(
        intent("AAPL", "BUY", 50, 100.0), prices={"AAPL": 100.0}, positions={"AAPL": 300}
    ) == [None]
    # Two buys of 200 each: the second would take the position to 40,000.
    first = intent("AAPL", "BUY", 200, 100.0)
    second = replace(intent("AAPL", "BUY", 200, 100.0, leg="AAPL.def456"))
    assert gated(first, second, prices={"AAPL": 100.0})[1] is not None


def test_circuit_breaker_blocks_opening_and_lets_closing_protective_and_cancels_through() -> None:
    plan_intents = (
        intent("AAPL", "BUY", 10, 100.0),
        intent("MSFT", "SELL", 10, 100.0, purpose="closing"),
        intent("MSFT", "SELL", 10, 95.0, purpose="protective", order_type="STP", aux=95.0),
        intent("GOOGL", "BUY", 10, 100.0, verb="cancel"),
    )
    account = {"prices": {"AAPL": 100.0, "MSFT": 100.0}, "positions": {"MSFT": 20}}
    tripped = gated(*plan_intents, nav=94_000, day_start_nav=100_000, **account)
    assert tripped == [
        "risk.max_daily_loss_fraction: NAV 94,000 is 6.00% below the day's first NAV 100,000 "
        "(limit 5.00%)",
        None,
        None,
        None,
    ]
    flagged = gated(*plan_intents, breaker_tripped=True, **account)
    assert flagged[0] is not None and flagged[0].startswith("risk.max_daily_loss_fraction")
    assert flagged[1:] == [None, None, None]
    assert gated(*plan_intents, nav=96_000, day_start_nav=100_000, **account) == [None] * 4


def test_halt_blocks_everything() -> None:
    plan_intents = (
        intent("AAPL", "BUY", 1, 100.0),
        intent("AAPL", "SELL", 1, 100.0, purpose="protective"),
        intent("AAPL", "BUY", 1, 100.0, verb="cancel"),
    )
    assert gated(*plan_intents, prices={"AAPL": 100.0}, halted=True) == ["halt"] * 3


def test_allowed_symbols_blocks_opening_only() -> None:
    plan_intents = (
        intent("TSLA", "BUY", 1, 100.0),
        intent("TSLA", "SELL", 1, 100.0, purpose="closing"),
    )
    assert gated(
        *plan_intents,
        risk={"allowed_symbols": ["AAPL"]},
        prices={"TSLA": 100.0},
        positions={"TSLA": 5},
    ) == ["risk.allowed_symbols: TSLA is not in the allow-list", None]


def bracket(quantity: int, stop: float) -> tuple[Intent, ...]:
    entry_ref = "tctl:dip:gen0000000:entry"
    return (
        intent("AAPL", "BUY", quantity, 150.0, kind="brackets", rule="dip", leg="entry"),
        intent(
            "AAPL",
            "SELL",
            quantity,
            stop,
            kind="brackets",
            rule="dip",
            leg="stop",
            purpose="protective",
            order_type="STP",
            aux=stop,
            parent=entry_ref,
        ),
        intent(
            "AAPL",
            "SELL",
            quantity,
            165.0,
            kind="brackets",
            rule="dip",
            leg="target",
            purpose="protective",
            parent=entry_ref,
        ),
    )


def test_risk_per_trade_blocks_the_whole_bracket() -> None:
    # 100 x (150 - 140) = 1,000 <= 2,000 (2% of 100,000); 150 x 10 = 1,500; 150 x 15 = 2,250.
    account = {"prices": {"AAPL": 150.0}}
    limits = {"max_order_value": 50_000}
    assert gated(*bracket(100, 140.0), risk=limits, **account) == [None] * 3
    assert (
        gated(*bracket(150, 135.0), risk=limits, **account)
        == ["risk.max_risk_per_trade_fraction: 2,250 at risk > 2,000 (2.00% of NAV)"] * 3
    )


def test_orders_per_minute_blocks_the_excess_opening_first() -> None:
    plan_intents = (
        intent("AAPL", "BUY", 1, 100.0),
        intent("MSFT", "SELL", 1, 100.0, purpose="closing"),
        intent("MSFT", "SELL", 1, 90.0, purpose="protective", order_type="STP", aux=90.0),
    )
    account = {"prices": {"AAPL": 100.0, "MSFT": 100.0}, "positions": {"MSFT": 5}}
    result = gated(
        *plan_intents, risk={"max_orders_per_minute": 3}, orders_sent_last_minute=1, **account
    )
    assert result == [
        "risk.max_orders_per_minute: 1 sent in the last minute + 3 planned > 3",
        None,
        None,
    ]


def test_gate_is_idempotent() -> None:
    rules = rule_set(risk=RISK)
    account = observed(prices={"AAPL": 125.0})
    once = gate(Plan(intents=(intent("AAPL", "BUY", 250, 125.0),)), rules, account)
    assert gate(once, rules, account) == once


def modify(order_id: int, symbol: str, quantity: int, price: float) -> Intent:
    base = intent(symbol, "BUY", quantity, price)
    assert base.order is not None
    return replace(base, action="modify", order_id=order_id, key=f"{base.order.order_ref}#mod")


CASH_ORDERS = [
    working(800, "MSFT", "BUY", 1, ref="tctl:core:0ldgen0000:MSFT.abc123", limit=1.0),
    working(801, "AAPL", "BUY", 4, ref="tctl:core:0ldgen0000:AAPL.abc123", limit=501.0),
]


def test_cash_blocks_buys_that_a_blocked_modify_was_to_fund() -> None:
    # AAPL 4 @ 501 commits all 2,004 of cash. Its modify to 1 share would free 1,503 but is
    # itself over max_order_value, so the order stays at 2,004, and MSFT grown from 1 to 500
    # shares would make 2,004 + 500 = 2,504 committed.
    blocks = gated(
        modify(801, "AAPL", 1, 501.0),
        modify(800, "MSFT", 500, 1.0),
        risk={"max_order_value": 500},
        allocations={"core": CASH_ALLOCATION},
        nav=2004.0,
        prices={"AAPL": 501.0, "MSFT": 1.0},
        orders=CASH_ORDERS,
    )
    assert blocks == [
        "risk.max_order_value: 501 > 500",
        "cash: buys would commit 2,504 > 2,004 available (cash 2,004 - buffer 0)",
    ]


def test_cash_lets_a_shrinking_modify_fund_a_growing_one() -> None:
    blocks = gated(
        modify(801, "AAPL", 1, 501.0),
        modify(800, "MSFT", 500, 1.0),
        risk={"max_order_value": 5_000},
        allocations={"core": CASH_ALLOCATION},
        nav=2004.0,
        prices={"AAPL": 501.0, "MSFT": 1.0},
        orders=CASH_ORDERS,
    )
    assert blocks == [None, None]


def test_cash_keeps_the_rules_buffer_and_admits_buys_in_plan_order() -> None:
    # Cash 1,000 - buffer 300 = 700: AAPL 500 fits, MSFT 300 more would make 800.
    blocks = gated(
        intent("AAPL", "BUY", 5, 100.0),
        intent("MSFT", "BUY", 3, 100.0),
        intent("GOOGL", "BUY", 2, 100.0),
        allocations={"core": {**CASH_ALLOCATION, "cash_buffer": {"amount": 300}}},
        nav=1_000.0,
        prices={"AAPL": 100.0, "MSFT": 100.0, "GOOGL": 100.0},
        risk={"max_position_fraction": 1.0},
    )
    assert blocks == [
        None,
        "cash: buys would commit 800 > 700 available (cash 1,000 - buffer 300)",
        None,
    ]


def test_cash_blocks_a_bracket_whose_entry_does_not_fit_with_its_children() -> None:
    # The bracket's entry (100 x 150 = 15,000) does not fit in 10,000 of cash: the entry and
    # the stop and target attached to it stay home; the allocation buy after it fits.
    reason = (
        "cash: brackets.dip entry buy of 15,000 would commit 15,000 > "
        "cash 10,000 (cash account: TotalCashValue)"
    )
    blocks = gated(
        *bracket(100, 140.0),
        intent("MSFT", "BUY", 1, 100.0),
        allocations={"core": CASH_ALLOCATION},
        nav=100_000.0,
        cash=10_000.0,
        prices={"AAPL": 150.0, "MSFT": 100.0},
    )
    assert blocks == [reason, reason, reason, None]


def scale_level(level: int, quantity: int, price: float, rule: str = "ladder") -> Intent:
    return intent("MSFT", "BUY", quantity, price, kind="scales", rule=rule, leg=f"L{level}")


def test_cash_admits_brackets_then_scales_then_allocations_while_they_fit() -> None:
    # 5,000 of cash; 60,000 of bracket and scale buys and an allocation buy are planned.
    # Bracket dip (100 x 150) does not fit; the scale's L1 (20 x 100 = 2,000) and L2
    # (25 x 99 = 2,475) do, L3 (30 x 98 = 2,940) would make 7,415; the allocation buy of 600
    # would make 5,075 > 5,000. The plan lists the allocation first: order does not matter.
    blocks = gated(
        intent("GOOGL", "BUY", 6, 100.0),
        scale_level(1, 20, 100.0),
        scale_level(2, 25, 99.0),
        scale_level(3, 30, 98.0),
        *bracket(100, 140.0),
        allocations={"core": CASH_ALLOCATION},
        nav=100_000.0,
        cash=5_000.0,
        prices={"AAPL": 150.0, "MSFT": 100.0, "GOOGL": 100.0},
    )
    entry_blocked = (
        "cash: brackets.dip entry buy of 15,000 would commit 15,000 > "
        "cash 5,000 (cash account: TotalCashValue)"
    )
    assert blocks == [
        "cash: buys would commit 5,075 > 5,000 available (cash 5,000 - buffer 0)",
        None,
        None,
        "cash: scales.ladder L3 buy of 2,940 would commit 7,415 > "
        "cash 5,000 (cash account: TotalCashValue)",
        entry_blocked,
        entry_blocked,
        entry_blocked,
    ]


def test_cash_counts_working_buys_before_new_standing_buys() -> None:
    # A working allocation buy already holds 4,500 of the 5,000: a scale level of 1,000 waits.
    blocks = gated(
        scale_level(1, 10, 100.0),
        nav=100_000.0,
        cash=5_000.0,
        prices={"MSFT": 100.0},
        orders=[working(801, "AAPL", "BUY", 45, ref="tctl:core:gen0000000:AAPL.abc123", limit=100)],
    )
    assert blocks == [
        "cash: scales.ladder L1 buy of 1,000 would commit 5,500 > "
        "cash 5,000 (cash account: TotalCashValue)"
    ]


def test_cash_never_blocks_protective_or_closing_orders() -> None:
    blocks = gated(
        intent(
            "AAPL",
            "SELL",
            100,
            140.0,
            kind="brackets",
            rule="dip",
            leg="stop",
            purpose="protective",
            order_type="STP",
            aux=140.0,
        ),
        intent("MSFT", "SELL", 100, 100.0, purpose="closing"),
        intent("MSFT", "SELL", 50, 101.0, kind="scales", rule="exit", leg="L1", purpose="closing"),
        nav=100_000.0,
        cash=0.0,
        prices={"AAPL": 150.0, "MSFT": 100.0},
        positions={"AAPL": 100, "MSFT": 250},
    )
    assert blocks == [None, None, None]


def test_margin_account_counts_standing_buys_against_buying_power() -> None:
    # Cash 5,000 but buying power 20,000 (a margin account): the 15,000 entry fits; the
    # scale level of 6,000 after it would make 21,000.
    account: dict[str, Any] = {
        "nav": 100_000.0,
        "cash": 5_000.0,
        "buying_power": 20_000.0,
        "margin_account": True,
        "prices": {"AAPL": 150.0, "MSFT": 100.0},
    }
    blocks = gated(*bracket(100, 140.0), scale_level(1, 60, 100.0), **account)
    assert blocks == [
        None,
        None,
        None,
        "cash: scales.ladder L1 buy of 6,000 would commit 21,000 > "
        "buying power 20,000 (margin account: BuyingPower)",
    ]
    cash_account = {**account, "margin_account": False}
    assert gated(*bracket(100, 140.0), **cash_account)[0] == (
        "cash: brackets.dip entry buy of 15,000 would commit 15,000 > "
        "cash 5,000 (cash account: TotalCashValue)"
    )


def test_cash_keeps_the_stop_of_a_filled_entry_when_a_new_entry_does_not_fit() -> None:
    # A partly filled entry (40 of 100) grows to 200 (rule edit) beyond cash; the stop covering
    # the filled 40 shares is resized in the same pass. The entry waits, the stop goes.
    grow_entry = replace(
        intent("AAPL", "BUY", 200, 150.0, kind="brackets", rule="dip", leg="entry"),
        action="modify",
        order_id=701,
    )
    stop = intent(
        "AAPL",
        "SELL",
        40,
        140.0,
        kind="brackets",
        rule="dip",
        leg="stop",
        purpose="protective",
        order_type="STP",
        aux=140.0,
    )
    blocks = gated(
        grow_entry,
        stop,
        risk={
            "max_order_value": 100_000,
            "max_position_fraction": 1.0,
            "max_risk_per_trade_fraction": 1.0,
        },
        nav=100_000.0,
        cash=10_000.0,
        prices={"AAPL": 150.0},
        positions={"AAPL": 40},
        orders=[
            working(
                701, "AAPL", "BUY", 100, ref="tctl:dip:gen0000000:entry", limit=150.0, filled=40
            )
        ],
    )
    # The working entry holds 60 x 150 = 9,000; grown to 160 left it would add 15,000.
    assert blocks[0] == (
        "cash: brackets.dip entry buy of 15,000 would commit 24,000 > "
        "cash 10,000 (cash account: TotalCashValue)"
    )
    assert blocks[1] is None
