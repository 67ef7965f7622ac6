"""Resync matches each intent through an index of the broker's records instead of scanning them
all: the transitions must be exactly those of the scan it replaced (a reference copy below)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tradectl.journal import BrokerRecord, match_journal
from tradectl.journal.lifecycle import NoTrace, Transition, settle
from tradectl.journal.resync import _events
from tradectl.journal.store import JournaledIntent

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
ACK_TIMEOUT = timedelta(seconds=60)
# Few distinct values, so that refs, ids and permIds collide the way reuse and renames make them.
REFS = st.sampled_from([None, "tctl:core:g1:AAPL.a", "tctl:core:g1:MSFT.b", "tctl:core:g2:AAPL.a"])
ORDER_IDS = st.sampled_from([0, 1, 2, 3])
CLIENTS = st.sampled_from([0, 17, 18])
PERM_IDS = st.sampled_from([0, 100, 101, 102])


@st.composite
def records(draw: st.DrawFn) -> BrokerRecord:
    return BrokerRecord(
        source=draw(st.sampled_from(["open", "completed", "execution"])),
        order_ref=draw(REFS),
        order_id=draw(ORDER_IDS),
        client_id=draw(CLIENTS),
        perm_id=draw(PERM_IDS),
        status=draw(st.sampled_from(["", "Submitted", "Filled", "Cancelled", "PreSubmitted"])),
        filled=draw(st.sampled_from([0.0, 5.0, 10.0])),
        quantity=draw(st.sampled_from([0.0, 10.0])),
    )


@st.composite
def intents(draw: st.DrawFn) -> list[JournaledIntent]:
    count = draw(st.integers(min_value=0, max_value=8))
    return [
        JournaledIntent(
            id=index + 1,
            key=f"key-{index}",
            action=draw(st.sampled_from(["place", "place", "modify", "cancel"])),
            kind="allocations",
            rule="core",
            leg="AAPL.a",
            symbol="AAPL",
            purpose="opening",
            order_ref=draw(REFS),
            order_id=draw(st.one_of(st.none(), ORDER_IDS)),
            client_id=draw(CLIENTS),
            perm_id=draw(PERM_IDS),
            quantity=10.0,
            filled=0.0,
            state=draw(st.sampled_from(["journaled", "sent", "acknowledged"])),
            session="s1",
            created_at=NOW - timedelta(minutes=5),
            sent_at=draw(st.sampled_from([None, NOW - timedelta(minutes=5), NOW])),
            error_code=None,
            error_text=None,
            fields={},
        )
        for index in range(count)
    ]


def scanned_match(
    intents: Sequence[JournaledIntent],
    broker: Sequence[BrokerRecord],
    known_perm_ids: frozenset[int],
) -> list[Transition]:
    """match_journal as it was before the index: every intent scans every record."""
    claimed = set(known_perm_ids)
    absent = NoTrace(NOW, ACK_TIMEOUT, None)
    transitions: list[Transition] = []
    for intent in sorted(intents, key=lambda item: item.id):
        if intent.action == "place":
            found = _scanned_records_of(intent, broker, claimed)
            perm_id = next((record.perm_id for record in found if record.perm_id), 0)
            if perm_id:
                claimed.add(perm_id)
            events = _events(found) if found else [absent]
        else:
            events = [*_events(_scanned_target_of(intent, broker)), absent]
        transition = settle(intent, events)
        if transition is not None:
            transitions.append(transition)
    return transitions


def _scanned_records_of(
    intent: JournaledIntent, broker: Sequence[BrokerRecord], claimed: set[int]
) -> list[BrokerRecord]:
    if intent.perm_id:
        by_perm = [record for record in broker if record.perm_id == intent.perm_id]
        if by_perm:
            return by_perm

    def unclaimed(record: BrokerRecord) -> bool:
        return (
            not record.perm_id or record.perm_id == intent.perm_id or record.perm_id not in claimed
        )

    by_id = [
        record
        for record in broker
        if record.order_ref == intent.order_ref
        and record.order_id != 0
        and record.order_id == intent.order_id
        and record.client_id == intent.client_id
        and unclaimed(record)
    ]
    if by_id:
        perm_id = next((record.perm_id for record in by_id if record.perm_id), 0)
        joined = [record for record in broker if perm_id and record.perm_id == perm_id]
        return by_id + [record for record in joined if record not in by_id]
    for record in broker:
        if (
            record.order_ref == intent.order_ref
            and record.order_id == 0
            and record.perm_id
            and record.perm_id not in claimed
        ):
            return [other for other in broker if other.perm_id == record.perm_id]
    return []


def _scanned_target_of(
    intent: JournaledIntent, broker: Sequence[BrokerRecord]
) -> list[BrokerRecord]:
    return [
        record
        for record in broker
        if record.source != "execution"
        and (
            (
                record.order_id != 0
                and record.order_id == intent.order_id
                and record.client_id == intent.client_id
            )
            or (intent.perm_id and record.perm_id == intent.perm_id)
        )
    ]


@settings(max_examples=400, deadline=None)
@given(
    intents=intents(),
    broker=st.lists(records(), max_size=12),
    known=st.frozensets(PERM_IDS, max_size=2),
)
def test_the_index_matches_exactly_what_scanning_every_record_matched(
    intents: list[JournaledIntent], broker: list[BrokerRecord], known: frozenset[int]
) -> None:
    indexed = match_journal(intents, broker, known_perm_ids=known, now=NOW, ack_timeout=ACK_TIMEOUT)
    assert indexed == scanned_match(intents, broker, known)
