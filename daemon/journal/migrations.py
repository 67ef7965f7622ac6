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
    # 2: records export batches and the GCS outbox (issue #7, daemon/records/store.py).
    # record_fill_seq numbers executions in commit order with a sequence that never changes
    # (executions' own rowid may be renumbered by VACUUM); export batches are named by it.
    # Triggers fill these tables, so the journal's writers need not know about records. They run
    # inside the journal's own statements, whose conflict policy overrides a trigger's (an
    # upsert's ABORT beats OR IGNORE), so they guard with WHEN NOT EXISTS and can never fail.
    """
    CREATE TABLE record_fill_seq (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        exec_id TEXT NOT NULL UNIQUE
    );
    INSERT INTO record_fill_seq (exec_id) SELECT exec_id FROM executions ORDER BY rowid;
    CREATE TRIGGER record_fill_seq_on_execution AFTER INSERT ON executions
    WHEN NOT EXISTS (SELECT 1 FROM record_fill_seq WHERE exec_id = NEW.exec_id)
    BEGIN
        INSERT INTO record_fill_seq (exec_id) VALUES (NEW.exec_id);
    END;
    -- record_order_seq numbers orders as they reach a final status, with the time it was seen.
    CREATE TABLE record_order_seq (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        client_id INTEGER NOT NULL,
        order_id INTEGER NOT NULL,
        final_at TEXT NOT NULL,
        UNIQUE (client_id, order_id)
    );
    INSERT INTO record_order_seq (client_id, order_id, final_at)
        SELECT client_id, order_id, MIN(updated_at) FROM orders
        WHERE status IN ('Filled', 'Cancelled', 'ApiCancelled', 'Inactive')
        GROUP BY client_id, order_id ORDER BY MIN(updated_at);
    CREATE TRIGGER record_order_seq_on_final_insert AFTER INSERT ON orders
    WHEN NEW.status IN ('Filled', 'Cancelled', 'ApiCancelled', 'Inactive') AND NOT EXISTS (
        SELECT 1 FROM record_order_seq WHERE client_id = NEW.client_id AND order_id = NEW.order_id)
    BEGIN
        INSERT INTO record_order_seq (client_id, order_id, final_at)
        VALUES (NEW.client_id, NEW.order_id, NEW.updated_at);
    END;
    CREATE TRIGGER record_order_seq_on_final_update AFTER UPDATE OF status ON orders
    WHEN NEW.status IN ('Filled', 'Cancelled', 'ApiCancelled', 'Inactive') AND NOT EXISTS (
        SELECT 1 FROM record_order_seq WHERE client_id = NEW.client_id AND order_id = NEW.order_id)
    BEGIN
        INSERT INTO record_order_seq (client_id, order_id, final_at)
        VALUES (NEW.client_id, NEW.order_id, NEW.updated_at);
    END;
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
    # 3: the account as each pass saw it, for the daily report (issue #18): NAV, cash, and in
    # ``detail`` the positions, last prices and allocation targets (JSON).
    """
    CREATE TABLE account_samples (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        net_liquidation REAL NOT NULL,
        cash REAL NOT NULL,
        day_start_nav REAL NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX account_samples_at ON account_samples (at);
    """,
    # 4: the per-rule ledger of brackets and scales (issue #12, docs/planning.md "The ledger").
    # One row per (rule, generation): shares its entry legs bought or sold (entered, and their
    # value for the average price) and shares its stop and target legs closed (exited). Written
    # with each new execution (ledger_fills makes that exactly once per execId) and kept after
    # the rule is removed. ``reconstructed`` is an entered quantity inferred from IB's order graph
    # when the journal had no fills for the rule (a lost or fresh journal). ledger_releases
    # records `tradectl release`: the held quantity the rule stops protecting.
    """
    CREATE TABLE ledger (
        rule TEXT NOT NULL,
        generation TEXT NOT NULL,
        kind TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        entered REAL NOT NULL DEFAULT 0,
        entered_value REAL NOT NULL DEFAULT 0,
        exited REAL NOT NULL DEFAULT 0,
        reconstructed REAL NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (rule, generation)
    );
    CREATE TABLE ledger_fills (
        exec_id TEXT PRIMARY KEY
    );
    CREATE TABLE ledger_releases (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        rule TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        held REAL NOT NULL,
        reason TEXT NOT NULL,
        released_at TEXT NOT NULL
    );
    """,
    # 5: conId is the identity of an instrument (issue #14, docs/planning.md "Instruments and
    # conId"): orders, executions and the ledger keep IB's contract id beside the instrument
    # key. Rows from before stay valid with NULL and are matched by symbol, US stocks only.
    """
    ALTER TABLE orders ADD COLUMN con_id INTEGER;
    ALTER TABLE executions ADD COLUMN con_id INTEGER;
    ALTER TABLE ledger ADD COLUMN con_id INTEGER;
    """,
    # 6: every resync brings the orders rows of tradectl's own unfinished orders up to the
    # broker's open and completed orders (docs/records.md, "When an order's final status is
    # recorded"); this index keeps that read as short as the working orders, however long the
    # history. Its WHERE is the text of Journal.unfinished_own_orders' condition (SQLite uses a
    # partial index only for a query that repeats its condition): the statuses at which the
    # record_order_seq triggers number an order. A row recorded before IB gave the permId that
    # still shows a live status while another row of the same order is final is that order: it
    # takes the final status once here, and leaves the resync's read.
    """
    CREATE INDEX orders_unfinished ON orders(order_ref)
        WHERE status NOT IN ('ApiCancelled', 'Cancelled', 'Filled', 'Inactive');
    UPDATE orders SET
        status = (SELECT s.status FROM orders AS s WHERE s.client_id = orders.client_id
            AND s.order_id = orders.order_id AND s.perm_id != 0
            AND s.status IN ('ApiCancelled', 'Cancelled', 'Filled', 'Inactive')
            ORDER BY s.updated_at DESC LIMIT 1),
        filled = MAX(filled, (SELECT MAX(s.filled) FROM orders AS s
            WHERE s.client_id = orders.client_id AND s.order_id = orders.order_id))
    WHERE perm_id = 0 AND order_id != 0
        AND status NOT IN ('ApiCancelled', 'Cancelled', 'Filled', 'Inactive')
        AND EXISTS (SELECT 1 FROM orders AS s WHERE s.client_id = orders.client_id
            AND s.order_id = orders.order_id AND s.perm_id != 0
            AND s.status IN ('ApiCancelled', 'Cancelled', 'Filled', 'Inactive'));
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
