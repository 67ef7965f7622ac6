"""Realized P&L, first in first out, per symbol. Pure.

A buy opens a lot at its price plus its commission per share; a sell closes the oldest lots
first and realizes, per share, its price minus its own commission per share minus the lot's
cost. So realized P&L is net of the commissions of both legs, as IB reports it. Shares sold
beyond the journaled buys (a position tradectl did not see opened) realize nothing and are
counted as ``unmatched``: the report says so instead of guessing a cost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Fill:
    exec_id: str
    time: datetime
    symbol: str
    side: str
    shares: float
    price: float
    commission: float | None
    rule: str

    @property
    def value(self) -> float:
        return self.shares * self.price


@dataclass(frozen=True)
class Realization:
    """What one fill realized: None for a buy (it opens a lot)."""

    fill: Fill
    realized: float | None
    matched: float
    unmatched: float


def realize(fills: Iterable[Fill]) -> list[Realization]:
    """Each fill with its realized P&L, in time order (then exec id)."""
    lots: dict[str, deque[list[float]]] = {}
    results: list[Realization] = []
    for fill in sorted(fills, key=lambda f: (f.time, f.exec_id)):
        per_share_commission = (fill.commission or 0.0) / fill.shares if fill.shares else 0.0
        open_lots = lots.setdefault(fill.symbol, deque())
        if fill.side == "BUY":
            open_lots.append([fill.shares, fill.price + per_share_commission])
            results.append(Realization(fill, None, 0.0, 0.0))
            continue
        proceeds = fill.price - per_share_commission
        remaining = fill.shares
        realized = 0.0
        while remaining > 1e-9 and open_lots:
            lot = open_lots[0]
            taken = min(lot[0], remaining)
            realized += taken * (proceeds - lot[1])
            lot[0] -= taken
            remaining -= taken
            if lot[0] <= 1e-9:
                open_lots.popleft()
        matched = fill.shares - remaining
        results.append(Realization(fill, realized, matched, max(remaining, 0.0)))
    return results
