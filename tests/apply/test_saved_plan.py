"""A saved plan, as in Terraform: `tradectl plan --out FILE` saves the plan with fingerprints
of what it was made from; `tradectl apply FILE` sends exactly that plan, or nothing (exit 1)
when the account, its orders or the rules changed in a way that changes it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ib_insync import IB, MarketOrder, Stock

from tradectl.cli import main

from .conftest import Gateway, Outcome, wait_until, write_rules

pytestmark = pytest.mark.e2e

TARGETS = {"AAPL": 0.2, "MSFT": 0.2}


def allocation(targets: dict[str, float]) -> dict[str, object]:
    return {
        "core": {
            "capital": {"fraction_of_nav": 0.5},
            "drift": {"absolute": 0.01},
            "order": {"type": "limit", "offset_bps": 10},
            "targets": targets,
        }
    }


@pytest.fixture
def plan_file(gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A plan of TARGETS saved against the gateway (rules in tmp_path/rules)."""
    rules = write_rules(tmp_path / "rules", gateway, allocations=allocation(TARGETS))
    out = tmp_path / "plan.json"
    assert (
        main(["plan", str(rules), "--state-dir", str(tmp_path / "state"), "--out", str(out)]) == 2
    )
    assert f"Saved the plan to {out}" in capsys.readouterr().out
    return out


def test_apply_sends_exactly_the_saved_plan(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], plan_file: Path
) -> None:
    saved: dict[str, Any] = json.loads(plan_file.read_text())
    refs = sorted(intent["order"]["order_ref"] for intent in saved["intents"])
    assert len(refs) == 2

    outcome = apply_in_process(plan_file)
    assert outcome.code == 0, outcome.out + outcome.err
    assert "Sent the saved plan (1 pass, 2 order action(s) sent)" in outcome.out
    assert sorted(gateway.placed_refs()) == refs

    again = apply_in_process(plan_file)
    assert again.code == 1, "a saved plan is applied once: the account it was made for is gone"
    assert "no longer matches the account (positions and cash changed" in again.err
    assert sorted(gateway.placed_refs()) == refs


def test_a_fill_since_the_plan_was_saved_refuses_it_and_sends_nothing(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], plan_file: Path
) -> None:
    manual = IB()
    manual.connect("127.0.0.1", gateway.sim.port, clientId=99, timeout=10)
    try:
        manual.placeOrder(Stock("AAPL", "SMART", "USD"), MarketOrder("BUY", 300))
        wait_until(lambda: gateway.positions().get("AAPL", 0) == 300)
    finally:
        manual.disconnect()
    placed_before = len(gateway.messages("placeOrder"))

    outcome = apply_in_process(plan_file)
    assert outcome.code == 1
    assert "no longer matches the account (positions and cash changed" in outcome.err
    assert "nothing sent" in outcome.err
    assert len(gateway.messages("placeOrder")) == placed_before


def test_a_rule_edit_since_the_plan_was_saved_refuses_it_and_sends_nothing(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path, plan_file: Path
) -> None:
    write_rules(tmp_path / "rules", gateway, allocations=allocation({"AAPL": 0.3, "MSFT": 0.2}))

    outcome = apply_in_process(plan_file)
    assert outcome.code == 1
    assert "(rules changed since it was saved): nothing sent" in outcome.err
    assert gateway.messages("placeOrder") == []


def test_a_file_that_is_not_a_saved_plan_is_refused_cleanly(
    apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    broken = tmp_path / "plan.json"
    broken.write_text('{"format": "tradectl-plan/1", "rules": ')
    outcome = apply_in_process(broken)
    assert outcome.code == 1
    assert "not a readable saved plan" in outcome.err
