"""The one order lifecycle (daemon/journal/lifecycle.py): (intent, broker event) → transition.

Each row is one situation a live IB session or a resync produces; the same function answers
both. Out-of-order messages (pysystemtrade 1580: a fill after Cancelled; orderStatus before
openOrder; permId 0 right after placeOrder) are rows of their own.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tradectl.journal.lifecycle import (
    BrokerEvent,
    ErrorReport,
    ExecutionReport,
    NoTrace,
    OrderReport,
    Transition,
    advance,
    order_ended,
    settle,
)
from tradectl.journal.store import JournaledIntent

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
TIMEOUT = timedelta(seconds=60)
SESSION = "s"


def intent(action: str = "place", state: str = "sent", **fields: Any) -> JournaledIntent:
    base = JournaledIntent(
        id=1,
        key="tctl:r:g:stop",
        action=action,
        kind="brackets",
        rule="r",
        leg="stop",
        symbol="AAPL",
        purpose="protective",
        order_ref="tctl:r:g:stop",
        order_id=7,
        client_id=17,
        perm_id=0,
        quantity=100,
        filled=0,
        state=state,
        session=SESSION,
        created_at=NOW,
        sent_at=NOW - timedelta(seconds=5),
        error_code=None,
        error_text=None,
        fields={},
    )
    return replace(base, **fields)


def outcome(transition: Transition | None) -> tuple[str | None, float, int] | None:
    if transition is None:
        return None
    return (transition.state, transition.filled, transition.perm_id)


CASES: list[tuple[str, JournaledIntent, BrokerEvent, tuple[str | None, float, int] | None]] = [
    # -- acknowledgement -------------------------------------------------------------------
    (
        "permId 0 right after placeOrder still acknowledges",
        intent(),
        OrderReport("PreSubmitted", quantity=100),
        ("acknowledged", 0, 0),
    ),
    (
        "the permId that arrives later is recorded",
        intent(state="acknowledged"),
        OrderReport("Submitted", quantity=100, perm_id=555),
        (None, 0, 555),
    ),
    (
        "orderStatus before openOrder acknowledges just the same",
        intent(state="journaled"),
        OrderReport("Submitted", 0, 100, 555),
        ("acknowledged", 0, 555),
    ),
    (
        "openOrder after orderStatus changes nothing",
        intent(state="acknowledged", perm_id=555),
        OrderReport("Submitted", 0, 100, 555),
        None,
    ),
    # -- fills ---------------------------------------------------------------------------------
    (
        "a partial fill raises the filled quantity",
        intent(state="acknowledged", perm_id=555),
        ExecutionReport(30, 555, 100),
        (None, 30, 0),
    ),
    (
        "Filled ends the place intent",
        intent(state="acknowledged", perm_id=555, filled=30),
        OrderReport("Filled", 100, 100, 555),
        ("filled", 100, 0),
    ),
    (
        "executions covering the order's current (shrunk) quantity end it",
        intent(state="acknowledged", perm_id=555),
        ExecutionReport(30, 555, quantity=30),
        ("filled", 30, 0),
    ),
    (
        "a completed record filled for its current quantity ends it",
        intent(state="acknowledged", perm_id=555),
        OrderReport("Filled", 30, 30, 555, source="completed"),
        ("filled", 30, 0),
    ),
    (
        "a fill after Cancelled is counted; the intent stays cancelled",
        intent(state="cancelled", perm_id=555, filled=30),
        ExecutionReport(40, 555, 100),
        (None, 40, 0),
    ),
    (
        "a repeated fill of a finished intent changes nothing",
        intent(state="filled", perm_id=555, filled=100),
        ExecutionReport(100, 555, 100),
        None,
    ),
    # -- cancels and rejections ------------------------------------------------------------
    (
        "Cancelled ends a place intent",
        intent(state="acknowledged", perm_id=555),
        OrderReport("Cancelled", 0, 100, 555),
        ("cancelled", 0, 0),
    ),
    (
        "Cancelled after a rejecting error is a rejection",
        intent(state="acknowledged", error_code=201),
        OrderReport("Cancelled", 0, 100),
        ("rejected", 0, 0),
    ),
    (
        "Inactive after 201 is a rejection",
        intent(state="acknowledged", error_code=201),
        OrderReport("Inactive", 0, 100),
        ("rejected", 0, 0),
    ),
    (
        "Inactive alone leaves the order live (placing it again could duplicate it)",
        intent(state="acknowledged", perm_id=555),
        OrderReport("Inactive", 0, 100, 555),
        None,
    ),
    (
        "Inactive among completed orders is over",
        intent(state="acknowledged", perm_id=555),
        OrderReport("Inactive", 0, 100, 555, source="completed"),
        ("rejected", 0, 0),
    ),
    (
        "a 201 is recorded but does not end the order by itself",
        intent(state="acknowledged"),
        ErrorReport(201, "Order rejected"),
        (None, 0, 0),
    ),
    (
        "an informational 399 changes nothing",
        intent(state="acknowledged"),
        ErrorReport(399, "Order message: will be placed at the open"),
        None,
    ),
    (
        "a 2104 farm notice changes nothing",
        intent(state="sent"),
        ErrorReport(2104, "Market data farm connection is OK"),
        None,
    ),
    (
        "a 10349 TIF notice changes nothing",
        intent(state="acknowledged"),
        ErrorReport(10349, "Order TIF was set to DAY"),
        None,
    ),
    (
        "a 404 (shares being located) changes nothing",
        intent(state="acknowledged"),
        ErrorReport(404, "Order held while securities are located"),
        None,
    ),
    (
        "a refused modify is over; the order keeps its fields",
        intent("modify", "sent"),
        ErrorReport(321, "Error validating request"),
        ("rejected", 0, 0),
    ),
    (
        "a cancel of an order already over is itself over, and no rejection",
        intent("cancel", "sent"),
        ErrorReport(10148, "OrderId 7 that needs to be cancelled cannot be cancelled"),
        ("cancelled", 0, 0),
    ),
    (
        "202 confirms a cancel; the status that follows ends it",
        intent("cancel", "sent"),
        ErrorReport(202, "Order Canceled - reason:"),
        None,
    ),
    (
        "Cancelled ends a cancel intent",
        intent("cancel", "acknowledged"),
        OrderReport("Cancelled", 0, 100, 555),
        ("cancelled", 0, 555),
    ),
    (
        "a cancel whose order filled first is over as filled",
        intent("cancel", "sent"),
        OrderReport("Filled", 100, 100, 555),
        ("filled", 0, 555),
    ),
    (
        "a modify is acknowledged by the next live report of its order",
        intent("modify", "sent"),
        OrderReport("Submitted", 0, 30, 555),
        ("acknowledged", 0, 555),
    ),
    (
        "a resync's view of the order does not confirm a modify",
        intent("modify", "sent"),
        OrderReport("Submitted", 0, 30, 555, source="open"),
        (None, 0, 555),
    ),
    # -- resync with no trace --------------------------------------------------------------
    (
        "journaled and absent: it never left the process",
        intent(state="journaled"),
        NoTrace(NOW, TIMEOUT),
        ("unsent", 0, 0),
    ),
    (
        "sent and absent within the timeout: still in flight",
        intent(state="sent"),
        NoTrace(NOW, TIMEOUT),
        None,
    ),
    (
        "sent and absent after the timeout: unsent",
        intent(state="sent", sent_at=NOW - timedelta(minutes=5)),
        NoTrace(NOW, TIMEOUT),
        ("unsent", 0, 0),
    ),
    (
        "sent before its connection's error 100 and absent from a read after it: unsent now",
        intent(state="sent"),
        NoTrace(NOW, TIMEOUT, (SESSION, NOW - timedelta(seconds=1))),
        ("unsent", 0, 0),
    ),
    (
        "sent after the error 100: still in flight",
        intent(state="sent"),
        NoTrace(NOW, TIMEOUT, (SESSION, NOW - timedelta(seconds=10))),
        None,
    ),
    (
        "sent by an earlier connection before another's error 100: still in flight",
        intent(state="sent", session="earlier"),
        NoTrace(NOW, TIMEOUT, (SESSION, NOW - timedelta(seconds=1))),
        None,
    ),
    (
        "acknowledged and gone without a trace: cancelled unseen",
        intent(state="acknowledged", perm_id=555),
        NoTrace(NOW, TIMEOUT),
        ("cancelled", 0, 0),
    ),
]


@pytest.mark.parametrize(
    ("journaled", "event", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_the_lifecycle_table(
    journaled: JournaledIntent,
    event: BrokerEvent,
    expected: tuple[str | None, float, int] | None,
) -> None:
    assert outcome(advance(journaled, event)) == expected


def test_error_details_travel_with_the_transition() -> None:
    transition = advance(intent(state="acknowledged"), ErrorReport(201, "Order rejected"))
    assert transition is not None
    assert (transition.error_code, transition.error_text) == (201, "Order rejected")


def test_settle_applies_events_in_turn_a_rejection_then_inactive() -> None:
    events: list[BrokerEvent] = [ErrorReport(201, "Order rejected"), OrderReport("Inactive")]
    assert outcome(settle(intent(state="acknowledged"), events)) == ("rejected", 0, 0)


def test_settle_of_a_stale_stop_closes_its_place_intent() -> None:
    """Failure 3 of issue #12: a stop placed for 100, modified down to 30, filled 30 while no
    tradectl ran. Its completed record (order id 0) and executions close the place intent."""
    stale = intent(state="acknowledged", perm_id=555, quantity=100)
    events: list[BrokerEvent] = [
        OrderReport("Filled", 30, 30, 555, source="completed"),
        ExecutionReport(30, 555, 30),
    ]
    assert outcome(settle(stale, events)) == ("filled", 30, 0)


@pytest.mark.parametrize(
    ("status", "rejected", "completed", "ended"),
    [
        ("Filled", False, False, True),
        ("Cancelled", False, False, True),
        ("ApiCancelled", False, False, True),
        ("Inactive", False, False, False),
        ("Inactive", True, False, True),
        ("Inactive", False, True, True),
        ("PreSubmitted", False, False, False),
        ("Submitted", False, False, False),
        ("PendingCancel", False, False, False),
    ],
)
def test_one_set_of_statuses_ends_an_order(
    status: str, rejected: bool, completed: bool, ended: bool
) -> None:
    assert order_ended(status, rejected=rejected, completed=completed) is ended
