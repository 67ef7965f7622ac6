"""The runtime's ear on the broker: it turns the broker's updates into journal rows and into
the journaled intents' transitions, as decided by the pure lifecycle
(``tradectl.journal.lifecycle``, docs/apply.md "One order lifecycle").

A broker only translates and reports (``tradectl.runtime.broker``); what an update means for an
intent, and what the journal keeps, is decided here, for live updates, and by the resync
(``tradectl.runtime.acting.resync``) for what happened while no connection listened. One tracker
follows one connection: ``tracker_for`` makes it on first use and attaches it to the broker's
updates, before anyone else listens, so the journal is written before the daemon hears of it.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable

from tradectl.broker_types import (
    BrokerUpdate,
    CommissionUpdate,
    ErrorUpdate,
    ExecutionUpdate,
    OrderSnapshot,
    OrderStatusUpdate,
    OrderUpdate,
    Progress,
)
from tradectl.journal import Journal, JournaledIntent
from tradectl.journal.lifecycle import (
    BrokerEvent,
    ErrorReport,
    ExecutionReport,
    OrderReport,
    advance,
)
from tradectl.runtime.broker import Broker

log = logging.getLogger(__name__)

Rejected = Callable[[str | None, int, str], None]


class OrderTracker:
    """Journals what one connection reports and advances the intents acting on its orders.
    ``progress`` counts this pass's order actions (``start_pass``); ``rejected(orderRef, code,
    text)`` hears each of tradectl's order actions the broker refuses."""

    def __init__(
        self,
        journal: Journal | None,
        *,
        progress: Callable[[Progress], None] | None = None,
        rejected: Rejected | None = None,
    ) -> None:
        self.journal = journal
        self.progress = Progress()
        self._on_progress = progress
        self._on_rejected = rejected
        self._tracked: dict[tuple[int, int], list[int]] = {}
        self._awaiting: set[int] = set()

    @property
    def _writable(self) -> bool:
        return self.journal is not None and self.journal.writable

    def start_pass(self) -> None:
        """Count progress afresh (a daemon runs many passes on one connection)."""
        self.progress = Progress()

    def track(self, intents: Iterable[JournaledIntent]) -> None:
        """Follow these intents' orders: the broker's updates on them advance them."""
        for intent in intents:
            if intent.order_id is None:
                continue
            ids = self._tracked.setdefault((intent.client_id, intent.order_id), [])
            if intent.id not in ids:
                ids.append(intent.id)

    def awaiting(self, intents: Iterable[JournaledIntent]) -> None:
        """These intents were handed to the broker: ``answered`` waits for their answers."""
        self._awaiting.update(intent.id for intent in intents)

    @property
    def answered(self) -> bool:
        """Every intent handed to the broker got an answer (or ended)."""
        return not self._awaiting

    def written(self, intent_id: int) -> None:
        """An intent's message was written to the broker."""
        self.progress.sent += 1
        self._report()

    # --- the broker's updates ----------------------------------------------------------------

    def on_update(self, update: BrokerUpdate) -> None:
        if isinstance(update, OrderUpdate):
            order = update.order
            self._journal_order(order)
            report = OrderReport(order.status, order.filled, order.quantity, order.perm_id)
            self._advance(order.client_id, order.order_id, order.order_ref, order.perm_id, report)
        elif isinstance(update, OrderStatusUpdate):
            self._on_status(update)
        elif isinstance(update, ExecutionUpdate):
            self._on_execution(update)
        elif isinstance(update, CommissionUpdate):
            if self._writable:
                assert self.journal is not None
                self.journal.record_commission(
                    update.exec_id, update.commission, update.currency, update.realized_pnl
                )
        elif isinstance(update, ErrorUpdate):
            self._on_error(update)

    def _on_status(self, update: OrderStatusUpdate) -> None:
        if update.order is not None:
            self._journal_order(update.order)
        if self._writable:
            assert self.journal is not None
            self.journal.record_status(
                client_id=update.client_id,
                order_id=update.order_id,
                perm_id=update.perm_id,
                order_ref=update.order_ref,
                status=update.status,
                filled=update.filled,
                remaining=update.remaining,
            )
        report = OrderReport(
            update.status, update.filled, update.filled + update.remaining, update.perm_id
        )
        self._advance(update.client_id, update.order_id, update.order_ref, update.perm_id, report)

    def _on_execution(self, update: ExecutionUpdate) -> None:
        recorded = update.execution
        if self._writable:
            assert self.journal is not None
            self.journal.record_execution(recorded)
        self._advance(
            recorded.client_id,
            recorded.order_id,
            recorded.order_ref,
            recorded.perm_id,
            ExecutionReport(update.order_executed, recorded.perm_id, update.order_quantity),
        )

    def _on_error(self, update: ErrorUpdate) -> None:
        req_id, code, text = update.req_id, update.code, update.text
        intents = self._intents_for(update.client_id, req_id) if req_id > 0 else []
        order_ref = intents[0].order_ref if intents else None
        if self._writable:
            assert self.journal is not None
            self.journal.record_gateway_error(
                req_id=req_id,
                code=code,
                message=text,
                order_ref=order_ref,
                informational=update.informational,
            )
            # The error answers the latest message about this order: a rejected modify must
            # not make the order's own placement count as rejected.
            if intents:
                self._apply(intents[-1], ErrorReport(code, text))
                self._report()
        if intents and update.already_ended:
            log.info("%s: cancel not needed, IB %d: %s", order_ref, code, text)
        if intents and update.refusal:
            self.progress.errors.append(f"{order_ref}: IB error {code}: {text}")
            self._report()
            if self._on_rejected is not None:
                self._on_rejected(order_ref, code, text)

    def _journal_order(self, order: OrderSnapshot) -> None:
        if not self._writable:
            return
        assert self.journal is not None
        self.journal.record_order(
            client_id=order.client_id,
            order_id=order.order_id,
            perm_id=order.perm_id,
            order_ref=order.order_ref,
            symbol=order.symbol,
            con_id=order.con_id,
            action=order.action,
            order_type=order.order_type,
            quantity=order.quantity,
            limit_price=order.limit_price,
            aux_price=order.aux_price,
            status=order.status,
            filled=order.filled,
        )

    def _intents_for(self, client_id: int, order_id: int) -> list[JournaledIntent]:
        if self.journal is None:
            return []
        ids = self._tracked.get((client_id, order_id), [])
        return [self.journal.intent(intent_id) for intent_id in ids]

    def _advance(
        self,
        client_id: int,
        order_id: int,
        order_ref: str | None,
        perm_id: int,
        event: OrderReport | ExecutionReport,
    ) -> None:
        """Hand an order event to the intents acting on this order. Matched by orderRef first
        (permId is 0 right after placeOrder), then order id and client; a place intent whose
        order took a new orderRef (a rule edit) is still known by its permId."""
        if not self._writable:
            return
        for intent in self._intents_for(client_id, order_id):
            same_order = not order_ref or order_ref == intent.order_ref
            known_by_perm = bool(perm_id) and perm_id == intent.perm_id
            if intent.action == "place" and not same_order and not known_by_perm:
                continue
            self._apply(intent, event)
            self._awaiting.discard(intent.id)
        self._report()

    def _apply(self, intent: JournaledIntent, event: BrokerEvent) -> None:
        """Write the lifecycle's transition for ``event`` and count it in the progress line."""
        assert self.journal is not None
        transition = advance(intent, event)
        if transition is None:
            return
        self.journal.apply_transition(transition)
        if transition.state == "acknowledged":
            self.progress.acknowledged += 1
        elif transition.state == "filled":
            self.progress.filled += 1
        elif transition.state == "rejected":
            self.progress.rejected += 1
        elif transition.state == "cancelled":
            self.progress.cancelled += 1
        if transition.finished:
            self._awaiting.discard(intent.id)

    def _report(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.progress)


_trackers: weakref.WeakKeyDictionary[Broker, OrderTracker] = weakref.WeakKeyDictionary()


def tracker_for(
    broker: Broker,
    journal: Journal | None,
    *,
    progress: Callable[[Progress], None] | None = None,
    rejected: Rejected | None = None,
) -> OrderTracker:
    """The tracker of this connection; made and attached on first use (``progress`` and
    ``rejected`` count only then: see ``OrderTracker``)."""
    tracker = _trackers.get(broker)
    if tracker is None:
        tracker = OrderTracker(journal, progress=progress, rejected=rejected)
        broker.listen(tracker.on_update)
        _trackers[broker] = tracker
    return tracker
