"""whatIf orders and market-data permissions, through ib_insync and ib_async alike."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import ib_async
import ib_insync
import pytest

from tradectl.sim import SimState, SimThread
from tradectl.sim.wirelog import read_wire_log

from .helpers import small_state

pytestmark = pytest.mark.e2e


@pytest.fixture
def sim_state() -> SimState:
    state = small_state(
        account={"cash": 100_000},
        positions=[{"symbol": "MSFT", "quantity": 100, "avg_cost": 180.0}],
        matching={"leverage": 2.0},
    )
    state.symbols["MSFT"].market_data = "delayed"
    state.symbols["LOT"].market_data = "none"
    return SimState.model_validate(state.model_dump())


@pytest.fixture(params=[ib_insync, ib_async], ids=["ib_insync", "ib_async"])
def library(request: pytest.FixtureRequest) -> ModuleType:
    module: ModuleType = request.param
    return module


@pytest.fixture
def client(library: ModuleType, sim: SimThread) -> Iterator[Any]:
    # Both libraries run on the thread's current event loop; an earlier test may have closed it.
    asyncio.set_event_loop(asyncio.new_event_loop())
    ib = library.IB()
    ib.connect(sim.host, sim.port, clientId=21, timeout=5)
    yield ib
    with contextlib.suppress(ConnectionError):
        ib.disconnect()


def test_what_if_answers_margin_and_commission_and_places_nothing(
    library: ModuleType, client: Any, sim: SimThread, wire_log_path: Path
) -> None:
    # Margin account (leverage 2): Reg T 50% initial, 25% maintenance on MSFT's 20,000.
    state = client.whatIfOrder(
        library.Stock("AAPL", "SMART", "USD"), library.LimitOrder("BUY", 100, 99.0)
    )

    assert (state.initMarginBefore, state.initMarginChange, state.initMarginAfter) == (
        "10000.00",
        "5000.00",
        "15000.00",
    )
    assert (state.maintMarginBefore, state.maintMarginChange, state.maintMarginAfter) == (
        "5000.00",
        "2500.00",
        "7500.00",
    )
    # Equity with loan: 120,000, less the commission, plus 100 x (100 last - 99 limit).
    assert state.equityWithLoanBefore == "120000.00"
    assert state.equityWithLoanAfter == "120099.00"
    # The sim's fill commission: max(1.00 minimum, 100 x 0.005) = 1.00.
    assert (state.commission, state.minCommission, state.maxCommission) == (1.0, 1.0, 1.0)
    assert state.commissionCurrency == "USD"
    assert state.warningText == ""

    snapshot = sim.control.snapshot()
    assert snapshot.orders == [] and snapshot.executions == []
    assert snapshot.cash == 100_000
    placed = [r for r in read_wire_log(wire_log_path) if r["msg"] == "placeOrder"]
    assert [r["fields"]["whatIf"] for r in placed] == [True]
    assert client.openTrades() == []


def test_what_if_of_a_sell_that_closes_frees_margin(library: ModuleType, client: Any) -> None:
    state = client.whatIfOrder(
        library.Stock("MSFT", "SMART", "USD"), library.MarketOrder("SELL", 100)
    )
    assert state.initMarginAfter == "0.00"
    assert state.initMarginChange == "-10000.00"


def test_what_if_of_an_order_placing_would_reject_gets_the_rejection(
    library: ModuleType, client: Any, sim: SimThread
) -> None:
    errors: list[int] = []
    client.errorEvent += lambda req_id, code, *rest: errors.append(code)
    client.whatIfOrder(library.Stock("AAPL", "SMART", "USD"), library.LimitOrder("BUY", 0.5, 99.0))
    assert errors == [201]
    assert sim.control.snapshot().orders == []


def test_market_data_permissions_live_delayed_none(library: ModuleType, client: Any) -> None:
    errors: list[tuple[str, int]] = []
    client.errorEvent += lambda req_id, code, text, contract=None, *rest: errors.append(
        (getattr(contract, "symbol", ""), code)
    )
    stocks = client.qualifyContracts(
        *(library.Stock(s, "SMART", "USD") for s in ("AAPL", "MSFT", "LOT"))
    )

    client.reqMarketDataType(1)
    aapl, msft, lot = client.reqTickers(*stocks)
    assert aapl.last == 100.0
    assert msft.last != msft.last and lot.last != lot.last  # NaN: no price came
    assert sorted(errors) == [("LOT", 354), ("MSFT", 354)]

    errors.clear()
    client.reqMarketDataType(3)
    aapl, msft, lot = client.reqTickers(*stocks)
    assert aapl.last == 100.0
    assert (msft.marketDataType, msft.last) == (3, 200.0)
    assert lot.last != lot.last
    assert sorted(errors) == [("LOT", 354), ("MSFT", 10167)]
