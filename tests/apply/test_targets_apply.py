"""`tradectl apply` and `tradectl plan` with an allocation fed by a targets file, against the
simulated gateway: the turnover hold, `tradectl accept` on the journal, and staleness."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tradectl.cli import main

from .conftest import Gateway, Outcome, write_rules

pytestmark = pytest.mark.e2e


def signal_rules(tmp_path: Path, gateway: Gateway, max_turnover: float = 0.5) -> Path:
    return write_rules(
        tmp_path / "rules",
        gateway,
        allocations={
            "signal": {
                "capital": {"amount": 50_000},
                "targets_from": {
                    "file": "signals/momentum.csv",
                    "max_age": "1h",
                    "max_turnover": max_turnover,
                },
            }
        },
    )


def write_targets(rules: Path, text: str) -> Path:
    path = rules / "signals" / "momentum.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_a_jump_is_held_until_accepted_on_the_journal(
    tmp_path: Path,
    gateway: Gateway,
    apply_in_process: Callable[..., Outcome],
    capsys: pytest.CaptureFixture[str],
) -> None:
    rules = signal_rules(tmp_path, gateway)
    write_targets(rules, "symbol,shares\nAAPL,100\n")

    held = apply_in_process(rules)

    assert held.code == 0, held.out + held.err
    assert "allocations.signal: HELD" in held.out
    assert "would turn over 100% of the allocation (from nothing (first file))" in held.out
    assert gateway.messages("placeOrder") == []

    state = str(tmp_path / "state")
    capsys.readouterr()
    assert main(["status", "--state-dir", state]) == 3
    assert "Targets file held for allocations.signal: new targets file" in capsys.readouterr().out
    assert main(["accept", "signal", "--state-dir", state]) == 0
    accepted = capsys.readouterr().out
    assert "accepted" in accepted and "allocations.signal" in accepted
    assert main(["accept", "signal", "--state-dir", state]) == 1
    assert "no targets file held for confirmation" in capsys.readouterr().err

    traded = apply_in_process(rules)
    assert traded.code == 0, traded.out + traded.err
    assert gateway.positions() == {"AAPL": 100}
    placed = gateway.messages("placeOrder")
    assert [(m["fields"]["action"], m["fields"]["totalQuantity"]) for m in placed] == [
        ("BUY", 100.0)
    ]

    # Within max_turnover (10 of 110 shares): traded without asking.
    write_targets(rules, "symbol,shares\nAAPL,110\n")
    assert apply_in_process(rules).code == 0
    assert gateway.positions() == {"AAPL": 110}

    # Selling everything is a jump again: held, nothing sent.
    write_targets(rules, "symbol,shares\nAAPL,0\n")
    again = apply_in_process(rules)
    assert "allocations.signal: HELD" in again.out
    assert gateway.positions() == {"AAPL": 110}
    assert len(gateway.messages("placeOrder")) == 2


def test_raising_max_turnover_accepts_the_jump(
    tmp_path: Path, gateway: Gateway, apply_in_process: Callable[..., Outcome]
) -> None:
    rules = signal_rules(tmp_path, gateway)
    write_targets(rules, "symbol,weight\nAAPL,0.2\n")
    assert "HELD" in apply_in_process(rules).out

    signal_rules(tmp_path, gateway, max_turnover=1.0)
    outcome = apply_in_process(rules)

    assert outcome.code == 0, outcome.out
    # 0.2 x 50,000 at 100 = 100 shares.
    assert gateway.positions() == {"AAPL": 100}


def test_a_stale_file_holds_and_plan_says_why(
    tmp_path: Path, gateway: Gateway, apply_in_process: Callable[..., Outcome]
) -> None:
    rules = signal_rules(tmp_path, gateway, max_turnover=1.0)
    path = write_targets(rules, "symbol,shares\nAAPL,100\n")
    two_hours_ago = time.time() - 7200
    os.utime(path, (two_hours_ago, two_hours_ago))

    outcome = apply_in_process(rules)

    assert "allocations.signal: STALE" in outcome.out
    assert "modification time" in outcome.out and "more than max_age 1h00m" in outcome.out
    assert gateway.messages("placeOrder") == []


def test_an_invalid_file_sends_nothing_and_names_row_and_column(
    tmp_path: Path, gateway: Gateway, apply_in_process: Callable[..., Outcome]
) -> None:
    rules = signal_rules(tmp_path, gateway, max_turnover=1.0)
    write_targets(rules, "symbol,shares\nAAPL,100\nMSFT,many\n")

    outcome = apply_in_process(rules)

    assert "allocations.signal: INVALID" in outcome.out
    assert "signals/momentum.csv:3:2: 'many' is not a whole number of shares" in outcome.out
    assert gateway.messages("placeOrder") == []
