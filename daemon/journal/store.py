"""The journal: tradectl's local source of truth, one SQLite database in WAL mode.

Every intent is written here, and committed with ``synchronous=FULL`` (fsync'd), before its order
is handed to the socket; events from the broker (status changes, executions, commissions, errors)
are appended as they arrive. One process at a time may hold a state directory: a second ``apply``
or daemon against the same directory is refused, since two writers could send the same intent.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, NamedTuple

from tradectl.errors import PermanentError
from tradectl.journal.keys import ACCOUNT_KEY
from tradectl.journal.migrations import MIGRATIONS, JournalVersionError, migrate
from tradectl.planner.common import TERMINAL_STATUSES
from tradectl.planner.domain import Intent
from tradectl.planner.legs import ORDER_REF_PREFIX, is_entry_leg, parse_order_ref
from tradectl.private_files import (
    LoosePermissions,
    check_state_dir,
    ensure_state_dir,
    make_private,
    open_private,
)

if TYPE_CHECKING:
    from tradectl.journal.lifecycle import Transition

STATE_DIR_ENV = "TRADECTL_STATE_DIR"
SYSTEMD_STATE_DIR_ENV = "STATE_DIRECTORY"
SIM_SUBDIR = "sim"
JOURNAL_FILE = "journal.sqlite3"
LOCK_FILE = "journal.lock"

IntentState = Literal[
    "journaled", "sent", "acknowledged", "filled", "cancelled", "rejected", "unsent"
]
TERMINAL_STATES: frozenset[str] = frozenset({"filled", "cancelled", "rejected", "unsent"})

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def resolve_state_dir(option: str | None, *, sim: bool = False) -> Path:
    """The state directory every command uses, whatever the current directory (docs/daemon.md).

    ``--state-dir`` wins; then systemd's ``$STATE_DIRECTORY`` (its first entry), then
    ``$TRADECTL_STATE_DIR``, then the per-user ``$XDG_STATE_HOME/tradectl`` (by default
    ``~/.local/state/tradectl``). Runs against the simulated gateway (``sim``) keep their journal
    in a ``sim/`` subdirectory of that default, so they never share a journal with a real account.
    An explicit ``--state-dir`` is used as given."""
    if option:
        return Path(option).absolute()
    base = _default_state_dir()
    return base / SIM_SUBDIR if sim else base


def _default_state_dir() -> Path:
    systemd = os.environ.get(SYSTEMD_STATE_DIR_ENV, "").split(":")[0]
    if systemd:
        return Path(systemd).absolute()
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured).absolute()
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "tradectl"
    return Path.home() / ".local" / "state" / "tradectl"


class JournalError(RuntimeError):
    pass


class JournalLocked(JournalError):
    pass


class JournalAccountMismatch(JournalError, PermanentError):
    """The journal belongs to another account: no reconnect changes that."""


class AlreadyLive(JournalError):
    """An intent with this key is already journaled and not finished: sending it again could
    duplicate an order."""

    def __init__(self, key: str) -> None:
        super().__init__(f"intent {key} is already in flight or working; not sent again")
        self.key = key


@dataclass(frozen=True)
class JournaledIntent:
    id: int
    key: str
    action: str
    kind: str
    rule: str
    leg: str
    symbol: str
    purpose: str
    order_ref: str | None
    order_id: int | None
    client_id: int
    perm_id: int
    quantity: float
    filled: float
    state: str
    session: str
    created_at: datetime
    sent_at: datetime | None
    error_code: int | None
    error_text: str | None
    fields: dict[str, Any]

    @property
    def live(self) -> bool:
        return self.state not in TERMINAL_STATES


@dataclass(frozen=True)
class CachedContract:
    symbol: str
    con_id: int
    exchange: str
    primary_exchange: str
    currency: str
    min_tick: float
    lot_size: int


@dataclass(frozen=True)
class AccountSample:
    """The account as one pass saw it (``detail``: positions, prices, allocation targets)."""

    at: datetime
    net_liquidation: float
    cash: float
    day_start_nav: float
    detail: dict[str, Any]


@dataclass(frozen=True)
class RecordedExecution:
    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    order_ref: str | None
    symbol: str
    side: str
    shares: float
    price: float
    time: datetime
    # IB's contract id; 0 in rows journaled before conIds were kept (migration 5).
    con_id: int = 0


# Statuses an order never leaves (the planner's, ``ORDER_ENDED_STATUSES`` in the lifecycle): a
# streamed message that arrives late never takes a row back from one of them.
_ORDER_ENDED_SQL = ", ".join(f"'{status}'" for status in sorted(TERMINAL_STATUSES))
# The statuses at which the record_order_seq triggers number an order for the records (the
# above and ``Inactive``, a rejection). The resync leaves a row in one of them alone: it is the
# order's final record, and an export batch rewritten from the journal must be byte for byte
# the one written before (docs/records.md).
RECORDED_FINAL_STATUSES: tuple[str, ...] = ("ApiCancelled", "Cancelled", "Filled", "Inactive")
_RECORDED_FINAL_SQL = ", ".join(f"'{status}'" for status in RECORDED_FINAL_STATUSES)


class UnfinishedOrderRow(NamedTuple):
    """A row of the journal's orders table for one of tradectl's own orders (one that an intent
    of this journal placed, modified or cancelled) whose status is not final for the records
    (``RECORDED_FINAL_STATUSES``); a tuple, as every resync reads one per working order.

    ``perm_id`` is the row's own key part, 0 for a row recorded before IB gave the permId;
    ``known_perm_id`` the order's permId as the journal knows it (this row's, another row of
    the same order's, or its place intent's), 0 when unknown."""

    client_id: int
    order_id: int
    perm_id: int
    known_perm_id: int
    status: str
    filled: float


@dataclass(frozen=True)
class OrderRowUpdate:
    """What the broker shows for one unfinished orders row (by its key): its status now, its
    filled quantity, and the permId to give a row recorded without one (0 to leave it)."""

    client_id: int
    order_id: int
    perm_id: int
    status: str
    filled: float
    learnt_perm_id: int = 0


@dataclass(frozen=True)
class LedgerRow:
    """What one generation of a bracket or scale rule entered and exited (docs/planning.md,
    "The ledger"). ``side`` is the entry's side. The row with generation ``""`` holds no fills:
    its ``reconstructed`` is the rule's entered quantity IB proved when the journal did not know
    it (see ``entered_total``)."""

    rule: str
    generation: str
    kind: str
    symbol: str
    side: str
    entered: float
    entered_value: float
    exited: float
    reconstructed: float


def entered_total(rows: Sequence[LedgerRow]) -> float:
    """One rule's entered shares: its journaled fills, or IB's proof when that is larger."""
    journaled = sum(row.entered for row in rows)
    return max(journaled, max((row.reconstructed for row in rows), default=0.0))


@dataclass(frozen=True)
class LedgerRelease:
    """`tradectl release RULE`: the rule stopped protecting ``held`` shares on purpose."""

    id: int
    rule: str
    symbol: str
    side: str
    held: float
    reason: str
    released_at: datetime


class NothingToRelease(JournalError):
    pass


# IB may restrict an account whose daily (submissions + revisions + cancels) / (executions + 1)
# stays above this; below a handful of actions the ratio says nothing yet.
ORDER_EFFICIENCY_LIMIT = 20.0
ORDER_EFFICIENCY_MIN_ACTIONS = 20


@dataclass(frozen=True)
class OrderEfficiency:
    """IB's Order Efficiency Ratio for tradectl's own orders (docs/daemon.md)."""

    submissions: int
    revisions: int
    cancels: int
    executions: int

    @property
    def actions(self) -> int:
        return self.submissions + self.revisions + self.cancels

    @property
    def ratio(self) -> float:
        return self.actions / (self.executions + 1)

    @property
    def too_high(self) -> bool:
        return self.actions >= ORDER_EFFICIENCY_MIN_ACTIONS and self.ratio > ORDER_EFFICIENCY_LIMIT

    def line(self) -> str:
        return (
            f"order efficiency ratio {self.ratio:.1f} ({self.submissions} submitted, "
            f"{self.revisions} modified, {self.cancels} cancelled / {self.executions} "
            f"executions + 1; IB may restrict above {ORDER_EFFICIENCY_LIMIT:.0f})"
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class Journal:
    def __init__(self, connection: sqlite3.Connection, lock: IO[str] | None, clock: Clock) -> None:
        self._db = connection
        self._lock = lock
        self._clock = clock
        # The live intents as last read, by id, each with the row it was parsed from: every
        # pass reads them, and most rows have not changed since (parsing is most of the read).
        self._live_parsed: dict[int, tuple[tuple[Any, ...], JournaledIntent]] = {}

    @property
    def writable(self) -> bool:
        return self._lock is not None

    @classmethod
    def open_read_only(cls, state_dir: Path, clock: Clock = utc_now) -> Journal | None:
        """The journal for reading only (``tradectl plan`` beside a running daemon), without the
        lock; None when there is no journal yet."""
        path = state_dir / JOURNAL_FILE
        if not path.exists():
            return None
        try:
            check_state_dir(state_dir)
        except LoosePermissions as exc:
            raise JournalError(str(exc)) from exc
        connection = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
        )
        connection.row_factory = sqlite3.Row
        version = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        if version != len(MIGRATIONS):
            connection.close()
            raise JournalVersionError(
                f"the journal in {state_dir} has schema version {version}, this tradectl expects "
                f"{len(MIGRATIONS)}: run tradectl apply once to migrate it, or upgrade tradectl"
            )
        return cls(connection, None, clock)

    @classmethod
    def open(cls, state_dir: Path, clock: Clock = utc_now) -> Journal:
        try:
            ensure_state_dir(state_dir)
        except LoosePermissions as exc:
            raise JournalError(str(exc)) from exc
        except OSError as exc:
            raise JournalError(f"cannot create state directory {state_dir}: {exc}") from exc
        lock = os.fdopen(
            open_private(state_dir / LOCK_FILE, os.O_WRONLY | os.O_APPEND), "a", encoding="utf-8"
        )
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lock.close()
            raise JournalLocked(
                f"{state_dir} is in use by another tradectl process (apply or run); wait for it "
                "to finish or use another --state-dir"
            ) from exc
        # SQLite gives the WAL and SHM the mode of the database file: 0600 from the start.
        os.close(open_private(state_dir / JOURNAL_FILE, os.O_RDWR))
        connection = sqlite3.connect(
            state_dir / JOURNAL_FILE, isolation_level=None, check_same_thread=False
        )
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode=WAL")
        for suffix in ("-wal", "-shm"):
            make_private(state_dir / f"{JOURNAL_FILE}{suffix}")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA busy_timeout=5000")
        connection.execute("PRAGMA synchronous=FULL")
        migrate(connection, _iso(clock()))
        journal = cls(connection, lock, clock)
        journal._catch_up_ledger()
        return journal

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def now(self) -> datetime:
        return self._clock()

    @contextmanager
    def _transaction(self, durable: bool) -> Iterator[sqlite3.Connection]:
        # FULL fsyncs the WAL on every commit: what an intent needs before its order is sent.
        # Broker events can be read again from the broker, so they commit with NORMAL.
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- config generations and passes -----------------------------------------------------

    def record_generation(self, generation: str) -> None:
        now = _iso(self.now)
        with self._transaction(durable=False) as db:
            db.execute(
                "INSERT INTO config_generations (generation, first_seen, last_seen) "
                "VALUES (?, ?, ?) ON CONFLICT(generation) DO UPDATE SET "
                "last_seen = excluded.last_seen",
                (generation, now, now),
            )

    def begin_pass(self, trigger: str, generation: str | None) -> int:
        with self._transaction(durable=False) as db:
            cursor = db.execute(
                "INSERT INTO reconcile_passes (started_at, generation, trigger) VALUES (?, ?, ?)",
                (_iso(self.now), generation, trigger),
            )
            return int(cursor.lastrowid or 0)

    def finish_pass(
        self, pass_id: int, *, planned: int, blocked: int, sent: int, outcome: str, detail: str
    ) -> None:
        with self._transaction(durable=False) as db:
            db.execute(
                "UPDATE reconcile_passes SET finished_at = ?, planned = ?, blocked = ?, sent = ?, "
                "outcome = ?, detail = ? WHERE id = ?",
                (_iso(self.now), planned, blocked, sent, outcome, detail, pass_id),
            )

    # --- intents ----------------------------------------------------------------------------

    def journal_intents(
        self,
        intents: Sequence[Intent],
        *,
        client_id: int,
        session: str,
        next_valid_order_id: int,
        pass_id: int | None = None,
    ) -> list[JournaledIntent]:
        """Journal a group of intents atomically and durably (all legs of a bracket, say).

        Each ``place`` gets a fresh order id: above the connection's next valid id and above every
        id this client ever used (the high-water mark is stored in the same transaction, so an id
        is never reused even if its order was never sent). Modify and cancel keep the id of the
        order they act on. Raises ``AlreadyLive`` (and journals nothing) when a key is live.
        """
        now = _iso(self.now)
        ids: list[int] = []
        with self._transaction(durable=True) as db:
            high_water = self._order_id_high_water(db, client_id)
            next_id = max(next_valid_order_id, high_water + 1)
            for intent in intents:
                if intent.action == "place":
                    order_id: int | None = next_id
                    next_id += 1
                else:
                    order_id = intent.order_id
                order = intent.order
                fields = {} if order is None else asdict(order)
                try:
                    cursor = db.execute(
                        "INSERT INTO intents (key, pass_id, session, action, kind, rule, leg, "
                        "symbol, purpose, order_ref, order_id, client_id, quantity, fields, "
                        "reason, state, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'journaled', ?, ?)",
                        (
                            intent.key,
                            pass_id,
                            session,
                            intent.action,
                            intent.kind,
                            intent.rule,
                            intent.leg,
                            intent.symbol,
                            intent.purpose,
                            None if order is None else order.order_ref,
                            order_id,
                            client_id,
                            0 if order is None else order.quantity,
                            json.dumps(fields, sort_keys=True),
                            intent.reason,
                            now,
                            now,
                        ),
                    )
                except sqlite3.IntegrityError as exc:
                    if "intents.key" not in str(exc):
                        raise
                    raise AlreadyLive(intent.key) from exc
                ids.append(int(cursor.lastrowid or 0))
            if next_id - 1 > high_water:
                self._set(db, _high_water_key(client_id), str(next_id - 1))
        return [self._intent(intent_id) for intent_id in ids]

    def order_id_high_water(self, client_id: int) -> int:
        return self._order_id_high_water(self._db, client_id)

    def _order_id_high_water(self, db: sqlite3.Connection, client_id: int) -> int:
        row = db.execute(
            "SELECT value FROM kv WHERE key = ?", (_high_water_key(client_id),)
        ).fetchone()
        return -1 if row is None else int(row["value"])

    def mark_sent(self, intent_id: int) -> None:
        now = _iso(self.now)
        with self._transaction(durable=True) as db:
            db.execute(
                "UPDATE intents SET state = 'sent', sent_at = ?, updated_at = ? "
                "WHERE id = ? AND state = 'journaled'",
                (now, now, intent_id),
            )

    def mark_acknowledged(self, intent_id: int, perm_id: int, note: str | None = None) -> None:
        now = _iso(self.now)
        with self._transaction(durable=False) as db:
            db.execute(
                "UPDATE intents SET state = 'acknowledged', acknowledged_at = ?, updated_at = ?, "
                "perm_id = CASE WHEN ? != 0 THEN ? ELSE perm_id END, "
                "note = COALESCE(?, note) WHERE id = ? AND state IN ('journaled', 'sent')",
                (now, now, perm_id, perm_id, note, intent_id),
            )

    def mark_filled_quantity(self, intent_id: int, filled: float) -> None:
        with self._transaction(durable=False) as db:
            db.execute(
                "UPDATE intents SET filled = MAX(filled, ?), updated_at = ? WHERE id = ?",
                (filled, _iso(self.now), intent_id),
            )

    def finish_intent(
        self,
        intent_id: int,
        state: IntentState,
        *,
        error_code: int | None = None,
        error_text: str | None = None,
        note: str | None = None,
    ) -> None:
        if state not in TERMINAL_STATES:
            raise ValueError(f"{state} is not a terminal intent state")
        now = _iso(self.now)
        with self._transaction(durable=False) as db:
            db.execute(
                "UPDATE intents SET state = ?, finished_at = ?, updated_at = ?, "
                "error_code = COALESCE(?, error_code), error_text = COALESCE(?, error_text), "
                "note = COALESCE(?, note) WHERE id = ? AND state NOT IN "
                "('filled', 'cancelled', 'rejected', 'unsent')",
                (state, now, now, error_code, error_text, note, intent_id),
            )

    def apply_transition(self, transition: Transition) -> None:
        """Write what ``tradectl.journal.lifecycle`` decided for one intent, in one transaction:
        a permId learnt, a larger filled quantity, an error, a new state. A finished intent keeps
        its state."""
        now = _iso(self.now)
        state = transition.state
        with self._transaction(durable=False) as db:
            db.execute(
                "UPDATE intents SET perm_id = CASE WHEN ? != 0 THEN ? ELSE perm_id END, "
                "filled = MAX(filled, ?), error_code = COALESCE(?, error_code), "
                "error_text = COALESCE(?, error_text), updated_at = ? WHERE id = ?",
                (
                    transition.perm_id,
                    transition.perm_id,
                    transition.filled,
                    transition.error_code,
                    transition.error_text,
                    now,
                    transition.intent_id,
                ),
            )
            if state == "acknowledged":
                db.execute(
                    "UPDATE intents SET state = 'acknowledged', acknowledged_at = ?, "
                    "note = COALESCE(?, note) WHERE id = ? AND state IN ('journaled', 'sent')",
                    (now, transition.note or None, transition.intent_id),
                )
            elif state is not None:
                if state not in TERMINAL_STATES:
                    raise ValueError(f"{state} is not a state an intent moves to")
                db.execute(
                    "UPDATE intents SET state = ?, finished_at = ?, note = COALESCE(?, note) "
                    "WHERE id = ? AND state NOT IN ('filled', 'cancelled', 'rejected', 'unsent')",
                    (state, now, transition.note or None, transition.intent_id),
                )

    def record_intent_error(self, intent_id: int, code: int, text: str) -> None:
        with self._transaction(durable=False) as db:
            db.execute(
                "UPDATE intents SET error_code = ?, error_text = ?, updated_at = ? WHERE id = ?",
                (code, text, _iso(self.now), intent_id),
            )

    def intent(self, intent_id: int) -> JournaledIntent:
        return self._intent(intent_id)

    def _intent(self, intent_id: int) -> JournaledIntent:
        row = self._db.execute("SELECT * FROM intents WHERE id = ?", (intent_id,)).fetchone()
        if row is None:
            raise KeyError(intent_id)
        return _intent_from_row(row)

    def live_intents(self) -> list[JournaledIntent]:
        rows = self._db.execute(
            "SELECT * FROM intents WHERE state IN ('journaled', 'sent', 'acknowledged') ORDER BY id"
        ).fetchall()
        parsed: dict[int, tuple[tuple[Any, ...], JournaledIntent]] = {}
        for row in rows:
            values = tuple(row)
            known = self._live_parsed.get(row["id"])
            intent = known[1] if known is not None and known[0] == values else _intent_from_row(row)
            parsed[row["id"]] = (values, intent)
        self._live_parsed = parsed
        return [intent for _, intent in parsed.values()]

    def unconfirmed_places(self) -> list[JournaledIntent]:
        """Place intents journaled or sent that the broker has not acknowledged yet."""
        rows = self._db.execute(
            "SELECT * FROM intents WHERE state IN ('journaled', 'sent') AND action = 'place' "
            "ORDER BY id"
        ).fetchall()
        return [_intent_from_row(row) for row in rows]

    def intents(self, since_id: int = 0) -> list[JournaledIntent]:
        rows = self._db.execute(
            "SELECT * FROM intents WHERE id > ? ORDER BY id", (since_id,)
        ).fetchall()
        return [_intent_from_row(row) for row in rows]

    def unfilled_entry_refs(self) -> frozenset[str]:
        """orderRefs of bracket entries whose order the journal saw end without any fill
        (cancelled, rejected, never sent)."""
        rows = self._db.execute(
            "SELECT DISTINCT order_ref FROM intents WHERE action = 'place' AND leg = 'entry' "
            "AND state IN ('cancelled', 'rejected', 'unsent') AND filled = 0 "
            "AND order_ref IS NOT NULL"
        ).fetchall()
        return frozenset(str(row["order_ref"]) for row in rows)

    def entries_ended(self) -> list[tuple[str, str, datetime]]:
        """(orderRef, state, when) of each bracket or scale entry order that ended at IB:
        ``filled``, or ``cancelled`` without tradectl asking (expired); for `reenter`."""
        rows = self._db.execute(
            "SELECT order_ref, state, finished_at FROM intents AS placed WHERE action = 'place' "
            "AND kind IN ('brackets', 'scales') AND purpose = 'opening' "
            "AND state IN ('filled', 'cancelled') AND order_ref IS NOT NULL "
            "AND finished_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM intents AS asked "
            "WHERE asked.action = 'cancel' AND asked.client_id = placed.client_id "
            "AND asked.order_id = placed.order_id AND asked.id > placed.id)"
        ).fetchall()
        return [
            (str(row["order_ref"]), str(row["state"]), datetime.fromisoformat(row["finished_at"]))
            for row in rows
        ]

    def in_flight_keys(self) -> frozenset[str]:
        """Keys sent (or about to be) and not yet seen at the broker: the planner leaves them
        alone until the broker shows them or the resync gives up on them."""
        rows = self._db.execute(
            "SELECT key FROM intents WHERE state IN ('journaled', 'sent')"
        ).fetchall()
        return frozenset(str(row["key"]) for row in rows)

    def sent_since(self, moment: datetime) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM intents WHERE sent_at >= ?", (_iso(moment),)
        ).fetchone()
        return int(row[0])

    def bound_account(self) -> str | None:
        """The account this journal belongs to; None before its first connected run."""
        return self.get_state(ACCOUNT_KEY)

    def bind_account(self, account: str) -> None:
        """Tie this journal to one account for good. Its fills, working orders and intents are
        that account's: read against another account (a simulated one's history against a real
        one, say), filled bracket entries would look filled there too and tradectl would protect
        positions that do not exist. Raises JournalError on a mismatch."""
        bound = self.get_state(ACCOUNT_KEY)
        if bound is None:
            if self.writable:
                self.set_state(ACCOUNT_KEY, account)
            return
        if bound != account:
            raise JournalAccountMismatch(
                f"this state directory's journal belongs to account {bound}, but the rules trade "
                f"{account}: each account needs its own state directory (--state-dir or "
                "TRADECTL_STATE_DIR); nothing was sent"
            )

    def order_efficiency(self, since: datetime) -> OrderEfficiency:
        """Counts of what tradectl sent since ``since`` (the trading day's start) and of the
        executions of its orders."""
        counts = {
            row["action"]: int(row["n"])
            for row in self._db.execute(
                "SELECT action, COUNT(*) AS n FROM intents WHERE sent_at >= ? GROUP BY action",
                (_iso(since),),
            )
        }
        executions = self._db.execute(
            "SELECT COUNT(*) FROM executions WHERE time >= ? AND order_ref LIKE ?",
            (_iso(since), f"{ORDER_REF_PREFIX}:%"),
        ).fetchone()
        return OrderEfficiency(
            submissions=counts.get("place", 0),
            revisions=counts.get("modify", 0),
            cancels=counts.get("cancel", 0),
            executions=int(executions[0]),
        )

    def known_perm_ids(self) -> frozenset[int]:
        """PermIds owned by place intents (a modify or cancel carries its order's permId too,
        which must not make that order look owned by someone else)."""
        rows = self._db.execute(
            "SELECT perm_id FROM intents WHERE perm_id != 0 AND action = 'place'"
        ).fetchall()
        return frozenset(int(row["perm_id"]) for row in rows)

    def rejections(self, since: datetime) -> list[JournaledIntent]:
        rows = self._db.execute(
            "SELECT * FROM intents WHERE state = 'rejected' AND finished_at >= ? ORDER BY id",
            (_iso(since),),
        ).fetchall()
        return [_intent_from_row(row) for row in rows]

    # --- broker events ----------------------------------------------------------------------

    def record_order(
        self,
        *,
        client_id: int,
        order_id: int,
        perm_id: int,
        order_ref: str | None,
        symbol: str,
        action: str,
        order_type: str,
        quantity: float,
        limit_price: float | None,
        aux_price: float | None,
        status: str,
        filled: float,
        con_id: int = 0,
    ) -> None:
        """Keep the order as IB reported it; a row whose status is finished keeps that status
        (IB does not order its messages: an openOrder may follow the final orderStatus)."""
        now = _iso(self.now)
        with self._transaction(durable=False) as db:
            db.execute(
                "INSERT INTO orders (client_id, order_id, perm_id, order_ref, symbol, action, "
                "order_type, quantity, limit_price, aux_price, status, filled, first_seen, "
                "updated_at, con_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(client_id, order_id, perm_id) DO UPDATE SET "
                "order_ref = excluded.order_ref, quantity = excluded.quantity, "
                "order_type = excluded.order_type, limit_price = excluded.limit_price, "
                "aux_price = excluded.aux_price, status = CASE WHEN orders.status IN "
                f"({_ORDER_ENDED_SQL}) THEN orders.status ELSE excluded.status END, "
                "filled = MAX(orders.filled, excluded.filled), updated_at = excluded.updated_at",
                (
                    client_id,
                    order_id,
                    perm_id,
                    order_ref,
                    symbol,
                    action,
                    order_type,
                    quantity,
                    limit_price,
                    aux_price,
                    status,
                    filled,
                    now,
                    now,
                    con_id or None,
                ),
            )

    def record_status(
        self,
        *,
        client_id: int,
        order_id: int,
        perm_id: int,
        order_ref: str | None,
        status: str,
        filled: float,
        remaining: float,
    ) -> None:
        with self._transaction(durable=False) as db:
            db.execute(
                "INSERT INTO order_status_history (at, client_id, order_id, perm_id, order_ref, "
                "status, filled, remaining) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _iso(self.now),
                    client_id,
                    order_id,
                    perm_id,
                    order_ref,
                    status,
                    filled,
                    remaining,
                ),
            )

    def unfinished_own_orders(self) -> list[UnfinishedOrderRow]:
        """The orders rows of tradectl's own orders whose status is not final for the records:
        one read, which the ``orders_unfinished`` index keeps as short as the working orders."""
        cursor = self._db.cursor()
        cursor.row_factory = None
        cursor.execute(
            "SELECT o.client_id, o.order_id, o.perm_id, "
            "COALESCE(NULLIF(o.perm_id, 0), NULLIF((SELECT MAX(s.perm_id) FROM orders AS s "
            "WHERE s.client_id = o.client_id AND s.order_id = o.order_id), 0), "
            "(SELECT MAX(i.perm_id) FROM intents AS i WHERE i.order_ref = o.order_ref "
            "AND i.client_id = o.client_id AND i.order_id = o.order_id AND i.action = 'place'"
            "), 0), o.status, o.filled "
            f"FROM orders AS o WHERE o.status NOT IN ({_RECORDED_FINAL_SQL}) "
            "AND EXISTS (SELECT 1 FROM intents AS i WHERE i.order_ref = o.order_ref "
            "AND i.client_id = o.client_id AND i.order_id = o.order_id)"
        )
        return list(map(UnfinishedOrderRow._make, cursor.fetchall()))

    def update_order_rows(self, updates: Sequence[OrderRowUpdate]) -> None:
        """Bring unfinished orders rows up to what the broker shows (a resync), in one
        transaction: a final row is never changed, a filled quantity never shrinks, and a
        row recorded without a permId learns it unless another row of the order holds it. A
        row reaching a final status is numbered for the records by the record_order_seq
        triggers, at this moment."""
        if not updates:
            return
        now = _iso(self.now)
        with self._transaction(durable=False) as db:
            db.executemany(
                "UPDATE orders SET status = ?, filled = MAX(filled, ?), updated_at = ?, "
                "perm_id = CASE WHEN perm_id = 0 AND ? != 0 AND NOT EXISTS (SELECT 1 FROM "
                "orders AS s WHERE s.client_id = orders.client_id AND s.order_id = "
                "orders.order_id AND s.perm_id = ?) THEN ? ELSE perm_id END "
                "WHERE client_id = ? AND order_id = ? AND perm_id = ? "
                f"AND status NOT IN ({_RECORDED_FINAL_SQL})",
                [
                    (
                        update.status,
                        update.filled,
                        now,
                        update.learnt_perm_id,
                        update.learnt_perm_id,
                        update.learnt_perm_id,
                        update.client_id,
                        update.order_id,
                        update.perm_id,
                    )
                    for update in updates
                ],
            )

    def record_execution(self, execution: RecordedExecution) -> bool:
        """Store an execution once (by execId); True when it was new."""
        with self._transaction(durable=False) as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO executions (exec_id, order_id, client_id, perm_id, "
                "order_ref, symbol, side, shares, price, time, recorded_at, con_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    execution.exec_id,
                    execution.order_id,
                    execution.client_id,
                    execution.perm_id,
                    execution.order_ref,
                    execution.symbol,
                    execution.side,
                    execution.shares,
                    execution.price,
                    _iso(execution.time),
                    _iso(self.now),
                    execution.con_id or None,
                ),
            )
            new = cursor.rowcount == 1
            if new:
                _post_to_ledger(db, execution, _iso(self.now))
            return new

    def executions(self) -> list[RecordedExecution]:
        rows = self._db.execute("SELECT * FROM executions ORDER BY time, exec_id").fetchall()
        return [_execution_from_row(row) for row in rows]

    def record_commission(
        self, exec_id: str, commission: float, currency: str, realized_pnl: float | None
    ) -> None:
        with self._transaction(durable=False) as db:
            db.execute(
                "INSERT OR REPLACE INTO commissions (exec_id, commission, currency, realized_pnl, "
                "recorded_at) VALUES (?, ?, ?, ?, ?)",
                (exec_id, commission, currency, realized_pnl, _iso(self.now)),
            )

    def commission(self, exec_id: str) -> float | None:
        row = self._db.execute(
            "SELECT commission FROM commissions WHERE exec_id = ?", (exec_id,)
        ).fetchone()
        return None if row is None else float(row["commission"])

    def record_gateway_error(
        self, *, req_id: int, code: int, message: str, order_ref: str | None, informational: bool
    ) -> None:
        with self._transaction(durable=False) as db:
            db.execute(
                "INSERT INTO gateway_errors (at, req_id, code, message, order_ref, informational) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (_iso(self.now), req_id, code, message, order_ref, int(informational)),
            )

    # --- the ledger (docs/planning.md, "The ledger") --------------------------------------

    def _catch_up_ledger(self) -> None:
        """Post executions journaled before the ledger existed (journals older than migration 3)."""
        rows = self._db.execute(
            "SELECT * FROM executions WHERE exec_id NOT IN (SELECT exec_id FROM ledger_fills) "
            "ORDER BY time, exec_id"
        ).fetchall()
        if not rows:
            return
        now = _iso(self.now)
        with self._transaction(durable=False) as db:
            for row in rows:
                _post_to_ledger(db, _execution_from_row(row), now)

    def ledger(self) -> list[LedgerRow]:
        rows = self._db.execute("SELECT * FROM ledger ORDER BY rule, generation").fetchall()
        return [_ledger_row(row) for row in rows]

    def releases(self) -> list[LedgerRelease]:
        rows = self._db.execute("SELECT * FROM ledger_releases ORDER BY id").fetchall()
        return [
            LedgerRelease(
                id=row["id"],
                rule=row["rule"],
                symbol=row["symbol"],
                side=row["side"],
                held=row["held"],
                reason=row["reason"],
                released_at=datetime.fromisoformat(row["released_at"]),
            )
            for row in rows
        ]

    def record_reconstruction(self, rule: str, symbol: str, side: str, quantity: float) -> None:
        """An entered quantity of ``rule`` proven by IB (its order graph, its order's filled
        counts) beyond the journaled fills: kept as the largest seen, so the proof survives
        once the orders that gave it are gone."""
        with self._transaction(durable=True) as db:
            db.execute(
                "INSERT INTO ledger (rule, generation, kind, symbol, side, reconstructed, "
                "updated_at) VALUES (?, '', 'brackets', ?, ?, ?, ?) "
                "ON CONFLICT(rule, generation) DO UPDATE SET "
                "reconstructed = MAX(ledger.reconstructed, excluded.reconstructed), "
                "updated_at = excluded.updated_at",
                (rule, symbol, side, quantity, _iso(self.now)),
            )

    def release(self, rule: str, reason: str) -> LedgerRelease:
        """Journal that ``rule`` no longer protects what it holds; raise NothingToRelease when
        its ledger holds nothing."""
        with self._transaction(durable=True) as db:
            rows = [
                _ledger_row(row)
                for row in db.execute(
                    "SELECT * FROM ledger WHERE rule = ? AND kind = 'brackets' ORDER BY generation",
                    (rule,),
                ).fetchall()
            ]
            released = db.execute(
                "SELECT COALESCE(SUM(held), 0) FROM ledger_releases WHERE rule = ?", (rule,)
            ).fetchone()[0]
            entered = entered_total(rows)
            exited = sum(row.exited for row in rows)
            held = entered - exited - released
            if not rows or held <= 0:
                raise NothingToRelease(
                    f"brackets.{rule} holds nothing by its ledger (entered {entered:g}, exited "
                    f"{exited:g}, released {released:g}): nothing to release"
                )
            entry = next((row for row in rows if row.entered or row.reconstructed), rows[0])
            now = _iso(self.now)
            cursor = db.execute(
                "INSERT INTO ledger_releases (rule, symbol, side, held, reason, released_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (rule, entry.symbol, entry.side, held, reason, now),
            )
            assert cursor.lastrowid is not None
            return LedgerRelease(
                id=cursor.lastrowid,
                rule=rule,
                symbol=entry.symbol,
                side=entry.side,
                held=held,
                reason=reason,
                released_at=datetime.fromisoformat(now),
            )

    # --- contract cache ---------------------------------------------------------------------

    def cached_contracts(self, symbols: Sequence[str]) -> dict[str, CachedContract]:
        found: dict[str, CachedContract] = {}
        for symbol in symbols:
            row = self._db.execute("SELECT * FROM contracts WHERE symbol = ?", (symbol,)).fetchone()
            if row is not None:
                found[symbol] = CachedContract(
                    symbol=row["symbol"],
                    con_id=row["con_id"],
                    exchange=row["exchange"],
                    primary_exchange=row["primary_exchange"],
                    currency=row["currency"],
                    min_tick=row["min_tick"],
                    lot_size=row["lot_size"],
                )
        return found

    def contract_keys_by_con_id(self) -> dict[int, str]:
        """The instrument key each contract was resolved for (docs/planning.md, "Instruments
        and conId"), so that holdings of a rule removed since keep their key."""
        rows = self._db.execute("SELECT symbol, con_id FROM contracts ORDER BY qualified_at")
        return {row["con_id"]: row["symbol"] for row in rows}

    def store_contracts(self, contracts: Sequence[CachedContract]) -> None:
        now = _iso(self.now)
        with self._transaction(durable=False) as db:
            db.executemany(
                "INSERT OR REPLACE INTO contracts (symbol, con_id, exchange, primary_exchange, "
                "currency, min_tick, lot_size, qualified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.symbol,
                        c.con_id,
                        c.exchange,
                        c.primary_exchange,
                        c.currency,
                        c.min_tick,
                        c.lot_size,
                        now,
                    )
                    for c in contracts
                ],
            )

    # --- account samples (the daily report) ----------------------------------------------

    def record_account_sample(
        self, net_liquidation: float, cash: float, day_start_nav: float, detail: dict[str, Any]
    ) -> None:
        with self._transaction(durable=False) as db:
            db.execute(
                "INSERT INTO account_samples (at, net_liquidation, cash, day_start_nav, detail) "
                "VALUES (?, ?, ?, ?, ?)",
                (_iso(self.now), net_liquidation, cash, day_start_nav, json.dumps(detail)),
            )

    def account_samples(self, start: datetime, end: datetime) -> list[AccountSample]:
        rows = self._db.execute(
            "SELECT * FROM account_samples WHERE at >= ? AND at < ? ORDER BY at, id",
            (_iso(start), _iso(end)),
        ).fetchall()
        return [
            AccountSample(
                at=datetime.fromisoformat(row["at"]),
                net_liquidation=float(row["net_liquidation"]),
                cash=float(row["cash"]),
                day_start_nav=float(row["day_start_nav"]),
                detail=json.loads(row["detail"]),
            )
            for row in rows
        ]

    def intents_sent_between(self, start: datetime, end: datetime) -> list[JournaledIntent]:
        rows = self._db.execute(
            "SELECT * FROM intents WHERE sent_at >= ? AND sent_at < ? ORDER BY sent_at, id",
            (_iso(start), _iso(end)),
        ).fetchall()
        return [_intent_from_row(row) for row in rows]

    # --- key-value state (halt, circuit breaker, day-start NAV, order id high-water marks) ---

    def get_state(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def state_with_prefix(self, prefix: str) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT key, value FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key",
            (len(prefix), prefix),
        ).fetchall()
        return {str(row["key"]): str(row["value"]) for row in rows}

    def set_state(self, key: str, value: str) -> None:
        with self._transaction(durable=True) as db:
            self._set(db, key, value)

    def set_cached_states(self, items: Mapping[str, str]) -> None:
        """Several values that can be read again from the broker (a day's trading hours): one
        transaction, not fsynced like a decision."""
        with self._transaction(durable=False) as db:
            for key, value in items.items():
                self._set(db, key, value)

    def delete_state(self, key: str) -> None:
        with self._transaction(durable=True) as db:
            db.execute("DELETE FROM kv WHERE key = ?", (key,))

    def _set(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (key, value, _iso(self.now)),
        )


def _high_water_key(client_id: int) -> str:
    return f"order_id_high_water:{client_id}"


def _intent_from_row(row: sqlite3.Row) -> JournaledIntent:
    created = _parse(row["created_at"])
    assert created is not None
    return JournaledIntent(
        id=row["id"],
        key=row["key"],
        action=row["action"],
        kind=row["kind"],
        rule=row["rule"],
        leg=row["leg"],
        symbol=row["symbol"],
        purpose=row["purpose"],
        order_ref=row["order_ref"],
        order_id=row["order_id"],
        client_id=row["client_id"],
        perm_id=row["perm_id"],
        quantity=row["quantity"],
        filled=row["filled"],
        state=row["state"],
        session=row["session"],
        created_at=created,
        sent_at=_parse(row["sent_at"]),
        error_code=row["error_code"],
        error_text=row["error_text"],
        fields=json.loads(row["fields"]),
    )


def _post_to_ledger(db: sqlite3.Connection, execution: RecordedExecution, now: str) -> None:
    """Count one execution in its rule's ledger row, once: an entry leg (a bracket's ``entry``,
    a scale's ``L<n>``) adds to entered, a bracket's ``stop`` or ``target`` to exited."""
    parsed = parse_order_ref(execution.order_ref)
    if parsed is None:
        return
    rule, generation, leg = parsed
    kind = parsed.kind
    is_entry = is_entry_leg(leg)
    if kind not in ("brackets", "scales"):
        return
    if (
        db.execute(
            "INSERT OR IGNORE INTO ledger_fills (exec_id) VALUES (?)", (execution.exec_id,)
        ).rowcount
        != 1
    ):
        return
    side = execution.side if is_entry else ("SELL" if execution.side == "BUY" else "BUY")
    entered = execution.shares if is_entry else 0.0
    exited = 0.0 if is_entry else execution.shares
    db.execute(
        "INSERT INTO ledger (rule, generation, kind, symbol, side, entered, entered_value, exited, "
        "updated_at, con_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(rule, generation) DO UPDATE SET entered = ledger.entered + excluded.entered, "
        "con_id = COALESCE(excluded.con_id, ledger.con_id), "
        "entered_value = ledger.entered_value + excluded.entered_value, "
        "exited = ledger.exited + excluded.exited, updated_at = excluded.updated_at",
        (
            rule,
            generation,
            kind,
            execution.symbol,
            side,
            entered,
            entered * execution.price,
            exited,
            now,
            execution.con_id or None,
        ),
    )


def _execution_from_row(row: sqlite3.Row) -> RecordedExecution:
    return RecordedExecution(
        exec_id=row["exec_id"],
        order_id=row["order_id"],
        client_id=row["client_id"],
        perm_id=row["perm_id"],
        order_ref=row["order_ref"],
        symbol=row["symbol"],
        side=row["side"],
        shares=row["shares"],
        price=row["price"],
        time=datetime.fromisoformat(row["time"]),
        con_id=row["con_id"] or 0,
    )


def _ledger_row(row: sqlite3.Row) -> LedgerRow:
    return LedgerRow(
        rule=row["rule"],
        generation=row["generation"],
        kind=row["kind"],
        symbol=row["symbol"],
        side=row["side"],
        entered=row["entered"],
        entered_value=row["entered_value"],
        exited=row["exited"],
        reconstructed=row["reconstructed"],
    )
