"""The usual hand-written alternative to tradectl, as a baseline: per symbol, request a quote,
sleep a second, send an order, sleep half a second.

This is deliberately what people write with ib_insync (a benchmark baseline, not product code,
which is why it imports ib_insync outside ``daemon/ib``). The sleeps are how such scripts stay
clear of IB's pacing errors and give the quote time to arrive.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ib_insync import IB, LimitOrder, Stock, Trade

QUOTE_WAIT = 1.0
ORDER_WAIT = 0.5
ACKNOWLEDGED = frozenset({"PreSubmitted", "Submitted", "Filled"})


@dataclass
class NaiveResult:
    seconds: float
    orders: int
    acknowledged: int


def rebalance_from_cash(
    host: str,
    port: int,
    client_id: int,
    account: str,
    symbols: Sequence[str],
    capital: float,
    *,
    ack_timeout: float = 30.0,
) -> NaiveResult:
    """Buy ``capital / len(symbols)`` of each symbol with a limit 10 bps above the ask; the time
    runs from connecting until every order is acknowledged."""
    started = time.monotonic()
    ib = IB()
    ib.connect(host, port, clientId=client_id, timeout=10)
    try:
        trades: list[Trade] = []
        per_symbol = capital / len(symbols)
        for symbol in symbols:
            contract = Stock(symbol, "SMART", "USD")
            ticker = ib.reqMktData(contract, "", snapshot=True)
            ib.sleep(QUOTE_WAIT)
            price = ticker.ask
            if not price or math.isnan(price):
                continue
            quantity = math.floor(per_symbol / price)
            limit = round(price * 1.001, 2)
            order = LimitOrder("BUY", quantity, limit, account=account, tif="DAY")
            trades.append(ib.placeOrder(contract, order))
            ib.sleep(ORDER_WAIT)
        deadline = time.monotonic() + ack_timeout
        while time.monotonic() < deadline and not all(
            trade.orderStatus.status in ACKNOWLEDGED for trade in trades
        ):
            ib.waitOnUpdate(timeout=0.1)
        acknowledged = sum(trade.orderStatus.status in ACKNOWLEDGED for trade in trades)
        return NaiveResult(time.monotonic() - started, len(trades), acknowledged)
    finally:
        ib.disconnect()
