"""Fault settings the sessions consult while handling messages.

Faults that are one-off actions (dropping or refusing connections, rejecting
orders, connectivity notices) are methods of :class:`~daemon.sim.control.SimControl`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Faults:
    # delay before an order message (placeOrder, cancelOrder, reqGlobalCancel) is handled
    ack_delay_ms: float = 0.0
