"""A rebalance window stays open until the allocation has converged (docs/daemon.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon.e2e_support import (
    ACCOUNT_RULES,
    DaemonProcess,
    Wire,
    wait_until,
    wire_time,
    write_atomically,
)
from tradectl.sim import SimThread

pytestmark = pytest.mark.e2e

# AAPL at 275 in the default sim account (1,000,000 cash): 30 % is ~285,000, which
# max_order_value 60,000 splits into five slices, one per pass.
ALLOCATION = """\
allocations:
  core:
    capital: {fraction_of_nav: 0.95}
    min_trade_value: 0
    order: {type: limit, offset_bps: 20}
    targets: {AAPL: 0.30}
"""


def rules(port: int) -> str:
    account = ACCOUNT_RULES.format(port=port, every="1h")
    account = account.replace("max_order_value: 500000", "max_order_value: 60000")
    cron = 'rebalance: {cron: "* * * * *", timezone: America/New_York}'
    return account.replace("{reconcile_every: 1h}", f"{{reconcile_every: 1h, {cron}}}") + ALLOCATION


def test_one_rebalance_window_sends_every_slice_until_converged(
    tmp_path: Path, sim: SimThread, wire: Wire, started: list[DaemonProcess]
) -> None:
    directory = tmp_path / "rules"
    directory.mkdir()
    write_atomically(directory / "rules.yaml", rules(sim.port))
    daemon = DaemonProcess(directory, tmp_path / "state", tmp_path / "tradectl.log")
    started.append(daemon.start())
    daemon.wait_message("first sync complete", timeout=40)
    assert wire.placed() == [], "allocations went before the cron opened a window"

    opened = daemon.wait_message("rebalance time reached", timeout=90)
    opened_at = daemon.lines()[opened]["time"]
    wait_until(
        lambda: (
            sim.snapshot().positions.get("AAPL") is not None
            and sim.snapshot().positions["AAPL"].quantity >= 1030
        ),
        50,
        "the allocation to converge",
    )
    placed = wire.messages("placeOrder")
    assert len(placed) >= 5, "the slices were not all sent"
    # Every slice went in the window the first cron time opened, not one per cron time.
    first, last = wire_time(placed[0]), wire_time(placed[-1])
    assert last - first < 55, (opened_at, first, last)
    assert daemon.stop()[0] == 0
