"""The daemon and StrictModes: a rule change someone else could have written is refused like an
invalid file (the last good rule set stays, status shows DEGRADED, nothing is sent); loose rules
at start are fatal."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.daemon.e2e_support import ACCOUNT_RULES, DaemonProcess, Wire, ladder, wait_until
from tradectl.sim import SimThread

from .support import ladder_rules

pytestmark = pytest.mark.e2e


def limits(wire: Wire) -> set[float]:
    return {float(order["lmtPrice"]) for order in wire.placed()}


def replace_with_mode(path: Path, text: str, mode: int) -> None:
    """Save like an editor, the new file already at ``mode`` when it appears."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    temp.chmod(mode)
    os.replace(temp, path)


def test_a_loose_rule_change_keeps_the_last_good_set_and_sends_nothing(
    tmp_path: Path, sim: SimThread
) -> None:
    wire = Wire(tmp_path / "wire.jsonl")
    rules = ladder_rules(tmp_path, sim.port)
    scales = rules / "rules.yaml"
    daemon = DaemonProcess(rules, tmp_path / "state", tmp_path / "tradectl.log").start()
    try:
        wire.wait_placed(lambda placed: {200.0, 199.0} <= limits(wire), 60, "the ladder")
        actions = wire.order_actions()
        mark = len(daemon.lines())
        replace_with_mode(scales, "version: 1\nscales:\n" + ladder("dip", "AAPL", 180), 0o666)
        daemon.wait_message("rule change rejected", timeout=30, after=mark)
        errors = [line["message"] for line in daemon.lines()[mark:] if line["level"] == "error"]
        assert any(f"chmod o-w {scales.resolve()}" in error for error in errors), errors
        status = daemon.status()
        assert status["rules"]["health"] == "degraded"
        assert any("writable by every user" in error for error in status["rules"]["errors"])
        assert wire.order_actions() == actions

        scales.chmod(0o644)
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        wire.wait_placed(lambda placed: {180.0, 179.0} <= limits(wire), 30, "the fixed edit")
        wait_until(lambda: daemon.status()["rules"]["health"] == "ok", 30, "healthy rules")
        assert daemon.stop(30)[0] == 0
    finally:
        daemon.kill()


def test_loose_rules_at_start_are_fatal(tmp_path: Path, sim: SimThread) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "account.yaml").write_text(ACCOUNT_RULES.format(port=sim.port, every="1h"))
    rules.chmod(0o777)
    daemon = DaemonProcess(rules, tmp_path / "state", tmp_path / "tradectl.log").start()
    try:
        assert daemon.process is not None
        assert daemon.process.wait(60) == 1
        text = " ".join(line["message"] for line in daemon.lines())
        assert f"chmod o-w {rules.resolve()}" in text
        assert Wire(tmp_path / "wire.jsonl").order_actions() == 0
    finally:
        daemon.kill()
