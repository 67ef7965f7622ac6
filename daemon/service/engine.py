"""What the daemon needs from a broker session, and what it tells the session about a pass.

``daemon.runtime`` does the reconcile pass itself; the daemon only decides when it runs, whether
it may send, and keeps the session alive. Keeping this seam explicit lets the scheduling and
connection logic be tested against a fake session without a gateway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas.models import RuleSet


@dataclass(frozen=True)
class PassContext:
    """What a pass must respect besides the rules.

    ``may_send`` is asked before every order action: it turns False the moment the link drops,
    a halt arrives or shutdown begins, so a long pass stops sending mid-way instead of finishing
    blind. ``check_breaker(nav, day_start_nav)`` is called once NAV is observed and returns
    whether opening orders are blocked for this pass.
    """

    reasons: frozenset[str]
    halted: bool
    breaker_tripped: bool
    allocations_due: bool
    may_send: Callable[[], bool]
    check_breaker: Callable[[float, float], bool]


@dataclass(frozen=True)
class PassSummary:
    planned: int = 0
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    stopped_early: bool = False
    notes: tuple[str, ...] = ()
    net_liquidation: float | None = None


@dataclass
class SessionEvents:
    """Callbacks the session invokes on the event loop."""

    disconnected: Callable[[], None] = lambda: None
    link_lost: Callable[[], None] = lambda: None
    link_restored: Callable[[bool], None] = lambda data_lost: None
    order_event: Callable[[str], None] = lambda what: None


class BrokerSession(Protocol):
    events: SessionEvents

    async def connect(self, rule_set: RuleSet) -> None:
        """Connect to the gateway named by the rules; raise OSError/ConnectionError/TimeoutError."""

    async def disconnect(self) -> None: ...

    async def resync(self, rule_set: RuleSet) -> None:
        """Match the journal against the broker's open and completed orders and executions."""

    async def reconcile(self, rule_set: RuleSet, context: PassContext) -> PassSummary: ...

    async def cancel_owned_orders(self, may_send: Callable[[], bool]) -> list[dict[str, Any]]:
        """Cancel every working order whose orderRef starts with tctl:, nothing else."""

    def status(self) -> dict[str, Any]:
        """Working owned orders, today's fills and anything else worth showing in status."""


@dataclass
class PassRecord:
    started: str
    finished: str = ""
    reasons: list[str] = field(default_factory=list)
    outcome: str = ""
    generation: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
