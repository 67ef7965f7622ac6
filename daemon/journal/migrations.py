"""The journal's schema as ordered migrations.

Each migration is one SQL script, applied once, in order, inside one transaction that also records
its number in ``schema_version``. Never edit a released migration: add the next one.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema (issue #5).
    """
    CREATE TABLE config_generations (
        generation TEXT PRIMARY KEY,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    CREATE TABLE reconcile_passes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        generation TEXT,
        trigger TEXT NOT NULL,
        planned INTEGER NOT NULL DEFAULT 0,
        blocked INTEGER NOT NULL DEFAULT 0,
        sent INTEGER NOT NULL DEFAULT 0,
        outcome TEXT,
        detail TEXT
    );
    CREATE TABLE intents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        pass_id INTEGER REFERENCES reconcile_passes(id),
        session TEXT NOT NULL,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        rule TEXT NOT NULL,
        leg TEXT NOT NULL,
        symbol TEXT NOT NULL,
        purpose TEXT NOT NULL,
        order_ref TEXT,
        order_id INTEGER,
        client_id INTEGER NOT NULL,
        perm_id INTEGER NOT NULL DEFAULT 0,
        quantity REAL NOT NULL DEFAULT 0,
        filled REAL NOT NULL DEFAULT 0,
        fields TEXT NOT NULL,
        reason TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN (
            'journaled', 'sent', 'acknowledged', 'filled', 'cancelled', 'rejected', 'unsent')),
        error_code INTEGER,
        error_text TEXT,
        note TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT,
        acknowledged_at TEXT,
        finished_at TEXT,
        updated_at TEXT NOT NULL
    );
    -- Exactly once: at most one live intent per key. A place stays live until its order ends; a
    -- modify or cancel is done once the broker acknowledged it.
    CREATE UNIQUE INDEX intents_live_key ON intents(key)
        WHERE state IN ('journaled', 'sent')
           OR (state = 'acknowledged' AND action = 'place');
    CREATE INDEX intents_order_ref ON intents(order_ref);
    CREATE INDEX intents_rule_state ON intents(rule, state);
    CREATE TABLE orders (
        client_id INTEGER NOT NULL,
        order_id INTEGER NOT NULL,
        perm_id INTEGER NOT NULL DEFAULT 0,
        order_ref TEXT,
        symbol TEXT NOT NULL,
        action TEXT NOT NULL,
        order_type TEXT NOT NULL,
        quantity REAL NOT NULL,
        limit_price REAL,
        aux_price REAL,
        status TEXT NOT NULL,
        filled REAL NOT NULL DEFAULT 0,
        first_seen TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (client_id, order_id, perm_id)
    );
    CREATE INDEX orders_order_ref ON orders(order_ref);
    CREATE TABLE order_status_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        client_id INTEGER NOT NULL,
        order_id INTEGER NOT NULL,
        perm_id INTEGER NOT NULL DEFAULT 0,
        order_ref TEXT,
        status TEXT NOT NULL,
        filled REAL NOT NULL DEFAULT 0,
        remaining REAL NOT NULL DEFAULT 0
    );
    CREATE TABLE executions (
        exec_id TEXT PRIMARY KEY,
        order_id INTEGER NOT NULL,
        client_id INTEGER NOT NULL DEFAULT 0,
        perm_id INTEGER NOT NULL DEFAULT 0,
        order_ref TEXT,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        shares REAL NOT NULL,
        price REAL NOT NULL,
        time TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX executions_order_ref ON executions(order_ref);
    CREATE TABLE commissions (
        exec_id TEXT PRIMARY KEY,
        commission REAL NOT NULL,
        currency TEXT NOT NULL,
        realized_pnl REAL,
        recorded_at TEXT NOT NULL
    );
    CREATE TABLE gateway_errors (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        req_id INTEGER NOT NULL,
        code INTEGER NOT NULL,
        message TEXT NOT NULL,
        order_ref TEXT,
        informational INTEGER NOT NULL
    );
    CREATE TABLE contracts (
        symbol TEXT PRIMARY KEY,
        con_id INTEGER NOT NULL,
        exchange TEXT NOT NULL,
        primary_exchange TEXT NOT NULL,
        currency TEXT NOT NULL,
        min_tick REAL NOT NULL,
        lot_size INTEGER NOT NULL,
        qualified_at TEXT NOT NULL
    );
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
)


def schema_version(connection: sqlite3.Connection) -> int:
    connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
    )
    row = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(connection: sqlite3.Connection, applied_at: str) -> int:
    """Apply every migration the database lacks; return the resulting version.

    Refuses a database written by a newer tradectl: running old code on a newer journal could
    misread what was sent.
    """
    current = schema_version(connection)
    if current > len(MIGRATIONS):
        raise JournalVersionError(
            f"the journal has schema version {current} but this tradectl knows only up to "
            f"{len(MIGRATIONS)}: upgrade tradectl or point --state-dir at another directory"
        )
    for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
        # executescript commits first; the explicit BEGIN makes the step and its version row atomic.
        try:
            connection.executescript(
                "BEGIN IMMEDIATE;\n"
                + script
                + "\nINSERT INTO schema_version (version, applied_at)"
                + f" VALUES ({number}, '{_quoted(applied_at)}');\nCOMMIT;"
            )
        except sqlite3.Error:
            if connection.in_transaction:
                connection.rollback()
            raise
    return schema_version(connection)


def _quoted(text: str) -> str:
    return text.replace("'", "''")


class JournalVersionError(RuntimeError):
    pass
