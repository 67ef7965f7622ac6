"""The daemon's log under journald: every line carries its syslog priority, so `journalctl -p
err` finds the errors, and outcomes tradectl expects (a bracket child cancelled with its parent,
IB error 10148) are not logged as errors."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.e2e_support import (
    ACCOUNT_RULES,
    DaemonProcess,
    Wire,
    ladder,
    wait_until,
    write_atomically,
)
from tradectl.sim import SimState, SimThread, start_sim_thread

pytestmark = pytest.mark.e2e

BRACKET = """\
brackets:
  dip:
    {symbol: MSFT, side: BUY, quantity: 10, entry: {limit: 300},
     stop_loss: {percent: 5}, take_profit: {percent: 10}}
"""
PRIORITY = re.compile(r"^<([0-7])>")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimThread]:
    gateway = start_sim_thread(SimState.default(), port=0, wire_log=tmp_path / "wire.jsonl")
    yield gateway
    gateway.stop()


def test_under_journald_lines_carry_priorities_and_a_cascaded_cancel_is_no_error(
    tmp_path: Path, sim: SimThread
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    # The cascaded cancel would be held in IB's nightly reset (04:45-05:45 UTC by default); this
    # test is about its log lines, at any hour the suite runs.
    account = ACCOUNT_RULES.format(port=sim.port, every="1h").replace(
        "schedule: {reconcile_every: 1h}", "schedule: {reconcile_every: 1h, blackouts: []}"
    )
    (rules / "account.yaml").write_text(account)
    (rules / "rules.yaml").write_text("version: 1\n" + BRACKET)
    log_path = tmp_path / "tradectl.log"
    log_path.touch()
    info = os.stat(log_path)
    daemon = DaemonProcess(
        rules,
        tmp_path / "state",
        log_path,
        env={"JOURNAL_STREAM": f"{info.st_dev}:{info.st_ino}"},
    )
    wire = Wire(tmp_path / "wire.jsonl")
    daemon.start()
    try:
        wire.wait_placed(lambda placed: len(placed) == 3, 30, "the bracket's three legs")
        write_atomically(rules / "rules.yaml", "version: 1\n")
        wait_until(lambda: wire.cancels(), 30, "the entry's cancel")
        wait_until(
            lambda: not [o for o in sim.snapshot().open_orders if o.order_ref],
            30,
            "every leg cancelled",
        )
        wait_until(
            lambda: "pass complete" in log_path.read_text().rsplit("rule set loaded", 1)[-1],
            30,
            "the pass after the edit",
        )
        assert daemon.stop(30)[0] == 0
    finally:
        daemon.kill()
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    assert lines
    assert all(PRIORITY.match(line) for line in lines), "\n".join(lines)
    assert not [line for line in lines if "10148" in line and not line.startswith("<6>")]
    assert not [line for line in lines if line.startswith("<3>")], "\n".join(lines)
    assert any(line.startswith("<6>") and "pass complete" in line for line in lines)
    # The children's cancels (answered 10148: already cancelled with the parent) are over at
    # once, not left waiting for an acknowledgement that never comes.
    assert not [line for line in lines if "not acknowledged" in line], "\n".join(lines)


def test_the_demo_prints_a_banner_and_says_in_sync_once_after_it_traded(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    daemon = DaemonProcess(
        repo / "rules",
        tmp_path / "state",
        tmp_path / "tradectl.log",
        extra=("--sim", "--log-format", "text"),
    )
    daemon.start()
    try:
        daemon.wait_message("in sync: the account matches the rules", timeout=60)
        assert daemon.stop(30)[0] == 0
    finally:
        daemon.kill()
    text = (tmp_path / "tradectl.log").read_text()
    assert "tradectl demo: the daemon keeps a simulated IB paper account on your rules" in text
    assert f"rules     {repo / 'rules'}" in text
    assert "tradectl status --sim" in text
    assert text.count("in sync: the account matches the rules") == 1
    sent = text.index("pass complete: planned 15, sent 15")
    assert sent < text.index("in sync")


def test_resync_lines_name_the_order_ref_of_what_changed_while_stopped(
    tmp_path: Path, sim: SimThread
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "account.yaml").write_text(ACCOUNT_RULES.format(port=sim.port, every="1h"))
    (rules / "rules.yaml").write_text("version: 1\nscales:\n" + ladder("dip", "MSFT", 400))
    daemon = DaemonProcess(rules, tmp_path / "state", tmp_path / "tradectl.log")
    wire = Wire(tmp_path / "wire.jsonl")
    daemon.start()
    try:
        wire.wait_placed(lambda placed: len(placed) == 2, 30, "the ladder")
        refs = {fields["orderRef"] for fields in wire.placed()}
        daemon.wait_message("first sync complete", timeout=30)
        assert daemon.stop(30)[0] == 0
        sim.control.set_price("MSFT", 390)
        wait_until(lambda: sim.snapshot().positions.get("MSFT"), 30, "the ladder's fills")
        daemon.start()
        daemon.wait_message("first sync complete", timeout=30)
        resync = [line["message"] for line in daemon.lines() if "resync: " in line["message"]]
        assert daemon.stop(30)[0] == 0
    finally:
        daemon.kill()
    assert resync, "the restart saw the fills"
    assert {line.split()[1] for line in resync} <= refs
    assert all(re.match(r"resync: tctl:dip:\w+:L[12] \(place MSFT\) is filled", m) for m in resync)
