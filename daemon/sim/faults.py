"""Injected faults the server consults on every connection and order message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Faults:
    # delay before an order message (placeOrder, cancelOrder, reqGlobalCancel) is handled
    ack_delay_ms: float = 0.0
    # set between a simulated 1100 and 1102; informational only, orders still work
    connectivity_lost: bool = False
