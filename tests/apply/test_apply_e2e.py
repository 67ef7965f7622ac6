"""`tradectl apply` end to end: the real ib_insync client against the simulated gateway."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tradectl.journal import Journal

from .conftest import CLIENT_ID, Gateway, Outcome, place_manual_order, write_rules

pytestmark = pytest.mark.e2e

TARGETS = {"AAPL": 0.2, "MSFT": 0.2, "SPY": 0.3}


def allocation(targets: dict[str, float], drift: float = 0.001) -> dict[str, object]:
    return {
        "core": {
            "capital": {"fraction_of_nav": 0.95},
            "drift": {"absolute": drift},
            "min_trade_value": 0,
            "order": {"type": "limit", "offset_bps": 10},
            "targets": targets,
        }
    }


def converge(apply: Callable[..., Outcome], rules: Path, passes: int = 10) -> list[Outcome]:
    outcomes = []
    for _ in range(passes):
        outcome = apply(rules)
        outcomes.append(outcome)
        assert outcome.code == 0, outcome.out + outcome.err
        if "Nothing to send." in outcome.out:
            return outcomes
    raise AssertionError(f"no convergence after {passes} passes:\n{outcomes[-1].out}")


def test_allocation_from_cash_converges_and_a_second_apply_sends_nothing(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules", gateway, allocations=allocation(TARGETS, drift=0.00001))
    first = apply_in_process(rules)
    # 0.3 x 950k at 500 is 570 SPY shares: more than max_order_value, so sliced over passes,
    # which one apply runs one after the other, each after the previous slices filled.
    assert first.code == 0, first.out + first.err
    assert "pass 1: sent 3 / acknowledged 3" in first.out
    assert "pass 3: sent" in first.out
    assert "Converged after" in first.out and "Done." not in first.out
    snapshot = gateway.sim.snapshot()
    capital = 0.95 * snapshot.net_liquidation
    prices = {"AAPL": 100.0, "MSFT": 200.0, "SPY": 500.0}
    for symbol, weight in TARGETS.items():
        desired = math.floor(weight * capital / prices[symbol])
        assert abs(snapshot.positions[symbol].quantity - desired) <= 1, symbol
    placed = gateway.messages("placeOrder")
    refs = gateway.placed_refs()
    assert len(refs) == len(set(refs)), "an orderRef was sent twice"
    assert all(line["fields"]["account"] == "DU0000001" for line in placed)
    assert all(ref.startswith("tctl:core:") for ref in refs)

    again = apply_in_process(rules)
    assert again.code == 0 and "Nothing to send." in again.out
    assert len(gateway.messages("placeOrder")) == len(placed)
    assert gateway.messages("cancelOrder") == []
    # apply waits for acknowledgements, not fills: a fill that lands after the first apply's
    # export is journaled by the next pass (its resync reads the day's executions) and exported.
    exported = pq.read_table(tmp_path / "records" / "fills").column("exec_id").to_pylist()
    assert len(exported) == len(set(exported)) == len(snapshot.executions)


def test_a_manual_order_from_another_client_is_never_touched(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    manual_id = place_manual_order(gateway, "AAPL", "BUY", 10, 50.0)
    rules = write_rules(tmp_path / "rules", gateway, allocations=allocation({"AAPL": 0.2}))
    converge(apply_in_process, rules)
    ours = [line for line in gateway.messages() if line["client_id"] == CLIENT_ID]
    touched = [
        line
        for line in ours
        if line["msg"] in ("placeOrder", "cancelOrder")
        and line["fields"].get("orderId") == manual_id
    ]
    assert touched == []
    open_orders = gateway.sim.snapshot().open_orders
    assert [(o.client_id, o.order_id, o.order_ref) for o in open_orders] == [(99, manual_id, "")]


def test_the_journal_records_intents_orders_and_executions(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules", gateway, allocations=allocation({"AAPL": 0.02}))
    outcome = apply_in_process(rules)
    assert outcome.code == 0, outcome.out
    # apply waits for the acknowledgement; the fill may come with it or just after.
    assert "sent 1 / acknowledged 1 / filled " in outcome.out
    details_before = len(gateway.messages("reqContractDetails"))
    # The next pass reads executions and completed orders first and settles the journal.
    assert apply_in_process(rules).code == 0
    assert len(gateway.messages("reqContractDetails")) == details_before
    with Journal.open(tmp_path / "state") as journal:
        (intent,) = journal.intents()
        assert (intent.state, intent.symbol, intent.perm_id != 0) == ("filled", "AAPL", True)
        executions = journal.executions()
        assert sum(ex.shares for ex in executions) == intent.quantity
        assert {ex.order_ref for ex in executions} == {intent.order_ref}
        assert journal.commission(executions[0].exec_id) is not None
        assert journal.order_id_high_water(CLIENT_ID) == intent.order_id
        # The contract cache spared the second run a qualification.
        assert set(journal.cached_contracts(["AAPL"])) == {"AAPL"}


def test_rejections_are_shown_with_ibs_code_and_backed_off(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    gateway.sim.control.reject_next_orders(1)
    rules = write_rules(tmp_path / "rules", gateway, allocations=allocation({"AAPL": 0.02}))
    first = apply_in_process(rules)
    assert first.code == 1
    assert "rejected 1" in first.out
    assert "IB error 201" in first.out
    second = apply_in_process(rules)
    assert "rejected by IB (IB 201" in second.out
    assert "Nothing to send (1 blocked)." in second.out
    assert len(gateway.messages("placeOrder")) == 1


def standing_rules(stop: float = 45.0) -> dict[str, object]:
    return {
        "brackets": {
            "nvda-pullback": {
                "symbol": "NVDA",
                "side": "BUY",
                "quantity": 100,
                "entry": {"limit": 48.0},
                "stop_loss": {"price": stop},
                "take_profit": {"price": 60.0},
            }
        },
        "scales": {
            "amzn-ladder": {
                "symbol": "AMZN",
                "side": "BUY",
                "total_quantity": 50,
                "levels": 3,
                "start_price": 210.0,
                "step": 2.5,
            }
        },
    }


def test_a_bracket_and_a_scale_land_with_the_right_legs_and_edits_modify_in_place(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules", gateway, **standing_rules())
    outcome = apply_in_process(rules)
    assert outcome.code == 0, outcome.out + outcome.err
    placed = {
        line["fields"]["orderRef"].rsplit(":", 1)[1]: line["fields"]
        for line in gateway.messages("placeOrder")
    }
    assert sorted(placed) == ["L1", "L2", "L3", "entry", "stop", "target"]
    entry, stop, target = placed["entry"], placed["stop"], placed["target"]
    assert (entry["orderType"], entry["lmtPrice"], entry["transmit"]) == ("LMT", 48.0, False)
    assert (stop["orderType"], stop["auxPrice"], stop["transmit"]) == ("STP", 45.0, False)
    assert (target["orderType"], target["lmtPrice"], target["transmit"]) == ("LMT", 60.0, True)
    assert stop["parentId"] == target["parentId"] == entry["orderId"]
    assert stop["ocaGroup"] and stop["ocaGroup"] == target["ocaGroup"]
    assert all(order["account"] == "DU0000001" for order in placed.values())
    assert all(order["orderRef"].startswith("tctl:") for order in placed.values())
    assert [placed[level]["totalQuantity"] for level in ("L1", "L2", "L3")] == [17, 17, 16]
    assert [placed[level]["lmtPrice"] for level in ("L1", "L2", "L3")] == [210.0, 207.5, 205.0]
    working = {o.order_ref for o in gateway.sim.snapshot().open_orders}
    assert working == {order["orderRef"] for order in placed.values()}

    again = apply_in_process(rules)
    assert again.code == 0 and "Nothing to send." in again.out
    assert len(gateway.messages("placeOrder")) == 6

    write_rules(tmp_path / "rules", gateway, **standing_rules(stop=44.0))
    edited = apply_in_process(rules)
    assert edited.code == 0, edited.out
    new = gateway.messages("placeOrder")[6:]
    ids = {order["orderId"] for order in placed.values()}
    assert new and all(line["fields"]["orderId"] in ids for line in new), "edits must modify"
    assert gateway.messages("cancelOrder") == []


def test_planning_against_the_gateway_is_read_only(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    from tradectl.runtime.session import plan_against_gateway
    from tradectl.schemas.loader import load_rule_set

    rules_dir = write_rules(tmp_path / "rules", gateway, allocations=allocation({"AAPL": 0.04}))
    rules = load_rule_set([rules_dir]).rule_set
    assert rules is not None
    result = plan_against_gateway(rules, state_dir=tmp_path / "state")
    assert [intent.symbol for intent in result.plan.actionable] == ["AAPL"]
    assert gateway.messages("placeOrder") == []
    assert not (tmp_path / "state").exists()
    assert apply_in_process(rules_dir).code == 0
    # Beside a process that holds the journal (a running daemon), planning still works.
    with Journal.open(tmp_path / "state"):
        result = plan_against_gateway(rules, state_dir=tmp_path / "state")
    assert result.plan.actionable == ()


@pytest.mark.parametrize(("answer", "sent"), [("no", 0), ("yes", 1)])
def test_on_a_terminal_apply_sends_only_after_yes(
    answer: str,
    sent: int,
    gateway: Gateway,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from tradectl.cli import main

    rules = write_rules(tmp_path / "rules", gateway, allocations=allocation({"AAPL": 0.04}))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: answer)
    code = main(["apply", str(rules), "--state-dir", str(tmp_path / "state")])
    out = capsys.readouterr().out
    assert "allocations.core" in out and "AAPL" in out
    assert len(gateway.messages("placeOrder")) == sent
    assert code == (1 if answer == "no" else 0)
    if answer == "no":
        assert "Not confirmed: nothing sent." in out


def test_plan_reads_the_gateway_read_only_and_exits_2_then_0(
    gateway: Gateway,
    apply_in_process: Callable[..., Outcome],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from tradectl.cli import main

    rules = write_rules(tmp_path / "rules", gateway, allocations=allocation({"AAPL": 0.04}))
    state = str(tmp_path / "state")
    assert main(["plan", str(rules), "--state-dir", state]) == 2
    out = capsys.readouterr().out
    assert "(the gateway, read-only" in out and "allocations.core" in out
    assert gateway.messages("placeOrder") == []
    assert apply_in_process(rules).code == 0
    assert main(["plan", str(rules), "--state-dir", state, "--json"]) == 0
    assert '"intents": []' in capsys.readouterr().out


def test_plan_with_sim_needs_no_gateway(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tradectl.cli import main

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "rules.yaml").write_text(
        "version: 1\n"
        "account: {id: DU0000001}\n"
        "risk: {max_order_value: 50000, max_position_fraction: 0.3,\n"
        "       max_risk_per_trade_fraction: 0.01, max_daily_loss_fraction: 0.05}\n"
        "allocations:\n"
        "  core: {capital: {amount: 20000}, targets: {AAPL: 0.3}}\n"
    )
    assert main(["plan", str(rules), "--sim", "--state-dir", str(tmp_path / "s")]) == 2
    assert "(the simulated gateway" in capsys.readouterr().out


def test_removing_a_rule_cancels_its_orders_and_a_trailing_stop_lands(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    sections = standing_rules()
    bracket = sections["brackets"]["nvda-pullback"]  # type: ignore[index]
    bracket["stop_loss"] = {"trailing_percent": 2.0}
    # The cancels of a removed rule are held in IB's nightly reset (04:45-05:45 UTC by default)
    # like every intent; this test is about the cancels, at any hour the suite runs.
    sections["schedule"] = {"blackouts": []}
    rules = write_rules(tmp_path / "rules", gateway, **sections)
    assert apply_in_process(rules).code == 0
    stop = next(
        line["fields"]
        for line in gateway.messages("placeOrder")
        if line["fields"]["orderRef"].endswith(":stop")
    )
    assert (stop["orderType"], stop["trailingPercent"]) == ("TRAIL", 2.0)
    scale_ids = {
        line["fields"]["orderId"]
        for line in gateway.messages("placeOrder")
        if line["fields"]["orderRef"].startswith("tctl:amzn-ladder:")
    }
    assert len(scale_ids) == 3

    del sections["scales"]
    write_rules(tmp_path / "rules", gateway, **sections)
    removed = apply_in_process(rules)
    assert removed.code == 0, removed.out
    assert {line["fields"]["orderId"] for line in gateway.messages("cancelOrder")} == scale_ids
    assert len(gateway.messages("placeOrder")) == 6
    working = {o.order_ref for o in gateway.sim.snapshot().open_orders}
    assert not any(ref.startswith("tctl:amzn-ladder:") for ref in working)
    with Journal.open(tmp_path / "state") as journal:
        cancels = [intent for intent in journal.intents() if intent.action == "cancel"]
        assert {intent.order_id for intent in cancels} == scale_ids
        assert {intent.state for intent in cancels} == {"cancelled"}
    assert "Nothing to send." in apply_in_process(rules).out


def test_a_plan_confirmed_too_late_is_not_sent(gateway: Gateway, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from tradectl.ib import IbAdapter
    from tradectl.planner.domain import Plan
    from tradectl.runtime.reconcile import reconcile_pass
    from tradectl.runtime.session import connection_settings
    from tradectl.schemas.loader import load_rule_set

    rules_dir = write_rules(tmp_path / "rules", gateway, allocations=allocation({"AAPL": 0.04}))
    rules = load_rule_set([rules_dir]).rule_set
    assert rules is not None
    moments = [datetime.now(UTC)]

    def slow_confirmation(plan: Plan) -> bool:
        moments.append(moments[0] + timedelta(minutes=2))
        return True

    with Journal.open(tmp_path / "state") as journal:
        adapter = IbAdapter(connection_settings(rules, readonly=False), journal)
        adapter.connect()
        try:
            result = reconcile_pass(
                rules,
                adapter,
                journal,
                clock=lambda: moments[-1],
                confirm=slow_confirmation,
                act=True,
                ack_timeout=5,
                trigger="test",
            )
        finally:
            adapter.disconnect()
    assert result.sent == 0
    assert "the plan is older than 60 s" in result.problems[0]
    assert gateway.messages("placeOrder") == []


def test_a_halt_file_in_the_rules_directory_stops_apply_from_sending(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules", gateway, allocations=allocation(TARGETS))
    (rules / "HALT").write_text("maintenance\n")
    outcome = apply_in_process(rules)
    assert "trading is halted" in outcome.err
    assert "halt" in outcome.out
    assert gateway.messages("placeOrder") == []
    (rules / "HALT").unlink()
    converge(apply_in_process, rules)
    assert gateway.messages("placeOrder")


def test_a_journal_of_another_account_is_refused_before_anything_is_sent(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with Journal.open(state) as journal:
        journal.bind_account("DU7654321")
    rules = write_rules(tmp_path / "rules", gateway, allocations=allocation(TARGETS))
    outcome = apply_in_process(rules, state_dir=state)
    assert outcome.code == 1
    assert "journal belongs to account DU7654321, but the rules trade DU0000001" in outcome.err
    assert gateway.messages("placeOrder") == []
