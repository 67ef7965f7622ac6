"""The records sink as the daemon and `tradectl apply` run it, against the journal and the
storage emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.dataset as ds

from tests.records.conftest import BUCKET, Emulator
from tests.records.helpers import BackgroundLoop, journal_fills, wait_until
from tradectl.journal import Journal
from tradectl.records.gcs import Backoff
from tradectl.records.service import RecordsService
from tradectl.records.store import read_backlog
from tradectl.schemas.models import Records

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def service(state_dir: Path, records_dir: Path) -> RecordsService:
    return RecordsService(
        state_dir,
        Records(dir=str(records_dir), gcs=f"gs://{BUCKET}/desk-a"),
        "DU1234567",
        export_every=60.0,
        flush_after=timedelta(0),
        backoff=Backoff(initial=0.02, cap=0.1),
        upload_idle=0.05,
    )


def local_ids(records_dir: Path, dataset: str, column: str) -> list[object]:
    table = ds.dataset(records_dir / dataset, partitioning="hive").to_table()
    return list(table[column].to_pylist())


def test_the_daemon_sink_exports_and_uploads_each_fill_and_order_once(
    emulator: Emulator, tmp_path: Path
) -> None:
    state_dir, records_dir = tmp_path / "state", tmp_path / "records"
    sink = service(state_dir, records_dir)
    with Journal.open(state_dir, clock=lambda: START) as journal:
        first = journal_fills(journal, 3, start=START)
        with BackgroundLoop(sink.run) as daemon:
            wait_until(lambda: len(emulator.hooks.stored) == 2, what="first fills and orders")
            second = journal_fills(journal, 2, start=START + timedelta(hours=1), batch=1)
            daemon.call(sink.poke)
            wait_until(lambda: len(emulator.hooks.stored) == 4, what="fills after the poke")

    assert sorted(emulator.exec_ids(tmp_path)) == sorted(first + second)
    assert sorted(local_ids(records_dir, "fills", "exec_id")) == sorted(first + second)
    assert sorted(local_ids(records_dir, "orders", "order_id")) == [100, 101, 102, 103, 104]
    assert all(count == 1 for count in emulator.hooks.stored.values())
    assert sorted(name.split("/")[1] for name in emulator.hooks.stored) == [
        "fills",
        "fills",
        "orders",
        "orders",
    ]
    backlog = read_backlog(state_dir, 0.0)
    assert backlog is not None and (backlog.pending, backlog.done) == (0, 4)


def test_flush_once_for_a_single_apply(emulator: Emulator, tmp_path: Path) -> None:
    state_dir, records_dir = tmp_path / "state", tmp_path / "records"
    with Journal.open(state_dir, clock=lambda: START) as journal:
        exec_ids = journal_fills(journal, 4, start=START)

    report = service(state_dir, records_dir).flush_once()
    again = service(state_dir, records_dir).flush_once()

    assert [batch.dataset for batch in report.batches] == ["fills", "orders"]
    assert report.upload is not None and report.upload.uploaded == 2
    assert again.batches == () and again.upload is not None and again.upload.uploaded == 0
    assert sorted(emulator.exec_ids(tmp_path)) == sorted(exec_ids)


def test_without_gcs_the_sink_writes_local_files_only(tmp_path: Path) -> None:
    state_dir, records_dir = tmp_path / "state", tmp_path / "records"
    with Journal.open(state_dir, clock=lambda: START) as journal:
        exec_ids = journal_fills(journal, 2, start=START)

    report = RecordsService(state_dir, Records(dir=str(records_dir)), None).flush_once()

    assert report.upload is None
    assert sorted(local_ids(records_dir, "fills", "exec_id")) == sorted(exec_ids)
    backlog = read_backlog(state_dir, 0.0)
    assert backlog is not None and (backlog.pending, backlog.done) == (0, 0)
