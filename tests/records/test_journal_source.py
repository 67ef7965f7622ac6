"""Fills read from the journal the apply path writes, exported and read back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.dataset as ds

from daemon.journal import Journal
from daemon.records.datasets import fills_dataset
from daemon.records.exporter import Exporter
from daemon.records.journal_source import JournalFillSource
from daemon.records.store import connect, journal_file
from tests.records.helpers import journal_fills

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
