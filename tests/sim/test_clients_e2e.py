"""Several API clients on one account: shared account, orders isolated per clientId."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from ib_insync import IB, LimitOrder, MarketOrder, Stock, Trade

from tradectl.sim import SimThread
from tradectl.sim.wirelog import read_wire_log

from .helpers import RawClient, wait_for

pytestmark = pytest.mark.e2e
Until = Callable[..., None]
AAPL = Stock("AAPL", "SMART", "USD")


def test_other_client_sees_the_same_account(
    ib: IB, connect: Callable[..., IB], until: Until
) -> None:
    until(ib.placeOrder(AAPL, MarketOrder("BUY", 7, orderRef="mine")).isDone)
    other = connect(2)
    assert [(p.contract.symbol, p.position) for p in other.positions()] == [("AAPL", 7)]
    assert [f.execution.orderRef for f in other.fills()] == ["mine"]
    mine = {v.tag: v.value for v in ib.accountValues()}
    theirs = {v.tag: v.value for v in other.accountValues()}
    assert mine["TotalCashValue"] == theirs["TotalCashValue"]


def test_open_orders_are_isolated_per_client(
    ib: IB, connect: Callable[..., IB], until: Until
) -> None:
    other = connect(2)
    seen_by_other: list[Trade] = []
    other.openOrderEvent += seen_by_other.append
    trade = ib.placeOrder(AAPL, LimitOrder("BUY", 1, 90.0, orderRef="tctl:iso:1:entry"))
    until(lambda: trade.orderStatus.status == "Submitted")
    assert other.reqOpenOrders() == []
    assert seen_by_other == []
    [everyone] = other.reqAllOpenOrders()
    assert (everyone.order.clientId, everyone.order.orderId) == (1, trade.order.orderId)
    assert everyone.order.orderRef == "tctl:iso:1:entry"
    [own] = ib.reqOpenOrders()
    assert own.order.permId == trade.order.permId


def test_same_order_id_from_two_clients_are_two_orders(
    ib: IB, connect: Callable[..., IB], sim: SimThread, until: Until
) -> None:
    other = connect(2)
    other.client.updateReqId(ib.client._reqIdSeq)
    a = ib.placeOrder(AAPL, LimitOrder("BUY", 1, 90.0))
    b = other.placeOrder(AAPL, LimitOrder("BUY", 2, 80.0))
    assert a.order.orderId == b.order.orderId
    until(lambda: a.orderStatus.status == "Submitted")
    wait_for(lambda: b.orderStatus.status == "Submitted", lambda t: other.waitOnUpdate(timeout=t))
    assert len(sim.snapshot().open_orders) == 2


def test_duplicate_client_id_is_refused(ib: IB, sim: SimThread) -> None:
    client = RawClient(sim.host, sim.port, client_id=None)
    try:
        client.send(71, 2, 1, "")  # startApi with the clientId ib already uses
        error = client.read_until(lambda msg: msg[0] == "4")
        assert error[2:4] == ["-1", "326"]
        with pytest.raises(ConnectionError):
            client.read_until(lambda msg: False)
    finally:
        client.close()
    assert ib.isConnected()


def test_client_zero_auto_binds_other_clients_orders(
    ib: IB, connect: Callable[..., IB], until: Until
) -> None:
    master = connect(0)  # ib_insync sends reqAutoOpenOrders(True) for clientId 0
    seen: list[Trade] = []
    master.openOrderEvent += seen.append
    trade = ib.placeOrder(AAPL, LimitOrder("BUY", 1, 90.0))
    until(lambda: trade.orderStatus.status == "Submitted")
    wait_for(lambda: bool(seen), lambda t: master.waitOnUpdate(timeout=t))
    assert seen[0].order.permId == trade.order.permId


CRASHING_CLIENT = """
import os, signal, sys
from ib_insync import IB, LimitOrder, Stock
ib = IB()
ib.connect("127.0.0.1", int(sys.argv[1]), clientId=9, timeout=5)
ib.placeOrder(Stock("AAPL", "SMART", "USD"), LimitOrder("BUY", 3, 90.0, orderRef="crash"))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_order_sent_just_before_a_client_crash_is_kept(
    connect: Callable[..., IB], sim: SimThread, wire_log_path: Path
) -> None:
    master = connect(0)
    seen: list[Trade] = []
    master.openOrderEvent += seen.append
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_CLIENT, str(sim.port)], timeout=30, check=False
    )
    assert result.returncode == -signal.SIGKILL
    wait_for(lambda: bool(seen), lambda t: master.waitOnUpdate(timeout=t))
    assert (seen[0].order.clientId, seen[0].order.orderRef) == (9, "crash")
    placed = [r for r in read_wire_log(wire_log_path) if r["msg"] == "placeOrder"]
    assert [(r["client_id"], r["fields"]["orderRef"]) for r in placed] == [(9, "crash")]
