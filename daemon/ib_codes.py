"""IB's message codes and what each means to tradectl: the one home for them.

IB's error callback carries notices, link events and order rejections alike; what a code means
for an order (live, ended, refused) and for the connection is decided from these sets only.
The sim sends the same codes on its side of the wire (docs/sim.md, "Errors and limits"),
deliberately without importing this module, so that a wrong meaning here cannot hide in both.

This module imports nothing (the pure journal lifecycle and the daemon both use it), and it is
not inside ``tradectl.ib`` so that importing it never loads ib_insync.
"""

from __future__ import annotations

# More than 50 messages per second (the pacer's reason to exist).
PACING_VIOLATION = 100
# The gateway lost its connection to IB: it holds every request until 1101 or 1102.
LINK_LOST = 1100
# Restored; market data subscriptions were lost (resubscribe) or kept.
LINK_RESTORED_DATA_LOST = 1101
LINK_RESTORED = 1102
LINK_RESTORED_CODES = frozenset({LINK_RESTORED_DATA_LOST, LINK_RESTORED})

# Error codes that confirm a cancel (202) rather than reject an order.
CANCEL_CONFIRMATIONS = frozenset({202})
# A cancel that cannot be done because its order is not there (10147) or already over (10148).
CANCEL_REFUSALS = frozenset({10147, 10148})
# Notices that leave an order live: 399 (order message, e.g. queued until the open), 404, 434,
# 10167 (delayed data), 10349 (TIF changed), and the link events; 2xxx codes are information
# too. Any other code on an order is a rejection of the message it answers (201, say).
_INFORMATIONAL_CODES = frozenset(
    {399, 404, 434, 10167, 10349, LINK_LOST, LINK_RESTORED_DATA_LOST, LINK_RESTORED}
)


def is_informational(code: int) -> bool:
    return 2000 <= code < 3000 or code in _INFORMATIONAL_CODES
