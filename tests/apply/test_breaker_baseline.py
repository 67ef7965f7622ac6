"""Where the daily-loss breaker's figures come from (daemon/runtime/reconcile.py): IB's
previous-close equity and daily P&L, unchanged by a restart, moved by `tradectl resume`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.planner.builders import rule_set
from tradectl.ib import BrokerState
from tradectl.journal import Journal
from tradectl.runtime.reconcile import build_observed
from tradectl.service.broker import read_safety, write_safety
from tradectl.service.safety import SafetyState
from tradectl.timezones import trading_day

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
RULES = rule_set()


def broker_state(nav: float, pnl: float | None, previous: float | None = 100_000.0) -> BrokerState:
    return replace(
        BrokerState("DU1234567", nav, nav, nav, {}, (), (), {}, {}, {}),
        previous_day_equity=previous,
        daily_pnl=pnl,
    )


def test_baseline_is_ibs_previous_close_and_survives_a_restart(tmp_path: Path) -> None:
    # The first NAV tradectl sees today is 97,000 (after a 3,000 loss); the baseline is still
    # yesterday's close as IB reports it.
    with Journal.open(tmp_path, clock=lambda: NOW) as journal:
        first = build_observed(RULES, broker_state(97_000.0, -3_000.0), journal, NOW)
    assert (first.day_start_nav, first.daily_pnl) == (100_000.0, -3_000.0)
    later = NOW + timedelta(hours=2)
    with Journal.open(tmp_path, clock=lambda: later) as journal:
        restarted = build_observed(RULES, broker_state(120_000.0, -2_000.0), journal, later)
    assert (restarted.day_start_nav, restarted.daily_pnl) == (100_000.0, -2_000.0)


def test_without_the_account_value_the_baseline_is_derived_from_the_pnl(tmp_path: Path) -> None:
    with Journal.open(tmp_path, clock=lambda: NOW) as journal:
        seen = build_observed(RULES, broker_state(97_000.0, -3_000.0, previous=None), journal, NOW)
    assert seen.day_start_nav == 100_000.0


def test_without_ibs_pnl_the_days_first_nav_is_the_fallback(tmp_path: Path) -> None:
    with Journal.open(tmp_path, clock=lambda: NOW) as journal:
        first = build_observed(RULES, broker_state(97_000.0, None), journal, NOW)
        second = build_observed(RULES, broker_state(91_000.0, None), journal, NOW)
    assert (first.day_start_nav, first.daily_pnl) == (97_000.0, None)
    assert second.day_start_nav == 97_000.0


def test_resume_measures_from_the_pnl_at_that_moment(tmp_path: Path) -> None:
    with Journal.open(tmp_path, clock=lambda: NOW) as journal:
        tripped = build_observed(RULES, broker_state(93_000.0, -7_000.0), journal, NOW)
        assert (tripped.day_start_nav, tripped.daily_pnl) == (100_000.0, -7_000.0)
        write_safety(journal, SafetyState().trip(trading_day(NOW), "lost 7%"))
        write_safety(journal, read_safety(journal).resumed())

        after = build_observed(RULES, broker_state(93_000.0, -7_000.0), journal, NOW)
        assert (after.day_start_nav, after.daily_pnl) == (93_000.0, 0.0)
        further = build_observed(RULES, broker_state(90_000.0, -10_000.0), journal, NOW)
        assert (further.day_start_nav, further.daily_pnl) == (93_000.0, -3_000.0)
