"""The journal (SQLite, WAL) and the exactly-once resync against the broker (issue #5)."""

from tradectl.journal.lifecycle import Transition
from tradectl.journal.migrations import MIGRATIONS, JournalVersionError
from tradectl.journal.resync import BrokerRecord, match_journal, order_row_updates
from tradectl.journal.store import (
    TERMINAL_STATES,
    AccountSample,
    AlreadyLive,
    CachedContract,
    Journal,
    JournaledIntent,
    JournalError,
    JournalLocked,
    LedgerRelease,
    LedgerRow,
    NothingToRelease,
    OrderEfficiency,
    OrderRowUpdate,
    RecordedExecution,
    UnfinishedOrderRow,
    entered_total,
    resolve_state_dir,
    utc_now,
)

__all__ = [
    "MIGRATIONS",
    "TERMINAL_STATES",
    "AccountSample",
    "AlreadyLive",
    "BrokerRecord",
    "CachedContract",
    "Journal",
    "JournalError",
    "JournalLocked",
    "JournalVersionError",
    "JournaledIntent",
    "LedgerRelease",
    "LedgerRow",
    "NothingToRelease",
    "OrderEfficiency",
    "OrderRowUpdate",
    "RecordedExecution",
    "Transition",
    "UnfinishedOrderRow",
    "entered_total",
    "match_journal",
    "order_row_updates",
    "resolve_state_dir",
    "utc_now",
]
