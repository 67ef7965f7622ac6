"""The daily-loss circuit breaker's arithmetic (docs/daemon.md, "Circuit breaker"), in one place:
the gate blocks opening intents with it, and the daemon trips and journals the breaker with it.

Today's loss is measured the way IB measures it, so that a restart, a deposit or a withdrawal
changes nothing:

* the loss is minus IB's daily P&L for the account (``reqPnL``'s ``dailyPnL``), which leaves
  deposits and withdrawals out;
* it is a fraction of the previous session's closing equity as IB reports it
  (``PreviousDayEquityWithLoanValue``; else net liquidation minus the daily P&L, the same
  figure derived).

When the gateway reports no daily P&L, the breaker falls back to the fall of net liquidation
below the first one tradectl saw that day. A withdrawal then looks like a loss (it may trip the
breaker, which only stops opening orders) and a deposit hides one; the plan says so.

The runtime picks the figures (IB's, the journal's day-start NAV, the P&L at `tradectl resume`)
and the report draws the breaker's floor; the arithmetic on them is all here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tradectl.planner.common import money
from tradectl.planner.domain import Observed

RULE = "risk.max_daily_loss_fraction"


@dataclass(frozen=True)
class DailyLoss:
    """``loss`` is positive when the account lost money today; ``baseline`` is the equity the
    loss is a fraction of."""

    loss: float
    baseline: float
    measured_by: Literal["daily P&L", "net liquidation"]

    @property
    def fraction(self) -> float:
        return self.loss / self.baseline if self.baseline > 0 else 0.0

    def exceeds(self, max_daily_loss_fraction: float) -> bool:
        return self.baseline > 0 and self.loss > max_daily_loss_fraction * self.baseline

    def describe(self, max_daily_loss_fraction: float) -> str:
        limit = f"(limit {max_daily_loss_fraction:.2%})"
        if self.measured_by == "daily P&L":
            return (
                f"IB's daily P&L {money(-self.loss)} is a {self.fraction:.2%} loss of the "
                f"previous close's equity {money(self.baseline)} {limit}"
            )
        return (
            f"NAV {money(self.baseline - self.loss)} is {self.fraction:.2%} below the day's "
            f"first NAV {money(self.baseline)} {limit}"
        )


def previous_close_equity(
    net_liquidation: float, daily_pnl: float, previous_day_equity: float | None
) -> float:
    """The baseline when IB reports a daily P&L: the previous session's closing equity as IB
    reports it, else the same figure derived (net liquidation minus the P&L)."""
    if previous_day_equity is not None and previous_day_equity > 0:
        return previous_day_equity
    return net_liquidation - daily_pnl


def since_resume(baseline: float, daily_pnl: float, pnl_at_resume: float) -> tuple[float, float]:
    """Baseline and P&L after `tradectl resume` the same day: the loss counts from the resume,
    so the P&L made before it moves into the baseline."""
    return baseline + pnl_at_resume, daily_pnl - pnl_at_resume


def nav_floor(baseline: float, max_daily_loss_fraction: float) -> float:
    """The net liquidation below which the breaker trips, when the loss is measured by net
    liquidation (the limit of ``DailyLoss.exceeds``, as a NAV)."""
    return baseline * (1 - max_daily_loss_fraction)


def daily_loss(net_liquidation: float, baseline: float, daily_pnl: float | None) -> DailyLoss:
    if daily_pnl is not None:
        return DailyLoss(-daily_pnl, baseline, "daily P&L")
    return DailyLoss(baseline - net_liquidation, baseline, "net liquidation")


def observed_daily_loss(observed: Observed) -> DailyLoss:
    return daily_loss(observed.net_liquidation, observed.day_start_nav, observed.daily_pnl)


def breaker_reason(observed: Observed, max_daily_loss_fraction: float) -> str | None:
    """Why the loss measured now trips the breaker, or None when it does not."""
    loss = observed_daily_loss(observed)
    if not loss.exceeds(max_daily_loss_fraction):
        return None
    return f"{RULE}: {loss.describe(max_daily_loss_fraction)}"
