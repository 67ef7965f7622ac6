"""Test doubles for the records tests: a journal of executions and condition waits."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from tradectl.journal import CachedContract, Journal, RecordedExecution
from tradectl.journal.migrations import migrate
from tradectl.planner.domain import Intent, OrderSpec
from tradectl.planner.legs import order_ref
from tradectl.records.model import FillRecord
from tradectl.records.store import connect

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


def migrated_journal(path: Path) -> sqlite3.Connection:
    """A connection to a journal database at the current schema (records tables included)."""
    conn = connect(path)
    migrate(conn, "2026-11-25T00:00:00+00:00")
    return conn


def journal_fills(
    journal: Journal, orders: int, *, start: datetime, seed: int = 3, batch: int = 0
) -> list[str]:
    """Write what the apply path journals for ``orders`` filled orders: a reconcile pass, the
    place intents, the orders going from Submitted to Filled through two partial executions
    (IB's BOT/SLD sides) and their commissions.
    Returns the execIds in the order they were recorded; calls with distinct ``batch`` numbers
    write distinct intents and executions."""
    rng = random.Random(seed)
    journal.store_contracts(
        [
            CachedContract(symbol, con_id, "SMART", "NASDAQ", "USD", 0.01, 1)
            for symbol, con_id in SYMBOLS.items()
        ]
    )
    journal.record_generation("0f0f0f0f0f")
    pass_id = journal.begin_pass("schedule", "0f0f0f0f0f")
    symbols = sorted(SYMBOLS)
    intents = [
        Intent(
            key=f"core:{symbols[i % 4]}:{batch}:{i}",
            action="place",
            kind="allocations",
            rule="core",
            leg=symbols[i % 4],
            symbol=symbols[i % 4],
            purpose="opening",
            reason=f"{symbols[i % 4]} weight 0.21 below target 0.30 (drift 0.09 > 0.01)",
            order=OrderSpec(
                symbol=symbols[i % 4],
                action="BUY" if i % 3 else "SELL",
                quantity=40,
                order_type="LMT",
                order_ref=order_ref("core", "c0ffee1234", symbols[i % 4]),
                limit_price=200.0,
            ),
        )
        for i in range(orders)
    ]
    journaled = journal.journal_intents(
        intents, client_id=17, session="s1", next_valid_order_id=100, pass_id=pass_id
    )
    exec_ids: list[str] = []
    for index, (intent, row) in enumerate(zip(intents, journaled, strict=True)):
        assert intent.order is not None and row.order_id is not None
        record_status = partial(
            journal.record_order,
            client_id=17,
            order_id=row.order_id,
            perm_id=500_000 + row.order_id,
            order_ref=intent.order.order_ref,
            symbol=intent.symbol,
            action=intent.order.action,
            order_type="LMT",
            quantity=40.0,
            limit_price=200.0,
            aux_price=None,
        )
        record_status(status="Submitted", filled=0.0)
        for part in range(2):
            exec_id = f"0000e0d5.{0x6700 + 0x100 * batch + index:08x}.01.0{part + 1}"
            journal.record_execution(
                RecordedExecution(
                    exec_id=exec_id,
                    order_id=row.order_id,
                    client_id=17,
                    perm_id=500_000 + row.order_id,
                    order_ref=intent.order.order_ref,
                    symbol=intent.symbol,
                    side="BOT" if intent.order.action == "BUY" else "SLD",
                    shares=20.0,
                    price=round(rng.uniform(100, 300), 2),
                    time=start + timedelta(minutes=3 * index, seconds=part),
                )
            )
            journal.record_commission(exec_id, round(rng.uniform(0.35, 1.5), 4), "USD", None)
            exec_ids.append(exec_id)
        record_status(status="Filled", filled=40.0)
    return exec_ids


class BackgroundLoop:
    """Runs ``main(stop)`` on its own event loop in a thread, as the daemon would run it."""

    def __init__(self, main: Callable[[asyncio.Event], Coroutine[object, object, None]]) -> None:
        self.loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._main = main
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._run(),))

    async def _run(self) -> None:
        await self._main(self._stop)

    def __enter__(self) -> BackgroundLoop:
        self._thread.start()
        return self

    def call(self, callback: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(callback)

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the loop did not stop"
        self.loop.close()
