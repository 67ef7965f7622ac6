"""The daily-loss breaker (docs/daemon.md, "Circuit breaker"): IB's daily P&L against the
previous close's equity; deposits and withdrawals are not losses."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.planner.builders import observed, rule_set
from tests.planner.test_gate import RISK, intent
from tradectl.planner import gate
from tradectl.planner.breaker import (
    breaker_reason,
    daily_loss,
    nav_floor,
    previous_close_equity,
    since_resume,
)
from tradectl.planner.domain import Plan

LIMIT = 0.05


def test_a_loss_above_the_limit_trips_and_names_ibs_figures() -> None:
    account = observed(nav=94_000.0, day_start_nav=100_000.0, daily_pnl=-6_000.0)
    assert breaker_reason(account, LIMIT) == (
        "risk.max_daily_loss_fraction: IB's daily P&L -6,000 is a 6.00% loss of the previous "
        "close's equity 100,000 (limit 5.00%)"
    )
    assert (
        breaker_reason(observed(nav=95_500.0, day_start_nav=100_000.0, daily_pnl=-4_500.0), LIMIT)
        is None
    )


def test_a_withdrawal_is_not_a_loss_and_a_deposit_does_not_hide_one() -> None:
    # Withdrew 40,000: NAV is 60% of the previous close, yet the day's P&L is only -1,000.
    assert (
        breaker_reason(observed(nav=59_000.0, day_start_nav=100_000.0, daily_pnl=-1_000.0), LIMIT)
        is None
    )
    # Deposited 50,000 and lost 6,000: NAV is above the previous close, the loss still trips.
    assert (
        breaker_reason(observed(nav=144_000.0, day_start_nav=100_000.0, daily_pnl=-6_000.0), LIMIT)
        is not None
    )


def test_without_ibs_daily_pnl_the_fall_of_nav_is_measured() -> None:
    assert breaker_reason(observed(nav=94_000.0, day_start_nav=100_000.0), LIMIT) == (
        "risk.max_daily_loss_fraction: NAV 94,000 is 6.00% below the day's first NAV 100,000 "
        "(limit 5.00%)"
    )


@given(
    baseline=st.floats(1_000, 1e7),
    pnl=st.floats(-1e6, 1e6),
    transfer=st.floats(-1e6, 1e6),
)
def test_transfers_never_change_the_verdict(baseline: float, pnl: float, transfer: float) -> None:
    nav = baseline + pnl
    before = daily_loss(nav, baseline, pnl).exceeds(LIMIT)
    assert daily_loss(nav + transfer, baseline, pnl).exceeds(LIMIT) == before


def test_gate_and_daemon_share_the_arithmetic() -> None:
    # The gate blocks opening intents with the same reason the daemon journals when it trips.
    account = observed(
        nav=60_000.0, day_start_nav=100_000.0, daily_pnl=-6_000.0, prices={"AAPL": 100.0}
    )
    rules = rule_set(risk=RISK)
    gated = gate(Plan(intents=(intent("AAPL", "BUY", 1, 100.0),)), rules, account)
    assert gated.intents[0].blocked_by == breaker_reason(account, RISK["max_daily_loss_fraction"])
    withdrawn = observed(
        nav=60_000.0, day_start_nav=100_000.0, daily_pnl=-100.0, prices={"AAPL": 100.0}
    )
    gated = gate(Plan(intents=(intent("AAPL", "BUY", 1, 100.0),)), rules, withdrawn)
    assert gated.intents[0].blocked_by is None


def test_the_baseline_is_ibs_previous_close_else_derived_from_the_pnl() -> None:
    assert previous_close_equity(94_000.0, -6_000.0, 99_000.0) == 99_000.0
    assert previous_close_equity(94_000.0, -6_000.0, None) == 100_000.0
    assert previous_close_equity(94_000.0, -6_000.0, 0.0) == 100_000.0


def test_after_a_resume_the_loss_counts_from_the_resume() -> None:
    baseline, pnl = since_resume(100_000.0, -7_000.0, -6_000.0)
    assert (baseline, pnl) == (94_000.0, -1_000.0)
    assert not daily_loss(93_000.0, baseline, pnl).exceeds(LIMIT)


@given(baseline=st.floats(1_000, 1e7), fall=st.floats(0.0, 0.2))
def test_the_reports_floor_is_where_the_nav_measured_breaker_trips(
    baseline: float, fall: float
) -> None:
    floor = nav_floor(baseline, LIMIT)
    assert not daily_loss(floor + 1e-6 * baseline, baseline, None).exceeds(LIMIT)
    assert daily_loss(floor - 1e-6 * baseline, baseline, None).exceeds(LIMIT)
    nav = baseline * (1 - fall)
    if abs(nav - floor) > 1e-6 * baseline:
        assert daily_loss(nav, baseline, None).exceeds(LIMIT) == (nav < floor)
