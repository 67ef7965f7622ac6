"""The resync brings the journal's ``orders`` rows of tradectl's own orders up to the broker's
open and completed orders (docs/records.md, "When an order's final status is recorded"): an
order that ended while no tradectl process listened reaches its final status, is numbered for
the ``orders`` records once, and a finished row never goes back to a live status."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradectl.journal import BrokerRecord, Journal, JournaledIntent, order_row_updates
from tradectl.journal.migrations import MIGRATIONS
from tradectl.journal.store import RECORDED_FINAL_STATUSES, UnfinishedOrderRow
from tradectl.planner.legs import order_ref
from tradectl.records.journal_source import JournalOrderSource
from tradectl.runtime.acting import resync

from .test_journal import place as place_intent

START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
DAY_START = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
CLIENT = 17
MANUAL_CLIENT = 99
REF = order_ref("dip", "a1b2c3d4e5", "entry")


@dataclass(eq=False)
class RecordedBroker:
    """Just what ``resync`` asks a broker: a fixed answer of open orders, completed orders and
    executions, read afresh."""

    records: list[BrokerRecord]
    session: str = "s2"
    last_records_fresh: bool = True
    dropped_before: datetime | None = None
    suspicions: list[str] = field(default_factory=list)

    def broker_records(self, day_start: datetime) -> list[BrokerRecord]:
        return self.records

    def suspect(self, reason: str) -> None:
        self.suspicions.append(reason)

    def listen(self, listener: Callable[[object], None]) -> None:
        """Nothing streams in these tests."""


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    clock = iter(START + timedelta(seconds=second) for second in range(10_000))
    with Journal.open(tmp_path / "state", clock=lambda: next(clock)) as opened:
        yield opened


def place(journal: Journal) -> JournaledIntent:
    """A bracket entry of 100 journaled and sent by an earlier run (order id 7 of client 17)."""
    [journaled] = journal.journal_intents(
        [place_intent("dip:entry", REF, 100)],
        client_id=CLIENT,
        session="s1",
        next_valid_order_id=7,
    )
    journal.mark_sent(journaled.id)
    return journaled


def record_row(
    journal: Journal,
    *,
    perm_id: int,
    status: str,
    filled: float = 0.0,
    client_id: int = CLIENT,
    order_id: int = 7,
    ref: str | None = REF,
) -> None:
    """The orders row the tracker journals from a streamed openOrder or orderStatus."""
    journal.record_order(
        client_id=client_id, order_id=order_id, perm_id=perm_id, order_ref=ref, symbol="AAPL",
        action="BUY", order_type="LMT", quantity=100.0, limit_price=99.0, aux_price=None,
        status=status, filled=filled,
    )  # fmt: skip


def completed(perm_id: int, status: str, filled: float, ref: str | None = REF) -> BrokerRecord:
    """IB's completedOrder as ib_insync gives it: no order id, no client id."""
    return BrokerRecord("completed", ref, 0, 0, perm_id, status, filled, 100.0)


def opened(
    perm_id: int, status: str, filled: float = 0.0, client_id: int = CLIENT, order_id: int = 7
) -> BrokerRecord:
    return BrokerRecord("open", REF, order_id, client_id, perm_id, status, filled, 100.0)


def rows(journal: Journal, client_id: int = CLIENT) -> list[tuple[int, str, float]]:
    """(permId, status, filled) of the client's orders rows, by permId."""
    db = sqlite3.connect(journal_path(journal))
    try:
        found = db.execute(
            "SELECT perm_id, status, filled FROM orders WHERE client_id = ? ORDER BY perm_id",
            (client_id,),
        ).fetchall()
    finally:
        db.close()
    return [tuple(row) for row in found]


def journal_path(journal: Journal) -> str:
    [(_, _, path)] = journal._db.execute("PRAGMA database_list").fetchall()
    return str(path)


def exported(journal: Journal) -> list[tuple[int, int, str, float]]:
    """(order id, permId, status, filled) of every order the records dataset would export."""
    db = sqlite3.connect(journal_path(journal))
    db.row_factory = sqlite3.Row
    try:
        records = JournalOrderSource(db).orders_after(0, 1000)
    finally:
        db.close()
    return [(r.order_id, r.perm_id, r.status, r.filled) for r in records]


def run_resync(journal: Journal, records: Sequence[BrokerRecord]) -> None:
    resync(RecordedBroker(list(records)), journal, DAY_START)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("journaled", "status", "filled"),
    [
        (0.0, "Filled", 100.0),
        (0.0, "Cancelled", 0.0),
        (30.0, "Cancelled", 60.0),
        (0.0, "ApiCancelled", 0.0),
    ],
    ids=["filled", "cancelled", "partly-filled-then-cancelled", "api-cancelled"],
)
def test_an_order_that_ended_unseen_takes_its_completed_status_and_is_exported_once(
    journal: Journal, journaled: float, status: str, filled: float
) -> None:
    intent = place(journal)
    record_row(journal, perm_id=5001, status="Submitted", filled=journaled)
    assert exported(journal) == []

    run_resync(journal, [completed(5001, status, filled)])

    assert rows(journal) == [(5001, status, filled)]
    assert exported(journal) == [(7, 5001, status, filled)]
    assert not journal.intent(intent.id).live
    run_resync(journal, [completed(5001, status, filled)])
    assert exported(journal) == [(7, 5001, status, filled)]


def test_a_working_order_that_filled_more_is_brought_up_to_date_and_stays_unexported(
    journal: Journal,
) -> None:
    place(journal)
    record_row(journal, perm_id=5001, status="PreSubmitted")

    run_resync(journal, [opened(5001, "Submitted", 40.0)])

    assert rows(journal) == [(5001, "Submitted", 40.0)]
    assert exported(journal) == []


def test_another_clients_order_is_never_changed_nor_invented(journal: Journal) -> None:
    place(journal)
    record_row(journal, perm_id=5001, status="Submitted")
    record_row(journal, perm_id=6001, status="Submitted", client_id=MANUAL_CLIENT, ref=None)

    run_resync(
        journal,
        [
            completed(6001, "Filled", 100.0, ref=None),
            opened(6002, "Filled", 100.0, client_id=MANUAL_CLIENT, order_id=8),
            opened(6003, "Filled", 100.0, client_id=MANUAL_CLIENT, order_id=7),
            completed(6004, "Filled", 100.0),
        ],
    )

    assert rows(journal, MANUAL_CLIENT) == [(6001, "Submitted", 0.0)]
    assert rows(journal) == [(5001, "Submitted", 0.0)]
    assert exported(journal) == []


def test_a_completed_order_wins_over_an_older_open_order_record(journal: Journal) -> None:
    place(journal)
    record_row(journal, perm_id=5001, status="Submitted")

    run_resync(journal, [opened(5001, "Submitted"), completed(5001, "Filled", 100.0)])
    assert rows(journal) == [(5001, "Filled", 100.0)]

    run_resync(journal, [opened(5001, "Submitted")])
    record_row(journal, perm_id=5001, status="Submitted")  # a late streamed openOrder
    assert rows(journal) == [(5001, "Filled", 100.0)]
    assert exported(journal) == [(7, 5001, "Filled", 100.0)]


def test_a_row_recorded_before_the_perm_id_learns_it_and_is_exported_with_it(
    journal: Journal,
) -> None:
    place(journal)
    record_row(journal, perm_id=0, status="PreSubmitted")

    run_resync(journal, [completed(5001, "Filled", 100.0)])

    assert rows(journal) == [(5001, "Filled", 100.0)]
    assert exported(journal) == [(7, 5001, "Filled", 100.0)]


def test_both_rows_of_an_order_recorded_before_and_after_its_perm_id_end_final(
    journal: Journal,
) -> None:
    place(journal)
    record_row(journal, perm_id=0, status="PreSubmitted")
    record_row(journal, perm_id=5001, status="Submitted")

    run_resync(journal, [completed(5001, "Filled", 100.0)])

    assert rows(journal) == [(0, "Filled", 100.0), (5001, "Filled", 100.0)]
    assert exported(journal) == [(7, 5001, "Filled", 100.0)]


def test_nothing_is_written_when_the_rows_match_the_broker(journal: Journal) -> None:
    place(journal)
    record_row(journal, perm_id=5001, status="Submitted", filled=10.0)
    [row] = journal.unfinished_own_orders()
    assert row == UnfinishedOrderRow(CLIENT, 7, 5001, 5001, "Submitted", 10.0)

    assert order_row_updates([row], [opened(5001, "Submitted", 10.0)]) == []
    assert order_row_updates([row], [opened(5001, "Submitted", 5.0)]) == []
    assert order_row_updates([row], []) == []


STATUSES = st.sampled_from(["PreSubmitted", "Submitted", "PendingCancel", *RECORDED_FINAL_STATUSES])


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(
    journaled=st.tuples(STATUSES, st.sampled_from([0.0, 40.0])),
    broker=st.lists(
        st.tuples(
            st.sampled_from(["open", "completed"]),
            st.sampled_from([5001, 5002]),
            STATUSES,
            st.sampled_from([0.0, 20.0, 100.0]),
        ),
        max_size=4,
    ),
)
def test_property_rows_only_move_forward_and_follow_a_completed_record(
    tmp_path_factory: pytest.TempPathFactory,
    journaled: tuple[str, float],
    broker: list[tuple[str, int, str, float]],
) -> None:
    records = [
        completed(perm, status, filled) if source == "completed" else opened(perm, status, filled)
        for source, perm, status, filled in broker
    ]
    with Journal.open(tmp_path_factory.mktemp("state"), clock=lambda: START) as journal:
        place(journal)
        record_row(journal, perm_id=5001, status=journaled[0], filled=journaled[1])
        run_resync(journal, records)
        [(_, status, filled)] = rows(journal)

    assert filled >= journaled[1]
    mine = [record for record in records if record.perm_id == 5001]
    done = [record for record in mine if record.source == "completed"]
    if journaled[0] in RECORDED_FINAL_STATUSES:
        assert status == journaled[0]
    elif done:
        assert status in {record.status for record in done}
        assert filled == max(journaled[1], *(record.filled for record in done))
    elif mine:
        assert status in {record.status for record in mine}
    else:
        assert status == journaled[0]


def test_a_row_final_for_the_records_is_left_alone_so_a_rewritten_batch_stays_the_same(
    journal: Journal,
) -> None:
    # A rejection is numbered for the records at Inactive; the sim (and IB) may list the order
    # as Cancelled among completed orders: the exported row must not change under its batch.
    place(journal)
    record_row(journal, perm_id=5001, status="Inactive")
    before = exported(journal)

    run_resync(journal, [completed(5001, "Cancelled", 0.0)])

    assert rows(journal) == [(5001, "Inactive", 0.0)]
    assert exported(journal) == before == [(7, 5001, "Inactive", 0.0)]


def test_the_resync_reads_only_unfinished_rows_through_their_index(journal: Journal) -> None:
    statements: list[str] = []
    journal._db.set_trace_callback(statements.append)
    journal.unfinished_own_orders()
    journal._db.set_trace_callback(None)
    [query] = statements
    plan = journal._db.execute("EXPLAIN QUERY PLAN " + query).fetchall()
    assert "SCAN o USING INDEX orders_unfinished" in [step[3] for step in plan], plan


def test_migration_6_gives_a_row_recorded_before_its_perm_id_the_final_status_of_its_order(
    tmp_path: Path,
) -> None:
    db = sqlite3.connect(tmp_path / "journal.sqlite3")
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
    for number, script in enumerate(MIGRATIONS[:5], start=1):
        db.executescript(script)
        db.execute("INSERT INTO schema_version VALUES (?, 'earlier')", (number,))
    for perm_id, status, filled in [(0, "Submitted", 0.0), (5001, "Filled", 100.0)]:
        db.execute(
            "INSERT INTO orders (client_id, order_id, perm_id, order_ref, symbol, action, "
            "order_type, quantity, status, filled, first_seen, updated_at) "
            "VALUES (17, 7, ?, ?, 'AAPL', 'BUY', 'LMT', 100, ?, ?, ?, ?)",
            (perm_id, REF, status, filled, START.isoformat(), START.isoformat()),
        )
    db.commit()
    db.close()

    with Journal.open(tmp_path, clock=lambda: START) as journal:
        assert rows(journal) == [(0, "Filled", 100.0), (5001, "Filled", 100.0)]
        assert exported(journal) == [(7, 5001, "Filled", 100.0)]
