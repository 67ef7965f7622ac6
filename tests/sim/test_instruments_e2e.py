"""Listings as IB knows them, under both ib_insync and ib_async (docs/sim.md, "Listings"
and "Market rules"): one symbol on two exchanges, non-USD listings, ``BRK B``, IDEALPRO
pairs, price bands answered by reqMarketRule, and error 110 for an off-tick price."""

from __future__ import annotations

from typing import Any

import pytest

from tradectl.sim import SimState, SimThread

from .helpers import Client

pytestmark = pytest.mark.e2e


@pytest.fixture
def sim_state() -> SimState:
    state = SimState.world()
    state.account.cash_balances = {"EUR": 50_000.0, "CAD": 50_000.0}
    return state


def listing(client: Client, contract: Any) -> Any:
    [qualified] = client.ib.qualifyContracts(contract)
    return qualified


def test_a_symbol_on_smart_without_currency_answers_every_listing(client: Client) -> None:
    details = client.ib.reqContractDetails(client.lib.Stock("SHOP", "SMART"))
    found = {
        (d.contract.primaryExchange, d.contract.currency, d.contract.conId, d.contract.exchange)
        for d in details
    }
    assert found == {("NASDAQ", "USD", 800000101, "SMART"), ("TSX", "CAD", 800000102, "SMART")}
    # the clients refuse to qualify it (ib_async as [None]); an order for it is error 200
    assert not any(client.ib.qualifyContracts(client.lib.Stock("SHOP", "SMART")))
    trade = client.ib.placeOrder(
        client.lib.Stock("SHOP", "SMART"), client.lib.MarketOrder("BUY", 1)
    )
    client.until(lambda: 200 in client.codes())
    assert client.errors[-1][2] == "The contract description specified for SHOP is ambiguous."
    assert trade.orderStatus.filled == 0


def test_currency_or_primary_exchange_picks_one_listing(client: Client) -> None:
    tsx = listing(client, client.lib.Stock("SHOP", "SMART", "CAD"))
    assert (tsx.conId, tsx.primaryExchange, tsx.tradingClass) == (800000102, "TSX", "SHOP")
    by_primary = listing(client, client.lib.Stock("SAP", "SMART", primaryExchange="IBIS"))
    assert (by_primary.conId, by_primary.currency) == (800000104, "EUR")
    adr = listing(client, client.lib.Stock("SAP", "SMART", "USD"))
    assert (adr.conId, adr.primaryExchange) == (800000103, "NYSE")
    on_exchange = listing(client, client.lib.Stock("VOD", "LSE", "GBP"))
    assert on_exchange.conId == 800000105
    [details] = client.ib.reqContractDetails(on_exchange)
    assert details.priceMagnifier == 100  # LSE quotes in pence
    assert details.validExchanges == "SMART,LSE"


def test_brk_b_is_named_with_a_space_and_trades(client: Client, sim: SimThread) -> None:
    assert not any(client.ib.qualifyContracts(client.lib.Stock("BRK.B", "SMART", "USD")))
    assert 200 in client.codes()
    brk = listing(client, client.lib.Stock("BRK B", "SMART", "USD"))
    assert (brk.conId, brk.symbol, brk.localSymbol) == (800000106, "BRK B", "BRK B")
    trade = client.ib.placeOrder(brk, client.lib.MarketOrder("BUY", 3))
    client.until(lambda: trade.orderStatus.status == "Filled")
    assert sim.snapshot().positions["BRK B"].quantity == 3
    [fill] = client.ib.reqExecutions(client.lib.ExecutionFilter(symbol="BRK B"))
    assert fill.contract.symbol == "BRK B" and fill.execution.shares == 3


def test_contract_details_carry_market_rules_per_exchange(client: Client) -> None:
    [aapl] = client.ib.reqContractDetails(client.lib.Stock("AAPL", "SMART", "USD"))
    assert (aapl.validExchanges, aapl.marketRuleIds) == ("SMART,NASDAQ", "26,26")
    [sap] = client.ib.reqContractDetails(client.lib.Stock("SAP", "SMART", "EUR"))
    assert (sap.validExchanges, sap.marketRuleIds) == ("SMART,IBIS", "1002,1002")
    [fx] = client.ib.reqContractDetails(client.lib.Forex("EURUSD"))
    assert (fx.validExchanges, fx.marketRuleIds) == ("IDEALPRO", "1004")
    assert (fx.contract.secType, fx.contract.localSymbol) == ("CASH", "EUR.USD")


def test_req_market_rule_answers_the_price_bands(client: Client) -> None:
    us = client.ib.reqMarketRule(26)
    assert [(p.lowEdge, p.increment) for p in us] == [(0.0, 0.0001), (1.0, 0.01)]
    xetra = client.ib.reqMarketRule(1002)
    assert len(xetra) == 8
    assert [(p.lowEdge, p.increment) for p in xetra][4:7] == [
        (50.0, 0.02),
        (100.0, 0.05),
        (200.0, 0.1),
    ]


@pytest.mark.parametrize(
    ("price", "conforms"),
    [
        (200.0, True),  # on the edge of the 200-500 band: its step 0.1
        (199.95, True),  # just below: the 100-200 band's step 0.05
        (200.05, False),  # on the lower band's step, off the upper band's
        (205.03, False),
    ],
)
def test_a_limit_off_its_band_step_is_error_110_and_cancelled(
    client: Client, sim: SimThread, price: float, conforms: bool
) -> None:
    sap = listing(client, client.lib.Stock("SAP", "SMART", "EUR"))
    trade = client.ib.placeOrder(sap, client.lib.LimitOrder("BUY", 10, price))
    if conforms:
        client.until(lambda: trade.orderStatus.status == "Submitted")
        assert 110 not in client.codes()
        return
    client.until(lambda: 110 in client.codes())
    [(_, _, message)] = [e for e in client.errors if e[1] == 110]
    assert message == (
        "The price does not conform to the minimum price variation for this contract."
    )
    client.until(lambda: trade.orderStatus.status == "Cancelled")
    assert sim.snapshot().open_orders == []


def test_us_stock_below_one_dollar_takes_hundredths_of_a_cent(
    client: Client, sim: SimThread
) -> None:
    sim.control.set_price("KO", 0.5)
    ko = client.stock("KO")
    fine = client.ib.placeOrder(ko, client.lib.LimitOrder("BUY", 10, 0.4901))
    client.until(lambda: fine.orderStatus.status == "Submitted")
    coarse = client.ib.placeOrder(ko, client.lib.LimitOrder("BUY", 10, 1.005))
    client.until(lambda: coarse.orderStatus.status == "Cancelled")
    assert [code for code in client.codes() if code == 110] == [110]


def test_an_idealpro_pair_quotes_and_fills(client: Client, sim: SimThread) -> None:
    pair = listing(client, client.lib.Forex("EURUSD"))
    [ticker] = client.ib.reqTickers(pair)
    assert (ticker.bid, ticker.ask) == (pytest.approx(1.15995), pytest.approx(1.16005))
    trade = client.ib.placeOrder(pair, client.lib.MarketOrder("BUY", 20_000))
    client.until(lambda: trade.orderStatus.status == "Filled")
    assert trade.orderStatus.avgFillPrice == pytest.approx(1.16005)
    snapshot = sim.snapshot()
    # a conversion: EUR cash up, USD cash down by the price and IB's 2 USD minimum
    assert snapshot.cash_balances["EUR"] == pytest.approx(70_000)
    assert snapshot.cash_balances["USD"] == pytest.approx(1_000_000 - 20_000 * 1.16005 - 2.0)
    assert "EUR.USD" not in snapshot.positions
    client.until(lambda: bool(trade.fills) and trade.fills[0].commissionReport.currency != "")
    assert trade.fills[0].commissionReport.currency == "USD"
