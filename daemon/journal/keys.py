"""The journal's key-value keys: the one home of every name in its ``state`` table.

Keys ending in ``:`` are prefixes; the rest of the key says for what (a trading day as an ISO
date, a rule name). Readers and writers import the names from here so that two modules can
never disagree on a spelling.
"""

from __future__ import annotations

# The one account a journal belongs to (Journal.bind_account).
ACCOUNT_KEY = "account"

# Halt state: JSON {"reason", "at"} while halted by `tradectl halt`; absent otherwise.
HALT_KEY = "halt"
# The trading day (ISO date) on which the daily-loss breaker tripped, and why.
BREAKER_KEY = "breaker_tripped_on"
BREAKER_REASON_KEY = "breaker_reason"
# + trading day: the breaker's fallback baseline, the first net liquidation seen that day.
DAY_START_NAV_PREFIX = "day_start_nav:"
# + trading day: after `tradectl resume`, the daily-loss breaker measures from the P&L at that
# moment; the key holds RESUME_PENDING until the next pass records that P&L.
PNL_AT_RESUME_PREFIX = "daily_pnl_at_resume:"
RESUME_PENDING = "pending"

# The open rebalance window: JSON {"opened_at", "deadline"} (ISO-8601, deadline null until the
# window's first pass); absent while no window is open. A restart reopens it while its end is
# in the future (docs/daemon.md, "Rebalance window").
REBALANCE_WINDOW_KEY = "rebalance_window"

# + rule: the targets each allocation last traded on (content hash, mode, targets, when, how).
TARGETS_ACCEPTED_PREFIX = "targets_accepted:"
# + rule: a targets file held for `tradectl accept`, as the planner saw it.
TARGETS_PENDING_PREFIX = "targets_pending:"
# + rule + ":" + time: every acceptance (the audit trail).
TARGETS_ACCEPT_LOG_PREFIX = "targets_accept_log:"
