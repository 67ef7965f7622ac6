"""Issue #12 end to end: a filled bracket's position keeps a stop and a target of exactly the
quantity it holds, read back from the simulated gateway's own state (its snapshot).

Each test starts from the situation the issue describes; "the next day" is the sim's
``forget_day`` control op (IB Gateway reports executions and completed orders for the current
day only)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tradectl.cli import main
from tradectl.journal import Journal
from tradectl.sim import SimState
from tradectl.sim.model import SimOrder

from .conftest import DEFAULT_PRICES, Gateway, Outcome, sim_state, write_rules

pytestmark = pytest.mark.e2e

RULE = "aapl-dip"
BRACKET: dict[str, Any] = {
    "symbol": "AAPL",
    "side": "BUY",
    "quantity": 100,
    "entry": {"limit": 99.0},
    "stop_loss": {"price": 95.0},
    "take_profit": {"price": 110.0},
}


def bracket_rules(directory: Path, gateway: Gateway, present: bool = True) -> Path:
    sections: dict[str, Any] = {"brackets": {RULE: BRACKET}} if present else {}
    return write_rules(directory, gateway, **sections)


def working_legs(gateway: Gateway) -> dict[str, list[SimOrder]]:
    """The sim's working orders of the rule, by leg (the orderRef's last part)."""
    legs: dict[str, list[SimOrder]] = {}
    for order in gateway.sim.snapshot().open_orders:
        parts = order.order_ref.split(":")
        if len(parts) == 4 and parts[1] == RULE:
            legs.setdefault(parts[3], []).append(order)
    return legs


def assert_protected(gateway: Gateway, held: float) -> None:
    """The sim holds ``held`` AAPL and exactly one stop and one target, each for ``held``."""
    assert gateway.positions().get("AAPL", 0.0) == held
    legs = working_legs(gateway)
    assert "entry" not in legs, legs
    stops, targets = legs.get("stop", []), legs.get("target", [])
    assert len(stops) == 1 and len(targets) == 1, legs
    assert stops[0].remaining == held, stops[0]
    assert targets[0].remaining == held, targets[0]
    assert stops[0].order_type == "STP" and stops[0].aux_price == 95.0
    assert targets[0].order_type == "LMT" and targets[0].lmt_price == 110.0


def entries_placed(gateway: Gateway) -> int:
    return sum(ref.endswith(":entry") for ref in gateway.placed_refs())


def enter_and_fill(
    gateway: Gateway, apply: Callable[..., Outcome], rules: Path, state: Path
) -> None:
    placed = apply(rules, state_dir=state)
    assert placed.code == 0, placed.out + placed.err
    gateway.sim.control.set_price("AAPL", 98.5)
    journaled = apply(rules, state_dir=state)
    assert journaled.code == 0, journaled.out + journaled.err


def test_failure_1_rule_deleted_the_day_after_its_entry_filled_keeps_its_protection(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    rules = bracket_rules(tmp_path / "rules", gateway)
    enter_and_fill(gateway, apply_in_process, rules, state)
    assert_protected(gateway, 100)

    gateway.sim.control.forget_day()
    assert gateway.sim.snapshot().executions == []
    bracket_rules(rules, gateway, present=False)
    outcome = apply_in_process(rules, state_dir=state)

    assert outcome.code == 0, outcome.out + outcome.err
    assert "orphaned protection of the 100 shares" in outcome.out
    assert gateway.messages("cancelOrder") == []
    assert_protected(gateway, 100)
    again = apply_in_process(rules, state_dir=state)
    assert "Nothing to send." in again.out
    assert_protected(gateway, 100)


@pytest.mark.parametrize("still_in_rules", [True, False], ids=["rule-kept", "rule-removed"])
def test_failure_2_empty_journal_with_a_filled_bracket_keeps_protection_and_never_reenters(
    gateway: Gateway,
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
    still_in_rules: bool,
) -> None:
    rules = bracket_rules(tmp_path / "rules", gateway)
    enter_and_fill(gateway, apply_in_process, rules, tmp_path / "state")
    gateway.sim.control.forget_day()
    bracket_rules(rules, gateway, present=still_in_rules)

    fresh = tmp_path / "another-machine"
    for attempt in range(2):
        outcome = apply_in_process(rules, state_dir=fresh)
        assert outcome.code == 0, outcome.out + outcome.err
        # The first pass proves the fill from IB's order graph; the ledger remembers it after.
        proof = "its stop works without its entry: at IB that means the entry filled"
        assert (proof in outcome.out) == (attempt == 0), outcome.out
        assert gateway.messages("cancelOrder") == []
        assert entries_placed(gateway) == 1
        assert_protected(gateway, 100)
    with Journal.open(fresh) as journal:
        [row] = journal.ledger()
    assert (row.rule, row.generation, row.reconstructed, row.exited) == (RULE, "", 100, 0)


def test_failure_2_fresh_journal_remembers_the_reconstructed_entry_after_the_stop_filled(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    rules = bracket_rules(tmp_path / "rules", gateway)
    enter_and_fill(gateway, apply_in_process, rules, tmp_path / "state")
    gateway.sim.control.forget_day()
    fresh = tmp_path / "another-machine"
    apply_in_process(rules, state_dir=fresh)

    gateway.sim.control.set_price("AAPL", 94.0)
    assert gateway.positions().get("AAPL", 0.0) == 0
    closed = apply_in_process(rules, state_dir=fresh)

    assert closed.code == 0, closed.out + closed.err
    assert entries_placed(gateway) == 1
    assert working_legs(gateway) == {}


@pytest.fixture
def chunked_gateway(gateway_factory: Callable[[SimState], Gateway]) -> Gateway:
    state = sim_state(DEFAULT_PRICES).model_dump()
    state["matching"] = {"fill_chunk": 30}
    return gateway_factory(SimState.from_dict(state))


def test_failure_4_rule_removed_after_a_partial_fill_keeps_a_stop_and_target_for_the_fill(
    chunked_gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    gateway = chunked_gateway
    state = tmp_path / "state"
    rules = bracket_rules(tmp_path / "rules", gateway)
    assert apply_in_process(rules, state_dir=state).code == 0
    gateway.sim.control.set_price("AAPL", 98.5)
    gateway.sim.control.set_price("AAPL", 100.0)
    assert gateway.positions().get("AAPL") == 30

    bracket_rules(rules, gateway, present=False)
    outcome = apply_in_process(rules, state_dir=state)
    assert outcome.code == 0, outcome.out + outcome.err
    assert "orphaned protection" in outcome.out

    entry = [o for o in gateway.sim.snapshot().orders if o.order_ref.endswith(":entry")]
    assert [(o.status, o.filled) for o in entry] == [("Cancelled", 30)]
    assert_protected(gateway, 30)
    legs = working_legs(gateway)
    assert legs["stop"][0].parent_id == 0 and legs["target"][0].parent_id == 0
    assert legs["stop"][0].oca_group == legs["target"][0].oca_group != ""
    assert legs["stop"][0].order_ref == f"tctl:{RULE}:{entry[0].order_ref.split(':')[2]}-kept:stop"
    again = apply_in_process(rules, state_dir=state)
    assert "Nothing to send." in again.out, again.out
    assert_protected(gateway, 30)


def test_release_cancels_an_orphaned_protection_and_leaves_the_position(
    gateway: Gateway,
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "state"
    rules = bracket_rules(tmp_path / "rules", gateway)
    enter_and_fill(gateway, apply_in_process, rules, state)
    bracket_rules(rules, gateway, present=False)
    assert "orphaned protection" in apply_in_process(rules, state_dir=state).out
    assert_protected(gateway, 100)

    capsys.readouterr()
    assert main(["release", RULE, "--state-dir", str(state)]) == 0
    assert "the position itself is left alone" in capsys.readouterr().out
    outcome = apply_in_process(rules, state_dir=state)

    assert outcome.code == 0, outcome.out + outcome.err
    assert "released by `tradectl release aapl-dip`" in outcome.out
    assert working_legs(gateway) == {}
    assert gateway.positions() == {"AAPL": 100}
    assert "Nothing to send." in apply_in_process(rules, state_dir=state).out
    bracket_rules(rules, gateway)
    assert "Nothing to send." in apply_in_process(rules, state_dir=state).out
    assert entries_placed(gateway) == 1
