"""The daemon trading a targets file a strategy rewrites: hot reload moves orders on the wire,
a jump waits for `tradectl accept` over the control socket, a broken file sends nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.e2e_support import (
    ACCOUNT_RULES,
    DaemonProcess,
    Wire,
    wait_until,
    write_atomically,
)
from tests.daemon.test_e2e import assert_nothing_sent_twice
from tradectl.sim import SimThread

pytestmark = pytest.mark.e2e

RULES = """\
version: 1
allocations:
  signal:
    capital: {{amount: 100000}}
    targets_from: {{file: signals/momentum.csv, max_age: 1h, max_turnover: {turnover}}}
"""


@pytest.fixture
def daemon(tmp_path: Path, sim: SimThread) -> Iterator[DaemonProcess]:
    directory = tmp_path / "rules"
    (directory / "signals").mkdir(parents=True)
    (directory / "account.yaml").write_text(ACCOUNT_RULES.format(port=sim.port, every="1h"))
    (directory / "rules.yaml").write_text(RULES.format(turnover=0.5))
    write_atomically(directory / "signals" / "momentum.csv", "symbol,shares\nAAPL,100\n")
    process = DaemonProcess(directory, tmp_path / "state", tmp_path / "tradectl.log").start()
    yield process
    process.kill()


def targets_status(daemon: DaemonProcess) -> dict[str, Any] | None:
    files = daemon.status().get("account", {}).get("targets_files") or []
    return files[0] if files else None


def aapl(sim: SimThread) -> float:
    held = sim.snapshot().positions.get("AAPL")
    return 0.0 if held is None else held.quantity


def test_a_rewritten_targets_file_moves_orders_on_the_wire(
    tmp_path: Path, sim: SimThread, daemon: DaemonProcess
) -> None:
    wire = Wire(tmp_path / "wire.jsonl")
    targets = Path(str(daemon.rules_dir)) / "signals" / "momentum.csv"
    daemon.wait_message("first sync complete", timeout=30)

    first = wait_until(
        lambda: (status := targets_status(daemon)) and status["status"] == "held" and status,
        30,
        "the first file held for acceptance",
    )
    assert first["turnover"] == 1.0
    assert "tradectl accept signal" in first["reason"]
    assert wire.placed() == []

    accepted = daemon.cli("accept", "signal")
    assert accepted.returncode == 0, accepted.stderr
    wait_until(lambda: aapl(sim) == 100, 20, "100 AAPL after accept")

    write_atomically(targets, "symbol,shares\nAAPL,120\n")
    wait_until(lambda: aapl(sim) == 120, 20, "120 AAPL after the rewrite")
    buys = [(o["action"], o["totalQuantity"]) for o in wire.placed()]
    assert buys == [("BUY", 100.0), ("BUY", 20.0)]

    mark = len(daemon.lines())
    write_atomically(targets, "symbol,shares\nAAPL,120\nMSFT,ten\n")
    daemon.wait_log(
        lambda line: line["level"] == "error" and "momentum.csv:3:2:" in line["message"],
        20,
        "the row:column error",
        after=mark,
    )
    wait_until(
        lambda: (status := targets_status(daemon)) and "is not used" in status["reason"],
        20,
        "status naming the broken file",
    )
    assert len(wire.placed()) == 2

    write_atomically(targets, "symbol,shares\nAAPL,0\n")
    wait_until(
        lambda: (status := targets_status(daemon)) and status["status"] == "held",
        20,
        "the sell-everything file held",
    )
    assert aapl(sim) == 120
    assert len(wire.placed()) == 2

    write_atomically(Path(str(daemon.rules_dir)) / "rules.yaml", RULES.format(turnover=1))
    wait_until(lambda: aapl(sim) == 0, 20, "the position sold once max_turnover allows it")
    sells = [(o["action"], o["totalQuantity"]) for o in wire.placed()[2:]]
    assert sells == [("SELL", 120.0)]
    assert daemon.stop()[0] == 0
    assert_nothing_sent_twice(wire)
