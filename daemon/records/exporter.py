"""Export journal rows (fills, final orders) to Parquet batches under ``records.dir`` and
queue them for GCS.

Exactly once, across crashes: a batch's sequence range is committed to ``record_batches``
before its file is written, and the watermark is the highest committed ``last_seq``. After a
crash, ``recover`` rewrites every planned batch from its fixed range; the file name comes from
that range, so a rewrite replaces the file instead of adding a second copy of the fills.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tradectl.records.datasets import Dataset, ExportRow
from tradectl.records.model import DEFAULT_TRADE_ZONE, trade_date
from tradectl.records.parquet import Checksums, parquet_bytes, write_atomic

log = logging.getLogger(__name__)


def batch_id(first_seq: int, last_seq: int) -> str:
    return f"{first_seq:012d}-{last_seq:012d}"


def relative_batch_path(dataset: str, day: date, batch: str) -> str:
    """``fills/date=YYYY-MM-DD/<batch>.parquet``: the layout under ``records.dir`` and under the
    GCS prefix alike (hive partitioning)."""
    return f"{dataset}/date={day.isoformat()}/{batch}.parquet"


@dataclass(frozen=True)
class GcsTarget:
    """Where ``records.gcs`` (``gs://bucket/prefix``) points."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> GcsTarget:
        if not url.startswith("gs://"):
            raise ValueError(f"records.gcs: {url!r} is not a gs://bucket/prefix URL")
        bucket, _, prefix = url[len("gs://") :].partition("/")
        if not bucket:
            raise ValueError(f"records.gcs: {url!r} names no bucket")
        return cls(bucket=bucket, prefix=prefix.strip("/"))

    def object_name(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative


@dataclass(frozen=True)
class Batch:
    dataset: str
    trade_date: date
    batch_id: str
    first_seq: int
    last_seq: int
    row_count: int

    @property
    def relative_path(self) -> str:
        return relative_batch_path(self.dataset, self.trade_date, self.batch_id)


class Exporter:
    """Turns settled rows of one dataset into Parquet batches and outbox rows.

    A row is settled once it is complete (a fill's commission report is in the journal) or
    ``settle`` has passed since its time (IB sends commissions and late executions separately,
    usually within a second). Export never skips an unsettled row: it stops before the first
    one, so the watermark never passes a row that is not yet in a file.

    ``export`` writes a batch only when ``max_rows`` settled rows are waiting or the oldest has
    waited ``flush_after``, so a busy day gives a few files per date, not one per fill;
    ``export(force=True)`` flushes everything settled (shutdown, ad-hoc).
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        dataset: Dataset[Any],
        records_dir: Path,
        gcs: GcsTarget | None = None,
        *,
        clock: Callable[[], float] = time.time,
        zone: ZoneInfo = DEFAULT_TRADE_ZONE,
        max_rows: int = 10_000,
        flush_after: timedelta = timedelta(minutes=5),
        settle: timedelta = timedelta(seconds=60),
    ) -> None:
        self._conn = conn
        self._dataset = dataset
        self._dir = records_dir.absolute()
        self._gcs = gcs
        self._clock = clock
        self._zone = zone
        self._max_rows = max_rows
        self._flush_after = flush_after
        self._settle = settle

    def watermark(self) -> int:
        row = self._conn.execute(
            "SELECT MAX(last_seq) FROM record_batches WHERE dataset = ?", (self._dataset.name,)
        ).fetchone()
        return int(row[0] or 0)

    def export(self, *, force: bool = False) -> list[Batch]:
        """Plan, write and queue the next batches; returns them (empty when nothing was due)."""
        planned = self._plan(force=force)
        for batch in planned:
            self._write(batch)
        self._enqueue_written()
        return planned

    def recover(self, *, verify_files: bool = True) -> None:
        """Rewrite planned batches whose file was never confirmed written (a crash, a full
        disk) and queue written batches that have no outbox row for the configured bucket.

        With ``verify_files`` (at start-up), also rewrite batches whose file has gone missing,
        and those still to upload whose bytes no longer match the checksum recorded when they
        were written (a damaged file is never uploaded)."""
        condition = "" if verify_files else " AND b.written_at IS NULL"
        rows = self._conn.execute(
            "SELECT b.trade_date, b.batch_id, b.first_seq, b.last_seq, b.row_count, "
            "b.local_file, b.written_at, b.md5, EXISTS (SELECT 1 FROM records_outbox o "
            "WHERE o.state = 'pending' AND o.dataset = b.dataset AND o.trade_date = b.trade_date "
            "AND o.batch_id = b.batch_id) AS to_upload FROM record_batches b "
            "WHERE b.dataset = ?" + condition + " ORDER BY b.first_seq",
            (self._dataset.name,),
        ).fetchall()
        for row in rows:
            batch = Batch(
                dataset=self._dataset.name,
                trade_date=date.fromisoformat(row["trade_date"]),
                batch_id=row["batch_id"],
                first_seq=row["first_seq"],
                last_seq=row["last_seq"],
                row_count=row["row_count"],
            )
            if self._needs_rewrite(row):
                log.warning("records: rewriting batch %s from the journal", batch.relative_path)
                self._write(batch)
        self._enqueue_written()

    @staticmethod
    def _needs_rewrite(row: sqlite3.Row) -> bool:
        path = Path(row["local_file"])
        if row["written_at"] is None or not path.exists():
            return True
        return bool(row["to_upload"]) and Checksums.of(path.read_bytes()).md5 != row["md5"]

    def _settled_prefix(self, rows: Sequence[ExportRow]) -> list[ExportRow]:
        cutoff = self._clock() - self._settle.total_seconds()
        settled: list[ExportRow] = []
        for row in rows:
            if not row.complete and row.time.timestamp() > cutoff:
                break
            settled.append(row)
        return settled

    def _plan(self, *, force: bool) -> list[Batch]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            rows = self._settled_prefix(self._dataset.rows_after(self.watermark(), self._max_rows))
            oldest_wait = self._clock() - min((r.time.timestamp() for r in rows), default=0.0)
            due = bool(rows) and (
                force
                or len(rows) >= self._max_rows
                or oldest_wait >= self._flush_after.total_seconds()
            )
            if not due:
                self._conn.execute("COMMIT")
                return []
            by_date: dict[date, list[ExportRow]] = {}
            for row in rows:
                by_date.setdefault(trade_date(row.time, self._zone), []).append(row)
            batches = [
                Batch(
                    dataset=self._dataset.name,
                    trade_date=day,
                    batch_id=batch_id(group[0].seq, group[-1].seq),
                    first_seq=group[0].seq,
                    last_seq=group[-1].seq,
                    row_count=len(group),
                )
                for day, group in sorted(by_date.items())
            ]
            now = self._clock()
            # The watermark must cover the whole range read, including fills of other dates
            # inside a batch's range, which is why it is MAX(last_seq) over all batches.
            self._conn.executemany(
                "INSERT INTO record_batches (dataset, trade_date, batch_id, first_seq, last_seq, "
                "row_count, local_file, planned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        b.dataset,
                        b.trade_date.isoformat(),
                        b.batch_id,
                        b.first_seq,
                        b.last_seq,
                        b.row_count,
                        str(self._dir / b.relative_path),
                        now,
                    )
                    for b in batches
                ],
            )
            self._conn.execute("COMMIT")
            return batches
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def _write(self, batch: Batch) -> None:
        rows = [
            row
            for row in self._dataset.rows_in_range(batch.first_seq, batch.last_seq)
            if trade_date(row.time, self._zone) == batch.trade_date
        ]
        if len(rows) != batch.row_count:
            # The journal changed under a planned range: refusing is safer than exporting a
            # file whose content differs from what may already be in the bucket.
            raise RuntimeError(
                f"records: batch {batch.relative_path} planned {batch.row_count} rows but the "
                f"journal now has {len(rows)} in seq {batch.first_seq}..{batch.last_seq}"
            )
        data = parquet_bytes(self._dataset.table(rows, self._zone))
        sums = Checksums.of(data)
        path = self._dir / batch.relative_path
        write_atomic(path, data)
        self._conn.execute(
            "UPDATE record_batches SET md5 = ?, crc32c = ?, size = ?, written_at = ?, "
            "local_file = ? WHERE dataset = ? AND trade_date = ? AND batch_id = ?",
            (
                sums.md5,
                sums.crc32c,
                sums.size,
                self._clock(),
                str(path),
                batch.dataset,
                batch.trade_date.isoformat(),
                batch.batch_id,
            ),
        )
        # A pending upload must send what is on disk now; an earlier attempt that landed with
        # other bytes then shows up as a checksum mismatch (an alarm), never as silent success.
        self._conn.execute(
            "UPDATE records_outbox SET md5 = ?, crc32c = ?, local_file = ? WHERE state = 'pending' "
            "AND dataset = ? AND trade_date = ? AND batch_id = ?",
            (
                sums.md5,
                sums.crc32c,
                str(path),
                batch.dataset,
                batch.trade_date.isoformat(),
                batch.batch_id,
            ),
        )

    def _enqueue_written(self) -> None:
        if self._gcs is None:
            return
        now = self._clock()
        rows = self._conn.execute(
            "SELECT b.dataset, b.trade_date, b.batch_id, b.local_file, b.md5, b.crc32c "
            "FROM record_batches b WHERE b.dataset = ? AND b.written_at IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM records_outbox o WHERE o.bucket = ? "
            "AND o.dataset = b.dataset AND o.trade_date = b.trade_date "
            "AND o.batch_id = b.batch_id) ORDER BY b.first_seq",
            (self._dataset.name, self._gcs.bucket),
        ).fetchall()
        self._conn.executemany(
            "INSERT OR IGNORE INTO records_outbox (dataset, trade_date, batch_id, bucket, "
            "object_name, local_file, md5, crc32c, state, attempts, next_attempt_at, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
            [
                (
                    row["dataset"],
                    row["trade_date"],
                    row["batch_id"],
                    self._gcs.bucket,
                    self._gcs.object_name(
                        relative_batch_path(
                            row["dataset"], date.fromisoformat(row["trade_date"]), row["batch_id"]
                        )
                    ),
                    row["local_file"],
                    row["md5"],
                    row["crc32c"],
                    now,
                    now,
                )
                for row in rows
            ],
        )
