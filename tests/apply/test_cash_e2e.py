"""Cash is whole, end to end (docs/planning.md, "Cash"): about 60,000 of bracket and scale buys
against an account with 5,000 of cash; only what fits reaches the gateway, read from the sim's
wire log and its own order book."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.apply.conftest import ACCOUNT, Gateway, Outcome, write_rules
from tradectl.sim import SimState

pytestmark = pytest.mark.e2e

# Brackets: NVDA 400 x 48 = 19,200 and AMZN 100 x 215 = 21,500; the AAPL ladder: 50 shares at
# 95, 94, 93 and 92 = 18,700. 59,400 of buys in all.
STANDING: dict[str, Any] = {
    "brackets": {
        "amzn-dip": {
            "symbol": "AMZN",
            "side": "BUY",
            "quantity": 100,
            "entry": {"limit": 215.0},
            "stop_loss": {"price": 205.0},
            "take_profit": {"price": 240.0},
        },
        "nvda-dip": {
            "symbol": "NVDA",
            "side": "BUY",
            "quantity": 400,
            "entry": {"limit": 48.0},
            "stop_loss": {"price": 45.0},
            "take_profit": {"price": 60.0},
        },
    },
    "scales": {
        "aapl-ladder": {
            "symbol": "AAPL",
            "side": "BUY",
            "total_quantity": 200,
            "levels": 4,
            "start_price": 95.0,
            "step": 1.0,
        }
    },
}


def account_state(leverage: float) -> SimState:
    """5,000 of cash and 100,000 of SPY: net liquidation 105,000."""
    return SimState.from_dict(
        {
            "account": {"id": ACCOUNT, "cash": 5_000},
            "positions": [{"symbol": "SPY", "quantity": 200, "avg_cost": 500.0}],
            "symbols": {
                symbol: {"price": price}
                for symbol, price in {
                    "AAPL": 100.0,
                    "SPY": 500.0,
                    "NVDA": 50.0,
                    "AMZN": 220.0,
                }.items()
            },
            "matching": {"leverage": leverage},
        }
    )


def placed_legs(gateway: Gateway) -> list[tuple[str, float, float]]:
    """(rule:leg, quantity, limit) of every order placed, in wire order."""
    return [
        (
            ":".join(line["fields"]["orderRef"].split(":")[1::2]),
            float(line["fields"]["totalQuantity"]),
            float(line["fields"]["lmtPrice"] or line["fields"]["auxPrice"]),
        )
        for line in gateway.messages("placeOrder")
    ]


def test_sixty_thousand_of_bracket_and_scale_buys_on_five_thousand_of_cash(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
) -> None:
    gateway = gateway_factory(account_state(leverage=1.0))
    rules = write_rules(tmp_path / "rules", gateway, **STANDING)
    outcome = apply_in_process(rules)
    assert outcome.code == 0, outcome.out + outcome.err

    # Brackets first (neither entry fits 5,000), then the ladder: L1 (4,750) fits, L2 would
    # make 9,450.
    assert placed_legs(gateway) == [("aapl-ladder:L1", 50.0, 95.0)]
    snapshot = gateway.sim.snapshot()
    assert [(o.symbol, o.quantity, o.lmt_price) for o in snapshot.open_orders] == [
        ("AAPL", 50.0, 95.0)
    ]
    assert "cash 5,000 (cash account: TotalCashValue)" in outcome.out

    again = apply_in_process(rules)
    assert again.code == 0, again.out + again.err
    assert len(gateway.messages("placeOrder")) == 1, "what did not fit stays unsent"


def test_a_margin_account_counts_them_against_buying_power(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
) -> None:
    # Leverage 2: buying power 2 x 105,000 - 100,000 = 110,000, available funds 55,000.
    gateway = gateway_factory(account_state(leverage=2.0))
    rules = write_rules(tmp_path / "rules", gateway, **STANDING)
    outcome = apply_in_process(rules)
    assert outcome.code == 0, outcome.out + outcome.err

    legs = {leg for leg, _, _ in placed_legs(gateway)}
    assert legs == {
        "amzn-dip:entry",
        "amzn-dip:stop",
        "amzn-dip:target",
        "nvda-dip:entry",
        "nvda-dip:stop",
        "nvda-dip:target",
        "aapl-ladder:L1",
        "aapl-ladder:L2",
        "aapl-ladder:L3",
        "aapl-ladder:L4",
    }
    assert len(gateway.sim.snapshot().open_orders) == 10
    assert "buying power 110,000 (margin account: BuyingPower)" in outcome.out
