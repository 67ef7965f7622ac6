"""Cash is whole (docs/planning.md, "Cash"): bracket entries and scale levels count against the
account's funding like allocation buys, in a fixed order, and allocations get what is left."""

from __future__ import annotations

from typing import Any

from tests.planner.builders import NOW, observed, rule_set
from tradectl.planner import plan

BRACKET: dict[str, Any] = {
    "symbol": "AAPL",
    "side": "BUY",
    "quantity": 200,
    "entry": {"limit": 150.0},
    "stop_loss": {"percent": 5},
    "take_profit": {"percent": 10},
}
# 400 MSFT over 4 levels from 100.00, 1.00 apart: 100 shares at 100, 99, 98 and 97.
LADDER: dict[str, Any] = {
    "symbol": "MSFT",
    "side": "BUY",
    "total_quantity": 400,
    "levels": 4,
    "start_price": 100.0,
    "step": 1.0,
}
ALLOCATION: dict[str, Any] = {
    "capital": {"amount": 10_000},
    "cash_buffer": {"amount": 0},
    "min_trade_value": 0,
    "order": {"type": "limit", "offset_bps": 0},
    "targets": {"GOOGL": 1.0},
}
PRICES = {"AAPL": 155.0, "MSFT": 101.0, "GOOGL": 50.0}


def wire(rules: Any, **account: Any) -> tuple[list[tuple[Any, ...]], tuple[str, ...]]:
    """(kind, leg, side, quantity, limit) of every intent that would be sent, and the notes."""
    result = plan(rules, observed(prices=PRICES, **account), NOW)
    sent = [
        (
            intent.kind,
            intent.leg,
            intent.order.action,
            intent.order.quantity,
            intent.order.limit_price,
        )
        for intent in result.actionable
        if intent.order is not None
    ]
    return sent, result.notes


def buys_value(sent: list[tuple[Any, ...]]) -> float:
    return sum(quantity * limit for _, _, side, quantity, limit in sent if side == "BUY")


def test_sixty_thousand_of_bracket_and_scale_buys_on_five_thousand_of_cash() -> None:
    # The bracket (30,000) and the ladder (39,400) used to be exempt from the cash check: all
    # of it went out on 5,000 of cash. Now nothing of it fits 5,000 (the smallest level is
    # 9,700). With 25,000, the bracket (30,000) still does not fit, and neither do its stop
    # and target; L1 and L2 (19,900) do, L3 would make 29,700.
    rules = rule_set(brackets={"dip": BRACKET}, scales={"ladder": LADDER})
    sent, notes = wire(rules, nav=100_000.0, cash=5_000.0)
    assert sent == []
    assert any("counted against cash 5,000 (cash account: TotalCashValue)" in n for n in notes)

    sent, _ = wire(rules, nav=100_000.0, cash=25_000.0)
    assert sent == [
        ("scales", "L1", "BUY", 100, 100.0),
        ("scales", "L2", "BUY", 100, 99.0),
    ]


def test_allocation_gets_what_bracket_and_scale_buys_leave() -> None:
    rules = rule_set(
        brackets={"dip": BRACKET}, scales={"ladder": LADDER}, allocations={"core": ALLOCATION}
    )
    sent, notes = wire(rules, nav=100_000.0, cash=50_000.0)
    # Bracket 30,000 first, then L1 (10,000); L2 (9,900) would make 49,900 and fits too;
    # L3 (9,800) and L4 do not. The allocation's 10,000 of GOOGL gets the 100 left: 2 shares.
    assert sent == [
        ("brackets", "entry", "BUY", 200, 150.0),
        ("brackets", "stop", "SELL", 200, None),
        ("brackets", "target", "SELL", 200, 165.0),
        ("scales", "L1", "BUY", 100, 100.0),
        ("scales", "L2", "BUY", 100, 99.0),
        ("allocations", sent[-1][1], "BUY", 2, 50.0),
    ]
    assert buys_value(sent) <= 50_000.0
    assert any("allocations.core: buys limited by cash: 100 available" in n for n in notes)


def test_margin_account_counts_bracket_and_scale_buys_against_buying_power() -> None:
    rules = rule_set(brackets={"dip": BRACKET}, scales={"ladder": LADDER})
    sent, notes = wire(
        rules, nav=100_000.0, cash=5_000.0, buying_power=45_000.0, margin_account=True
    )
    assert [(kind, leg) for kind, leg, *_ in sent] == [
        ("brackets", "entry"),
        ("brackets", "stop"),
        ("brackets", "target"),
        ("scales", "L1"),
    ]
    assert any("buying power 45,000 (margin account: BuyingPower)" in n for n in notes)
