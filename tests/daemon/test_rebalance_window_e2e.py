"""A rebalance window stays open until the allocation has converged (docs/daemon.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
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
from tradectl.timezones import TRADING_TIME_ZONE

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


def rules(port: int, cron: str = "* * * * *", extra: str = "") -> str:
    account = ACCOUNT_RULES.format(port=port, every="1h")
    account = account.replace("max_order_value: 500000", "max_order_value: 60000")
    rebalance = f'rebalance: {{cron: "{cron}", timezone: America/New_York{extra}}}'
    return (
        account.replace("{reconcile_every: 1h}", f"{{reconcile_every: 1h, {rebalance}}}")
        + ALLOCATION
    )


@pytest.mark.slow
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


def aapl_held(sim: SimThread) -> float:
    position = sim.snapshot().positions.get("AAPL")
    return 0.0 if position is None else position.quantity


def cron_at(moment: datetime) -> str:
    """A cron that fires once a day, at ``moment``'s minute."""
    return f"{moment.minute} {moment.hour} * * *"


@pytest.mark.slow
def test_a_restart_mid_window_reopens_the_window_and_the_allocation_goes_on(
    tmp_path: Path, sim: SimThread, wire: Wire, started: list[DaemonProcess]
) -> None:
    """The cron fires once (one minute of one day) while tradectl is halted, so the window's
    passes block the allocation and the window stays open. SIGKILL, restart, resume: the new
    daemon reopens the journaled window and trades, long before the cron's next time."""
    directory = tmp_path / "rules"
    directory.mkdir()
    # Started with a cron whose time has just passed (its next is a day away), halted, then set
    # by a hot reload to the next whole minute: the wait is 10 to 70 s, not 30 to 90 s.
    a_day_away = cron_at(datetime.now(TRADING_TIME_ZONE) - timedelta(minutes=2))
    write_atomically(directory / "rules.yaml", rules(sim.port, a_day_away, ", window_end: 3h"))
    daemon = DaemonProcess(directory, tmp_path / "state", tmp_path / "tradectl.log")
    started.append(daemon.start())
    daemon.wait_message("first sync complete", timeout=40)
    assert daemon.cli("halt").returncode == 0
    fire = (datetime.now(TRADING_TIME_ZONE) + timedelta(seconds=70)).replace(
        second=0, microsecond=0
    )
    mark = len(daemon.lines())
    write_atomically(directory / "rules.yaml", rules(sim.port, cron_at(fire), ", window_end: 3h"))
    daemon.wait_message("rule set loaded", after=mark)
    assert datetime.now(TRADING_TIME_ZONE) < fire, "reloaded too late for the cron's minute"
    daemon.wait_message("rebalance time reached", timeout=150, after=mark)
    until = wait_until(
        lambda: daemon.status()["schedule"]["rebalance_window_until"],
        30,
        "the window's first pass, whose allocation the halt blocks",
    )
    assert wire.placed() == [] and aapl_held(sim) == 0.0

    daemon.kill()
    daemon.start()  # its lines() are the new run's
    restored = daemon.wait_message("rebalance window open since", timeout=40)
    assert f"until {until}" in daemon.lines()[restored]["message"]
    daemon.wait_message("first sync complete", timeout=40)
    assert wire.placed() == [], "still halted"
    assert daemon.cli("resume").returncode == 0
    wait_until(lambda: aapl_held(sim) >= 1030, 60, "the allocation to converge after the restart")
    assert len(wire.placed()) >= 5, "every slice went in the restored window"
    assert not any("rebalance time reached" in line["message"] for line in daemon.lines()), (
        "the cron did not open a new window: the restored one traded"
    )
    wait_until(
        lambda: daemon.status()["schedule"]["rebalance_window_until"] is None,
        30,
        "the window to close once converged",
    )
    assert daemon.stop()[0] == 0
