"""The same round trip with ib_async as the client."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from tradectl.sim import SimThread

from .helpers import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def aib(sim: SimThread) -> Iterator[IB]:
    client = IB()
    client.connect(sim.host, sim.port, clientId=11, timeout=5)
    yield client
    client.disconnect()


@pytest.fixture
def await_(aib: IB) -> Callable[..., None]:
    def pump(timeout: float) -> None:
        with contextlib.suppress(ConnectionError):
            aib.waitOnUpdate(timeout=timeout)

    return lambda predicate, timeout=5.0: wait_for(predicate, pump, timeout)


def test_ib_async_round_trip(aib: IB, sim: SimThread, await_: Callable[..., None]) -> None:
    assert aib.client.serverVersion() == 176
    assert aib.managedAccounts() == ["DU0000001"]
    assert aib.positions() == []
    [aapl] = aib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    assert aapl.conId == 265598

    bought = aib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="tctl:async:1:entry"))
    await_(lambda: bought.isDone() and bool(bought.fills))
    assert bought.orderStatus.avgFillPrice == 100.01
    assert bought.fills[0].execution.orderRef == "tctl:async:1:entry"
    await_(lambda: [p.position for p in aib.positions()] == [10])

    resting = aib.placeOrder(aapl, LimitOrder("SELL", 10, 105.0))
    await_(lambda: resting.orderStatus.status == "Submitted")
    sim.control.set_price("AAPL", 106.0)
    await_(resting.isDone)
    assert resting.orderStatus.avgFillPrice == 105.99
    await_(lambda: [p.position for p in aib.positions()] in ([], [0]))

    to_cancel = aib.placeOrder(aapl, LimitOrder("BUY", 1, 90.0))
    await_(lambda: to_cancel.orderStatus.status == "Submitted")
    aib.cancelOrder(to_cancel.order)
    await_(to_cancel.isDone)
    assert to_cancel.orderStatus.status == "Cancelled"
    assert {t.order.orderRef for t in aib.reqCompletedOrders(apiOnly=True)} >= {
        "tctl:async:1:entry"
    }


def test_ib_async_reads_last_trade_time_and_halts(
    aib: IB, sim: SimThread, await_: Callable[..., None]
) -> None:
    [aapl] = aib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
    ticker = aib.reqMktData(aapl)
    await_(lambda: ticker.lastTimestamp is not None and ticker.halted == 0)
    now = datetime.fromisoformat(sim.control.now()["now"])
    assert abs((now - ticker.lastTimestamp).total_seconds()) < 60
    sim.control.halt("AAPL")
    await_(lambda: ticker.halted == 1)
    sim.control.resume("AAPL")
    await_(lambda: ticker.halted == 0)
