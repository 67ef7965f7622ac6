"""Account P&L and transfers through ib_insync: what the daily-loss breaker relies on
(docs/sim.md, "Account P&L and transfers")."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ib_insync import IB

from tradectl.sim import SimState, SimThread

from .helpers import small_state

pytestmark = pytest.mark.e2e
Until = Callable[..., None]


@pytest.fixture
def sim_state() -> SimState:
    # 90,000 cash + 100 AAPL at 100 = 100,000; the previous close was 101,000.
    return small_state(
        account={"cash": 90_000, "previous_day_equity": 101_000},
        positions=[{"symbol": "AAPL", "quantity": 100, "avg_cost": 100.0}],
    )


def account_value(ib: IB, tag: str) -> float:
    return next(float(v.value) for v in ib.accountValues() if v.tag == tag and v.currency == "USD")


def test_daily_pnl_follows_prices_and_ignores_deposits_and_withdrawals(
    ib: IB, sim: SimThread, until: Until
) -> None:
    assert account_value(ib, "PreviousDayEquityWithLoanValue") == 101_000.0
    pnl = ib.reqPnL("DU0000001")
    until(lambda: pnl.dailyPnL == pytest.approx(-1_000.0))

    sim.control.transfer(25_000.0)
    until(lambda: account_value(ib, "NetLiquidation") == 125_000.0)
    sim.control.transfer(-40_000.0)
    until(lambda: account_value(ib, "NetLiquidation") == 85_000.0)
    assert pnl.dailyPnL == pytest.approx(-1_000.0)

    sim.control.set_price("AAPL", 80.0)
    until(lambda: pnl.dailyPnL == pytest.approx(-3_000.0))
    snapshot = sim.control.snapshot()
    assert (snapshot.net_liquidation, snapshot.daily_pnl) == (83_000.0, -3_000.0)
    assert account_value(ib, "PreviousDayEquityWithLoanValue") == 101_000.0


def test_pnl_for_another_account_is_refused(ib: IB, until: Until) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *_: errors.append(code)
    ib.reqPnL("DU9999999")
    until(lambda: errors == [321])


def test_transfer_is_a_json_control_command(sim: SimThread) -> None:
    assert sim.control.apply({"op": "transfer", "amount": -10_000}) == {"ok": True}
    reply = sim.control.apply({"op": "snapshot"})
    assert (reply["snapshot"]["cash"], reply["snapshot"]["daily_pnl"]) == (80_000.0, -1_000.0)
    assert reply["snapshot"]["previous_day_equity"] == 101_000.0
    assert sim.control.apply({"op": "transfer"})["ok"] is False
