"""The GCS outbox against a real storage emulator: every fill in the bucket exactly once."""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from google.auth.exceptions import DefaultCredentialsError

from tests.records.conftest import BUCKET, Emulator
from tests.records.helpers import (
    BackgroundLoop,
    ListJournal,
    make_fills,
    migrated_journal,
    wait_until,
)
from tradectl.records.datasets import fills_dataset
from tradectl.records.exporter import Exporter, GcsTarget
from tradectl.records.gcs import Backoff, Uploader, client_from_environment
from tradectl.records.store import backlog, connect

FAST = Backoff(initial=0.02, cap=0.1)
TARGET = GcsTarget(bucket=BUCKET, prefix="desk-a/tradectl")


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    path = tmp_path / "journal.sqlite"
    migrated_journal(path).close()
    return path


@pytest.fixture
def conn(journal_path: Path) -> Iterator[sqlite3.Connection]:
    connection = connect(journal_path)
    yield connection
    connection.close()


def exporter(conn: sqlite3.Connection, journal: ListJournal, tmp_path: Path) -> Exporter:
    return Exporter(conn, fills_dataset(journal), tmp_path / "records", TARGET, clock=time.time)


def uploader(journal_path: Path) -> Uploader:
    return Uploader(connect(journal_path), backoff=FAST, rng=random.Random(1), timeout=5)


def test_fills_reach_the_bucket_exactly_once(
    emulator: Emulator, conn: sqlite3.Connection, journal_path: Path, tmp_path: Path
) -> None:
    journal = ListJournal(make_fills(40, spacing=timedelta(minutes=30)))
    batches = exporter(conn, journal, tmp_path).export(force=True)

    first = uploader(journal_path).upload_due()
    again = uploader(journal_path).upload_due(everything=True)

    assert first.uploaded == len(batches) == 2  # 20 hours of fills span two New York dates
    assert again.uploaded == again.already_present == 0
    assert sorted(emulator.objects()) == [
        "desk-a/tradectl/fills/date=2026-11-24/000000000001-000000000029.parquet",
        "desk-a/tradectl/fills/date=2026-11-25/000000000030-000000000040.parquet",
    ]
    assert sorted(emulator.exec_ids(tmp_path)) == sorted(f.exec_id for f in journal.fills)
    assert all(count == 1 for count in emulator.hooks.stored.values())
    status = backlog(conn, time.time())
    assert (status.pending, status.failed, status.done) == (0, 0, 2)


def test_uploaded_object_matches_the_local_file(
    emulator: Emulator, conn: sqlite3.Connection, journal_path: Path, tmp_path: Path
) -> None:
    journal = ListJournal(make_fills(5))
    (batch,) = exporter(conn, journal, tmp_path).export(force=True)
    uploader(journal_path).upload_due()

    local = (tmp_path / "records" / batch.relative_path).read_bytes()
    assert emulator.objects()[TARGET.object_name(batch.relative_path)] == local


def test_an_object_left_by_an_earlier_attempt_is_accepted_not_duplicated(
    emulator: Emulator, conn: sqlite3.Connection, journal_path: Path, tmp_path: Path
) -> None:
    journal = ListJournal(make_fills(5))
    (batch,) = exporter(conn, journal, tmp_path).export(force=True)
    name = TARGET.object_name(batch.relative_path)
    local = (tmp_path / "records" / batch.relative_path).read_bytes()
    client_from_environment().bucket(BUCKET).blob(name).upload_from_string(local, retry=None)

    report = uploader(journal_path).upload_due()

    assert (report.uploaded, report.already_present, report.failed) == (0, 1, 0)
    assert emulator.hooks.stored[name] == 1
    assert emulator.hooks.rejected[name] == 1
    assert backlog(conn, time.time()).done == 1


def test_a_different_object_under_our_name_is_an_alarm_and_is_never_overwritten(
    emulator: Emulator,
    conn: sqlite3.Connection,
    journal_path: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = ListJournal(make_fills(5))
    (batch,) = exporter(conn, journal, tmp_path).export(force=True)
    name = TARGET.object_name(batch.relative_path)
    client_from_environment().bucket(BUCKET).blob(name).upload_from_string(b"impostor")

    with caplog.at_level(logging.ERROR, logger="tradectl.records.gcs"):
        report = uploader(journal_path).upload_due()
        later = uploader(journal_path).upload_due(everything=True)

    assert report.failed == 1 and later.failed == later.uploaded == 0
    assert emulator.objects()[name] == b"impostor"
    assert any("ALARM" in record.message and name in record.message for record in caplog.records)
    status = backlog(conn, time.time())
    assert status.failed == 1 and not status.healthy
    assert status.last_error is not None and "different content" in status.last_error


def test_gcs_outage_loses_nothing_and_duplicates_nothing(
    emulator: Emulator, conn: sqlite3.Connection, journal_path: Path, tmp_path: Path
) -> None:
    journal = ListJournal()
    export = exporter(conn, journal, tmp_path)
    fills = make_fills(30, spacing=timedelta(minutes=1))

    upload = uploader(journal_path)
    wake = asyncio.Event()

    with BackgroundLoop(lambda stop: upload.run(stop, wake, idle=0.05)) as background:
        journal.fills.extend(fills[:10])
        export.export(force=True)
        background.call(wake.set)
        wait_until(lambda: backlog(conn, 0).done == 1, what="first batch uploaded")

        emulator.stop()
        journal.fills.extend(fills[10:20])
        export.export(force=True)
        journal.fills.extend(fills[20:])
        export.export(force=True)
        background.call(wake.set)

        def retried_while_down() -> bool:
            rows = conn.execute(
                "SELECT attempts, last_error FROM records_outbox WHERE state = 'pending' "
                "ORDER BY id"
            ).fetchall()
            # The first failure of a pass defers the rest: only the oldest row is tried.
            return len(rows) == 2 and rows[0][0] >= 3 and rows[0][1] is not None

        wait_until(retried_while_down, what="retries while GCS is down")
        status = backlog(conn, time.time())
        assert status.pending == 2 and status.last_error is not None
        assert "ConnectionError" in status.last_error

        emulator.start()
        wait_until(lambda: backlog(conn, 0).done == 3, what="backlog drained after restart")

    assert sorted(emulator.exec_ids(tmp_path)) == sorted(f.exec_id for f in journal.fills)
    assert len(emulator.hooks.stored) == 3
    assert all(count == 1 for count in emulator.hooks.stored.values())


def test_a_damaged_local_file_is_not_uploaded_and_is_rewritten_on_restart(
    emulator: Emulator, conn: sqlite3.Connection, journal_path: Path, tmp_path: Path
) -> None:
    journal = ListJournal(make_fills(6))
    export = exporter(conn, journal, tmp_path)
    (batch,) = export.export(force=True)
    path = tmp_path / "records" / batch.relative_path
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])

    refused = uploader(journal_path).upload_due()
    exporter(conn, journal, tmp_path).recover()  # the daemon starting again
    retried = uploader(journal_path).upload_due(everything=True)

    assert (refused.uploaded, refused.retrying) == (0, 1)
    assert retried.uploaded == 1
    assert emulator.objects() == {TARGET.object_name(batch.relative_path): good}


def test_missing_credentials_are_reported_and_retried(
    conn: sqlite3.Connection, journal_path: Path, tmp_path: Path
) -> None:
    def no_credentials() -> object:
        raise DefaultCredentialsError(
            "Your default credentials were not found. To set up Application Default Credentials"
        )

    exporter(conn, ListJournal(make_fills(3)), tmp_path).export(force=True)
    upload = Uploader(connect(journal_path), client_factory=no_credentials, backoff=FAST)

    report = upload.upload_due()

    assert (report.uploaded, report.retrying, report.failed) == (0, 1, 0)
    status = backlog(conn, time.time())
    assert status.pending == 1 and status.healthy
    assert status.last_error is not None
    assert status.last_error.startswith("DefaultCredentialsError: Your default credentials")
