"""Local Parquet export: what a trader reads back with pyarrow equals the journal."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.records.helpers import FakeClock, ListJournal, make_fills, migrated_journal
from tradectl.records.datasets import fills_dataset
from tradectl.records.exporter import Exporter

START = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = migrated_journal(tmp_path / "journal.sqlite")
    yield connection
    connection.close()


def read_dataset(records_dir: Path) -> pa.Table:
    return ds.dataset(records_dir / "fills", format="parquet", partitioning="hive").to_table()


def parquet_files(records_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(records_dir)) for p in records_dir.rglob("*.parquet"))


def test_read_back_equals_the_journal(conn: sqlite3.Connection, tmp_path: Path) -> None:
    journal = ListJournal(make_fills(60, spacing=timedelta(minutes=25)))
    Exporter(
        conn, fills_dataset(journal), tmp_path, clock=FakeClock(START.timestamp() + 86400 * 3)
    ).export(force=True)

    table = read_dataset(tmp_path)

    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("price").type == pa.float64()
    assert table.schema.field("quantity").type == pa.float64()
    assert table.schema.field("commission").type == pa.float64()
    assert table.schema.field("trade_date").type == pa.date32()
    rows = {row["exec_id"]: row for row in table.to_pylist()}
    assert len(rows) == table.num_rows == len(journal.fills)
    for fill in journal.fills:
        row = rows[fill.exec_id]
        assert row["time"] == fill.time and row["time"].utcoffset() == timedelta(0)
        assert (row["symbol"], row["con_id"], row["side"]) == (fill.symbol, fill.con_id, fill.side)
        assert (row["quantity"], row["price"]) == (fill.quantity, fill.price)
        assert row["commission"] == fill.commission
        assert (row["order_id"], row["perm_id"], row["order_ref"]) == (
            fill.order_id,
            fill.perm_id,
            fill.order_ref,
        )
        assert (row["rule"], row["leg"], row["intent_reason"], row["config_generation"]) == (
            fill.rule,
            fill.leg,
            fill.intent_reason,
            fill.config_generation,
        )
        assert str(row["date"]) == row["trade_date"].isoformat()


def test_trade_date_is_the_new_york_calendar_day(conn: sqlite3.Connection, tmp_path: Path) -> None:
    # 00:30 UTC on the 25th is 19:30 on the 24th in New York: the statement says the 24th.
    late = make_fills(1, start=datetime(2026, 11, 25, 0, 30, tzinfo=UTC))
    Exporter(conn, fills_dataset(ListJournal(late)), tmp_path).export(force=True)

    assert parquet_files(tmp_path) == ["fills/date=2026-11-24/000000000001-000000000001.parquet"]


def test_fills_are_batched_not_one_file_per_fill(conn: sqlite3.Connection, tmp_path: Path) -> None:
    clock = FakeClock(START.timestamp())
    journal = ListJournal()
    exporter = Exporter(
        conn,
        fills_dataset(journal),
        tmp_path,
        clock=clock,
        flush_after=timedelta(minutes=5),
        max_rows=50,
    )
    for fill in make_fills(20, start=START, spacing=timedelta(seconds=10)):
        clock.now = fill.time.timestamp() + 1
        journal.fills.append(fill)
        exporter.export()
    assert parquet_files(tmp_path) == []

    clock.advance(300)
    exporter.export()
    exporter.export()

    assert parquet_files(tmp_path) == ["fills/date=2026-11-24/000000000001-000000000020.parquet"]


def test_a_full_batch_is_written_without_waiting(conn: sqlite3.Connection, tmp_path: Path) -> None:
    fills = make_fills(25, start=START, spacing=timedelta(seconds=1))
    clock = FakeClock(fills[-1].time.timestamp())
    Exporter(conn, fills_dataset(ListJournal(fills)), tmp_path, clock=clock, max_rows=10).export()

    assert parquet_files(tmp_path) == ["fills/date=2026-11-24/000000000001-000000000010.parquet"]


def test_a_fill_waits_for_its_commission_and_holds_back_later_fills(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    fills = make_fills(3, start=START, spacing=timedelta(seconds=1))
    pending = replace(fills[1], commission=None)
    journal = ListJournal([fills[0], pending, fills[2]])
    clock = FakeClock(fills[2].time.timestamp() + 1)
    exporter = Exporter(
        conn, fills_dataset(journal), tmp_path, clock=clock, settle=timedelta(seconds=60)
    )

    exporter.export(force=True)
    assert read_dataset(tmp_path)["exec_id"].to_pylist() == [fills[0].exec_id]

    journal.fills[1] = fills[1]  # the commission report arrived
    exporter.export(force=True)
    assert sorted(read_dataset(tmp_path)["exec_id"].to_pylist()) == sorted(f.exec_id for f in fills)


def test_commission_that_never_comes_is_exported_as_null_after_the_settle_time(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    fill = replace(make_fills(1, start=START)[0], commission=None)
    clock = FakeClock(START.timestamp() + 1)
    exporter = Exporter(conn, fills_dataset(ListJournal([fill])), tmp_path, clock=clock)
    exporter.export(force=True)
    assert parquet_files(tmp_path) == []

    clock.advance(61)
    exporter.export(force=True)
    assert read_dataset(tmp_path)["commission"].to_pylist() == [None]


def test_crash_between_planning_and_writing_rewrites_the_same_file(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    journal = ListJournal(make_fills(12, start=START))
    crashing = Exporter(
        conn, fills_dataset(journal), tmp_path, clock=FakeClock(START.timestamp() + 86400)
    )
    planned = crashing._plan(force=True)  # committed the range, then the process died
    journal.fills.extend(make_fills(5, start=START + timedelta(hours=2), first_seq=13, seed=8))

    restarted = Exporter(
        conn, fills_dataset(journal), tmp_path, clock=FakeClock(START.timestamp() + 86400)
    )
    restarted.recover()
    restarted.export(force=True)

    assert [b.relative_path for b in planned] == [
        "fills/date=2026-11-24/000000000001-000000000012.parquet"
    ]
    assert parquet_files(tmp_path) == [
        "fills/date=2026-11-24/000000000001-000000000012.parquet",
        "fills/date=2026-11-24/000000000013-000000000017.parquet",
    ]
    exec_ids = read_dataset(tmp_path)["exec_id"].to_pylist()
    assert sorted(exec_ids) == sorted(f.exec_id for f in journal.fills)


def test_rewriting_a_batch_gives_identical_bytes(conn: sqlite3.Connection, tmp_path: Path) -> None:
    journal = ListJournal(make_fills(8, start=START))
    exporter = Exporter(
        conn, fills_dataset(journal), tmp_path, clock=FakeClock(START.timestamp() + 86400)
    )
    (batch,) = exporter.export(force=True)
    path = tmp_path / batch.relative_path
    first = path.read_bytes()
    path.unlink()

    exporter.recover()

    assert path.read_bytes() == first
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]


def test_a_leftover_temp_file_is_invisible_to_readers(
    conn: sqlite3.Connection, tmp_path: Path
) -> None:
    journal = ListJournal(make_fills(4, start=START))
    (batch,) = Exporter(conn, fills_dataset(journal), tmp_path).export(force=True)
    partition = (tmp_path / batch.relative_path).parent
    (partition / f".{batch.batch_id}.parquet.1234.tmp").write_bytes(b"half a file")

    assert read_dataset(tmp_path).num_rows == 4


@settings(max_examples=30, deadline=None)
@given(
    chunks=st.lists(st.integers(min_value=0, max_value=7), min_size=1, max_size=8),
    crash_after_plan=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_every_execution_exported_exactly_once_across_crashes(
    chunks: list[int], crash_after_plan: list[bool], tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp_path = tmp_path_factory.mktemp("prop")
    conn = migrated_journal(tmp_path / "journal.sqlite")
    all_fills = make_fills(sum(chunks), start=START, spacing=timedelta(hours=3))
    journal = ListJournal()
    clock = FakeClock(START.timestamp() + 86400 * 10)
    offset = 0
    for step, size in enumerate(chunks):
        journal.fills.extend(all_fills[offset : offset + size])
        offset += size
        exporter = Exporter(conn, fills_dataset(journal), tmp_path / "records", clock=clock)
        exporter.recover()
        if crash_after_plan[step]:
            exporter._plan(force=True)
        else:
            exporter.export(force=True)
    final = Exporter(conn, fills_dataset(journal), tmp_path / "records", clock=clock)
    final.recover()
    final.export(force=True)
    conn.close()

    if not all_fills:
        assert parquet_files(tmp_path / "records") == []
        return
    exec_ids = read_dataset(tmp_path / "records")["exec_id"].to_pylist()
    assert sorted(exec_ids) == sorted(f.exec_id for f in all_fills)
