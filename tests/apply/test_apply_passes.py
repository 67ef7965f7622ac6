"""`tradectl apply` finishes the job or says why not: passes until nothing more can be done now,
a progress line per pass, what remains, a machine-readable result, and clean terminal output."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tradectl.sim import SimState

from .conftest import DEFAULT_PRICES, Gateway, Outcome, write_rules

pytestmark = pytest.mark.e2e

SLICED = {
    "core": {
        "capital": {"fraction_of_nav": 0.95},
        "drift": {"absolute": 0.001},
        "min_trade_value": 0,
        "order": {"type": "limit", "offset_bps": 10},
        # 0.3 x 950k at 500 is 570 SPY: more than max_order_value 50k, so sent in slices.
        "targets": {"SPY": 0.3},
    }
}


def slow_fills_state() -> SimState:
    """Orders fill one share at a time, once an hour: a slice stays working."""
    return SimState.from_dict(
        {
            "account": {"id": "DU0000001", "cash": 1_000_000},
            "symbols": {symbol: {"price": price} for symbol, price in DEFAULT_PRICES.items()},
            "market": {"tick_interval": 3600},
            "matching": {"fill_chunk": 1},
        }
    )


def test_one_apply_sends_every_slice_and_a_json_result_says_so(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules", gateway, allocations=SLICED)
    outcome = apply_in_process(rules, "--json")
    assert outcome.code == 0, outcome.err
    result = json.loads(outcome.out)
    placed = gateway.messages("placeOrder")
    assert result["converged"] is True
    assert result["sent"] == len(placed) >= 2
    assert len(result["passes"]) >= 2  # the slices went out one pass after the other
    assert all(p["acknowledged"] == p["sent"] for p in result["passes"])
    assert abs(gateway.positions()["SPY"] - 570) <= 1  # NAV moved by the commissions
    assert "Converged after" in outcome.err  # the human report goes to stderr with --json


def test_slices_waiting_for_fills_are_named_as_what_remains(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
) -> None:
    gateway = gateway_factory(slow_fills_state())
    rules = write_rules(tmp_path / "rules", gateway, allocations=SLICED)
    outcome = apply_in_process(rules)
    assert outcome.code == 0, outcome.out + outcome.err
    assert "remains: 1 slice(s) of allocations.core remain (SPY): run again after fills" in (
        outcome.out
    )
    assert "Done." not in outcome.out and "Converged" not in outcome.out
    assert len(gateway.messages("placeOrder")) == 1


def test_a_limit_that_blocks_is_named_as_what_remains(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    rules = write_rules(
        tmp_path / "rules",
        gateway,
        risk={"max_order_value": 1_000},
        brackets={
            "spy-dip": {
                "symbol": "SPY",
                "side": "BUY",
                "quantity": 10,
                "entry": {"market": True},
                "stop_loss": {"percent": 2},
                "take_profit": {"percent": 4},
            }
        },
    )
    outcome = apply_in_process(rules)
    assert outcome.code == 0, outcome.out
    assert "Nothing to send (3 blocked)." in outcome.out
    assert "remains: brackets.spy-dip (SPY): blocked: risk.max_order_value" in outcome.out
    assert gateway.messages("placeOrder") == []


PROMPT = b"Type yes to confirm: "


def _read_until(fd: int, text: bytes, seen: bytearray, timeout: float) -> None:
    """Read the terminal into ``seen`` until ``text`` is in it, or until the second prompt
    when ``text`` is two prompts."""
    deadline = time.monotonic() + timeout
    while (seen.count(PROMPT) < 2) if text == PROMPT * 2 else (text not in seen):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{text!r} not seen; output so far:\n{seen.decode()}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"{text!r} not seen before EOF:\n{seen.decode()}")
            seen += chunk


def test_on_a_terminal_each_pass_is_confirmed_and_the_output_has_no_glitches(
    gateway: Gateway, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path / "rules", gateway, allocations=SLICED)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "tradectl", "apply", str(rules), "--state-dir", str(tmp_path / "s")],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "COLUMNS": "200"},
    )
    os.close(terminal)
    seen = bytearray()
    try:
        _read_until(controller, PROMPT, seen, 60)
        os.write(controller, b"yes\n")
        _read_until(controller, b"pass 1: sent", seen, 60)
        while seen.count(PROMPT) < 2:
            _read_until(controller, PROMPT * 2, seen, 60)
        os.write(controller, b"no\n")
        _read_until(controller, b"records: ", seen, 60)
        assert process.wait(60) == 0
        try:
            while chunk := os.read(controller, 65536):
                seen += chunk
        except OSError:
            pass
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    text = seen.decode().replace("\r\n", "\n")
    lines = [line.split("\r")[-1] for line in text.split("\n")]
    assert any(line.startswith("pass 1: sent ") for line in lines), text
    assert "rejected 0records" not in text
    not_confirmed = text.index("Not confirmed: pass 2 not sent.")
    assert not_confirmed < text.index("records: ")
    assert len(gateway.messages("placeOrder")) == 1


def test_a_failure_before_any_pass_still_gives_a_json_result(
    apply_in_process: Callable[..., Outcome], tmp_path: Path, reserved_port: int
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "rules.yaml").write_text(
        "version: 1\naccount: {id: DU0000001}\n"
        f"gateway: {{host: 127.0.0.1, port: {reserved_port}, client_id: 17}}\n"
        "risk: {max_order_value: 1000, max_position_fraction: 0.1,\n"
        "       max_risk_per_trade_fraction: 0.01, max_daily_loss_fraction: 0.05}\n"
    )
    outcome = apply_in_process(rules, "--json")
    assert outcome.code == 1
    result = json.loads(outcome.out)
    assert result["exit_code"] == 1
    assert "cannot connect to the IB gateway" in result["error"]
    assert "cannot connect to the IB gateway" in outcome.err
