"""The records tables in the journal database: export batches and the GCS outbox.

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

RECORDS_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE record_batches (
        dataset TEXT NOT NULL,
        trade_date TEXT NOT NULL,
        batch_id TEXT NOT NULL,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        row_count INTEGER NOT NULL,
        local_file TEXT NOT NULL,
        md5 TEXT,
        crc32c TEXT,
        size INTEGER,
        planned_at REAL NOT NULL,
        written_at REAL,
        PRIMARY KEY (dataset, trade_date, batch_id)
    );
    CREATE TABLE records_outbox (
        id INTEGER PRIMARY KEY,
        dataset TEXT NOT NULL,
        trade_date TEXT NOT NULL,
        batch_id TEXT NOT NULL,
        bucket TEXT NOT NULL,
        object_name TEXT NOT NULL,
        local_file TEXT NOT NULL,
        md5 TEXT NOT NULL,
        crc32c TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        created_at REAL NOT NULL,
        done_at REAL,
        generation INTEGER,
        UNIQUE (bucket, object_name)
    );
    CREATE INDEX records_outbox_due ON records_outbox (state, next_attempt_at);
    """,
)

_VERSION_TABLE = "records_schema_version"


def connect(path: Path | str) -> sqlite3.Connection:
    """A connection to the journal database in autocommit mode (transactions are explicit)."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.row_factory = sqlite3.Row
    return conn


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Apply the records migrations not yet applied to this database."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {_VERSION_TABLE} (version INTEGER NOT NULL)")
        row = conn.execute(f"SELECT MAX(version) FROM {_VERSION_TABLE}").fetchone()
        applied = row[0] or 0
        for version, script in enumerate(RECORDS_MIGRATIONS, start=1):
            if version <= applied:
                continue
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"INSERT INTO {_VERSION_TABLE} (version) VALUES (?)", (version,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


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
