"""The risk gate, DESIGN.md §3 (gate): each limit blocks what it should and names itself."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from daemon.planner import gate
from daemon.planner.types import Intent, OrderSpec, Plan
from tests.planner.builders import observed, rule_set

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


def gated(*intents: Intent, risk: dict[str, Any] | None = None, **account: Any) -> list[Any]:
    rules = rule_set(risk={**RISK, **(risk or {})})
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
