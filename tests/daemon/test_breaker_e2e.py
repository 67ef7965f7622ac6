"""The daily-loss breaker measures real losses (docs/daemon.md, "Circuit breaker"): `tradectl
run` against the sim; deposits and withdrawals do not trip it, a price crash does, and a restart
mid-day keeps IB's baseline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.e2e_support import ACCOUNT_RULES, DaemonProcess, Wire, ladder, wait_until
from tradectl.sim import SimState, SimThread, start_sim_thread
from tradectl.timezones import TRADING_TIME_ZONE

pytestmark = pytest.mark.e2e

# 100,000 of cash and 1,000 AAPL at 275: net liquidation 375,000, which is also the previous
# close's equity. A MSFT ladder far below the market keeps opening orders working.
STATE: dict[str, Any] = {
    "account": {"id": "DU0000001", "cash": 100_000},
    "positions": [{"symbol": "AAPL", "quantity": 1_000, "avg_cost": 275.0}],
    "symbols": {"AAPL": {"price": 275.0}, "MSFT": {"price": 480.0}, "SPY": {"price": 660.0}},
}
BASELINE = 375_000.0


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimThread]:
    gateway = start_sim_thread(SimState.from_dict(STATE), wire_log=tmp_path / "wire.jsonl")
    yield gateway
    gateway.stop()


@pytest.fixture
def daemon(tmp_path: Path, sim: SimThread) -> Iterator[DaemonProcess]:
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "account.yaml").write_text(ACCOUNT_RULES.format(port=sim.port, every="1s"))
    (directory / "rules.yaml").write_text("version: 1\nscales:\n" + ladder("dip", "MSFT", 400.0))
    process = DaemonProcess(directory, tmp_path / "state", tmp_path / "tradectl.log").start()
    yield process
    process.kill()


def account_seen(daemon: DaemonProcess, nav: float) -> dict[str, Any]:
    """The daemon's status once a pass has observed this net liquidation (the breaker is
    checked on the same observation, before planning)."""

    def check() -> dict[str, Any] | None:
        status = daemon.status()
        account = status.get("account") or {}
        seen = account.get("net_liquidation")
        return status if seen is not None and abs(seen - nav) < 1.0 else None

    found: dict[str, Any] = wait_until(check, 20, f"a pass that sees NAV {nav:,.0f}")
    return found


def breaker_reset_on(status: dict[str, Any], day_start_nav: float) -> bool:
    return bool(
        status["breaker"]["tripped"] is False
        and status["account"]["day_start_nav"] == day_start_nav
    )


def test_transfers_do_not_trip_the_breaker_a_crash_does_and_a_restart_keeps_the_baseline(
    tmp_path: Path, sim: SimThread, daemon: DaemonProcess
) -> None:
    wire = Wire(tmp_path / "wire.jsonl")
    wire.wait_placed(lambda placed: len(placed) == 2, 20, "the ladder's two levels")

    sim.control.transfer(50_000.0)
    status = account_seen(daemon, BASELINE + 50_000)
    assert status["breaker"]["tripped"] is False
    # Withdrawing 150,000 takes NAV 20% below the previous close: not a loss.
    sim.control.transfer(-150_000.0)
    status = account_seen(daemon, BASELINE - 100_000)
    assert status["breaker"]["tripped"] is False
    assert status["account"]["day_start_nav"] == BASELINE
    assert status["account"]["daily_pnl"] == pytest.approx(0.0)

    code, _ = daemon.stop()
    assert code == 0
    daemon.start()
    daemon.wait_message("first sync complete", timeout=20)
    status = account_seen(daemon, BASELINE - 100_000)
    assert status["breaker"]["tripped"] is False
    assert status["account"]["day_start_nav"] == BASELINE, "a restart keeps IB's baseline"

    # AAPL 275 -> 250 on 1,000 shares: a 25,000 loss, 6.67% of the previous close.
    sim.control.set_price("AAPL", 250.0)
    daemon.wait_message("circuit breaker tripped", timeout=20)
    status = daemon.status()
    assert status["breaker"]["tripped"] is True
    assert (
        "IB's daily P&L -25,000 is a 6.67% loss of the previous close's equity 375,000"
        in (status["breaker"]["reason"])
    )
    snapshot = sim.snapshot()
    assert (snapshot.daily_pnl, snapshot.previous_day_equity) == (-25_000.0, BASELINE)
    assert daemon.stop()[0] == 0


def test_the_breaker_day_follows_the_gateway_clock_and_resets_at_the_sims_day_roll(
    tmp_path: Path,
) -> None:
    """The sim's clock is a day ahead of the host's: the breaker trips on the sim's day and
    the sim's day roll (not the host's) ends it."""
    sim_day = datetime.now(TRADING_TIME_ZONE).date() + timedelta(days=1)
    evening = datetime.combine(sim_day, time(22, 0), tzinfo=TRADING_TIME_ZONE)
    state = SimState.from_dict(
        {**STATE, "calendar": "nyse", "clock": {"start": evening.isoformat(), "frozen": True}}
    )
    sim = start_sim_thread(state, wire_log=tmp_path / "wire.jsonl")
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "account.yaml").write_text(ACCOUNT_RULES.format(port=sim.port, every="1s"))
    (directory / "rules.yaml").write_text("version: 1\nscales:\n" + ladder("dip", "MSFT", 400.0))
    daemon = DaemonProcess(directory, tmp_path / "state", tmp_path / "tradectl.log").start()
    try:
        daemon.wait_message("first sync complete", timeout=40)
        sim.control.set_price("AAPL", 250.0)
        daemon.wait_message("circuit breaker tripped", timeout=20)
        status = daemon.status()
        assert status["breaker"]["tripped"] is True
        assert status["breaker"]["day"] == sim_day.isoformat(), "the host's day is the day before"

        next_day = datetime.combine(sim_day + timedelta(days=1), time(0, 50), TRADING_TIME_ZONE)
        assert sim.control.apply({"op": "advance", "to": next_day.isoformat()})["ok"] is True
        # The sim's day roll made 350,000 the previous close's equity; the next pass measures
        # the gateway's clock again, so the daemon's trading day is the sim's new day.
        status = account_seen(daemon, BASELINE - 25_000)
        # The status shows the reset breaker a moment before the account figures that go with
        # it: a quick poll may fall in between.
        wait_until(
            lambda: breaker_reset_on(daemon.status(), BASELINE - 25_000),
            20,
            "the breaker to reset at the sim's day roll",
        )
        status = daemon.status()
        assert status["account"]["day_start_nav"] == BASELINE - 25_000
        assert sim.snapshot().previous_day_equity == BASELINE - 25_000
        assert daemon.stop()[0] == 0
    finally:
        daemon.kill()
        sim.stop()
