"""Halt and circuit-breaker state (docs/daemon.md). When the breaker trips is decided by
daemon/planner/breaker.py, the one owner of that arithmetic.

Both survive a restart: the daemon loads them from its store (the journal) at start and saves
every change before acting on it. A halt lasts until ``tradectl resume``; a HALT file in the
rules directory halts for as long as it exists. The breaker lasts for the trading day on which
it tripped (New York date) or until ``tradectl resume``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime


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
