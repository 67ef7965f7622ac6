"""The ``Broker`` protocol: everything a reconcile pass needs from a broker
(docs/architecture.md, "The Broker protocol").

The runtime owns it; ``tradectl.ib.IbAdapter`` implements it over ib_insync, and
``tests/fakes/broker.py`` implements it in memory for tests of the pass logic. A broker only
translates: it observes, sends what it is handed and reports what it hears, in the domain types
of ``tradectl.broker_types``. The runtime decides what to send, journals it first and then hands
it over ("journal first, then wire", docs/reliability.md), and matches the journal with what the
broker reports: at resync (``tradectl.runtime.acting``) and from its updates
(``tradectl.runtime.tracking``). A broker never writes an intent's state.

Failures: a request the broker does not answer in time raises a ``TemporaryError`` (or
``TimeoutError``/``ConnectionError``, which the daemon treats alike): the pass fails, nothing is
sent for it, and the next pass tries again. A broker that refuses the account raises a
``PermanentError`` on connect (``tradectl.errors``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from tradectl.broker_types import BrokerState, Priority, UpdateListener
from tradectl.journal import BrokerRecord, CachedContract, JournaledIntent
from tradectl.market_clock import NO_REUSE, MarketClock
from tradectl.planner.domain import Intent, WorkingOrder

WriteHook = Callable[[int], None]


class Broker(Protocol):
    """A connected broker session. Every method runs on the thread that owns the connection
    and returns when its answer is complete."""

    @property
    def client_id(self) -> int:
        """The API client id: orders placed under another id cannot be changed by this one."""

    @property
    def session(self) -> str:
        """A new id for each connection: the journal notes which session sent an intent, so the
        resync after a reconnect settles what the last one sent and never saw answered."""

    @property
    def readonly(self) -> bool:
        """True for a connection that may observe but never send."""

    @property
    def connected(self) -> bool: ...

    @property
    def can_send(self) -> bool:
        """Connected, and the broker's own link is up (nothing moves between IB's 1100 and its
        1101/1102)."""

    @property
    def pacing_violations(self) -> int:
        """How often the broker complained of too many messages, on this connection."""

    @property
    def messages_sent(self) -> int:
        """Messages written on this connection (metrics)."""

    @property
    def pacer_waiting(self) -> int:
        """Messages held back by the pacer right now."""

    @property
    def market_clock(self) -> MarketClock:
        """The broker's clock as measured against the host's."""

    def sync_clock(self) -> None:
        """Measure the broker's clock against the host's now."""

    def market_now(self, host_now: datetime, *, reuse_within: timedelta = NO_REUSE) -> datetime:
        """``host_now`` on the broker's clock: "now" for every market-time decision, measured
        afresh unless a measurement within ``reuse_within`` can be trusted (docs/daemon.md,
        "Clock")."""

    def listen(self, listener: UpdateListener) -> None:
        """Hand every later update (order status, execution, error or rejection, link, close)
        to ``listener``, after the broker has handled it. Updates arrive while the connection
        runs: during any call, ``run_for`` and ``run_until``."""

    def run_for(self, seconds: float) -> None:
        """Let the connection read and write for ``seconds``."""

    def disconnect(self) -> None: ...

    # --- observe: each answer is complete and current as of the call: read afresh, or from
    # state the broker keeps current from its streams and vouches for (issue #17: refreshed in
    # full after every reconnect and periodically, a mismatch corrected) -----------------------

    def broker_records(self, day_start: datetime) -> list[BrokerRecord]:
        """Every open order (of any client id), the completed orders and the executions since
        ``day_start``, reduced to what the journal's resync matches on. ``last_records_fresh``
        tells whether this answer was read afresh or came from the streamed state."""

    @property
    def last_records_fresh(self) -> bool:
        """The last ``broker_records`` answer was read afresh, not from the streamed state."""

    @property
    def dropped_before(self) -> datetime | None:
        """When the broker last dropped a message of this connection unnamed (IB's error 100),
        on the journal's clock, once a complete read of its records began after that (the
        streams have kept it current since): an order sent before then that ``broker_records``
        does not show never arrived."""

    def suspect(self, reason: str) -> None:
        """The streamed state may miss something (``reason``): the next observation reads
        everything afresh. A broker that always reads afresh ignores it."""

    @property
    def full_reads(self) -> int:
        """How often this connection read its state afresh in full."""

    @property
    def state_mismatches(self) -> int:
        """How many full reads found the streamed state different (and corrected it)."""

    def working_orders(self) -> tuple[WorkingOrder, ...]:
        """The orders working at the broker now: read afresh, or from the streamed state
        while it is vouched for."""

    def observe(self, symbols: Sequence[str], day_start: datetime) -> BrokerState:
        """Account, positions, working and completed orders, the day's executions, and the
        contract, quote and trading hours of ``symbols`` and of every held symbol. Right after
        ``broker_records`` it may reuse that answer's orders and executions."""

    # --- act: handed journaled intents, in groups, with the pacer priority of each --------------

    def check_group(
        self,
        group: Sequence[Intent],
        contracts: Mapping[str, CachedContract],
        working: Mapping[int, WorkingOrder],
        parent_ids: Mapping[str, int],
    ) -> str | None:
        """Why this group cannot be sent (checked before anything is journaled), or None."""

    def next_order_id(self) -> int:
        """The smallest order id the broker accepts next."""

    def reserve_order_ids(self, next_id: int) -> None:
        """Order ids below ``next_id`` are taken (the journal reserved them)."""

    def submit(
        self,
        journaled: Sequence[JournaledIntent],
        group: Sequence[Intent],
        contracts: Mapping[str, CachedContract],
        working: Mapping[int, WorkingOrder],
        parent_ids: Mapping[str, int],
        priority: Priority,
        *,
        before_write: WriteHook,
        after_write: WriteHook,
    ) -> None:
        """Queue one message per journaled intent (place, modify or cancel) with the pacer at
        ``priority``. ``before_write(intent id)`` runs just before its message is written,
        ``after_write(intent id)`` just after; the answers come as updates (``listen``)."""

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Run the connection until ``done()`` holds and the pacer is empty, or ``timeout``
        seconds pass, or the connection drops; True when both held."""
