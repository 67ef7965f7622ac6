"""Upload export batches from the journal's outbox to Google Cloud Storage, exactly once.

Every upload is conditional on the object not existing (``if_generation_match=0``) under a
name derived from the batch, so a retry can never create a second copy or overwrite. A
412 Precondition Failed therefore means an earlier attempt landed (the process died, or the
connection dropped after GCS stored the object): the existing object's MD5 is compared with
ours; equal marks the row done, different is an alarm that leaves the row ``failed``.

The client library's own retries are disabled (``retry=None``): the outbox owns retrying,
with capped exponential backoff and jitter, persisted across restarts.

Credentials come only from the environment: Application Default Credentials, or
``STORAGE_EMULATOR_HOST`` (with anonymous credentials) for the emulator.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradectl.private_files import LoosePermissions, exposed_secret_problem
from tradectl.records.parquet import PARQUET_CONTENT_TYPE, Checksums
from tradectl.records.worker import AbandonableWorker

log = logging.getLogger(__name__)

EMULATOR_PROJECT = "tradectl-emulator"


@dataclass(frozen=True)
class Backoff:
    """Delay before retry number ``attempts``: doubling from ``initial``, capped at ``cap``,
    with jitter in the upper half so that many rows failing together spread out."""

    initial: float = 2.0
    cap: float = 600.0

    def delay(self, attempts: int, rng: random.Random) -> float:
        ceiling = min(self.cap, self.initial * 2.0 ** min(max(attempts - 1, 0), 60))
        return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


DEFAULT_BACKOFF = Backoff()


def client_from_environment() -> Any:
    """A storage client: anonymous against ``STORAGE_EMULATOR_HOST`` when set, else ADC."""
    # The client library is imported only when a bucket is configured: it is ~35 MB of
    # resident memory that a daemon exporting to a local directory only would carry forever.
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        project = os.environ.get("GOOGLE_CLOUD_PROJECT", EMULATOR_PROJECT)
        anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
        return storage.Client(project=project, credentials=anonymous)
    key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key_file:
        problem = exposed_secret_problem(Path(key_file))
        if problem is not None:
            raise LoosePermissions(problem)
    return storage.Client()


@dataclass
class PassReport:
    """What one pass over the outbox did, and when the next row is due (seconds, or None)."""

    uploaded: int = 0
    already_present: int = 0
    retrying: int = 0
    failed: int = 0
    next_due_in: float | None = None


@dataclass(frozen=True)
class _Row:
    id: int
    bucket: str
    object_name: str
    local_file: str
    md5: str
    crc32c: str
    attempts: int


class _Retry(Exception):
    """This attempt failed in a way a later attempt may not."""


class Uploader:
    """Drains ``records_outbox``. Blocking: run it in a worker thread (``run`` does).

    Give it its own connection to the journal database: it is used from the worker thread.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        client_factory: Callable[[], Any] = client_from_environment,
        backoff: Backoff = DEFAULT_BACKOFF,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._conn = conn
        self._client_factory = client_factory
        self._client: Any = None
        self._backoff = backoff
        self._clock = clock
        self._rng = rng or random.Random()
        self._timeout = timeout

    def upload_due(self, *, everything: bool = False) -> PassReport:
        """One pass: attempt every pending row that is due (or every pending row)."""
        report = PassReport()
        now = self._clock()
        rows = self._conn.execute(
            "SELECT id, bucket, object_name, local_file, md5, crc32c, attempts "
            "FROM records_outbox WHERE state = 'pending' AND (? OR next_attempt_at <= ?) "
            "ORDER BY id",
            (everything, now),
        ).fetchall()
        unreachable: dict[str, float] = {}
        for raw in rows:
            row = _Row(*raw)
            if row.bucket in unreachable:
                # One failed request says the bucket is down (or refuses us); trying every other
                # row now would only multiply timeouts. They wait as long as the failed one.
                self._conn.execute(
                    "UPDATE records_outbox SET next_attempt_at = MAX(next_attempt_at, ?) "
                    "WHERE id = ?",
                    (unreachable[row.bucket], row.id),
                )
                report.retrying += 1
                continue
            next_at = self._claim(row)
            if next_at is None:
                continue
            if not self._attempt(row, report):
                unreachable[row.bucket] = next_at
        due = self._conn.execute(
            "SELECT MIN(next_attempt_at) FROM records_outbox WHERE state = 'pending'"
        ).fetchone()[0]
        report.next_due_in = None if due is None else max(0.0, float(due) - self._clock())
        return report

    async def run(
        self,
        stop: asyncio.Event,
        wake: asyncio.Event | None = None,
        *,
        idle: float = 60.0,
    ) -> None:
        """Upload until ``stop`` is set. Set ``wake`` after queueing rows to upload them now;
        otherwise the loop looks again when the next row is due, or after ``idle`` seconds."""
        loop = asyncio.get_running_loop()
        with AbandonableWorker("records-gcs") as worker:
            while not stop.is_set():
                if wake is not None:
                    wake.clear()
                try:
                    report = await loop.run_in_executor(worker, self.upload_due)
                    timeout = idle if report.next_due_in is None else min(idle, report.next_due_in)
                except Exception:
                    # Never let the uploader die silently: the outbox keeps every row.
                    log.exception("records: upload pass failed; next pass in %.0fs", idle)
                    timeout = idle
                await first_of(stop, wake, timeout)

    def _claim(self, row: _Row) -> float | None:
        """Count the attempt and schedule the next one before trying, so that a crash during
        the upload neither loses the row nor retries it in a tight loop. Returns the time of
        the next attempt, or None when another uploader claimed the row first."""
        attempts = row.attempts + 1
        next_at = self._clock() + self._backoff.delay(attempts, self._rng)
        claimed = self._conn.execute(
            "UPDATE records_outbox SET attempts = ?, next_attempt_at = ? "
            "WHERE id = ? AND state = 'pending' AND attempts = ?",
            (attempts, next_at, row.id, row.attempts),
        )
        return next_at if claimed.rowcount == 1 else None

    def _attempt(self, row: _Row, report: PassReport) -> bool:
        """Try one row; False when the failure was the bucket's (unreachable, refused), not
        this row's."""
        from google.api_core.exceptions import PreconditionFailed

        target = f"gs://{row.bucket}/{row.object_name}"
        try:
            data = self._read_local(row)
            blob = self._bucket(row.bucket).blob(row.object_name)
            try:
                blob.upload_from_string(
                    data,
                    content_type=PARQUET_CONTENT_TYPE,
                    if_generation_match=0,
                    retry=None,
                    timeout=self._timeout,
                )
            except PreconditionFailed:
                self._resolve_existing(row, target, report)
                return True
            self._mark_done(row, blob.generation)
            report.uploaded += 1
            log.info("records: uploaded %s", target)
            return True
        except Exception as exc:
            message = _describe(exc)
            self._conn.execute(
                "UPDATE records_outbox SET last_error = ? WHERE id = ?", (message, row.id)
            )
            report.retrying += 1
            log.warning("records: upload of %s failed, will retry: %s", target, message)
            return isinstance(exc, _Retry)

    def _resolve_existing(self, row: _Row, target: str, report: PassReport) -> None:
        existing = self._bucket(row.bucket).get_blob(
            row.object_name, retry=None, timeout=self._timeout
        )
        if existing is None:
            raise _Retry("412 Precondition Failed but the object is not there (deleted?)")
        same = existing.md5_hash == row.md5 if existing.md5_hash else existing.crc32c == row.crc32c
        if same:
            self._mark_done(row, existing.generation)
            report.already_present += 1
            log.info("records: %s was already uploaded by an earlier attempt", target)
            return
        message = (
            f"{target} already exists with different content (remote md5 {existing.md5_hash}, "
            f"crc32c {existing.crc32c}; local md5 {row.md5}, crc32c {row.crc32c}). Not "
            "overwritten. Compare the two files, move the wrong one aside, then run "
            "`tradectl records retry`."
        )
        self._conn.execute(
            "UPDATE records_outbox SET state = 'failed', last_error = ? WHERE id = ?",
            (message, row.id),
        )
        report.failed += 1
        log.error("records: ALARM: %s", message)

    def _read_local(self, row: _Row) -> bytes:
        path = Path(row.local_file)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise _Retry(
                f"local file {path} is missing; the daemon rewrites it from the journal when it "
                "starts (tradectl run)"
            ) from None
        if Checksums.of(data).md5 != row.md5:
            raise _Retry(
                f"local file {path} does not match the checksum recorded when it was written; "
                "the daemon rewrites it from the journal when it starts (tradectl run)"
            )
        return data

    def _bucket(self, name: str) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client.bucket(name)

    def _mark_done(self, row: _Row, generation: int | None) -> None:
        self._conn.execute(
            "UPDATE records_outbox SET state = 'done', done_at = ?, generation = ?, "
            "last_error = NULL WHERE id = ?",
            (self._clock(), generation, row.id),
        )


def retry_failed(conn: sqlite3.Connection, now: float) -> int:
    """Put ``failed`` rows back to ``pending`` (after an operator resolved the conflict)."""
    cursor = conn.execute(
        "UPDATE records_outbox SET state = 'pending', next_attempt_at = ? WHERE state = 'failed'",
        (now,),
    )
    return cursor.rowcount


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:500]


async def first_of(stop: asyncio.Event, wake: asyncio.Event | None, timeout: float) -> None:
    """Return when ``stop`` or ``wake`` is set, or after ``timeout`` seconds."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
