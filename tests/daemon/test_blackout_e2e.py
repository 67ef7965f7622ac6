"""IB's daily reset as a blackout, with the daemon as users run it (docs/daemon.md)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.daemon.e2e_support import ACCOUNT_RULES, DaemonProcess, Wire, ladder, write_atomically
from tradectl.sim import SimState, SimThread, start_sim_thread

pytestmark = pytest.mark.e2e


@pytest.fixture
def us_hours_sim(tmp_path: Path) -> Iterator[SimThread]:
    # Hours like a real US stock's: no regular session runs through the blackout, so it holds.
    state = SimState.default()
    state.market.hours = "us_equities"
    gateway = start_sim_thread(state, port=0, wire_log=tmp_path / "wire.jsonl")
    yield gateway
    gateway.stop()


def blackout_around_now() -> str:
    now = datetime.now(ZoneInfo("America/New_York"))
    start, end = now - timedelta(minutes=5), now + timedelta(hours=1)
    return f"[{{start: '{start:%H:%M}', end: '{end:%H:%M}', timezone: America/New_York}}]"


def test_nothing_is_sent_in_a_blackout_and_its_disconnects_are_expected(
    tmp_path: Path, us_hours_sim: SimThread, started: list[DaemonProcess]
) -> None:
    wire = Wire(tmp_path / "wire.jsonl")
    directory = tmp_path / "rules"
    directory.mkdir()
    account = ACCOUNT_RULES.format(port=us_hours_sim.port, every="1h")
    write_atomically(
        directory / "account.yaml",
        account.replace("schedule: {reconcile_every: 1h}", "")
        + f"schedule: {{reconcile_every: 1h, blackouts: {blackout_around_now()}}}\n",
    )
    write_atomically(directory / "rules.yaml", "version: 1\nscales:\n" + ladder("dip", "NVDA", 150))
    daemon = DaemonProcess(directory, tmp_path / "state", tmp_path / "tradectl.log")
    started.append(daemon.start())
    mark = daemon.wait_message("first sync complete", timeout=40)
    assert wire.placed() == [], "sent inside the blackout"

    us_hours_sim.control.connectivity_lost()
    lost = daemon.wait_message("lost its connection to IB (1100)", after=mark)
    line = daemon.lines()[lost]
    assert line["level"] == "info" and "blackout (expected)" in line["message"], line
    us_hours_sim.control.connectivity_restored()
    daemon.wait_message("resynced with the gateway", timeout=20, after=lost)
    assert wire.placed() == []

    write_atomically(
        directory / "account.yaml",
        account.replace("schedule: {reconcile_every: 1h}", "")
        + "schedule: {reconcile_every: 1h, blackouts: []}\n",
    )
    wire.wait_placed(lambda placed: len(placed) == 2, 30, "the ladder once the blackout is off")
    assert daemon.stop()[0] == 0
