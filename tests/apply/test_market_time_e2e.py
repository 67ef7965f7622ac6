"""Market time end to end: tradectl follows the hours the gateway reports (docs/planning.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tradectl.cli import main
from tradectl.sim import SimState
from tradectl.sim.state import PositionSpec

from .conftest import DEFAULT_PRICES, Gateway, Outcome, sim_state, write_rules
from .test_apply_e2e import converge

MARKET_ALLOCATION = {
    "core": {
        "capital": {"fraction_of_nav": 0.5},
        "drift": {"absolute": 0.001},
        "min_trade_value": 0,
        "order": {"type": "market"},
        "targets": {"AAPL": 0.2, "MSFT": 0.2},
    }
}


def test_closed_market_holds_market_allocations_then_an_open_one_converges(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    state = sim_state(DEFAULT_PRICES)
    state.market.hours = "closed_today"
    gateway = gateway_factory(state)
    rules = write_rules(tmp_path / "rules", gateway, allocations=MARKET_ALLOCATION)
    closed_state = tmp_path / "closed-state"

    capsys.readouterr()
    assert main(["plan", str(rules), "--state-dir", str(closed_state)]) == 2
    shown = capsys.readouterr().out
    assert "held until" in shown, shown
    assert apply_in_process(rules, state_dir=closed_state).code == 0
    assert gateway.messages("placeOrder") == []
    assert gateway.positions() == {}

    # Hours are read once a day (and kept in the journal), so the open market is seen by a
    # fresh journal; nothing was sent, so nothing is lost.
    gateway.sim.call(
        lambda: setattr(gateway.sim.gateway.engine.state.market, "hours", "always_open")
    )
    converge(lambda r: apply_in_process(r, state_dir=tmp_path / "open-state"), rules)
    positions = gateway.positions()
    assert set(positions) == {"AAPL", "MSFT"}
    assert all(line["fields"]["orderType"] == "MKT" for line in gateway.messages("placeOrder"))


def test_plan_exits_2_while_a_rebalance_has_slices_left_and_0_once_converged(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """`plan` treats allocations as due even between cron times (docs/daemon.md, "Rebalance
    window"): the slices a rebalance left are changes pending, not "in sync"."""
    # 500 AAPL (50,000) and 950,000 of cash, as after a rebalance's first 50,000 slice: 30%
    # of 1,000,000 at 100 is 2,850 shares (capital 95%), so four more slices are to go.
    state = sim_state(DEFAULT_PRICES, cash=950_000)
    state.positions = [PositionSpec(symbol="AAPL", quantity=500, avg_cost=100.0)]
    state.market.hours = "always_open"
    gateway = gateway_factory(state)
    core = {**MARKET_ALLOCATION["core"], "capital": {"fraction_of_nav": 0.95}}
    allocation = {"core": {**core, "drift": {"absolute": 0.01}, "targets": {"AAPL": 0.3}}}
    monthly = {"cron": "0 10 1 * *", "timezone": "America/New_York"}
    rules = write_rules(
        tmp_path / "rules",
        gateway,
        allocations=allocation,
        schedule={"reconcile_every": "30s", "rebalance": monthly},
    )
    state_dir = tmp_path / "state"

    capsys.readouterr()
    assert main(["plan", str(rules), "--state-dir", str(state_dir)]) == 2
    shown = capsys.readouterr().out
    assert "sliced: 500 of 2,350 shares, risk.max_order_value" in shown, shown
    assert gateway.messages("placeOrder") == [], "plan sends nothing"

    converge(lambda r: apply_in_process(r, state_dir=state_dir), rules)
    assert gateway.positions()["AAPL"] >= 2_840
    assert main(["plan", str(rules), "--state-dir", str(state_dir)]) == 0
