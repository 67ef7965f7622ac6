"""Exactly once across crashes and reconnects: match the journal against the broker.

Run on start and after every reconnect, before anything is planned, with the broker's complete
view (all open orders, completed orders, executions of the day). For each live intent:

* the broker has its order (same orderRef, and the same order id and client, or a permId no other
  intent claims) → the order was sent: adopt it (acknowledged, or its terminal state); never resend;
* the broker has no trace and the intent is still ``journaled`` → it never left the process (the
  adapter commits ``sent`` durably just before it writes): mark it ``unsent`` so the planner
  decides afresh;
* the broker has no trace of a ``sent`` intent → it may still be on its way (a slow gateway, a
  crash right after the write, a reconnect): it stays in flight until the acknowledgement timeout
  has passed since it was sent, and only then becomes ``unsent``; unless its own connection later
  had a message dropped (IB's error 100) and the broker was read afresh after that: the gateway
  takes one connection's messages in order, so an order sent before the drop either shows in
  that read or was dropped, and becomes ``unsent`` at once.

Modify and cancel intents are idempotent at the broker (the same fields or the same cancel again
change nothing), so an unconfirmed one is closed as ``unsent`` and the planner compares the
working order with the rules again.

Which broker records belong to which intent is decided here; what they mean for the intent is
decided by ``tradectl.journal.lifecycle``, the same function that handles live order events. An
order is identified by permId once the journal knows it, otherwise by orderRef with this
session's order id, otherwise (completed orders carry order id 0) by orderRef and a permId no
other place intent owns (docs/apply.md, "Exactly once": never by order id alone).

The same broker view brings the journal's ``orders`` rows up to date (``order_row_updates``):
an order that filled, was cancelled or expired while no tradectl process listened (or in a gap
of the stream) shows among the completed orders, and its row must reach that final status for
the ``orders`` records (docs/records.md). Only rows of tradectl's own orders are followed; a
completed order is final and wins over an open-order record of the same order; a row already
final for the records is never read, so it never changes again.

This module is pure: it returns transitions and row updates; the caller writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from tradectl.journal.lifecycle import (
    BrokerEvent,
    ExecutionReport,
    NoTrace,
    OrderReport,
    Transition,
    settle,
)
from tradectl.journal.store import JournaledIntent, OrderRowUpdate, UnfinishedOrderRow

BrokerSource = Literal["open", "completed", "execution"]


@dataclass(frozen=True)
class BrokerRecord:
    """One order or execution as the broker reports it, reduced to what matching needs.
    ``filled`` is the order's filled quantity (an execution's shares); ``quantity`` the order's
    current total, 0 for executions."""

    source: BrokerSource
    order_ref: str | None
    order_id: int
    client_id: int
    perm_id: int
    status: str = ""
    filled: float = 0.0
    quantity: float = 0.0


def match_journal(
    intents: Sequence[JournaledIntent],
    broker: Sequence[BrokerRecord],
    *,
    known_perm_ids: frozenset[int],
    now: datetime,
    ack_timeout: timedelta,
    dropped: tuple[str, datetime] | None = None,
) -> list[Transition]:
    """``known_perm_ids``: the permIds the journal's place intents already own. ``dropped``:
    the session that had a message dropped (IB's error 100) and when, if ``broker`` was read
    afresh after it (``NoTrace``)."""
    claimed = set(known_perm_ids)
    absent = NoTrace(now, ack_timeout, dropped)
    index = _BrokerIndex(broker)
    transitions: list[Transition] = []
    for intent in sorted(intents, key=lambda item: item.id):
        if intent.action == "place":
            records = _records_of(intent, index, claimed)
            perm_id = next((record.perm_id for record in records if record.perm_id), 0)
            if perm_id:
                claimed.add(perm_id)
            events = _events(records) if records else [absent]
        else:
            events = [*_events(_target_of(intent, index)), absent]
        transition = settle(intent, events)
        if transition is not None:
            transitions.append(transition)
    return transitions


def order_row_updates(
    rows: Sequence[UnfinishedOrderRow], broker: Sequence[BrokerRecord]
) -> list[OrderRowUpdate]:
    """The unfinished orders ``rows`` (tradectl's own) whose order the broker shows with
    another status or a larger filled quantity, as updates. An order is found by the permId
    the journal knows for it, else (a row recorded before IB gave the permId) by an open order
    of the same client and order id whose permId does not belong to another order."""
    if not rows:
        return []
    by_perm_id: dict[int, BrokerRecord] = {}
    open_by_order_id: dict[tuple[int, int], list[BrokerRecord]] = {}
    for record in broker:
        if record.source == "execution":
            continue
        if record.perm_id:
            known = by_perm_id.get(record.perm_id)
            by_perm_id[record.perm_id] = record if known is None else _preferred(known, record)
        if record.source == "open" and record.order_id:
            open_by_order_id.setdefault((record.order_id, record.client_id), []).append(record)
    updates: list[OrderRowUpdate] = []
    for row in rows:
        found = by_perm_id.get(row.known_perm_id) if row.known_perm_id else None
        if found is None:
            found = _unnumbered_open_order(row, open_by_order_id)
        if found is None or not found.status:
            continue
        filled = max(row.filled, found.filled)
        if found.status == row.status and filled == row.filled:
            continue
        learnt = found.perm_id if not row.perm_id else 0
        updates.append(
            OrderRowUpdate(row.client_id, row.order_id, row.perm_id, found.status, filled, learnt)
        )
    return updates


def _preferred(first: BrokerRecord, second: BrokerRecord) -> BrokerRecord:
    """Of two records of one order: IB lists an order among completed orders once it ended,
    so that record is final, whatever an open-order record read at the same time (or streamed
    before) still says; else the one that shows more filled."""
    if (first.source == "completed") != (second.source == "completed"):
        return first if first.source == "completed" else second
    return second if second.filled > first.filled else first


def _unnumbered_open_order(
    row: UnfinishedOrderRow, open_by_order_id: dict[tuple[int, int], list[BrokerRecord]]
) -> BrokerRecord | None:
    """The open order of the row's client and order id, unless its permId is another order's."""
    found: BrokerRecord | None = None
    for record in open_by_order_id.get((row.order_id, row.client_id), ()):
        if record.perm_id and row.known_perm_id and record.perm_id != row.known_perm_id:
            continue
        found = record if found is None else _preferred(found, record)
    return found


class _BrokerIndex:
    """The broker's records by permId, by orderRef and by (order id, client), each list in the
    broker's order, so that matching an intent reads its few candidates instead of every record
    (a full refresh matches every live intent against every record)."""

    def __init__(self, broker: Sequence[BrokerRecord]) -> None:
        self.broker = broker
        self.by_perm_id: dict[int, list[int]] = {}
        self.by_order_ref: dict[str | None, list[int]] = {}
        self.by_order_id: dict[tuple[int, int], list[int]] = {}
        for position, record in enumerate(broker):
            if record.perm_id:
                self.by_perm_id.setdefault(record.perm_id, []).append(position)
            self.by_order_ref.setdefault(record.order_ref, []).append(position)
            if record.order_id != 0:
                key = (record.order_id, record.client_id)
                self.by_order_id.setdefault(key, []).append(position)

    def with_perm_id(self, perm_id: int) -> list[BrokerRecord]:
        return [self.broker[position] for position in self.by_perm_id.get(perm_id, ())]

    def with_order_ref(self, order_ref: str | None) -> list[BrokerRecord]:
        return [self.broker[position] for position in self.by_order_ref.get(order_ref, ())]


def _events(records: Sequence[BrokerRecord]) -> list[BrokerEvent]:
    orders = [record for record in records if record.source != "execution"]
    events: list[BrokerEvent] = [
        OrderReport(
            record.status,
            record.filled,
            record.quantity,
            record.perm_id,
            "completed" if record.source == "completed" else "open",
        )
        for record in orders
    ]
    executions = [record for record in records if record.source == "execution"]
    if executions:
        events.append(
            ExecutionReport(
                sum(record.filled for record in executions),
                next((record.perm_id for record in executions if record.perm_id), 0),
                max((record.quantity for record in orders), default=0.0),
            )
        )
    return events


def _records_of(
    intent: JournaledIntent, index: _BrokerIndex, claimed: set[int]
) -> list[BrokerRecord]:
    if intent.perm_id:
        by_perm = index.with_perm_id(intent.perm_id)
        if by_perm:
            return by_perm

    def unclaimed(record: BrokerRecord) -> bool:
        return (
            not record.perm_id or record.perm_id == intent.perm_id or record.perm_id not in claimed
        )

    with_ref = index.with_order_ref(intent.order_ref)
    by_id = [
        record
        for record in with_ref
        if record.order_id != 0
        and record.order_id == intent.order_id
        and record.client_id == intent.client_id
        and unclaimed(record)
    ]
    if by_id:
        # The completed record of the same order carries order id 0: join it by permId.
        perm_id = next((record.perm_id for record in by_id if record.perm_id), 0)
        joined = index.with_perm_id(perm_id) if perm_id else []
        return by_id + [record for record in joined if record not in by_id]
    # Completed orders come without an order id; a record with our orderRef whose permId no
    # other place intent owns can only be this intent's order.
    for record in with_ref:
        if record.order_id == 0 and record.perm_id and record.perm_id not in claimed:
            return index.with_perm_id(record.perm_id)
    return []


def _target_of(intent: JournaledIntent, index: _BrokerIndex) -> list[BrokerRecord]:
    """The order a modify or cancel acts on, as open or completed orders show it."""
    positions = set(index.by_perm_id.get(intent.perm_id, ())) if intent.perm_id else set()
    if intent.order_id:
        positions.update(index.by_order_id.get((intent.order_id, intent.client_id), ()))
    return [
        record
        for record in (index.broker[position] for position in sorted(positions))
        if record.source != "execution"
    ]
