"""Instruments end to end (docs/rules.md, "Instruments"): through the real ib_insync client
over loopback against the simulated gateway's listings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tradectl.cli import main
from tradectl.sim import SimState

from .conftest import ACCOUNT, Gateway, Outcome, write_rules

pytestmark = pytest.mark.e2e

ALLOCATION_ORDER = {"type": "market"}


def listings_state(*, positions: list[dict[str, Any]] | None = None) -> SimState:
    return SimState.from_dict(
        {
            "account": {"id": ACCOUNT, "cash": 1_000_000},
            "positions": positions or [],
            "symbols": {
                "AAPL": {"price": 100.0, "con_id": 265598},
                "SHOP": {"price": 160.0, "con_id": 800000101, "exchange": "NASDAQ"},
                "SHOP.TSX": {
                    "symbol": "SHOP",
                    "price": 225.0,
                    "con_id": 800000102,
                    "exchange": "TSX",
                    "currency": "CAD",
                },
                "USD.CAD": {
                    "symbol": "USD",
                    "sec_type": "CASH",
                    "currency": "CAD",
                    "price": 1.40,
                    "con_id": 15016062,
                    "exchange": "IDEALPRO",
                },
                "BRK B": {"price": 480.0, "con_id": 800000106, "exchange": "NYSE"},
                # One symbol, two US listings in the same currency: SMART cannot tell them apart.
                "DUAL": {"price": 50.0, "con_id": 800000201, "exchange": "NYSE"},
                "DUAL.Q": {
                    "symbol": "DUAL",
                    "price": 50.0,
                    "con_id": 800000202,
                    "exchange": "NASDAQ",
                },
            },
        }
    )


def allocation(targets: Any, amount: float = 100_000) -> dict[str, Any]:
    return {"core": {"capital": {"amount": amount}, "order": ALLOCATION_ORDER, "targets": targets}}


def test_brk_b_is_traded_under_its_ib_symbol(
    tmp_path: Path,
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
) -> None:
    gateway = gateway_factory(listings_state())
    rules = write_rules(tmp_path / "rules", gateway, allocations=allocation({"BRK B": 0.3}))

    outcome = apply_in_process(rules)

    assert outcome.code == 0, outcome.out + outcome.err
    placed = gateway.messages("placeOrder")
    assert [
        (m["fields"]["contract"]["symbol"], m["fields"]["contract"]["conId"]) for m in placed
    ] == [("BRK B", 800000106)]
    assert gateway.positions() == {"BRK B": 62}  # 30_000 / 480, rounded down


def test_a_holding_in_the_other_listing_neither_counts_nor_is_sold(
    tmp_path: Path,
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
) -> None:
    gateway = gateway_factory(
        listings_state(positions=[{"symbol": "SHOP.TSX", "quantity": 100, "avg_cost": 200.0}])
    )
    rules = write_rules(tmp_path / "rules", gateway, allocations=allocation({"SHOP": 0.32}))

    first = apply_in_process(rules)
    second = apply_in_process(rules)

    assert first.code == 0 and second.code == 0, first.out + first.err + second.out
    # The full US target: the 100 CAD shares do not reduce it, and nothing sells them.
    assert gateway.positions() == {"SHOP": 200, "SHOP.TSX": 100}
    placed = gateway.messages("placeOrder")
    assert [(m["fields"]["action"], m["fields"]["contract"]["conId"]) for m in placed] == [
        ("BUY", 800000101)
    ]


def test_an_ambiguous_symbol_is_refused_with_its_candidates(
    tmp_path: Path,
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = gateway_factory(listings_state())
    rules = write_rules(
        tmp_path / "rules", gateway, allocations=allocation({"DUAL": 0.2, "AAPL": 0.2})
    )

    validated = main(["validate", str(rules), "--online"])
    validate_out = capsys.readouterr().out
    planned = main(["plan", str(rules), "--state-dir", str(tmp_path / "plan-state")])
    plan_err = capsys.readouterr().err
    as_json = main(["plan", str(rules), "--json", "--state-dir", str(tmp_path / "plan-state")])
    plan_json = json.loads(capsys.readouterr().out)
    applied = apply_in_process(rules)

    assert validated == 1
    expected = (
        "DUAL: ambiguous: 2 contracts match DUAL on SMART in USD; name one by "
        "primary_exchange, currency or con_id: conId 800000201 DUAL on NYSE in USD"
    )
    assert f"error: {expected}" in validate_out
    assert "conId 800000202 DUAL on NASDAQ in USD" in validate_out
    assert planned == 2
    assert expected in plan_err and "conId 800000202 DUAL on NASDAQ in USD" in plan_err
    assert as_json == 2
    [error] = plan_json["instrument_errors"]
    assert error.startswith(expected) and "conId 800000202 DUAL on NASDAQ in USD" in error
    assert [intent["symbol"] for intent in plan_json["intents"]] == ["AAPL"]
    # The other target still trades; DUAL never does.
    assert applied.code == 0, applied.out + applied.err
    assert [m["fields"]["contract"]["symbol"] for m in gateway.messages("placeOrder")] == ["AAPL"]
    assert gateway.positions() == {"AAPL": 200}


def test_the_full_form_names_one_listing_of_an_ambiguous_symbol(
    tmp_path: Path,
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = gateway_factory(listings_state())
    targets = [{"symbol": "DUAL", "primary_exchange": "NASDAQ", "weight": 0.2}]
    rules = write_rules(tmp_path / "rules", gateway, allocations=allocation(targets))

    assert main(["validate", str(rules), "--online"]) == 0
    assert (
        "instrument   DUAL@SMART/NASDAQ:USD: conId 800000202 via SMART (primary NASDAQ) in USD"
        in capsys.readouterr().out.splitlines()
    )
    applied = apply_in_process(rules)

    assert applied.code == 0, applied.out + applied.err
    assert [m["fields"]["contract"]["conId"] for m in gateway.messages("placeOrder")] == [800000202]
    assert gateway.positions() == {"DUAL.Q": 400}


def test_the_gallery_example_resolves_every_instrument_on_the_sim(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "instruments"

    code = main(["validate", str(example), "--sim"])

    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert (
        "instrument   MSFT@SMART/NASDAQ:USD: conId 272093 via SMART (primary NASDAQ) in USD"
        in lines
    )
    assert (
        "instrument   conid:320227571: conId 320227571 via SMART (primary NASDAQ) in USD" in lines
    )
    assert len([line for line in lines if line.startswith("instrument   ")]) == 5
    assert "error:" not in out
