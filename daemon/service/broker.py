"""The daemon's broker session: the IB adapter and the journal on one dedicated thread.

ib_insync's synchronous API drives its own event loop (``run_until_complete``), which cannot
nest inside the daemon's running loop; and one SQLite connection must not run two transactions
at once. So the adapter and the journal live on a single broker thread with its own loop. The
daemon submits jobs (connect, resync, a pass, a cancel, a journal write) that run there one at a
time; between jobs the thread keeps the broker loop running so that ib_insync reads the socket
and fires events, which are handed back to the daemon's loop.

The pass is ``tradectl.runtime.reconcile``'s building blocks in the daemon's order, with three
additions: the daily-loss breaker is checked and journaled before planning, allocations follow
the rebalance window, and each group of intents is journaled only when the pacer has sent the
previous one, asking ``may_send`` first, so a halt, a dropped link or SIGTERM stops a long pass
within one order and the journal never runs ahead of the wire.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from tradectl.ib import AdapterError, IbAdapter
from tradectl.ib_codes import LINK_LOST, LINK_RESTORED_CODES, LINK_RESTORED_DATA_LOST
from tradectl.journal import Journal, LedgerRelease, utc_now
from tradectl.journal.keys import (
    BREAKER_KEY,
    BREAKER_REASON_KEY,
    DAY_START_NAV_PREFIX,
    HALT_KEY,
    PNL_AT_RESUME_PREFIX,
    RESUME_PENDING,
)
from tradectl.journal.lifecycle import REJECTION_STATUS, order_ended
from tradectl.ledger_view import rule_ledgers
from tradectl.planner.breaker import breaker_reason
from tradectl.planner.domain import Intent, Observed, Plan, WorkingOrder
from tradectl.planner.legs import leg_kind, parse_order_ref
from tradectl.planner.market_time import session_close
from tradectl.runtime.account_sample import record_account_sample
from tradectl.runtime.reconcile import (
    build_observed,
    observed_symbols,
    plan_pass,
    remember_reconstructions,
    sending_groups,
)
from tradectl.runtime.session import connection_settings
from tradectl.runtime.targets_file import TargetsFiles, allocation_symbols
from tradectl.runtime.targets_journal import accept_pending, decision_views, record_decisions
from tradectl.schemas.models import RuleKind, RuleSet
from tradectl.timezones import trading_day, trading_day_start

from .engine import PassContext, PassSummary, SessionEvents
from .safety import SafetyState
from .telemetry import PassFacts, allocation_drift

log = logging.getLogger("tradectl.daemon")

T = TypeVar("T")

ACK_TIMEOUT_SECONDS = 30.0
# While stopping, acknowledgements are awaited only briefly: the next start adopts the rest.
ACK_TIMEOUT_STOPPING_SECONDS = 1.0
CANCEL_ACK_TIMEOUT_SECONDS = 10.0
_DRAIN_STEP_SECONDS = 0.005


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


def _tap(target: Any, name: str, observer: Callable[..., None]) -> None:
    original = getattr(target, name)

    def tapped(*args: Any) -> None:
        try:
            original(*args)
        finally:
            observer(*args)

    setattr(target, name, tapped)


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
    ) -> None:
        self.events = SessionEvents()
        self._state_dir = state_dir
        self._host = host
        self._port = port
        self._clock = clock
        self._ack_timeout = ack_timeout
        self._thread = BrokerThread()
        self._daemon_loop: asyncio.AbstractEventLoop | None = None
        self._journal: Journal | None = None
        self._adapter: IbAdapter | None = None
        self._rules: RuleSet | None = None
        self._status: dict[str, Any] = {}
        # Executions come again in every reqExecutions answer: only a new exec id is a fill.
        self._seen_exec_ids: set[str] = set()
        # The newest journaled intent id seen, so each pass reads only the intents it added.
        self._newest_intent_id = 0
        # Messages written by the adapters of earlier connections (metrics).
        self._messages_sent_before = 0
        self._messages_reported = 0
        # (action, rule kind) of every order action the pass in progress journaled and sent.
        self._sent_actions: list[tuple[str, str]] = []
        # Targets files keep their last good version across passes (like the rules).
        self._targets_files = TargetsFiles()
        self._targets_problems: dict[str, str] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        self._daemon_loop = asyncio.get_running_loop()
        self._thread.start()
        self._journal = await self._thread.submit(lambda: Journal.open(self._state_dir))

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

    def _connect(self, rules: RuleSet) -> None:
        self._disconnect()
        settings = connection_settings(rules, readonly=False, host=self._host, port=self._port)
        # A fresh adapter per connection: a new session id tells the journal's resync which
        # intents were sent before the drop.
        adapter = IbAdapter(settings, self._journal, rejected=self._on_rejected)
        wrapper = adapter.ib.wrapper
        _tap(wrapper, "error", self._on_error)
        _tap(wrapper, "execDetails", self._on_exec_details)
        _tap(wrapper, "orderStatus", self._on_order_status)
        try:
            adapter.connect()
        except BaseException:
            adapter.disconnect()
            raise
        adapter.ib.disconnectedEvent += self._on_disconnected
        self._adapter = adapter
        self._rules = rules

    def _disconnect(self) -> None:
        adapter, self._adapter = self._adapter, None
        if adapter is not None:
            adapter.ib.disconnectedEvent -= self._on_disconnected
            adapter.disconnect()
            self._messages_sent_before += adapter.messages_sent

    def _on_disconnected(self) -> None:
        self._emit(self.events.disconnected)

    def _on_rejected(self, order_ref: str | None, code: int, text: str) -> None:
        rule, _, _ = parse_order_ref(order_ref) or (None, None, None)
        self._emit(self.events.order_rejected, rule, code, text)

    def _on_error(self, req_id: int, code: int, text: str, *rest: Any) -> None:
        if code == LINK_LOST:
            self._emit(self.events.link_lost)
        elif code in LINK_RESTORED_CODES:
            self._emit(self.events.link_restored, code == LINK_RESTORED_DATA_LOST)

    def _on_exec_details(self, req_id: int, contract: Any, execution: Any) -> None:
        if execution.execId in self._seen_exec_ids:
            return
        self._seen_exec_ids.add(execution.execId)
        rule, _, leg = parse_order_ref(execution.orderRef) or (None, None, None)
        log.info(
            "fill: %s %s %s @ %s",
            execution.side,
            execution.shares,
            contract.symbol,
            execution.price,
            extra={
                "rule": rule,
                "leg": leg,
                "order_id": execution.orderId,
                "order_ref": execution.orderRef or None,
                "exec_id": execution.execId,
            },
        )
        self._emit(self.events.order_event, "fill")
        if rule is not None:
            what = f"{execution.side} {execution.shares:g} {contract.symbol} @ {execution.price}"
            self._emit(self.events.order_filled, rule, what)

    def _on_order_status(self, order_id: int, status: str, *rest: Any) -> None:
        # An Inactive order may have just been rejected: worth a look either way.
        if order_ended(status) or status == REJECTION_STATUS:
            self._emit(self.events.order_event, f"order-{status.lower()}")

    # --- the pass ----------------------------------------------------------------------------

    def _connected_adapter(self) -> IbAdapter:
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
        for transition in adapter.resync(trading_day_start(self._clock())):
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
        now = adapter.market_now(self._clock())
        generation = rules.generation()
        journal.record_generation(generation)
        pass_id = journal.begin_pass(",".join(sorted(context.reasons)), generation)
        adapter.start_pass()
        try:
            return self._observe_plan_act(adapter, journal, rules, context, pass_id, now)
        except Exception as exc:
            # A dropped connection mid-pass, say: the journal shows the pass ended and why.
            journal.finish_pass(
                pass_id,
                planned=0,
                blocked=0,
                sent=adapter.progress.sent,
                outcome="failed",
                detail=f"{type(exc).__name__}: {exc}",
            )
            raise

    def _observe_plan_act(
        self,
        adapter: IbAdapter,
        journal: Journal,
        rules: RuleSet,
        context: PassContext,
        pass_id: int,
        now: datetime,
    ) -> PassSummary:
        pacing_before = adapter.pacing_violations
        day_start = trading_day_start(now)
        adapter.resync(day_start)
        sources = self._targets_files.sources(rules)
        for rule, source in sources.items():
            if source.problem is not None and self._targets_problems.get(rule) != source.problem:
                log.error("targets file of allocations.%s: %s", rule, source.problem)
        self._targets_problems = {
            rule: source.problem for rule, source in sources.items() if source.problem
        }
        state = adapter.observe(observed_symbols(rules, sources), day_start)
        observed = build_observed(rules, state, journal, now, sources)
        remember_reconstructions(journal, observed, now)
        tripped = self._check_breaker(rules, observed, journal, now)
        observed = replace(
            observed,
            breaker_tripped=observed.breaker_tripped or tripped is not None,
            halted=observed.halted or context.halted,
            allocations_due=context.allocations_due,
        )
        plan = plan_pass(rules, observed, journal, now)
        record_decisions(journal, plan, now)
        record_account_sample(journal, rules, observed, plan)
        self._remember(observed, plan, orphaned_protections(journal, rules))
        clock = adapter.market_clock
        self._status = {
            **self._status,
            "gateway_clock_offset_seconds": clock.offset.total_seconds(),
            "clock_warning": clock.describe() if clock.skewed else None,
        }
        for intent in plan.blocked:
            log.debug(
                "blocked: %s",
                intent.reason,
                extra={"rule": intent.rule, "leg": intent.leg, "blocked_by": intent.blocked_by},
            )
        problems: list[str] = []
        stopped_early = False
        self._sent_actions = []
        if plan.actionable:
            stopped_early = self._send(
                adapter, journal, plan, observed, state.qualified, pass_id, context, problems
            )
            self._await_acknowledgements(adapter, context)
            self._remember_working(adapter)
        outcome = "stopped early" if stopped_early else ("sent" if plan.actionable else "converged")
        journal.finish_pass(
            pass_id,
            planned=len(plan.intents),
            blocked=len(plan.blocked),
            sent=adapter.progress.sent,
            outcome=outcome,
            detail="; ".join(problems + adapter.progress.errors),
        )
        for problem in problems:
            log.warning("not sent: %s", problem)
        for error in adapter.progress.errors:
            log.warning("order error: %s", error)
        if adapter.pacing_violations > pacing_before:
            log.warning(
                "the gateway reported %d pacing violation(s) (IB error 100) during this pass",
                adapter.pacing_violations - pacing_before,
            )
        efficiency = journal.order_efficiency(day_start)
        if adapter.progress.sent and efficiency.too_high:
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
            sent=adapter.progress.sent,
            blocked=len(plan.blocked),
            problems=tuple(problems + adapter.progress.errors),
            stopped_early=stopped_early,
            notes=state.notes + plan.notes,
            net_liquidation=observed.net_liquidation,
            breaker_tripped=tripped,
            facts=facts,
            allocation_work_left=allocation_work_left(rules, observed, plan),
            session_close=allocation_session_close(rules, observed, now),
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

    def _send(
        self,
        adapter: IbAdapter,
        journal: Journal,
        plan: Plan,
        observed: Observed,
        contracts: Any,
        pass_id: int,
        context: PassContext,
        problems: list[str],
    ) -> bool:
        """Journal and send the actionable intents group by group, collecting what could not be
        sent in ``problems``; True when stopped early."""
        # Order ids are per client: should another client's owned order share an id, ours wins.
        ours = adapter.settings.client_id
        working = {
            order.order_id: order
            for order in sorted(observed.owned_orders, key=lambda order: order.client_id == ours)
        }
        last_intent = self._catch_up_intents(journal)
        # Each journaled intent is one message on the wire; ``written`` counts how many the
        # pacer must have written before the next group is journaled.
        written = adapter.progress.sent
        for group in sending_groups(plan.actionable):
            if not self._drain(adapter, context, written):
                return True
            if not context.may_send():
                return True
            try:
                problems += adapter.execute(
                    [group], contracts=contracts, working=working, pass_id=pass_id
                )
            except AdapterError as exc:
                problems.append(str(exc))
                return True
            last_intent, journaled = self._log_actions(journal, group, last_intent)
            self._newest_intent_id = last_intent
            written += journaled
        return not self._drain(adapter, context, written)

    def _catch_up_intents(self, journal: Journal) -> int:
        """The newest intent id in the journal (other writers: halt --cancel, earlier runs)."""
        newer = journal.intents(since_id=self._newest_intent_id)
        if newer:
            self._newest_intent_id = newer[-1].id
        return self._newest_intent_id

    def _drain(self, adapter: IbAdapter, context: PassContext, written: int) -> bool:
        """Run the connection until the pacer has written ``written`` order messages in all;
        False when the link went down or shutdown began first."""
        while adapter.progress.sent < written:
            if not adapter.can_send or context.abandon():
                return False
            adapter.ib.sleep(_DRAIN_STEP_SECONDS)
        return True

    def _log_actions(self, journal: Journal, group: list[Intent], after_id: int) -> tuple[int, int]:
        """Log the order actions of ``group`` that were journaled; returns the newest intent id
        and how many were journaled."""
        journaled = {entry.key: entry for entry in journal.intents(since_id=after_id)}
        newest = max((entry.id for entry in journaled.values()), default=after_id)
        for intent in group:
            entry = journaled.get(intent.key)
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
        return newest, len(journaled)

    def _await_acknowledgements(self, adapter: IbAdapter, context: PassContext) -> None:
        started = self._thread.loop.time()
        while not adapter.wait(0.25):
            if not adapter.can_send:
                # Disconnected, or IB's 1100: nothing moves until the link is back, and the
                # pass after the reconnect (or 1102) resyncs what was sent.
                return
            limit = ACK_TIMEOUT_STOPPING_SECONDS if context.abandon() else self._ack_timeout
            if self._thread.loop.time() - started >= limit:
                log.warning(
                    "order actions not acknowledged after %.0fs; they stay in flight in the "
                    "journal and are matched with the broker at the next pass",
                    limit,
                )
                return

    # --- halt --cancel -----------------------------------------------------------------------

    async def cancel_owned_orders(self, may_send: Callable[[], bool]) -> list[dict[str, Any]]:
        return await self._thread.submit(lambda: self._cancel_owned(may_send))

    def _cancel_owned(self, may_send: Callable[[], bool]) -> list[dict[str, Any]]:
        adapter = self._connected_adapter()
        adapter.resync(trading_day_start(self._clock()))
        working = adapter.working_orders()
        client_id = adapter.settings.client_id
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
            problems = adapter.execute(groups, contracts={}, working=by_id, pass_id=None)
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
            adapter.wait(CANCEL_ACK_TIMEOUT_SECONDS)
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

    def _remember_working(self, adapter: IbAdapter) -> None:
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
        adapter = self._adapter
        current = self._messages_sent_before + (0 if adapter is None else adapter.messages_sent)
        # Read from the metrics thread while a disconnect moves an adapter's count into
        # ``_messages_sent_before``: never report less than before (a counter only goes up).
        self._messages_reported = max(self._messages_reported, current)
        return self._messages_reported


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
    at once."""
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
