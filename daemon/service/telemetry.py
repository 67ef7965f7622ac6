"""What the daemon tells the outside world about itself: the seam between the daemon and its
metrics (``tradectl.service.metrics``) and push alerts (``tradectl.service.alerts``).

The daemon calls a ``Telemetry`` at each change a person or a monitoring system cares about. The
base class does nothing, so the daemon runs exactly the same with metrics and alerts off, and
neither prometheus_client nor apprise is imported then. Every method is called on the daemon's
event loop and must return at once: an implementation that does I/O hands it to its own thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tradectl.planner.allocations import capital_of
from tradectl.planner.domain import Observed
from tradectl.records.store import backlog, has_records_tables, journal_file
from tradectl.schemas.models import Allocation, RuleSet

# The connection states the daemon reports (``Daemon.connection_state``), in this order.
# "refused": a permanent connect failure (daemon/errors.py); no retry until the rules change.
CONNECTION_STATES = ("disconnected", "connecting", "connected", "link down (1100)", "refused")


@dataclass(frozen=True)
class PassFacts:
    """What one pass learned that status does not keep: what it sent and how far the
    allocations are from their targets."""

    # (order action, rule kind) of every order action the pass sent: ("place", "scales"), ...
    sent: tuple[tuple[str, str], ...] = ()
    # (order action, rule kind) of every intent the risk gate blocked.
    blocked: tuple[tuple[str, str], ...] = ()
    # Largest absolute weight gap per allocation rule, before this pass's orders.
    drift: Mapping[str, float] = field(default_factory=dict)
    order_efficiency_ratio: float | None = None


class Telemetry:
    """Events of a running daemon; every method is a no-op here."""

    def daemon_started(self, generation: str | None) -> None:
        """The daemon is up and about to connect."""

    def daemon_stopping(self) -> None:
        """SIGTERM (or a failed start): deliver what is queued, within a short budget."""

    def close(self, timeout: float) -> None:
        """Release threads and sockets; called once, last."""

    def pass_finished(self, seconds: float, outcome: str, facts: PassFacts | None) -> None:
        """A pass ended: ``outcome`` is "ok", "skipped: …", "stopped early", "failed: …" or
        "abandoned"; ``facts`` is None when the pass did not get as far as planning."""

    def connection_changed(self, state: str) -> None:
        """One of ``CONNECTION_STATES``."""

    def reconnected(self) -> None:
        """Connected again after having been connected before."""

    def halt_changed(self, halted: bool, reason: str) -> None: ...

    def breaker_changed(self, tripped: bool, reason: str) -> None: ...

    def rules_changed(self, generation: str | None, errors: Sequence[str]) -> None:
        """A rule set was loaded (``errors`` empty) or a change was rejected: the rules are
        degraded while ``errors`` is not empty and the last good ``generation`` is in force."""

    def order_rejected(self, rule: str | None, code: int, text: str) -> None:
        """IB refused one of tradectl's own order actions."""

    def order_filled(self, rule: str | None, description: str) -> None:
        """A new execution of a tradectl order, e.g. "BUY 10 AAPL @ 187.5"."""

    def orphaned_protections(self, count: int) -> None:
        """Protective orders left for a position whose rule was removed (docs/planning.md,
        "Orphaned protections and release")."""


class TelemetryFanout(Telemetry):
    """Several telemetry sinks as one; a failing sink is not the daemon's problem."""

    def __init__(self, sinks: Sequence[Telemetry]) -> None:
        self.sinks = tuple(sinks)

    def daemon_started(self, generation: str | None) -> None:
        for sink in self.sinks:
            sink.daemon_started(generation)

    def daemon_stopping(self) -> None:
        for sink in self.sinks:
            sink.daemon_stopping()

    def close(self, timeout: float) -> None:
        for sink in self.sinks:
            sink.close(timeout)

    def pass_finished(self, seconds: float, outcome: str, facts: PassFacts | None) -> None:
        for sink in self.sinks:
            sink.pass_finished(seconds, outcome, facts)

    def connection_changed(self, state: str) -> None:
        for sink in self.sinks:
            sink.connection_changed(state)

    def reconnected(self) -> None:
        for sink in self.sinks:
            sink.reconnected()

    def halt_changed(self, halted: bool, reason: str) -> None:
        for sink in self.sinks:
            sink.halt_changed(halted, reason)

    def breaker_changed(self, tripped: bool, reason: str) -> None:
        for sink in self.sinks:
            sink.breaker_changed(tripped, reason)

    def rules_changed(self, generation: str | None, errors: Sequence[str]) -> None:
        for sink in self.sinks:
            sink.rules_changed(generation, errors)

    def order_rejected(self, rule: str | None, code: int, text: str) -> None:
        for sink in self.sinks:
            sink.order_rejected(rule, code, text)

    def order_filled(self, rule: str | None, description: str) -> None:
        for sink in self.sinks:
            sink.order_filled(rule, description)

    def orphaned_protections(self, count: int) -> None:
        for sink in self.sinks:
            sink.orphaned_protections(count)


def allocation_drift(rules: RuleSet, observed: Observed) -> dict[str, float]:
    """Per allocation rule, the largest |held weight - target weight| over its symbols, weights
    taken of the rule's capital at the last price; symbols without a price are left out."""
    drift: dict[str, float] = {}
    for name, allocation in rules.allocations.items():
        capital = capital_of(allocation, observed.net_liquidation)
        gaps = [
            abs(observed.position(symbol) * quote.last / capital - target)
            for symbol, target in _weight_targets(name, allocation, observed).items()
            if capital > 0 and (quote := observed.quotes.get(symbol)) is not None and quote.last > 0
        ]
        if gaps:
            drift[name] = max(gaps)
    return drift


# A batch still waiting this long after failed attempts means the uploads are failing.
OUTBOX_STUCK_SECONDS = 3600.0


@dataclass(frozen=True)
class OutboxState:
    """The records outbox (docs/records.md) as metrics and alerts see it."""

    pending: int
    failed: int
    # Pending batches with at least one failed upload attempt behind them.
    retrying: int = 0
    # Failed upload attempts over the journal's lifetime (a counter).
    failed_attempts: int = 0
    oldest_pending_age_seconds: float = 0.0
    last_error: str | None = None

    @property
    def failing(self) -> bool:
        """A batch the bucket refuses for good, or uploads failing for an hour."""
        stuck = self.retrying and self.oldest_pending_age_seconds >= OUTBOX_STUCK_SECONDS
        return bool(self.failed or stuck)


def read_outbox(state_dir: Path, now: float) -> OutboxState | None:
    """The outbox of the journal in ``state_dir``, read-only; None without a journal or records
    tables. Safe from any thread while the daemon runs."""
    path = journal_file(state_dir)
    if not path.exists():
        return None
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    try:
        if not has_records_tables(conn):
            return None
        found = backlog(conn, now)
        retrying, attempts = conn.execute(
            "SELECT COUNT(*) FILTER (WHERE state = 'pending' AND attempts > 0), "
            "COALESCE(SUM(attempts), 0) FROM records_outbox"
        ).fetchone()
    finally:
        conn.close()
    return OutboxState(
        pending=found.pending,
        failed=found.failed,
        retrying=int(retrying),
        failed_attempts=int(attempts),
        oldest_pending_age_seconds=found.oldest_pending_age_seconds or 0.0,
        last_error=found.last_error,
    )


def _weight_targets(name: str, allocation: Allocation, observed: Observed) -> Mapping[str, float]:
    """The weights an allocation aims at: inline, or the last good targets file it read (a
    file of target shares has no weights to drift from)."""
    if allocation.targets_from is None:
        return allocation.inline_targets
    source = observed.targets_sources.get(name)
    if source is None or source.targets is None or source.targets.mode != "weight":
        return {}
    return source.targets.targets
