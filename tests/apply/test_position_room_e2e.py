"""An allocation next to a manual buy that fills its symbol's position limit, end to end: the
real ib_insync client against the simulated gateway (docs/planning.md, "Room under the
position limit")."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import CLIENT_ID, Gateway, Outcome, place_manual_order, write_rules

pytestmark = pytest.mark.e2e


def test_a_symbol_a_manual_buy_fills_to_its_limit_leaves_the_cash_to_the_other_targets(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    """NAV 1,000,000; a manual buy of 800 SPY at 400 (below the market's 500, so it rests)
    holds 320,000 of the cash and, if it filled, SPY would be worth 400,000 at the last price:
    over the 35 % limit (350,000). The allocation wants 30 % of 950,000 in each of SPY, AAPL
    and MSFT (855,000 for 680,000 of cash). SPY is not bought (a note says why) and AAPL and
    MSFT get their whole targets in the first pass; a second apply has nothing to send."""
    manual_id = place_manual_order(gateway, "SPY", "BUY", 800, 400.0)
    rules = write_rules(
        tmp_path / "rules",
        gateway,
        risk={"max_order_value": 400_000},
        allocations={
            "core": {
                "capital": {"fraction_of_nav": 0.95},
                "drift": {"absolute": 0.001},
                "min_trade_value": 0,
                "order": {"type": "limit", "offset_bps": 10},
                "targets": {"AAPL": 0.3, "MSFT": 0.3, "SPY": 0.3},
            }
        },
    )
    first = apply_in_process(rules)
    assert first.code == 0, first.out + first.err
    assert "pass 1: sent 2 / acknowledged 2" in first.out
    assert (
        "- allocations.core: SPY: no buy: risk.max_position_fraction 350,000: position 0 and "
        "other working buys of 800 shares at 500 leave room for 0"
    ) in first.out
    assert "0 blocked" in first.out
    ours = [line for line in gateway.messages("placeOrder") if line["client_id"] == CLIENT_ID]
    assert sorted(line["fields"]["contract"]["symbol"] for line in ours) == ["AAPL", "MSFT"]
    positions = gateway.positions()
    assert positions == {
        "AAPL": math.floor(0.3 * 950_000 / 100),
        "MSFT": math.floor(0.3 * 950_000 / 200),
    }

    again = apply_in_process(rules)
    assert again.code == 0 and "Nothing to send." in again.out, again.out
    open_orders = gateway.sim.snapshot().open_orders
    assert [(o.client_id, o.order_id) for o in open_orders] == [(99, manual_id)]
