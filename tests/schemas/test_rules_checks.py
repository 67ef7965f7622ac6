"""tradectl.schemas.checks works on a merged RuleSet alone and names both sides of each conflict."""

from __future__ import annotations

from tradectl.schemas.checks import Problem, check_rule_set
from tradectl.schemas.models import Account, Allocation, Capital, Risk, RuleSet, Scale


def _rules(**changes: object) -> RuleSet:
    base: dict[str, object] = {
        "account": Account(id="DU0000001"),
        "risk": Risk(
            max_order_value=50_000,
            max_position_fraction=0.25,
            max_risk_per_trade_fraction=0.01,
            max_daily_loss_fraction=0.03,
        ),
    }
    return RuleSet.model_validate({**base, **changes})


def test_a_valid_rule_set_has_no_problems() -> None:
    assert check_rule_set(_rules()) == []


def test_problems_carry_the_path_the_message_and_the_other_side() -> None:
    allocation = Allocation(capital=Capital(fraction_of_nav=0.5), targets={"SPY": 0.3})
    scale = Scale(
        symbol="SPY", side="BUY", total_quantity=10, levels=2, start_price=600.0, step=1.0
    )

    problems = check_rule_set(_rules(allocations={"core": allocation}, scales={"dip": scale}))

    assert problems[0] == Problem(
        ("allocations", "core", "targets", "SPY"),
        "must be <= 0.25",
        (("risk", "max_position_fraction"),),
    )
    assert problems[1].path == ("scales", "dip", "symbol")
    assert problems[1].see == (("allocations", "core", "targets", "SPY"),)
    assert "trade them away" in problems[1].message
    assert len(problems) == 2
