"""How urgent a message to the broker is: its own module, free of the planner and the journal,
so that the pacer and an early connection (``tradectl.ib.link``) load without them."""

from __future__ import annotations

from enum import IntEnum


class Priority(IntEnum):
    """How urgent a message to the broker is: a pacer sends cancels first, then protective
    orders, other orders, and plain requests last."""

    CANCEL = 0
    PROTECTIVE = 1
    ORDER = 2
    REQUEST = 3
