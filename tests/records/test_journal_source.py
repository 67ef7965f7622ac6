"""Fills read from the journal the apply path writes, exported and read back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from tests.records.helpers import journal_fills
from tradectl.journal import Journal
from tradectl.records.datasets import fills_dataset, orders_dataset
from tradectl.records.exporter import Exporter
from tradectl.records.journal_source import JournalFillSource, JournalOrderSource
from tradectl.records.store import connect, journal_file

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def test_exported_rows_carry_the_journal_context(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "state", clock=lambda: START) as journal:
        exec_ids = journal_fills(journal, 6, start=START)
        conn = connect(journal_file(tmp_path / "state"))
        source = JournalFillSource(conn, account="DU1234567")
        Exporter(conn, fills_dataset(source), tmp_path / "records").export(force=True)

    table = ds.dataset(tmp_path / "records" / "fills", partitioning="hive").to_table()
    rows = sorted(table.to_pylist(), key=lambda row: row["journal_seq"])
    assert [row["exec_id"] for row in rows] == exec_ids
    first = rows[0]
    assert first["account"] == "DU1234567"
    assert (first["symbol"], first["con_id"]) == ("AAPL", 265598)
    assert first["side"] == "SELL"  # IB's SLD
    assert rows[2]["side"] == "BUY"  # IB's BOT
    assert first["order_ref"] == "tctl:core:c0ffee1234:AAPL"
    assert (first["rule"], first["leg"], first["rule_generation"]) == ("core", "AAPL", "c0ffee1234")
    assert first["intent_reason"] == "AAPL weight 0.21 below target 0.30 (drift 0.09 > 0.01)"
    assert first["config_generation"] == "0f0f0f0f0f"
    assert first["commission_currency"] == "USD" and first["commission"] > 0
    assert first["time"] == START
    assert rows[0]["order_id"] == rows[1]["order_id"] != rows[2]["order_id"]


def test_an_execution_seen_again_after_a_reconnect_is_exported_once(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "state", clock=lambda: START) as journal:
        journal_fills(journal, 2, start=START)
        conn = connect(journal_file(tmp_path / "state"))
        exporter = Exporter(conn, fills_dataset(JournalFillSource(conn)), tmp_path / "records")
        exporter.export(force=True)
        again = journal.executions()[0]
        assert not journal.record_execution(again)  # re-read after a reconnect: ignored
        journal.record_execution(replace(again, exec_id="late.1", time=START))
        exporter.export(force=True)

    exec_ids = ds.dataset(tmp_path / "records" / "fills", partitioning="hive").to_table()
    assert sorted(exec_ids["exec_id"].to_pylist()) == sorted(
        ["late.1", *(f"0000e0d5.{0x6700 + i:08x}.01.0{p}" for i in range(2) for p in (1, 2))]
    )


def test_fills_between_selects_by_trade_day(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "state", clock=lambda: START) as journal:
        journal_fills(journal, 3, start=START)
        conn = connect(journal_file(tmp_path / "state"))
        source = JournalFillSource(conn)
        inside = source.fills_between(START, START + timedelta(minutes=3))
        assert [fill.exec_id for fill in inside] == [
            "0000e0d5.00006700.01.01",
            "0000e0d5.00006700.01.02",
        ]


def test_final_orders_are_exported_with_fill_totals(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "state", clock=lambda: START) as journal:
        journal_fills(journal, 3, start=START)
        journal.record_order(
            client_id=17, order_id=900, perm_id=0, order_ref="tctl:ladder:abc:l1",
            symbol="MSFT", action="BUY", order_type="LMT", quantity=100.0, limit_price=410.0,
            aux_price=None, status="Cancelled", filled=0.0,
        )  # fmt: skip
        journal.record_order(
            client_id=17, order_id=901, perm_id=0, order_ref="tctl:ladder:abc:l2",
            symbol="MSFT", action="BUY", order_type="LMT", quantity=100.0, limit_price=409.9,
            aux_price=None, status="Submitted", filled=0.0,
        )  # fmt: skip
        conn = connect(journal_file(tmp_path / "state"))
        source = JournalFillSource(conn)
        orders = JournalOrderSource(conn, account="DU1234567")
        Exporter(conn, orders_dataset(orders), tmp_path / "records").export(force=True)
        fills = source.fills_after(0, 100)

    table = ds.dataset(tmp_path / "records" / "orders", partitioning="hive").to_table()
    rows = sorted(table.to_pylist(), key=lambda row: row["journal_seq"])
    assert [(row["order_id"], row["status"]) for row in rows] == [
        (100, "Filled"),
        (101, "Filled"),
        (102, "Filled"),
        (900, "Cancelled"),
    ]  # 901 is still working: not final, not exported
    first = rows[0]
    first_fills = [fill for fill in fills if fill.order_id == 100]
    assert first["filled"] == 40.0 and first["executions"] == 2
    expected_average = sum(f.price * f.quantity for f in first_fills) / 40.0
    assert first["average_price"] == pytest.approx(expected_average)
    assert first["commission"] == pytest.approx(sum(f.commission or 0 for f in first_fills))
    assert first["perm_id"] == 500_100 and first["account"] == "DU1234567"
    assert first["intent_reason"] == "AAPL weight 0.21 below target 0.30 (drift 0.09 > 0.01)"
    assert (rows[3]["average_price"], rows[3]["executions"], rows[3]["rule"]) == (None, 0, "ladder")
    assert table.schema.field("average_price").type == pa.float64()
    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")


def test_repeated_final_statuses_and_permid_updates_never_break_journaling(
    tmp_path: Path,
) -> None:
    with Journal.open(tmp_path / "state", clock=lambda: START) as journal:
        order = partial(
            journal.record_order,
            client_id=17, order_id=7, order_ref="tctl:core:abc:AAPL", symbol="AAPL",
            action="BUY", order_type="LMT", quantity=10.0, limit_price=100.0, aux_price=None,
        )  # fmt: skip
        order(perm_id=0, status="Submitted", filled=0.0)
        order(perm_id=0, status="Filled", filled=10.0)
        order(perm_id=0, status="Filled", filled=10.0)  # IB repeats orderStatus
        order(perm_id=4242, status="Filled", filled=10.0)  # the permId arrives later
        conn = connect(journal_file(tmp_path / "state"))
        (final,) = JournalOrderSource(conn).orders_after(0, 10)

    assert (final.order_id, final.perm_id, final.status, final.filled) == (7, 4242, "Filled", 10.0)
