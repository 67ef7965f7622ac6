"""The records tables in the journal database (migration 2 in daemon/journal/migrations.py):
export batches and the GCS outbox.

``record_batches`` is the exporter's ledger. A batch is planned (its sequence range fixed) in
one transaction before its file is written, so a crash between the two rewrites the same file
instead of exporting the fills again under another name. The highest planned ``last_seq`` is
the export watermark.

``records_outbox`` holds one row per object to upload. Its states:
``pending`` (to upload; ``next_attempt_at`` says when), ``done`` (the object is in the bucket
with our checksum), ``failed`` (the bucket holds a different object under our name: an alarm an
operator must resolve; it is never retried on its own).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tradectl.journal.store import JOURNAL_FILE


def journal_file(state_dir: Path) -> Path:
    return state_dir / JOURNAL_FILE


def connect(path: Path | str) -> sqlite3.Connection:
    """A second connection to the journal database, for the uploader's worker thread and the
    ``records`` commands. It does not take the journal's state-directory lock: it touches only
    the records tables (and reads executions), which WAL lets it do while the daemon runs."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.row_factory = sqlite3.Row
    return conn


def has_records_tables(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records_outbox'"
    ).fetchone()
    return row is not None


@dataclass(frozen=True)
class Backlog:
    """The GCS outbox at a glance, for ``tradectl records status`` and ``tradectl status``."""

    pending: int
    failed: int
    done: int
    oldest_pending_age_seconds: float | None
    last_error: str | None

    @property
    def healthy(self) -> bool:
        return self.failed == 0


def backlog(conn: sqlite3.Connection, now: float) -> Backlog:
    counts = dict(
        conn.execute("SELECT state, COUNT(*) FROM records_outbox GROUP BY state").fetchall()
    )
    oldest = conn.execute(
        "SELECT MIN(created_at) FROM records_outbox WHERE state = 'pending'"
    ).fetchone()[0]
    last_error = conn.execute(
        "SELECT last_error FROM records_outbox WHERE state != 'done' AND last_error IS NOT NULL "
        "ORDER BY CASE state WHEN 'failed' THEN 0 ELSE 1 END, id DESC LIMIT 1"
    ).fetchone()
    return Backlog(
        pending=int(counts.get("pending", 0)),
        failed=int(counts.get("failed", 0)),
        done=int(counts.get("done", 0)),
        oldest_pending_age_seconds=None if oldest is None else max(0.0, now - float(oldest)),
        last_error=None if last_error is None else str(last_error[0]),
    )


def read_backlog(state_dir: Path, now: float) -> Backlog | None:
    """The outbox backlog of the journal in ``state_dir``, or None when there is no journal (or
    no records tables yet). Read-only: safe while the daemon runs."""
    path = journal_file(state_dir)
    if not path.exists():
        return None
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    try:
        if not has_records_tables(conn):
            return None
        return backlog(conn, now)
    finally:
        conn.close()
