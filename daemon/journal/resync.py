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
  has passed since it was sent, and only then becomes ``unsent``.

Modify and cancel intents are idempotent at the broker (the same fields or the same cancel again
change nothing), so an unconfirmed one is closed as ``unsent`` and the planner compares the
working order with the rules again.

This module is pure: it returns transitions; the caller writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from daemon.journal.store import IntentState, JournaledIntent

BrokerSource = Literal["open", "completed", "execution"]

# Real terminal statuses (DESIGN.md §3): error codes and notices never end an order by themselves.
FILLED_STATUSES = frozenset({"Filled"})
CANCELLED_STATUSES = frozenset({"Cancelled", "ApiCancelled"})
REJECTED_STATUSES = frozenset({"Inactive"})
TERMINAL_STATUSES = FILLED_STATUSES | CANCELLED_STATUSES | REJECTED_STATUSES


@dataclass(frozen=True)
class BrokerRecord:
    """One order or execution as the broker reports it, reduced to what matching needs."""

    source: BrokerSource
    order_ref: str | None
    order_id: int
    client_id: int
    perm_id: int
    status: str = ""
    filled: float = 0.0


@dataclass(frozen=True)
class Transition:
    intent_id: int
    state: IntentState
    perm_id: int = 0
    filled: float = 0.0
    note: str = ""


def terminal_state(status: str) -> IntentState | None:
    if status in FILLED_STATUSES:
        return "filled"
    if status in CANCELLED_STATUSES:
        return "cancelled"
    if status in REJECTED_STATUSES:
        return "rejected"
    return None


def match_journal(
    intents: Sequence[JournaledIntent],
    broker: Sequence[BrokerRecord],
    *,
    known_perm_ids: frozenset[int],
    now: datetime,
    ack_timeout: timedelta,
) -> list[Transition]:
    claimed = set(known_perm_ids)
    transitions: list[Transition] = []
    for intent in sorted(intents, key=lambda item: item.id):
        if intent.action == "place":
            transition = _match_place(intent, broker, claimed, now, ack_timeout)
        else:
            transition = _match_change(intent, broker, now, ack_timeout)
        if transition is not None:
            transitions.append(transition)
    return transitions


def _records_of(
    intent: JournaledIntent, broker: Sequence[BrokerRecord], claimed: set[int]
) -> list[BrokerRecord]:
    by_id = [
        record
        for record in broker
        if record.order_ref == intent.order_ref
        and record.order_id != 0
        and record.order_id == intent.order_id
        and record.client_id == intent.client_id
    ]
    if by_id:
        return by_id
    if intent.perm_id:
        by_perm = [record for record in broker if record.perm_id == intent.perm_id]
        if by_perm:
            return by_perm
    # Completed orders may come without an order id; a record with our orderRef whose permId no
    # other intent owns can only be this intent's order.
    for record in broker:
        if (
            record.order_ref == intent.order_ref
            and record.order_id == 0
            and record.perm_id
            and record.perm_id not in claimed
        ):
            return [other for other in broker if other.perm_id == record.perm_id]
    return []


def _match_place(
    intent: JournaledIntent,
    broker: Sequence[BrokerRecord],
    claimed: set[int],
    now: datetime,
    ack_timeout: timedelta,
) -> Transition | None:
    records = _records_of(intent, broker, claimed)
    if records:
        perm_id = next((record.perm_id for record in records if record.perm_id), 0)
        if perm_id:
            claimed.add(perm_id)
        executed = sum(record.filled for record in records if record.source == "execution")
        order_filled = max(
            (record.filled for record in records if record.source != "execution"), default=0.0
        )
        filled = max(executed, order_filled)
        for record in records:
            if record.source == "execution":
                continue
            state = terminal_state(record.status)
            if state is not None:
                return Transition(
                    intent.id, state, perm_id, filled, f"broker status {record.status}"
                )
        if intent.quantity and filled >= intent.quantity:
            return Transition(intent.id, "filled", perm_id, filled, "fully executed")
        if intent.state == "acknowledged":
            return (
                None
                if filled <= intent.filled
                else Transition(intent.id, "acknowledged", perm_id, filled, "")
            )
        return Transition(intent.id, "acknowledged", perm_id, filled, "adopted: found at broker")
    if intent.state == "acknowledged":
        return Transition(
            intent.id, "cancelled", note="no longer at the broker (expired or cancelled unseen)"
        )
    if _still_in_flight(intent, now, ack_timeout):
        return None
    return Transition(intent.id, "unsent", note=_unsent_note(intent))


def _match_change(
    intent: JournaledIntent,
    broker: Sequence[BrokerRecord],
    now: datetime,
    ack_timeout: timedelta,
) -> Transition | None:
    target = [
        record
        for record in broker
        if record.source != "execution"
        and record.order_id == intent.order_id
        and record.client_id == intent.client_id
    ]
    if intent.action == "cancel":
        for record in target:
            if record.status in CANCELLED_STATUSES:
                return Transition(intent.id, "cancelled", record.perm_id, note="order cancelled")
    if intent.state == "acknowledged":
        return None
    if _still_in_flight(intent, now, ack_timeout):
        return None
    return Transition(
        intent.id, "unsent", note="not confirmed before the resync; the planner decides afresh"
    )


def _still_in_flight(intent: JournaledIntent, now: datetime, ack_timeout: timedelta) -> bool:
    # Whatever the session: bytes that left the process may reach the gateway late.
    return (
        intent.state == "sent" and intent.sent_at is not None and now - intent.sent_at < ack_timeout
    )


def _unsent_note(intent: JournaledIntent) -> str:
    if intent.state == "journaled":
        return "journaled but never reached the broker (no order with its orderRef)"
    return "sent but never seen at the broker within the acknowledgement timeout"
