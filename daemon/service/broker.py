"""The daemon's broker session: the IB adapter and the journal on one dedicated thread.

ib_insync's synchronous API drives its own event loop (``run_until_complete``), which cannot
nest inside the daemon's running loop; and one SQLite connection must not run two transactions
at once. So the adapter and the journal live on a single broker thread with its own loop. The
daemon submits jobs (connect, resync, a pass, a cancel, a journal write) that run there one at a
time; between jobs the thread keeps the broker loop running so that ib_insync reads the socket
and fires events, which are handed back to the daemon's loop.

The pass is ``tradectl.runtime.reconcile.reconcile_pass``, the one orchestrator, with the
daemon's hooks (``PassHooks``): the daily-loss breaker is checked and journaled before planning,
allocations follow the rebalance window, and each group of intents is journaled only when the
pacer has sent the previous one, asking ``may_send`` first, so a halt, a dropped link or SIGTERM
stops a long pass within one order and the journal never runs ahead of the wire. This module
only runs the broker on its thread, turns its updates into the daemon's events and reports
status; it reaches the broker through the ``Broker`` protocol alone.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from tradectl.broker_types import (
    BrokerUpdate,
    Disconnected,
    ErrorUpdate,
    ExecutionUpdate,
    LinkUpdate,
    OrderStatusUpdate,
)
from tradectl.ib import IbAdapter
from tradectl.ib_codes import PACING_VIOLATION
from tradectl.journal import Journal, JournaledIntent, LedgerRelease, RecordedExecution, utc_now
from tradectl.journal.keys import (
    BREAKER_KEY,
    BREAKER_REASON_KEY,
    DAY_START_NAV_PREFIX,
    HALT_KEY,
    PNL_AT_RESUME_PREFIX,
    REBALANCE_WINDOW_KEY,
    RESUME_PENDING,
)
from tradectl.journal.lifecycle import REJECTION_STATUS, order_ended
from tradectl.ledger_view import rule_ledgers
from tradectl.market_clock import (
    EDIT_CLOCK_MAX_AGE,
    FILL_CLOCK_MAX_AGE,
    NO_REUSE,
    MarketClock,
)
from tradectl.planner.breaker import breaker_reason
from tradectl.planner.domain import Intent, Observed, Plan, TargetsSource, WorkingOrder
from tradectl.planner.legs import leg_kind, parse_order_ref
from tradectl.planner.market_time import session_close
from tradectl.runtime.acting import Sender, resync
from tradectl.runtime.broker import Broker
from tradectl.runtime.reconcile import PassHooks, reconcile_pass
from tradectl.runtime.session import connection_settings
from tradectl.runtime.targets_file import TargetsFiles, allocation_symbols
from tradectl.runtime.targets_journal import accept_pending, decision_views
from tradectl.runtime.tracking import tracker_for
from tradectl.schemas.models import RuleKind, RuleSet
from tradectl.timezones import trading_day, trading_day_start

from .engine import FILL_TRIGGER, RULES_TRIGGER, PassContext, PassSummary, SessionEvents
from .safety import SafetyState
from .schedule import OpenWindow
from .telemetry import PassFacts, allocation_drift

log = logging.getLogger("tradectl.daemon")

T = TypeVar("T")

ACK_TIMEOUT_SECONDS = 30.0
# While stopping, acknowledgements are awaited only briefly: the next start adopts the rest.
ACK_TIMEOUT_STOPPING_SECONDS = 1.0
CANCEL_ACK_TIMEOUT_SECONDS = 10.0
_DRAIN_STEP_SECONDS = 0.005
# A pass that a new execution alone, or with its order's Filled status, started may plan on
# the anchored clock (docs/daemon.md, "Clock"): the execution carries the gateway's time, which
# the clock is checked against.
FILL_TRIGGERS = frozenset({FILL_TRIGGER, "order-filled"})


def clock_reuse(reasons: frozenset[str]) -> timedelta:
    """How old a clock measurement a pass started by ``reasons`` may plan on (docs/daemon.md,
    "Clock"): any other pass measures the gateway's clock first. A rule edit's was measured
    when the edit began (``BrokerSession.measure_clock``)."""
    if FILL_TRIGGER in reasons and reasons <= FILL_TRIGGERS:
        return FILL_CLOCK_MAX_AGE
    if reasons == {RULES_TRIGGER}:
        return EDIT_CLOCK_MAX_AGE
    return NO_REUSE


class BrokerThread:
    """Runs jobs one at a time on a thread that owns an asyncio loop; keeps that loop running
    between jobs so socket reads and broker events are never starved."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._jobs: collections.deque[Callable[[], None]] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._stopping = False
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="broker", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._wakeup = asyncio.Event()
        self._started.set()
        while True:
            self.loop.run_until_complete(self._wakeup.wait())
            self._wakeup.clear()
            while self._jobs:
                self._jobs.popleft()()
            if self._stopping:
                break
        self.loop.close()

    def submit(self, job: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``job`` on the broker thread; the result arrives on the caller's loop."""
        caller = asyncio.get_running_loop()
        future: asyncio.Future[T] = caller.create_future()

        def settle(outcome: Callable[[], None]) -> None:
            if not caller.is_closed():
                caller.call_soon_threadsafe(outcome)

        def run() -> None:
            try:
                result = job()
            except BaseException as exc:
                error = exc
                settle(lambda: None if future.done() else future.set_exception(error))
            else:
                settle(lambda: None if future.done() else future.set_result(result))

        self._jobs.append(run)
        self._wake()
        return future

    def _wake(self) -> None:
        if self._wakeup is not None and not self.loop.is_closed():
            wakeup = self._wakeup
            self.loop.call_soon_threadsafe(wakeup.set)

    def stop(self, timeout: float) -> None:
        self._stopping = True
        self._wake()
        self._thread.join(timeout)


def _kind_of(rules: RuleSet | None, order: WorkingOrder) -> RuleKind:
    rule, leg = order.rule or "", order.leg or ""
    if rules is not None:
        if rule in rules.allocations:
            return "allocations"
        if rule in rules.scales:
            return "scales"
        if rule in rules.brackets:
            return "brackets"
    return leg_kind(leg) or "allocations"


def _order_view(order: WorkingOrder) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "order_ref": order.order_ref,
        "symbol": order.symbol,
        "action": order.action,
        "type": order.order_type,
        "quantity": order.total_quantity,
        "filled": order.filled,
        "limit": order.limit_price,
        "aux": order.aux_price,
        "status": order.status,
    }


class IbBrokerSession:
    """``BrokerSession`` over the IB adapter and the journal (see the module docstring)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str | None = None,
        port: int | None = None,
        clock: Callable[[], datetime] = utc_now,
        ack_timeout: float = ACK_TIMEOUT_SECONDS,
        open_broker: Callable[[RuleSet, Journal], Broker] | None = None,
    ) -> None:
        """``open_broker`` connects a broker for the rules (default: the IB adapter at the
        rules' gateway, or at ``host``/``port``); tests pass an in-memory one."""
        self.events = SessionEvents()
        self._open_broker = open_broker or self._open_ib
        self._state_dir = state_dir
        self._host = host
        self._port = port
        self._clock = clock
        # One gateway clock for the session, shared by each connection's adapter: its offset
        # outlives a disconnect, so the daemon's trading day never falls back to the host's.
        self._market_clock = MarketClock()
        self._ack_timeout = ack_timeout
        self._thread = BrokerThread()
        self._daemon_loop: asyncio.AbstractEventLoop | None = None
        self._journal: Journal | None = None
        self._adapter: Broker | None = None
        self._rules: RuleSet | None = None
        self._status: dict[str, Any] = {}
        # Executions come again in every reqExecutions answer: only a new exec id is a fill.
        self._seen_exec_ids: set[str] = set()
        # The newest journaled intent id seen, so each pass reads only the intents it added.
        self._newest_intent_id = 0
        # Counts each connection's adapter keeps, summed over the connections (metrics).
        self._messages_sent = _AcrossConnections(lambda adapter: adapter.messages_sent)
        self._mismatches = _AcrossConnections(lambda adapter: adapter.state_mismatches)
        # (action, rule kind) of every order action the pass in progress journaled and sent.
        self._sent_actions: list[tuple[str, str]] = []
        # Targets files keep their last good version across passes (like the rules).
        self._targets_files = TargetsFiles()
        self._targets_problems: dict[str, str] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        self._daemon_loop = asyncio.get_running_loop()
        self._thread.start()
        # The journal stamps its records on the gateway's clock: the trading day of an entry
        # that ended (daily re-entry), of a rejection or of an order action is the gateway's.
        self._journal = await self._thread.submit(
            lambda: Journal.open(self._state_dir, clock=self.market_now)
        )

    async def close(self) -> None:
        def close_all() -> None:
            self._disconnect()
            if self._journal is not None:
                self._journal.close()
                self._journal = None

        # When a stuck job keeps this from running, the caller's timeout cancels it and the
        # (daemon) thread ends with the process: every journal commit is already durable.
        await self._thread.submit(close_all)
        await asyncio.to_thread(self._thread.stop, 5.0)

    def _emit(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._daemon_loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback, *args)

    # --- durable daemon state ----------------------------------------------------------------

    def _journal_or_fail(self) -> Journal:
        if self._journal is None:
            raise RuntimeError("the journal is not open")
        return self._journal

    async def load_safety(self) -> SafetyState:
        return await self._thread.submit(lambda: read_safety(self._journal_or_fail()))

    async def save_safety(self, state: SafetyState) -> None:
        await self._thread.submit(lambda: write_safety(self._journal_or_fail(), state))

    async def load_rebalance_window(self) -> OpenWindow | None:
        journal = self._journal_or_fail()
        saved = await self._thread.submit(lambda: journal.get_state(REBALANCE_WINDOW_KEY))
        return None if saved is None else OpenWindow.from_json(saved)

    async def save_rebalance_window(self, window: OpenWindow | None) -> None:
        def save() -> None:
            journal = self._journal_or_fail()
            if window is None:
                journal.delete_state(REBALANCE_WINDOW_KEY)
            else:
                journal.set_state(REBALANCE_WINDOW_KEY, window.to_json())

        await self._thread.submit(save)

    async def accept_targets(self, rule: str) -> str:
        def accept() -> str:
            journal = self._journal_or_fail()
            return accept_pending(journal, rule, self._clock()).line()

        return await self._thread.submit(accept)

    async def release(self, rule: str, reason: str) -> LedgerRelease:
        return await self._thread.submit(lambda: self._journal_or_fail().release(rule, reason))

    async def record_generation(self, generation: str) -> None:
        await self._thread.submit(lambda: self._journal_or_fail().record_generation(generation))

    # --- connection --------------------------------------------------------------------------

    def address(self, rule_set: RuleSet) -> str:
        gateway = rule_set.gateway
        return f"{self._host or gateway.host}:{self._port or gateway.port}"

    async def connect(self, rule_set: RuleSet) -> None:
        await self._thread.submit(lambda: self._connect(rule_set))

    async def disconnect(self) -> None:
        await self._thread.submit(self._disconnect)

    def market_now(self) -> datetime:
        return self._market_clock.now(self._clock())

    async def measure_clock(self) -> None:
        await self._thread.submit(self._measure_clock)

    def _measure_clock(self) -> None:
        adapter = self._adapter
        if adapter is not None and adapter.connected and adapter.can_send:
            adapter.sync_clock()

    def _connect(self, rules: RuleSet) -> None:
        self._disconnect()
        # A fresh broker per connection: a new session id tells the journal's resync which
        # intents were sent before the drop.
        journal = self._journal_or_fail()
        adapter = self._open_broker(rules, journal)
        # Journal first: the tracker hears each update before the daemon does.
        tracker_for(adapter, journal, rejected=self._on_rejected)
        adapter.listen(lambda update: self._on_update(adapter, update))
        self._adapter = adapter
        self._rules = rules

    def _open_ib(self, rules: RuleSet, journal: Journal) -> Broker:
        settings = connection_settings(
            rules,
            readonly=False,
            host=self._host,
            port=self._port,
            stream_quotes=True,
            live_state=True,
        )
        adapter = IbAdapter(settings, journal)
        adapter.market_clock = self._market_clock
        # The tracker listens before the connection opens: every update is journaled.
        tracker_for(adapter, journal, rejected=self._on_rejected)
        try:
            adapter.connect()
        except BaseException:
            adapter.disconnect()
            raise
        return adapter

    def _disconnect(self) -> None:
        adapter, self._adapter = self._adapter, None
        if adapter is not None:
            adapter.disconnect()
            self._messages_sent.close(adapter)
            self._mismatches.close(adapter)

    def _on_update(self, adapter: Broker, update: BrokerUpdate) -> None:
        """The broker's updates, as the daemon's session events (on the daemon's loop)."""
        if adapter is not self._adapter:
            # A closed connection's last words: the daemon disconnected it on purpose.
            return
        if isinstance(update, Disconnected):
            self._emit(self.events.disconnected)
        elif isinstance(update, LinkUpdate):
            if update.up:
                self._emit(self.events.link_restored, update.data_lost)
            else:
                self._emit(self.events.link_lost)
        elif isinstance(update, ExecutionUpdate):
            self._on_execution(update.execution)
        elif isinstance(update, ErrorUpdate) and update.code == PACING_VIOLATION:
            # IB dropped a message and does not say which: a pass reads afresh and re-plans.
            self._emit(self.events.order_event, "pacing-error")
        elif isinstance(update, OrderStatusUpdate) and (
            order_ended(update.status) or update.status == REJECTION_STATUS
        ):
            # An Inactive order may have just been rejected: worth a look either way.
            self._emit(self.events.order_event, f"order-{update.status.lower()}")

    def _on_rejected(self, order_ref: str | None, code: int, text: str) -> None:
        rule, _, _ = parse_order_ref(order_ref) or (None, None, None)
        self._emit(self.events.order_rejected, rule, code, text)

    def _on_execution(self, execution: RecordedExecution) -> None:
        # Executions come again in every executions answer: only a new exec id is a fill.
        if execution.exec_id in self._seen_exec_ids:
            return
        self._seen_exec_ids.add(execution.exec_id)
        rule, _, leg = parse_order_ref(execution.order_ref) or (None, None, None)
        log.info(
            "fill: %s %s %s @ %s",
            execution.side,
            execution.shares,
            execution.symbol,
            execution.price,
            extra={
                "rule": rule,
                "leg": leg,
                "order_id": execution.order_id,
                "order_ref": execution.order_ref,
                "exec_id": execution.exec_id,
            },
        )
        self._emit(self.events.order_event, FILL_TRIGGER)
        if rule is not None:
            what = f"{execution.side} {execution.shares:g} {execution.symbol} @ {execution.price}"
            self._emit(self.events.order_filled, rule, what)

    # --- the pass ----------------------------------------------------------------------------

    def _connected_adapter(self) -> Broker:
        # The adapter holds every message while IB's link is down (1100), so a request made then
        # would wait for the 1102: don't start one.
        adapter = self._adapter
        if adapter is None or not adapter.connected:
            raise ConnectionError("not connected to the gateway")
        if not adapter.can_send:
            raise ConnectionError("the gateway lost its connection to IB (1100)")
        return adapter

    async def resync(self, rule_set: RuleSet) -> None:
        await self._thread.submit(self._resync)

    def _resync(self) -> None:
        adapter = self._connected_adapter()
        journal = self._journal_or_fail()
        day_start = trading_day_start(adapter.market_now(self._clock()))
        for transition in resync(adapter, journal, day_start):
            intent = journal.intent(transition.intent_id)
            log.info(
                "resync: %s (%s %s) is %s (%s)",
                intent.order_ref or intent.key,
                intent.action,
                intent.symbol,
                transition.state,
                transition.note,
                extra={"order_ref": intent.order_ref, "intent_key": intent.key},
            )

    async def reconcile(self, rule_set: RuleSet, context: PassContext) -> PassSummary:
        return await self._thread.submit(lambda: self._reconcile(rule_set, context))

    def _reconcile(self, rules: RuleSet, context: PassContext) -> PassSummary:
        adapter = self._connected_adapter()
        journal = self._journal_or_fail()
        self._rules = rules
        self._sent_actions = []
        hooks = PassHooks(
            may_send=context.may_send,
            abandon=context.abandon,
            breaker=lambda observed, now: self._check_breaker(rules, observed, journal, now),
            allocations_due=context.allocations_due,
            targets_files=self._targets_files,
            on_sources=self._report_targets_problems,
            on_planned=lambda observed, plan: self._planned(journal, rules, observed, plan),
            on_sent=self._log_actions,
            clock_reuse=clock_reuse(context.reasons),
        )
        result = reconcile_pass(
            rules,
            adapter,
            journal,
            clock=self._clock,
            confirm=None,
            act=True,
            ack_timeout=self._ack_timeout,
            trigger=",".join(sorted(context.reasons)),
            halted=context.halted,
            hooks=hooks,
        )
        if result.plan.actionable:
            self._remember_working(adapter)
        observed, plan = result.observed, result.plan
        for problem in result.problems:
            log.warning("not sent: %s", problem)
        for error in result.progress.errors:
            log.warning("order error: %s", error)
        if result.pacing_violations:
            log.warning(
                "the gateway reported %d pacing violation(s) (IB error 100) during this pass",
                result.pacing_violations,
            )
        day_start = trading_day_start(result.now or self._clock())
        efficiency = journal.order_efficiency(day_start)
        if result.progress.sent and efficiency.too_high:
            log.warning(
                "%s: today tradectl sends far more order actions than it gets fills; widen "
                "drift bands or limit offsets so working orders are not repriced so often",
                efficiency.line(),
            )
        facts = PassFacts(
            sent=tuple(self._sent_actions),
            blocked=tuple((intent.action, intent.kind) for intent in plan.blocked),
            drift=allocation_drift(rules, observed),
            order_efficiency_ratio=efficiency.ratio,
        )
        return PassSummary(
            planned=len(plan.intents),
            sent=result.progress.sent,
            blocked=len(plan.blocked),
            problems=tuple(result.problems + result.progress.errors),
            stopped_early=result.stopped_early,
            notes=result.broker_notes + plan.notes,
            net_liquidation=observed.net_liquidation,
            breaker_tripped=result.breaker_tripped,
            facts=facts,
            allocation_work_left=allocation_work_left(rules, observed, plan),
            session_close=allocation_session_close(rules, observed, result.now or self._clock()),
        )

    def _report_targets_problems(self, sources: Mapping[str, TargetsSource]) -> None:
        for rule, source in sources.items():
            if source.problem is not None and self._targets_problems.get(rule) != source.problem:
                log.error("targets file of allocations.%s: %s", rule, source.problem)
        self._targets_problems = {
            rule: source.problem for rule, source in sources.items() if source.problem
        }

    def _planned(self, journal: Journal, rules: RuleSet, observed: Observed, plan: Plan) -> None:
        self._remember(observed, plan, orphaned_protections(journal, rules))
        adapter = self._adapter
        if adapter is not None:
            clock = adapter.market_clock
            self._status = {
                **self._status,
                "gateway_clock_offset_seconds": clock.offset.total_seconds(),
                "clock_warning": clock.describe() if clock.skewed else None,
                "live_state": {
                    "full_reads": adapter.full_reads,
                    "mismatches": adapter.state_mismatches,
                },
            }
        for intent in plan.blocked:
            log.debug(
                "blocked: %s",
                intent.reason,
                extra={"rule": intent.rule, "leg": intent.leg, "blocked_by": intent.blocked_by},
            )

    def _check_breaker(
        self, rules: RuleSet, observed: Observed, journal: Journal, now: datetime
    ) -> str | None:
        """Trip and journal the daily-loss breaker before anything is planned."""
        if observed.breaker_tripped:
            return None
        reason = breaker_reason(observed, rules.risk.max_daily_loss_fraction)
        if reason is None:
            return None
        journal.set_state(BREAKER_REASON_KEY, reason)
        journal.set_state(BREAKER_KEY, trading_day(now).isoformat())
        return reason

    def _log_actions(self, group: Sequence[Intent], journaled: Sequence[JournaledIntent]) -> None:
        """Log the order actions of ``group``, and count those that were journaled (and so
        handed to the broker) for the pass's facts."""
        by_key = {entry.key: entry for entry in journaled}
        for intent in group:
            entry = by_key.get(intent.key)
            if entry is not None:
                self._sent_actions.append((intent.action, intent.kind))
            order = intent.order
            what = (
                f"{order.action} {order.quantity} {order.symbol} {order.order_type}"
                if order is not None
                else intent.symbol
            )
            log.info(
                "%s %s: %s",
                intent.action,
                what,
                intent.reason,
                extra={
                    "rule": intent.rule,
                    "leg": intent.leg,
                    "order_id": entry.order_id if entry is not None else intent.order_id,
                    "order_ref": entry.order_ref if entry is not None else None,
                    "limit": order.limit_price if order is not None else None,
                    "aux": order.aux_price if order is not None else None,
                },
            )

    # --- halt --cancel -----------------------------------------------------------------------

    async def cancel_owned_orders(self, may_send: Callable[[], bool]) -> list[dict[str, Any]]:
        return await self._thread.submit(lambda: self._cancel_owned(may_send))

    def _cancel_owned(self, may_send: Callable[[], bool]) -> list[dict[str, Any]]:
        adapter = self._connected_adapter()
        journal = self._journal_or_fail()
        # Rare and meant to leave nothing working: it trusts no streamed state.
        adapter.suspect("tradectl halt --cancel reads every order afresh")
        resync(adapter, journal, trading_day_start(adapter.market_now(self._clock())))
        working = adapter.working_orders()
        client_id = adapter.client_id
        owned = [order for order in working if order.owned]
        cancellable = [order for order in owned if order.client_id == client_id]
        for order in owned:
            if order.client_id != client_id:
                log.warning(
                    "cannot cancel order %d: placed by client id %d, IB lets only that client "
                    "cancel it",
                    order.order_id,
                    order.client_id,
                    extra={"order_id": order.order_id, "order_ref": order.order_ref},
                )
        groups = [[self._cancel_intent(order)] for order in cancellable]
        if groups and may_send():
            by_id = {order.order_id: order for order in cancellable}
            sender = Sender(adapter, journal, contracts={}, working=by_id, pass_id=None)
            problems = sender.execute(groups)
            for problem in problems:
                log.warning("not cancelled: %s", problem)
            for order in cancellable:
                log.warning(
                    "cancel %s %s %s: tradectl halt --cancel",
                    order.action,
                    order.remaining,
                    order.symbol,
                    extra={
                        "rule": order.rule,
                        "leg": order.leg,
                        "order_id": order.order_id,
                        "order_ref": order.order_ref,
                    },
                )
            tracker = tracker_for(adapter, journal)
            adapter.run_until(lambda: tracker.answered, CANCEL_ACK_TIMEOUT_SECONDS)
        self._remember_working(adapter)
        return [_order_view(order) for order in cancellable]

    def _cancel_intent(self, order: WorkingOrder) -> Intent:
        return Intent(
            key=f"halt-cancel:{order.client_id}:{order.order_id}",
            action="cancel",
            kind=_kind_of(self._rules, order),
            rule=order.rule or "",
            leg=order.leg or "",
            symbol=order.symbol,
            purpose="closing",
            reason="tradectl halt --cancel",
            order_id=order.order_id,
            current_quantity=order.remaining,
        )

    # --- status ------------------------------------------------------------------------------

    def _remember(self, observed: Observed, plan: Plan, orphaned: list[str]) -> None:
        # Replaced as a whole: the daemon's thread reads it without locking.
        self._status = {
            "orphaned_protections": orphaned,
            "targets_files": decision_views(plan),
            "account": observed.account_id,
            "net_liquidation": observed.net_liquidation,
            "day_start_nav": observed.day_start_nav,
            "daily_pnl": observed.daily_pnl,
            "cash": observed.cash,
            "positions": {
                symbol: position.quantity for symbol, position in observed.positions.items()
            },
            "working_owned_orders": [_order_view(order) for order in observed.owned_orders],
            "manual_orders": len(observed.manual_orders),
            "fills_today": [
                {
                    "time": execution.time.isoformat(),
                    "symbol": execution.symbol,
                    "side": execution.side,
                    "shares": execution.shares,
                    "price": execution.price,
                    "order_id": execution.order_id,
                    "order_ref": execution.order_ref,
                }
                for execution in observed.executions
            ],
            "observed_at": self._clock().isoformat(),
        }

    def _remember_working(self, adapter: Broker) -> None:
        if not adapter.can_send:
            return
        owned = [order for order in adapter.working_orders() if order.owned]
        self._status = {**self._status, "working_owned_orders": [_order_view(o) for o in owned]}

    def status(self) -> dict[str, Any]:
        return self._status

    def pacer_waiting(self) -> int:
        adapter = self._adapter
        return 0 if adapter is None else adapter.pacer_waiting

    def messages_sent(self) -> int:
        return self._messages_sent.total(self._adapter)

    def live_state_mismatches(self) -> int:
        return self._mismatches.total(self._adapter)


class _AcrossConnections:
    """A count each connection's adapter keeps, summed over the connections closed so far and
    the current one, for a Prometheus counter. It is read from the metrics thread while a
    disconnect moves an adapter's count into ``_closed``: it never reports less than before
    (a counter only goes up)."""

    def __init__(self, read: Callable[[Broker], int]) -> None:
        self._read = read
        self._closed = 0
        self._reported = 0

    def close(self, adapter: Broker) -> None:
        self._closed += self._read(adapter)

    def total(self, current: Broker | None) -> int:
        count = self._closed + (0 if current is None else self._read(current))
        self._reported = max(self._reported, count)
        return self._reported


def orphaned_protections(journal: Journal, rules: RuleSet) -> list[str]:
    """The removed bracket rules whose entered shares are still held and protected, until
    `tradectl release` (docs/planning.md, "Orphaned protections and release")."""
    ledgers = rule_ledgers(journal.ledger(), journal.releases(), list(rules.brackets))
    return [line.rule for line in ledgers if line.orphaned]


def read_safety(journal: Journal) -> SafetyState:
    halt = journal.get_state(HALT_KEY)
    breaker_day = journal.get_state(BREAKER_KEY)
    halt_details: dict[str, str] = {}
    if halt is not None:
        try:
            halt_details = json.loads(halt)
        except ValueError:
            halt_details = {"reason": halt}
    return SafetyState(
        halted=halt is not None,
        halt_reason=str(halt_details.get("reason", "")),
        halted_at=str(halt_details.get("at", "")),
        breaker_day=datetime.fromisoformat(breaker_day).date() if breaker_day else None,
        breaker_reason=journal.get_state(BREAKER_REASON_KEY) or "",
    )


def write_safety(journal: Journal, state: SafetyState) -> None:
    """Journal halt and breaker state. Clearing a tripped breaker also moves the breaker's
    reference to the next observation (the day's first NAV is dropped; the daily P&L at that
    moment is recorded): otherwise the loss that tripped it would block opening orders again
    at once. The day is the journal's: the gateway's in the daemon, the host's for `halt` and
    `resume` run without one."""
    previous = read_safety(journal)
    if state.halted:
        details = {"reason": state.halt_reason, "at": state.halted_at}
        journal.set_state(HALT_KEY, json.dumps(details))
    elif previous.halted:
        journal.delete_state(HALT_KEY)
    if state.breaker_day is not None:
        journal.set_state(BREAKER_REASON_KEY, state.breaker_reason)
        journal.set_state(BREAKER_KEY, state.breaker_day.isoformat())
    elif previous.breaker_day is not None:
        journal.delete_state(BREAKER_KEY)
        journal.delete_state(BREAKER_REASON_KEY)
        day = trading_day_start(journal.now).date().isoformat()
        journal.delete_state(DAY_START_NAV_PREFIX + day)
        journal.set_state(PNL_AT_RESUME_PREFIX + day, RESUME_PENDING)


def allocation_session_close(rules: RuleSet, observed: Observed, now: datetime) -> datetime | None:
    """The earliest close, among the allocations' symbols, of the regular session open now or
    next: the default end of a rebalance window."""
    if observed.market_hours is None:
        return None
    symbols = allocation_symbols(rules, observed.targets_sources)
    closes = [
        close
        for symbol in symbols
        if (hours := observed.market_hours.get(symbol)) is not None
        and (close := session_close(hours, now)) is not None
    ]
    return min(closes, default=None)


def allocation_work_left(rules: RuleSet, observed: Observed, plan: Plan) -> bool:
    """The allocation has not converged: the plan still has allocation intents (held, blocked
    or to send), or allocation orders are still working at the broker."""
    return any(intent.kind == "allocations" for intent in plan.intents) or any(
        order.rule in rules.allocations for order in observed.owned_orders
    )
