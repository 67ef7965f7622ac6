"""Halt and circuit-breaker state (DESIGN.md §3), and the rule that trips the breaker.

Both survive a restart: the daemon loads them from its store (the journal) at start and saves
every change before acting on it. A halt lasts until ``tradectl resume``; a HALT file in the
rules directory halts for as long as it exists. The breaker lasts for the trading day on which
it tripped (New York date) or until ``tradectl resume``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

EXCHANGE_TIME_ZONE = ZoneInfo("America/New_York")


def trading_day(moment: datetime) -> date:
    return moment.astimezone(EXCHANGE_TIME_ZONE).date()


@dataclass(frozen=True)
class SafetyState:
    halted: bool = False
    halt_reason: str = ""
    halted_at: str = ""
    breaker_day: date | None = None
    breaker_reason: str = ""

    def breaker_active(self, today: date) -> bool:
        return self.breaker_day == today

    def halt(self, reason: str, at: datetime) -> SafetyState:
        return replace(self, halted=True, halt_reason=reason, halted_at=at.isoformat())

    def trip(self, day: date, reason: str) -> SafetyState:
        return replace(self, breaker_day=day, breaker_reason=reason)

    def resumed(self) -> SafetyState:
        return SafetyState()


def daily_loss_exceeded(nav: float, day_start_nav: float, max_daily_loss_fraction: float) -> bool:
    """True when NAV fell more than the allowed fraction below the day's first NAV."""
    if day_start_nav <= 0:
        return False
    return nav < day_start_nav * (1.0 - max_daily_loss_fraction)


def breaker_reason(nav: float, day_start_nav: float, max_daily_loss_fraction: float) -> str:
    loss = 1.0 - nav / day_start_nav
    return (
        f"net liquidation {nav:,.2f} is {loss:.2%} below the day's first {day_start_nav:,.2f} "
        f"(risk.max_daily_loss_fraction {max_daily_loss_fraction:.2%})"
    )
