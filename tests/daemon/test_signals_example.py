"""examples/signals run as its README says, against the simulated gateway: the strategy writes
its signal, the daemon trades it. Checked from the sim's own positions and its wire log."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon.e2e_support import DaemonProcess, Wire, wait_until
from tests.daemon.test_e2e import assert_nothing_sent_twice
from tradectl.sim import SimThread

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "signals"
SIGNAL_ON = "2026-09-15"
SIGNAL_OFF = "2026-10-20"


def strategy(as_of: str, out: Path) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "strategy.py"), "--as-of", as_of, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def aapl(sim: SimThread) -> float:
    held = sim.snapshot().positions.get("AAPL")
    return 0.0 if held is None else held.quantity


def test_signal_on_buys_signal_off_sells_and_nothing_is_doubled(
    tmp_path: Path, sim: SimThread
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(EXAMPLE / "rules", rules, ignore=shutil.ignore_patterns("signals"))
    (rules / "gateway.yaml").write_text(
        f"version: 1\ngateway: {{host: 127.0.0.1, port: {sim.port}, client_id: 17}}\n"
    )
    targets = rules / "signals" / "momentum.csv"
    assert "signal OFF" in strategy("2026-08-28", targets)
    daemon = DaemonProcess(rules, tmp_path / "state", tmp_path / "tradectl.log").start()
    try:
        daemon.wait_message("first sync complete", timeout=30)
        wire = Wire(tmp_path / "wire.jsonl")
        assert aapl(sim) == 0

        assert "signal ON" in strategy(SIGNAL_ON, targets)
        wait_until(lambda: aapl(sim) == 100, 30, "the position after the signal turned on")

        assert "signal ON" in strategy("2026-09-25", targets)
        assert "signal OFF" in strategy(SIGNAL_OFF, targets)
        wait_until(lambda: aapl(sim) == 0, 30, "the position sold after the signal turned off")
        assert daemon.stop()[0] == 0
    finally:
        daemon.kill()

    orders = [(o["action"], o["totalQuantity"], o["orderRef"]) for o in wire.placed()]
    assert [(action, quantity) for action, quantity, _ in orders] == [
        ("BUY", 100.0),
        ("SELL", 100.0),
    ]
    assert all(ref.startswith("tctl:momentum:") for _, _, ref in orders)
    assert_nothing_sent_twice(wire)
