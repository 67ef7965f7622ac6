"""Account snapshots for `tradectl plan --observed`: short forms, defaults, time zones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tradectl.observed_file import ObservedFileError, read_snapshot

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def test_short_forms_defaults_and_naive_times_in_utc(tmp_path: Path) -> None:
    path = tmp_path / "observed.json"
    path.write_text(
        """{
          "as_of": "2026-11-25T15:30:00",
          "account_id": "DU1234567", "net_liquidation": 1000, "cash": 500,
          "positions": {"AAPL": 3, "MSFT": {"quantity": -2, "average_cost": 400}},
          "quotes": {"AAPL": 190.5, "MSFT": {"last": 401, "time": "2026-11-25T15:29:00"}},
          "contracts": {"AAPL": {"min_tick": 0.01}},
          "entry_fills": [{"rule": "dip", "generation": "g1", "quantity": 40,
                           "average_price": 149.8}],
          "exit_fills": [{"rule": "dip", "generation": "g1", "quantity": 10}],
          "in_flight": ["tctl:core:g:AAPL.abc123"]
        }"""
    )
    snapshot = read_snapshot(path, NOW)
    observed = snapshot.observed
    assert snapshot.as_of == datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
    assert observed.position("AAPL") == 3 and observed.position("MSFT") == -2
    assert observed.quotes["AAPL"].time == snapshot.as_of
    assert observed.quotes["MSFT"].time == datetime(2026, 11, 25, 15, 29, tzinfo=UTC)
    assert observed.contracts["AAPL"].lot_size == 1
    assert observed.day_start_nav == 1000 and observed.buying_power == 500
    assert observed.entry_fills == {("dip", "g1"): 40}
    assert observed.entry_fill_prices == {("dip", "g1"): 149.8}
    assert observed.exit_fills == {("dip", "g1"): 10}
    assert observed.in_flight == frozenset({"tctl:core:g:AAPL.abc123"})
    assert observed.allocations_due and not observed.halted


def test_without_as_of_the_snapshot_is_taken_now(tmp_path: Path) -> None:
    path = tmp_path / "observed.yaml"
    path.write_text("account_id: DU1234567\nnet_liquidation: 1\ncash: 1\nquotes: {AAPL: 1}\n")
    snapshot = read_snapshot(path, NOW)
    assert snapshot.as_of == NOW
    assert snapshot.observed.quotes["AAPL"].time == NOW


def test_every_problem_is_named_with_its_field(tmp_path: Path) -> None:
    path = tmp_path / "observed.yaml"
    path.write_text(
        "account_id: DU1234567\nnet_liquidation: 1\ncash: 1\n"
        "contracts: {AAPL: {min_tick: 0}}\n"
        "working_orders: [{order_id: 1, symbol: AAPL, action: HOLD, order_type: LMT,"
        " total_quantity: 1}]\n"
    )
    with pytest.raises(ObservedFileError) as caught:
        read_snapshot(path, NOW)
    message = str(caught.value)
    assert f"{path}:4:30: contracts.AAPL.min_tick: must be greater than 0" in message
    assert f"{path}:5:54: working_orders[0].action: must be 'BUY' or 'SELL'" in message
    assert "Input should" not in message and "http" not in message


def test_a_binary_file_and_a_typo_are_reported_like_validate_does(tmp_path: Path) -> None:
    path = tmp_path / "observed.yaml"
    path.write_bytes(b"account_id: DU1\n\xd0\x00\xff binary")
    with pytest.raises(ObservedFileError, match=r":2:1: not UTF-8: byte 0xd0"):
        read_snapshot(path, NOW)
    path.write_text("account_id: DU1234567\nnet_liquidation: 1\ncash: 1\nquote: {}\n")
    with pytest.raises(ObservedFileError) as caught:
        read_snapshot(path, NOW)
    assert str(caught.value) == f"{path}:4:1: quote: unknown key 'quote'; did you mean 'quotes'?"


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ObservedFileError, match=r"absent\.yaml:1:1: cannot read the file"):
        read_snapshot(tmp_path / "absent.yaml", NOW)


def test_currencies_and_market_rules_in_a_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "observed.yaml"
    path.write_text(
        "account_id: DU1234567\nnet_liquidation: 100000\ncash: 100000\n"
        "base_currency: EUR\ncash_balances: {EUR: 90000, USD: 11600}\n"
        "exchange_rates: {USD: 0.862069}\nquotes: {SAP: 205}\n"
        "contracts: {SAP: {min_tick: 0.001, currency: EUR,"
        " price_bands: [[0, 0.001], [100, 0.05], [200, 0.1]]}}\n"
    )
    observed = read_snapshot(path, NOW).observed
    assert observed.base_currency == "EUR"
    assert observed.cash_balances == {"EUR": 90_000, "USD": 11_600}
    assert observed.exchange_rates == {"USD": 0.862069}
    sap = observed.contracts["SAP"]
    assert sap.currency == "EUR" and sap.price_magnifier == 1
    assert sap.increments.round(205.23, "down") == 205.2
