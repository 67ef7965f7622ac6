"""The runtime's side of the broker boundary: it matches the journal with the broker
(``resync``) and journals each group of intents before a broker sends it (``execute``).

A ``Broker`` (``tradectl.runtime.broker``) only sends what it is handed; the order of the
steps here is what makes sending safe (docs/reliability.md):

1. the whole group is journaled in one durable transaction, with its order ids reserved;
2. each intent is marked "sent" durably just before its message is written, so an intent still
   "journaled" after a crash certainly never left this process (it is planned afresh), while a
   "sent" one may have reached the broker and is waited for until the acknowledgement timeout.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from tradectl.broker_types import Priority
from tradectl.journal import (
    AlreadyLive,
    BrokerRecord,
    CachedContract,
    Journal,
    JournaledIntent,
    Transition,
    match_journal,
    order_row_updates,
)
from tradectl.planner.domain import Intent, WorkingOrder
from tradectl.runtime.broker import Broker
from tradectl.runtime.tracking import tracker_for

log = logging.getLogger(__name__)

# Test-only fault hook (docs/apply.md): SIGKILL this process right after the first intent group
# is journaled ("journal") or right after the first order message is written ("send").
CRASH_ENV = "TRADECTL_TEST_CRASH_AFTER"

# An intent sent in this session and not yet seen at the broker stays in flight this long.
ACK_TIMEOUT = timedelta(seconds=60)


class NotSent(RuntimeError):
    """The connection or the journal does not allow sending (read-only, no writable journal,
    the link down); the message says why."""


def resync(broker: Broker, journal: Journal | None, day_start: datetime) -> list[Transition]:
    """Match the journal's live intents with the broker (exactly once across crashes and
    reconnects, ``tradectl.journal.resync``) and journal the outcome, with the orders rows the
    broker shows further along (an order that ended while nobody listened); the broker then
    follows the intents still live. Run before anything is planned."""
    records = broker.broker_records(day_start)
    if journal is None or not journal.writable:
        return []
    live = journal.live_intents()
    transitions = _match(journal, live, records, _dropped(broker))
    if transitions and not broker.last_records_fresh:
        # The tracker journals every streamed update as it comes, so the streamed state has
        # nothing new to say to the journal; when it seems to, only a fresh read decides.
        broker.suspect(f"the streamed state would change {len(transitions)} journaled intent(s)")
        records = broker.broker_records(day_start)
        # The tracker journals what arrived during that read.
        live = journal.live_intents()
        transitions = _match(journal, live, records, _dropped(broker))
    for transition in transitions:
        journal.apply_transition(transition)
    # After the transitions: a place intent may just have learnt its order's permId, by which
    # the order's completed record is found for a row recorded without one.
    journal.update_order_rows(order_row_updates(journal.unfinished_own_orders(), records))
    # Read again only when the transitions changed it (a pass reads it on every trigger).
    tracker_for(broker, journal).track(journal.live_intents() if transitions else live)
    return transitions


def _dropped(broker: Broker) -> tuple[str, datetime] | None:
    dropped_before = broker.dropped_before
    return None if dropped_before is None else (broker.session, dropped_before)


def _match(
    journal: Journal,
    live: Sequence[JournaledIntent],
    records: Sequence[BrokerRecord],
    dropped: tuple[str, datetime] | None,
) -> list[Transition]:
    return match_journal(
        live,
        records,
        known_perm_ids=journal.known_perm_ids(),
        now=journal.now,
        ack_timeout=ACK_TIMEOUT,
        dropped=dropped,
    )


class Sender:
    """Journals and hands over the groups of one pass. Within one rule the planner's order
    matters (a new stop goes out before the cancel of the old one): a rule's later group never
    gets a more urgent priority than its earlier ones, so the pacer cannot reorder them. Across
    rules, urgency wins."""

    def __init__(
        self,
        broker: Broker,
        journal: Journal | None,
        *,
        contracts: Mapping[str, CachedContract],
        working: Mapping[int, WorkingOrder],
        pass_id: int | None,
    ) -> None:
        self._broker = broker
        self._journal = journal
        self._contracts = contracts
        self._working = working
        self._pass_id = pass_id
        self._rule_floor: dict[tuple[str, str], Priority] = {}
        # A child may name a parent that already works at the broker (its entry was placed in
        # an earlier pass), or one in its own group.
        self._parent_ids = {
            order.order_ref: order.order_id for order in working.values() if order.order_ref
        }
        self._crash_after = os.environ.get(CRASH_ENV, "")
        self._tracker = tracker_for(broker, journal)

    def send(self, group: Sequence[Intent]) -> tuple[str | None, list[JournaledIntent]]:
        """Journal one group of intents (durably), then hand it to the broker, which sends it
        as the pacer allows. Returns the problem that kept it from being sent, if any, and
        what was journaled."""
        broker, journal = self._broker, self._journal
        if broker.readonly:
            raise NotSent("this connection is read-only: refusing to send orders")
        if journal is None or not journal.writable:
            raise NotSent("no writable journal: refusing to send orders that are not journaled")
        if not broker.can_send:
            raise NotSent("the gateway connection is down (IB 1100 or disconnected): not sending")
        rule = (group[0].kind, group[0].rule)
        priority = max(_urgency(group), self._rule_floor.get(rule, Priority.CANCEL))
        self._rule_floor[rule] = priority
        problem = broker.check_group(group, self._contracts, self._working, self._parent_ids)
        if problem is not None:
            return problem, []
        try:
            journaled = journal.journal_intents(
                group,
                client_id=broker.client_id,
                session=broker.session,
                next_valid_order_id=broker.next_order_id(),
                pass_id=self._pass_id,
            )
        except AlreadyLive as exc:
            return str(exc), []
        self._crash_point("journal")
        self._tracker.track(journaled)
        self._tracker.awaiting(journaled)
        broker.reserve_order_ids(max((intent.order_id or 0) for intent in journaled) + 1)
        broker.submit(
            journaled,
            group,
            self._contracts,
            self._working,
            self._parent_ids,
            priority,
            before_write=journal.mark_sent,
            after_write=self._written,
        )
        return None, journaled

    def execute(self, groups: Sequence[Sequence[Intent]]) -> list[str]:
        """``send`` each group; the problems that kept groups from being sent."""
        problems = []
        for group in groups:
            problem, _ = self.send(group)
            if problem is not None:
                problems.append(problem)
        return problems

    def _written(self, intent_id: int) -> None:
        self._crash_point("send")
        self._tracker.written(intent_id)

    def _crash_point(self, point: str) -> None:
        if self._crash_after == point:
            log.error("%s=%s: killing this process (test hook)", CRASH_ENV, point)
            os.kill(os.getpid(), signal.SIGKILL)


def _urgency(group: Sequence[Intent]) -> Priority:
    if any(intent.action == "cancel" for intent in group):
        return Priority.CANCEL
    if any(intent.purpose == "protective" for intent in group):
        return Priority.PROTECTIVE
    return Priority.ORDER
