"""Test doubles for the records tests: a journal of executions and condition waits."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from daemon.records.model import FillRecord
from schemas.models import order_ref

SYMBOLS = {"AAPL": 265598, "MSFT": 272093, "GOOGL": 208813720, "SPY": 756733}


@dataclass
class ListJournal:
    """The executions table as the records module sees it (``FillSource``)."""

    fills: list[FillRecord] = field(default_factory=list)

    def fills_after(self, seq: int, limit: int) -> Sequence[FillRecord]:
        return [fill for fill in self.fills if fill.seq > seq][:limit]

    def fills_in_range(self, first: int, last: int) -> Sequence[FillRecord]:
        return [fill for fill in self.fills if first <= fill.seq <= last]

    def fills_between(self, start: datetime, end: datetime) -> Sequence[FillRecord]:
        return [fill for fill in self.fills if start <= fill.time < end]


def make_fills(
    count: int,
    *,
    start: datetime = datetime(2026, 11, 24, 14, 30, tzinfo=UTC),
    first_seq: int = 1,
    spacing: timedelta = timedelta(minutes=7),
    seed: int = 7,
) -> list[FillRecord]:
    """Realistic executions: bracket and allocation legs, partial fills, IB-style execIds."""
    rng = random.Random(seed)
    fills: list[FillRecord] = []
    for index in range(count):
        symbol = rng.choice(sorted(SYMBOLS))
        rule, leg = rng.choice([("core", symbol), ("aapl-pullback", "entry"), ("ladder", "l2")])
        order_id = 100 + index // 2
        fills.append(
            FillRecord(
                seq=first_seq + index,
                time=start + spacing * index,
                account="DU1234567",
                symbol=symbol,
                con_id=SYMBOLS[symbol],
                side=rng.choice(["BUY", "SELL"]),
                quantity=float(rng.randint(1, 300)),
                price=round(rng.uniform(100, 500), 2),
                order_id=order_id,
                perm_id=900_000 + order_id,
                exec_id=f"0000e0d5.{6700 + first_seq + index:08x}.01.01",
                commission=round(rng.uniform(0.35, 3.0), 4),
                commission_currency="USD",
                order_ref=order_ref(rule, "a1b2c3d4e5", leg),
                rule=rule,
                leg=leg,
                rule_generation="a1b2c3d4e5",
                intent_reason=f"{rule}: {symbol} below target",
                config_generation="0f0f0f0f0f",
            )
        )
    return fills


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.01)
