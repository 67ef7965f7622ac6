"""One reconcile pass: connect → resync → observe → plan → gate → act → record
(docs/planning.md, docs/apply.md).

``tradectl apply`` runs one pass; ``tradectl plan`` runs one without acting; the daemon
(``tradectl run``) calls ``reconcile_pass`` once per pass on a connection it keeps open, with
the hooks it needs (``PassHooks``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from time import monotonic

from tradectl.broker_types import BrokerState, Progress
from tradectl.journal import Journal, JournaledIntent, RecordedExecution, Transition
from tradectl.journal.keys import (
    BREAKER_KEY,
    DAY_START_NAV_PREFIX,
    HALT_KEY,
    PNL_AT_RESUME_PREFIX,
    RESUME_PENDING,
)
from tradectl.market_clock import NO_REUSE
from tradectl.planner import plan as make_plan
from tradectl.planner.brackets import reconstructed_entries
from tradectl.planner.breaker import previous_close_equity, since_resume
from tradectl.planner.common import Book
from tradectl.planner.domain import (
    Execution,
    Intent,
    Observed,
    Plan,
    TargetsSource,
    WorkingOrder,
)
from tradectl.planner.gate import recheck_cash
from tradectl.planner.legs import parse_order_ref
from tradectl.runtime.account_sample import record_account_sample
from tradectl.runtime.acting import NotSent, Sender, resync
from tradectl.runtime.broker import Broker
from tradectl.runtime.targets_file import TargetsFiles, targets_symbols
from tradectl.runtime.targets_journal import accepted_targets, record_decisions
from tradectl.runtime.tracking import OrderTracker, tracker_for
from tradectl.schemas.models import RuleSet, Side
from tradectl.timezones import TRADING_TIME_ZONE, trading_day_start

# A rejected intent waits before it is tried again: 1, 2, 4, ... minutes, at most an hour; a rule
# whose orders were rejected this many times today is held until tomorrow.
REJECTION_BACKOFF = timedelta(minutes=1)
REJECTION_BACKOFF_MAX = timedelta(hours=1)
REJECTIONS_PER_RULE_PER_DAY = 5

# A plan confirmed later than this is not acted on: its prices and positions are stale.
PLAN_MAX_AGE = timedelta(seconds=60)


@dataclass
class PassResult:
    plan: Plan
    observed: Observed
    resync: list[Transition] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    sent: int = 0
    acknowledged_in_time: bool = True
    progress: Progress = field(default_factory=Progress)
    notes: tuple[str, ...] = ()
    # What the broker noted while observing (``notes`` adds the pass's own).
    broker_notes: tuple[str, ...] = ()
    # The daily-loss breaker tripped in this pass (``PassHooks.breaker``), with its reason.
    breaker_tripped: str | None = None
    stopped_early: bool = False
    # The pass's "now", on the broker's clock.
    now: datetime | None = None
    # Pacing violations the broker reported during this pass.
    pacing_violations: int = 0
    unresolved: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()
    """The rules' instruments IB resolved, each with its contract (validate --online)."""
    """The rules' instruments that name no contract or several, with IB's candidates: not
    traded (docs/rules.md, "Instruments")."""

    @property
    def rejected(self) -> int:
        return self.progress.rejected


def _loss_reference(
    state: BrokerState, daily_pnl: float, journal: Journal | None, day: str
) -> tuple[float, float]:
    """The daily-loss breaker's baseline and today's P&L from IB's figures
    (daemon/planner/breaker.py): the previous close's equity (PreviousDayEquityWithLoanValue,
    else net liquidation minus the P&L), both moved to the moment of `tradectl resume` when
    the breaker was resumed today."""
    baseline = previous_close_equity(state.net_liquidation, daily_pnl, state.previous_day_equity)
    if journal is None:
        return baseline, daily_pnl
    key = PNL_AT_RESUME_PREFIX + day
    at_resume = journal.get_state(key)
    if at_resume == RESUME_PENDING:
        if not journal.writable:
            return baseline, daily_pnl
        at_resume = repr(daily_pnl)
        journal.set_state(key, at_resume)
    if at_resume is None:
        return baseline, daily_pnl
    return since_resume(baseline, daily_pnl, float(at_resume))


def _first_nav_of_day(journal: Journal, day: str, net_liquidation: float) -> float:
    """The breaker's fallback baseline when IB reports no daily P&L: the first net liquidation
    seen that trading day, journaled so that a restart keeps it."""
    key = DAY_START_NAV_PREFIX + day
    stored = journal.get_state(key)
    if stored is not None:
        return float(stored)
    if journal.writable:
        journal.set_state(key, repr(net_liquidation))
    return net_liquidation


def build_observed(
    rules: RuleSet,
    state: BrokerState,
    journal: Journal | None,
    now: datetime,
    targets_sources: Mapping[str, TargetsSource] | None = None,
) -> Observed:
    """The planner's view: the broker's state plus what only the journal knows (entry fills
    across days and restarts, intents in flight, halt and breaker, the targets each file-fed
    allocation last traded on) and the targets files the runtime read."""
    day = trading_day_start(now).date().isoformat()
    day_start_nav = state.net_liquidation
    daily_pnl = state.daily_pnl
    in_flight: frozenset[str] = frozenset()
    sent_last_minute = 0
    halted = breaker = False
    if daily_pnl is not None:
        day_start_nav, daily_pnl = _loss_reference(state, daily_pnl, journal, day)
    entry_fills: dict[tuple[str, str], float] = {}
    entry_fill_prices: dict[tuple[str, str], float] = {}
    exit_fills: dict[tuple[str, str], float] = {}
    entered_floor: dict[str, float] = {}
    released: frozenset[str] = frozenset()
    unfilled_entry_refs: frozenset[str] = frozenset()
    entries_expired: dict[tuple[str, str], date] = {}
    entries_filled: dict[tuple[str, str], date] = {}
    if journal is not None:
        if daily_pnl is None:
            day_start_nav = _first_nav_of_day(journal, day, state.net_liquidation)
        in_flight = journal.in_flight_keys()
        sent_last_minute = journal.sent_since(now - timedelta(minutes=1))
        halted = journal.get_state(HALT_KEY) is not None
        breaker = journal.get_state(BREAKER_KEY) == day
        # The ledger covers every rule that ever entered, removed ones included, on every day:
        # today's executions only add what the journal has not seen (the planner takes the
        # larger of the two per generation).
        for row in journal.ledger():
            if row.reconstructed:
                entered_floor[row.rule] = row.reconstructed
            key = (row.rule, row.generation)
            if row.entered:
                entry_fills[key] = row.entered
                entry_fill_prices[key] = row.entered_value / row.entered
            if row.exited:
                exit_fills[key] = row.exited
        released = frozenset(release.rule for release in journal.releases())
        unfilled_entry_refs = journal.unfilled_entry_refs()
        for ref, how, ended_at in journal.entries_ended():
            parsed = parse_order_ref(ref)
            if parsed is not None:
                ended = entries_filled if how == "filled" else entries_expired
                key = (parsed.rule, parsed.generation)
                ended_on = trading_day_start(ended_at).date()
                ended[key] = max(ended_on, ended.get(key, ended_on))
    working = state.working_orders
    if journal is not None:
        working += _unconfirmed_orders(journal, working)
    commissions: dict[str, float | None] = {}
    if journal is not None:
        commissions = {ex.exec_id: journal.commission(ex.exec_id) for ex in state.executions}
    return Observed(
        account_id=state.account_id,
        net_liquidation=state.net_liquidation,
        cash=state.cash,
        buying_power=state.buying_power,
        margin_account=state.margin_account,
        day_start_nav=day_start_nav,
        daily_pnl=daily_pnl,
        positions=state.positions,
        working_orders=working,
        executions=tuple(
            _planner_execution(ex, commissions.get(ex.exec_id)) for ex in state.executions
        ),
        quotes=state.quotes,
        contracts=state.contracts,
        entry_fills=entry_fills,
        entry_fill_prices=entry_fill_prices,
        exit_fills=exit_fills,
        in_flight=in_flight,
        entered_floor=entered_floor,
        released=released,
        unfilled_entry_refs=unfilled_entry_refs,
        completed_orders=state.completed_orders,
        entries_expired=entries_expired,
        entries_filled=entries_filled,
        trading_day=trading_day_start(now).date(),
        orders_sent_last_minute=sent_last_minute,
        halted=halted,
        breaker_tripped=breaker,
        targets_sources=targets_sources or {},
        accepted_targets=accepted_targets(journal, list(targets_sources or {})),
        market_hours=state.market_hours,
        base_currency=state.currencies.base_currency,
        cash_balances=state.currencies.cash_balances,
        exchange_rates=state.currencies.exchange_rates,
    )


def _planner_execution(recorded: RecordedExecution, commission: float | None) -> Execution:
    """An execution as the journal recorded it (its side already BUY or SELL), for the planner."""
    side: Side = "BUY" if recorded.side == "BUY" else "SELL"
    return Execution(
        exec_id=recorded.exec_id,
        order_id=recorded.order_id,
        symbol=recorded.symbol,
        side=side,
        shares=recorded.shares,
        price=recorded.price,
        time=recorded.time,
        order_ref=recorded.order_ref,
        perm_id=recorded.perm_id,
        commission=commission,
    )


def observed_symbols(rules: RuleSet, sources: Mapping[str, TargetsSource]) -> list[str]:
    """The symbols a pass needs prices and contracts for: the rules' and their files'."""
    return sorted({*rules.symbols(), *targets_symbols(sources)})


def remember_reconstructions(journal: Journal, observed: Observed, now: datetime) -> None:
    """Write to the ledger the bracket entries IB's order graph proves filled while the journal
    knew nothing of them, so the proof outlives the protective legs that gave it."""
    for found in reconstructed_entries(Book(observed, now)):
        journal.record_reconstruction(found.rule, found.symbol, found.side, found.entered)


def _unconfirmed_orders(
    journal: Journal, at_broker: tuple[WorkingOrder, ...]
) -> tuple[WorkingOrder, ...]:
    """Orders sent but not yet seen at the broker, as working orders in ``PendingSubmit``: the
    planner counts them like any working order (toward positions, cash, a bracket's legs), so a
    lagging broker view never makes it plan the same exposure twice under another key."""
    seen = {(order.client_id, order.order_id) for order in at_broker}
    ids_by_ref = {order.order_ref: order.order_id for order in at_broker if order.order_ref}
    pending = [
        intent
        for intent in journal.unconfirmed_places()
        if intent.order_id is not None and (intent.client_id, intent.order_id) not in seen
    ]
    ids_by_ref.update(
        (intent.order_ref, intent.order_id)
        for intent in pending
        if intent.order_ref is not None and intent.order_id is not None
    )
    orders = []
    for intent in pending:
        fields = intent.fields
        assert intent.order_id is not None
        orders.append(
            WorkingOrder(
                order_id=intent.order_id,
                symbol=fields["symbol"],
                action=fields["action"],
                order_type=fields["order_type"],
                total_quantity=float(fields["quantity"]),
                filled=intent.filled,
                limit_price=fields.get("limit_price"),
                aux_price=fields.get("aux_price"),
                trailing_percent=fields.get("trailing_percent"),
                tif=fields.get("tif", "DAY"),
                order_ref=intent.order_ref,
                client_id=intent.client_id,
                parent_id=ids_by_ref.get(fields.get("parent_ref") or "", 0),
                oca_group=fields.get("oca_group") or "",
                status="PendingSubmit",
            )
        )
    return tuple(orders)


def plan_pass(rules: RuleSet, observed: Observed, journal: Journal | None, now: datetime) -> Plan:
    """The plan one pass acts on, for ``apply`` and the daemon alike: the planner's gated plan,
    minus what IB rejected recently, with the cash check run again because a held intent may be
    a modify whose freed cash the plan's buys count on."""
    held = hold_rejected(make_plan(rules, observed, now), journal, now)
    return recheck_cash(held, rules, observed)


def hold_rejected(plan: Plan, journal: Journal | None, now: datetime) -> Plan:
    """Block intents whose key IB rejected recently (exponential backoff) and every opening or
    closing intent of a rule IB rejected too often today, so a rejected order is never retried
    in a tight loop."""
    if journal is None:
        return plan
    rejected = journal.rejections(trading_day_start(now))
    if not rejected:
        return plan
    per_rule: dict[str, list[JournaledIntent]] = {}
    per_key: dict[str, list[JournaledIntent]] = {}
    for earlier in rejected:
        per_rule.setdefault(earlier.rule, []).append(earlier)
        per_key.setdefault(earlier.key, []).append(earlier)
    held: list[Intent] = []
    for intent in plan.intents:
        reason = None
        if intent.blocked or intent.action == "cancel" or intent.purpose == "protective":
            held.append(intent)
            continue
        rule_rejections = per_rule.get(intent.rule, [])
        key_rejections = per_key.get(intent.key, [])
        if len(rule_rejections) >= REJECTIONS_PER_RULE_PER_DAY:
            last = rule_rejections[-1]
            reason = (
                f"rejected by IB {len(rule_rejections)} times today (last: {_ib_error(last)}); "
                "held until the next trading day: fix the rule or the account"
            )
        elif key_rejections:
            last = key_rejections[-1]
            wait = min(REJECTION_BACKOFF * 2 ** (len(key_rejections) - 1), REJECTION_BACKOFF_MAX)
            finished = journal_finished_at(last)
            if finished is not None and now < finished + wait:
                retry = (finished + wait).astimezone(TRADING_TIME_ZONE).strftime("%H:%M:%S %Z")
                reason = f"rejected by IB ({_ib_error(last)}); retry after {retry}"
        held.append(intent if reason is None else replace(intent, blocked_by=reason))
    return replace(plan, intents=tuple(held))


def journal_finished_at(intent: JournaledIntent) -> datetime | None:
    # A rejected intent's time is when it was sent (or journaled): the backoff counts from there.
    return intent.sent_at or intent.created_at


def _ib_error(intent: JournaledIntent) -> str:
    if intent.error_code is None:
        return "no error text"
    return f"IB {intent.error_code}: {intent.error_text}"


def sending_groups(intents: Sequence[Intent]) -> list[list[Intent]]:
    """Intents that must be journaled and sent together: a bracket parent with its children
    (children name the parent by orderRef). Everything else goes alone. Plan order is kept."""
    groups: list[list[Intent]] = []
    by_ref: dict[str, list[Intent]] = {}
    for intent in intents:
        order = intent.order
        if order is not None and order.parent_ref is not None and order.parent_ref in by_ref:
            by_ref[order.parent_ref].append(intent)
            continue
        group = [intent]
        groups.append(group)
        if order is not None:
            by_ref[order.order_ref] = group
    return groups


@dataclass(frozen=True)
class PassHooks:
    """What the daemon adds to a pass (docs/daemon.md); the defaults are one command's pass.

    ``may_send`` is asked before each group: the daemon journals a group only when the pacer
    has written the previous one, so a halt, a dropped link or SIGTERM stops a long pass within
    one order and the journal never runs ahead of the wire. Without it every group is handed
    to the pacer at once. ``abandon`` says shutdown began (stop waiting for the pacer; wait
    for acknowledgements only briefly). ``breaker`` trips and journals the daily-loss breaker
    and returns its reason. ``on_sources``, ``on_planned`` and ``on_sent`` let the daemon log
    and report what the pass read, planned and sent. ``clock_reuse``: how old a measurement of the
    broker's clock this pass may plan on instead of measuring it (docs/daemon.md, "Clock")."""

    may_send: Callable[[], bool] | None = None
    abandon: Callable[[], bool] = lambda: False
    breaker: Callable[[Observed, datetime], str | None] | None = None
    allocations_due: bool = True
    targets_files: TargetsFiles | None = None
    on_sources: Callable[[Mapping[str, TargetsSource]], None] | None = None
    on_planned: Callable[[Observed, Plan], None] | None = None
    on_sent: Callable[[Sequence[Intent], Sequence[JournaledIntent]], None] | None = None
    clock_reuse: timedelta = NO_REUSE


# While stopping, acknowledgements are awaited only briefly: the next start adopts the rest.
ACK_TIMEOUT_STOPPING_SECONDS = 1.0
_DRAIN_STEP_SECONDS = 0.005
_ACK_WAIT_STEP_SECONDS = 0.25


def reconcile_pass(
    rules: RuleSet,
    broker: Broker,
    journal: Journal | None,
    *,
    clock: Callable[[], datetime],
    confirm: Callable[[Plan], bool] | None,
    act: bool,
    ack_timeout: float,
    trigger: str,
    on_resync: Callable[[list[Transition]], None] | None = None,
    halted: bool = False,
    hooks: PassHooks = PassHooks(),
) -> PassResult:
    """Resync, observe, plan, gate; then, when ``act`` and ``confirm`` agree, journal and send
    the actionable intents and wait for their acknowledgement. The one orchestrator of a pass:
    ``apply``, ``plan``, ``doctor`` and the daemon all run it."""
    started = clock()
    now = broker.market_now(started, reuse_within=hooks.clock_reuse)
    tracker = tracker_for(broker, journal)
    tracker.start_pass()
    writable = journal is not None and journal.writable
    pass_id = None
    if writable:
        assert journal is not None
        journal.record_generation(rules.generation())
        pass_id = journal.begin_pass(trigger, rules.generation())
    try:
        return _observe_plan_act(
            rules,
            broker,
            journal,
            clock=clock,
            started=started,
            now=now,
            pass_id=pass_id,
            confirm=confirm,
            act=act,
            ack_timeout=ack_timeout,
            on_resync=on_resync,
            halted=halted,
            hooks=hooks,
        )
    except Exception as exc:
        # A dropped connection mid-pass, say: the journal shows the pass ended and why.
        if writable and pass_id is not None:
            assert journal is not None
            journal.finish_pass(
                pass_id,
                planned=0,
                blocked=0,
                sent=tracker.progress.sent,
                outcome="failed",
                detail=f"{type(exc).__name__}: {exc}",
            )
        raise


def _observe_plan_act(
    rules: RuleSet,
    broker: Broker,
    journal: Journal | None,
    *,
    clock: Callable[[], datetime],
    started: datetime,
    now: datetime,
    pass_id: int | None,
    confirm: Callable[[Plan], bool] | None,
    act: bool,
    ack_timeout: float,
    on_resync: Callable[[list[Transition]], None] | None,
    halted: bool,
    hooks: PassHooks,
) -> PassResult:
    writable = journal is not None and journal.writable
    pacing_before = broker.pacing_violations
    day_start = trading_day_start(now)
    transitions = resync(broker, journal, day_start)
    if on_resync is not None and transitions:
        on_resync(transitions)
    sources = (hooks.targets_files or TargetsFiles()).sources(rules)
    if hooks.on_sources is not None:
        hooks.on_sources(sources)
    symbols = observed_symbols(rules, sources)
    state = broker.observe(symbols, day_start)
    observed = build_observed(rules, state, journal, now, sources)
    if writable:
        assert journal is not None
        remember_reconstructions(journal, observed, now)
    tripped = hooks.breaker(observed, now) if hooks.breaker is not None else None
    observed = replace(
        observed,
        breaker_tripped=observed.breaker_tripped or tripped is not None,
        halted=observed.halted or halted,
        allocations_due=hooks.allocations_due,
    )
    plan = plan_pass(rules, observed, journal, now)
    if writable:
        assert journal is not None
        # Held files are recorded at once (for `tradectl accept`); a file traded within
        # max_turnover becomes the baseline only when its orders go (or nothing is left to do).
        record_decisions(journal, plan, now, accept=False)
        record_account_sample(journal, rules, observed, plan)
    if hooks.on_planned is not None:
        hooks.on_planned(observed, plan)
    notes = state.notes
    if observed.in_flight:
        notes += (
            f"{len(observed.in_flight)} intent(s) sent earlier are not yet confirmed by the "
            "broker: counted as working orders and not sent again until the broker shows them "
            "or the acknowledgement timeout passes",
        )
    result = PassResult(
        plan=plan,
        observed=observed,
        resync=transitions,
        notes=notes,
        broker_notes=state.notes,
        breaker_tripped=tripped,
        now=now,
        unresolved=tuple(
            state.unresolved[key].describe() for key in sorted(state.unresolved) if key in symbols
        ),
        instruments=tuple(
            f"{key}: conId {found.con_id} via {found.exchange} "
            f"(primary {found.primary_exchange or 'not reported'}) in {found.currency}"
            for key, found in sorted(state.qualified.items())
            if key in symbols
        ),
    )
    actionable = plan.actionable
    if not act or not actionable:
        if writable and act:
            assert journal is not None
            record_decisions(journal, plan, now)
        _finish(journal, pass_id, result, "converged" if not actionable else "planned")
        return result
    if confirm is not None and not confirm(plan):
        _finish(journal, pass_id, result, "declined")
        return result
    # Only a confirmed plan can grow old before it is acted on: the daemon acts at once.
    if confirm is not None and clock() - started > PLAN_MAX_AGE:
        result.problems.append(
            f"the plan is older than {PLAN_MAX_AGE.seconds} s (confirmation took a while) and "
            "prices may have moved: nothing sent; run it again"
        )
        _finish(journal, pass_id, result, "stale")
        return result
    # Order ids are per client: should another client's owned order share an id, ours wins.
    working = {
        order.order_id: order
        for order in sorted(
            observed.owned_orders, key=lambda order: order.client_id == broker.client_id
        )
    }
    if writable:
        assert journal is not None
        record_decisions(journal, plan, now)
    sender = Sender(broker, journal, contracts=state.qualified, working=working, pass_id=pass_id)
    tracker = tracker_for(broker, journal)
    result.stopped_early = _send(broker, tracker, sender, sending_groups(actionable), hooks, result)
    result.acknowledged_in_time = _await_acknowledgements(
        broker, tracker, hooks, ack_timeout, pacing_before
    )
    if not result.acknowledged_in_time:
        broker.suspect("order actions went unanswered within the acknowledgement timeout")
    result.progress = tracker.progress
    result.sent = tracker.progress.sent
    result.pacing_violations = broker.pacing_violations - pacing_before
    _finish(journal, pass_id, result, "stopped early" if result.stopped_early else "sent")
    return result


def _send(
    broker: Broker,
    tracker: OrderTracker,
    sender: Sender,
    groups: Sequence[Sequence[Intent]],
    hooks: PassHooks,
    result: PassResult,
) -> bool:
    """Journal and send ``groups``, collecting what could not be sent in ``result.problems``;
    True when stopped early. With ``hooks.may_send``, one group at a time (``PassHooks``)."""
    may_send = hooks.may_send
    # Each journaled intent is one message on the wire; ``written`` counts how many the
    # pacer must have written before the next group is journaled.
    written = tracker.progress.sent
    for group in groups:
        if may_send is not None:
            if not _drain(broker, tracker, hooks, written) or not may_send():
                return True
            try:
                problem, journaled = sender.send(group)
            except NotSent as exc:
                result.problems.append(str(exc))
                return True
        else:
            problem, journaled = sender.send(group)
        if problem is not None:
            result.problems.append(problem)
        if hooks.on_sent is not None:
            hooks.on_sent(group, journaled)
        written += len(journaled)
    return may_send is not None and not _drain(broker, tracker, hooks, written)


def _drain(broker: Broker, tracker: OrderTracker, hooks: PassHooks, written: int) -> bool:
    """Run the connection until the pacer has written ``written`` order messages in all;
    False when the link went down or shutdown began first."""
    while tracker.progress.sent < written:
        if not broker.can_send or hooks.abandon():
            return False
        broker.run_for(_DRAIN_STEP_SECONDS)
    return True


def _await_acknowledgements(
    broker: Broker,
    tracker: OrderTracker,
    hooks: PassHooks,
    ack_timeout: float,
    pacing_before: int,
) -> bool:
    """Wait until every sent intent is answered (True), the link goes down (IB's 1100 or a
    disconnect: the pass after the reconnect or 1102 resyncs what was sent), the broker drops a
    message unnamed (IB's error 100: the next pass's full read settles what was sent) or the
    timeout passes; while shutting down, only briefly. What is left stays in flight in the
    journal."""
    started = monotonic()
    while True:
        limit = min(ack_timeout, ACK_TIMEOUT_STOPPING_SECONDS) if hooks.abandon() else ack_timeout
        remaining = limit - (monotonic() - started)
        step = max(0.0, min(_ACK_WAIT_STEP_SECONDS, remaining))
        if broker.run_until(lambda: tracker.answered, step):
            return True
        if not broker.can_send or broker.pacing_violations > pacing_before:
            return False
        if monotonic() - started >= limit:
            return False


def _finish(journal: Journal | None, pass_id: int | None, result: PassResult, outcome: str) -> None:
    if journal is None or pass_id is None:
        return
    detail = "; ".join(result.problems + result.progress.errors)
    journal.finish_pass(
        pass_id,
        planned=len(result.plan.intents),
        blocked=len(result.plan.blocked),
        sent=result.sent,
        outcome=outcome,
        detail=detail,
    )
