"""One order lifecycle: a journaled intent and a broker event in, a transition out.

Live order events (the adapter's IB callbacks) and the resync after a restart or reconnect both
decide here what an event means for an intent; nobody else does (docs/apply.md, "One order
lifecycle"). The callers only translate what IB sent into a :data:`BrokerEvent` and write the
returned :class:`Transition` to the journal.

Which statuses end an order:

* ``Filled``, ``Cancelled`` and ``ApiCancelled`` always do (``ORDER_ENDED_STATUSES``, shared
  with the planner, which must not count such an order as working);
* ``Inactive`` ends an order only as the answer to a rejection (IB sends error 201 and then
  ``Inactive``) or when IB lists the order among completed orders. Alone, on an open order, it
  is an order IB holds but has not given up (ib_insync counts it neither done nor active):
  treating it as ended would let the planner place the same order a second time, so it stays
  live;
* error codes never end a place intent by themselves, and informational ones (2xxx notices,
  399, 404, 10349-style TIF notices) change nothing at all (docs/apply.md). Only the status IB
  sends after a rejection ends the order.

Messages come in any order (an execution after ``Cancelled``, ``orderStatus`` before
``openOrder``, permId 0 right after placeOrder): a finished intent stays finished and only
learns a larger filled quantity, and a permId is recorded as soon as one arrives.

This module is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from tradectl.ib_codes import CANCEL_CONFIRMATIONS, CANCEL_REFUSALS, is_informational
from tradectl.journal.store import IntentState, JournaledIntent
from tradectl.planner.common import TERMINAL_STATUSES as ORDER_ENDED_STATUSES

FILLED_STATUSES = frozenset({"Filled"})
CANCELLED_STATUSES = frozenset({"Cancelled", "ApiCancelled"})
REJECTION_STATUS = "Inactive"

ReportSource = Literal["live", "open", "completed"]


def order_ended(status: str, *, rejected: bool = False, completed: bool = False) -> bool:
    """Whether IB's ``status`` ends the order: the one test, used for intents and for the working
    orders handed to the planner. ``rejected``: IB sent a rejecting error for this order;
    ``completed``: IB lists it among completed orders."""
    if status in ORDER_ENDED_STATUSES:
        return True
    return status == REJECTION_STATUS and (rejected or completed)


@dataclass(frozen=True)
class OrderReport:
    """openOrder, orderStatus or completedOrder: the order as IB shows it now.

    ``quantity`` is the order's current total (after modifies), 0 when unknown; ``source`` says
    whether it answers this session's messages (``live``) or was read in a resync."""

    status: str
    filled: float = 0.0
    quantity: float = 0.0
    perm_id: int = 0
    source: ReportSource = "live"


@dataclass(frozen=True)
class ExecutionReport:
    """Executions of the order: ``executed`` is their total so far."""

    executed: float
    perm_id: int = 0
    quantity: float = 0.0


@dataclass(frozen=True)
class ErrorReport:
    code: int
    text: str


@dataclass(frozen=True)
class NoTrace:
    """A resync found no open order, completed order or execution of the intent.
    ``dropped``: the connection (session) that dropped a message unnamed (IB's error 100) and
    the moment it did, when this resync read the broker afresh after it."""

    now: datetime
    ack_timeout: timedelta
    dropped: tuple[str, datetime] | None = None


BrokerEvent = OrderReport | ExecutionReport | ErrorReport | NoTrace


@dataclass(frozen=True)
class Transition:
    """What to write for one intent. ``state`` None keeps the state; ``filled`` and ``perm_id``
    only ever raise or set what the journal holds."""

    intent_id: int
    state: IntentState | None = None
    perm_id: int = 0
    filled: float = 0.0
    error_code: int | None = None
    error_text: str | None = None
    note: str = ""

    @property
    def finished(self) -> bool:
        return self.state in ("filled", "cancelled", "rejected", "unsent")


def advance(intent: JournaledIntent, event: BrokerEvent) -> Transition | None:
    """What ``event`` means for ``intent``; None when nothing changes."""
    if isinstance(event, ErrorReport):
        return _on_error(intent, event)
    if isinstance(event, NoTrace):
        return _on_no_trace(intent, event)
    if isinstance(event, ExecutionReport):
        report = OrderReport("", event.executed, event.quantity, event.perm_id)
        return _on_report(intent, report, executed=True)
    return _on_report(intent, event, executed=False)


def settle(intent: JournaledIntent, events: Iterable[BrokerEvent]) -> Transition | None:
    """Several events in a row (a resync reads an order, its completed record and its
    executions at once): each is applied to the intent as the last one left it."""
    merged: Transition | None = None
    for event in events:
        step = advance(intent, event)
        if step is None:
            continue
        merged = step if merged is None else _merge(merged, step)
        intent = _applied(intent, step)
    return merged


def _on_error(intent: JournaledIntent, event: ErrorReport) -> Transition | None:
    code = event.code
    if not intent.live or is_informational(code) or code in CANCEL_CONFIRMATIONS:
        return None
    text = event.text
    if intent.action == "modify":
        # The order keeps its old fields; the modify is over, and its rejection makes the next
        # identical modify wait (backoff) instead of repeating.
        note = f"modify refused: IB {code}"
        return Transition(intent.id, "rejected", error_code=code, error_text=text, note=note)
    if intent.action == "cancel" and code in CANCEL_REFUSALS:
        # The order is already over: the cancel has nothing left to do. Not a rejection, which
        # would count against the rule's daily rejection limit (docs/apply.md, "Rejections").
        note = f"nothing left to cancel (IB {code})"
        return Transition(intent.id, "cancelled", error_code=code, error_text=text, note=note)
    # A place ends with the status IB sends after the rejection (201 → Inactive or Cancelled).
    return Transition(intent.id, error_code=code, error_text=text)


def _on_report(
    intent: JournaledIntent, report: OrderReport, *, executed: bool
) -> Transition | None:
    perm_id = report.perm_id if report.perm_id and report.perm_id != intent.perm_id else 0
    filled = report.filled if intent.action == "place" and report.filled > intent.filled else 0.0
    if not intent.live:
        # A fill reported after the order ended (IB does not order its messages) still counts.
        return Transition(intent.id, perm_id=perm_id, filled=filled) if filled else None
    state = _state_after(intent, report, executed)
    if state is None and not perm_id and not filled:
        return None
    note = ""
    if state == "acknowledged" and report.source != "live":
        note = "adopted: found at broker"
    elif state is not None and state != "acknowledged" and report.status:
        note = f"broker status {report.status}"
    elif state == "filled":
        note = "fully executed"
    return Transition(intent.id, state, perm_id, filled, note=note)


def _state_after(
    intent: JournaledIntent, report: OrderReport, executed: bool
) -> IntentState | None:
    ended = order_ended(
        report.status,
        rejected=intent.error_code is not None,
        completed=report.source == "completed",
    )
    if intent.action != "place":
        return _change_state_after(intent, report, ended)
    if ended:
        if report.status in FILLED_STATUSES:
            return "filled"
        if report.status in CANCELLED_STATUSES and intent.error_code is None:
            return "cancelled"
        return "rejected"
    # Done when filled for the order's *current* quantity: modifies may have shrunk it below
    # what the intent placed (a stop resized to a partial entry fill, say).
    quantity = report.quantity or intent.quantity
    filled = max(report.filled, intent.filled)
    if quantity and filled >= quantity and (executed or report.status):
        return "filled"
    return "acknowledged" if intent.state in ("journaled", "sent") else None


def _change_state_after(
    intent: JournaledIntent, report: OrderReport, ended: bool
) -> IntentState | None:
    if intent.action == "cancel" and ended:
        if report.status in CANCELLED_STATUSES:
            return "cancelled"
        # The order filled (or was rejected) before the cancel took: nothing left to cancel.
        return "filled" if report.status in FILLED_STATUSES else "rejected"
    if report.source != "live":
        # A resync shows the order as it stands, which says nothing about whether this modify or
        # cancel reached IB: it is settled as unconfirmed (``NoTrace``) instead.
        return None
    return "acknowledged" if intent.state in ("journaled", "sent") else None


def _on_no_trace(intent: JournaledIntent, event: NoTrace) -> Transition | None:
    if not intent.live:
        return None
    if intent.state == "acknowledged":
        if intent.action != "place":
            return None
        return Transition(
            intent.id, "cancelled", note="no longer at the broker (expired or cancelled unseen)"
        )
    # Whatever the session: bytes that left the process may reach the gateway late. Unless
    # the same connection later dropped a message and a fresh read after that shows no trace:
    # the gateway takes one connection's messages in order, so this one was what it dropped.
    sent_at = intent.sent_at
    in_flight = (
        intent.state == "sent" and sent_at is not None and event.now - sent_at < event.ack_timeout
    )
    dropped = event.dropped
    dropped_unseen = (
        dropped is not None
        and sent_at is not None
        and intent.session == dropped[0]
        and sent_at <= dropped[1]
    )
    if in_flight and not dropped_unseen:
        return None
    if dropped_unseen and intent.state == "sent":
        note = "sent, but IB then dropped a message (error 100) and a full read shows no trace"
    elif intent.action != "place":
        note = "not confirmed before the resync; the planner decides afresh"
    elif intent.state == "journaled":
        note = "journaled but never reached the broker (no order with its orderRef)"
    else:
        note = "sent but never seen at the broker within the acknowledgement timeout"
    return Transition(intent.id, "unsent", note=note)


def _merge(first: Transition, second: Transition) -> Transition:
    return Transition(
        first.intent_id,
        second.state or first.state,
        second.perm_id or first.perm_id,
        max(first.filled, second.filled),
        second.error_code if second.error_code is not None else first.error_code,
        second.error_text if second.error_text is not None else first.error_text,
        second.note or first.note,
    )


def _applied(intent: JournaledIntent, transition: Transition) -> JournaledIntent:
    return replace(
        intent,
        state=transition.state or intent.state,
        perm_id=transition.perm_id or intent.perm_id,
        filled=max(intent.filled, transition.filled),
        error_code=(
            transition.error_code if transition.error_code is not None else intent.error_code
        ),
    )
