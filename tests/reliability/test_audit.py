"""The audit must see what it is meant to count: a negative control with orders that break each
rule, placed straight onto the wire as the daemon's client id."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from ib_insync import IB, LimitOrder, Stock

from .chaos_support import (
    DAEMON_CLIENT_ID,
    FORBIDDEN_SYMBOL,
    MANUAL_CLIENT_ID,
    MAX_ORDER_VALUE,
    audit,
    gateway,
    place_manual_orders,
    rebalance_symbols,
)

pytestmark = pytest.mark.e2e


def _journal(path: Path, owed: list[tuple[str, int]]) -> Path:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE intents (order_ref TEXT, order_id INTEGER)")
        connection.execute("CREATE TABLE executions (exec_id TEXT, client_id INTEGER)")
        connection.executemany("INSERT INTO intents VALUES (?, ?)", owed)
    return path


def test_the_audit_counts_duplicates_strangers_limits_and_touched_manual_orders(
    tmp_path: Path,
) -> None:
    with gateway(tmp_path) as (sim, wire_log):
        manual = place_manual_orders(sim)
        ib = IB()
        ib.connect(sim.host, sim.port, clientId=DAEMON_CLIENT_ID, timeout=10)
        try:
            placed = []
            for symbol, quantity, limit, ref in (
                ("SYM0003", 1, 5.0, "tctl:rebalance:g1:SYM0003"),
                ("SYM0003", 1, 5.0, "tctl:rebalance:g1:SYM0003"),  # the same intent again
                ("SYM0004", 1, 5.0, "tctl:rebalance:g1:SYM0004"),  # never journaled
                ("SYM0005", MAX_ORDER_VALUE / 5 + 1, 5.0, "tctl:rebalance:g1:SYM0005"),
                (FORBIDDEN_SYMBOL, 1, 5.0, f"tctl:rebalance:g1:{FORBIDDEN_SYMBOL}"),
            ):
                contract = Stock(symbol, "SMART", "USD")
                order = LimitOrder("BUY", quantity, limit, orderRef=ref, tif="GTC")
                placed.append((ref, ib.placeOrder(contract, order).order.orderId))
            ib.sleep(0.5)
        finally:
            ib.disconnect()
        sim.call(lambda: sim.gateway.engine.cancel(MANUAL_CLIENT_ID, manual[0].order_id))
        owed = [entry for entry in placed if not entry[0].endswith("SYM0004")]
        result = audit(
            wire_log,
            sim,
            _journal(tmp_path / "journal.sqlite3", owed),
            manual,
            allowed=set(rebalance_symbols()),
            prices=sim.snapshot().prices,
            targets={},
        )
    assert result.intents_sent_twice == 1
    assert result.orders_not_owed == 1
    # SYM0005: above max_order_value; AAPL: outside the allow-list.
    assert result.risk_violations == 2
    assert result.manual_orders_touched == 1
    assert not result.clean
