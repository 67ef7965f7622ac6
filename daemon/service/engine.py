"""What the daemon needs from a broker session, and what it tells the session about a pass.

The session owns the gateway connection and the journal (both live on one broker thread, see
``tradectl.service.broker``); the daemon only decides when a pass runs and whether it may send.
Keeping this seam explicit lets the scheduling and connection logic be tested against a fake
session without a gateway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tradectl.journal import LedgerRelease
from tradectl.schemas.models import RuleSet

from .safety import SafetyState
from .schedule import OpenWindow
from .telemetry import PassFacts

# The reasons of a pass started by a new execution and by a valid rule change.
FILL_TRIGGER = "fill"
RULES_TRIGGER = "rules"


@dataclass(frozen=True)
class PassContext:
    """What a pass must respect besides the rules.

    ``may_send`` is asked before every order action: it turns False the moment the link drops,
    a halt arrives or shutdown begins, so a long pass stops sending mid-way instead of finishing
    blind. ``abandon`` turns True on shutdown: stop waiting for acknowledgements (the journal
    lets the next start adopt whatever was sent).
    """

    reasons: frozenset[str]
    halted: bool
    allocations_due: bool
    may_send: Callable[[], bool]
    abandon: Callable[[], bool]


@dataclass(frozen=True)
class PassSummary:
    planned: int = 0
    sent: int = 0
    blocked: int = 0
    problems: tuple[str, ...] = ()
    stopped_early: bool = False
    notes: tuple[str, ...] = ()
    net_liquidation: float | None = None
    breaker_tripped: str | None = None
    facts: PassFacts = field(default_factory=PassFacts)
    # Allocation intents were left in the plan (held, blocked or sent): not yet converged.
    allocation_work_left: bool = False
    # The close of the regular session the allocation symbols trade in now or next.
    session_close: datetime | None = None


@dataclass
class SessionEvents:
    """Callbacks the session invokes on the daemon's event loop."""

    disconnected: Callable[[], None] = lambda: None
    link_lost: Callable[[], None] = lambda: None
    link_restored: Callable[[bool], None] = lambda data_lost: None
    order_event: Callable[[str], None] = lambda what: None
    # (rule, IB error code, text) of an order action IB refused.
    order_rejected: Callable[[str | None, int, str], None] = lambda rule, code, text: None
    # (rule, "BUY 10 AAPL @ 187.5") of each new execution of a tradectl order.
    order_filled: Callable[[str | None, str], None] = lambda rule, description: None


class BrokerSession(Protocol):
    events: SessionEvents

    async def open(self) -> None:
        """Open the journal; raise JournalError when it is locked or unreadable."""

    async def close(self) -> None:
        """Disconnect, flush and close the journal."""

    async def load_safety(self) -> SafetyState: ...

    async def save_safety(self, state: SafetyState) -> None:
        """Persist halt and breaker state durably before the daemon acts on it."""

    async def record_generation(self, generation: str) -> None: ...

    async def load_rebalance_window(self) -> OpenWindow | None:
        """The rebalance window the journal says is open (docs/daemon.md, "Rebalance window")."""

    async def save_rebalance_window(self, window: OpenWindow | None) -> None:
        """Journal the open rebalance window, or its closing (None)."""

    async def release(self, rule: str, reason: str) -> LedgerRelease:
        """Journal `tradectl release RULE`; raise NothingToRelease when it holds nothing."""

    def address(self, rule_set: RuleSet) -> str:
        """host:port the session connects to for these rules."""

    def market_now(self) -> datetime:
        """Now on the gateway's clock: the last ``reqCurrentTime`` measurement plus the host's
        monotonic time since (kept across reconnects; the host's clock before the first
        connect). Every trading-day and market-time decision of the daemon uses it; any
        thread."""

    async def measure_clock(self) -> None:
        """Measure the gateway's clock now, when connected (a rule edit began: its pass may
        plan on this measurement, docs/daemon.md "Clock")."""

    async def connect(self, rule_set: RuleSet) -> None:
        """Connect to the gateway named by the rules; raise on failure."""

    async def disconnect(self) -> None: ...

    async def resync(self, rule_set: RuleSet) -> None:
        """Match the journal against the broker's open and completed orders and executions."""

    async def reconcile(self, rule_set: RuleSet, context: PassContext) -> PassSummary:
        """Observe, check the daily-loss breaker (persisting a trip before planning), plan,
        gate, journal and send what ``context`` allows."""

    async def cancel_owned_orders(self, may_send: Callable[[], bool]) -> list[dict[str, Any]]:
        """Cancel every working order whose orderRef starts with tctl:, nothing else."""

    async def accept_targets(self, rule: str) -> str:
        """Journal the acceptance of the targets file held for ``rule``; raise LookupError
        when none is held. Returns the line to show."""

    def status(self) -> dict[str, Any]:
        """Working owned orders, today's fills and anything else worth showing in status."""

    def pacer_waiting(self) -> int:
        """Messages the pacer holds back right now; safe to call from any thread."""

    def messages_sent(self) -> int:
        """Messages written to the gateway since the session opened; any thread."""

    def live_state_mismatches(self) -> int:
        """Full reads that found the streamed state differing from a fresh one, since the
        session opened (docs/daemon.md, "Live state"); any thread."""


@dataclass
class PassRecord:
    started: str
    finished: str = ""
    reasons: list[str] = field(default_factory=list)
    outcome: str = ""
    generation: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
