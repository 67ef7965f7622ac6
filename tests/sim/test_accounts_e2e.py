"""Currencies and accounts, under both ib_insync and ib_async (docs/sim.md, "Currencies"
and "Several accounts"): a EUR-base account holding cash in several currencies, buys in
another currency in a margin and a cash account, FX conversions, and a login managing
two accounts."""

from __future__ import annotations

from typing import Any

import pytest

from tradectl.sim import SimState, SimThread

from .helpers import Client, world

pytestmark = pytest.mark.e2e
EUR_PER_USD = 1 / 1.16
EUR_PER_CAD = EUR_PER_USD / 1.40


def euro_account(shortfall: str = "borrow") -> dict[str, Any]:
    return {
        "id": "DU111",
        "currency": "EUR",
        "cash": 100_000,
        "cash_balances": {"USD": 10_000},
        "currency_shortfall": shortfall,
    }


@pytest.fixture
def sim_state() -> SimState:
    return world(account=euro_account())


def values(client: Client, account: str = "DU111") -> dict[tuple[str, str], str]:
    return {(v.tag, v.currency): v.value for v in client.ib.accountValues(account)}


def stock(client: Client, symbol: str, currency: str) -> Any:
    [contract] = client.ib.qualifyContracts(client.lib.Stock(symbol, "SMART", currency))
    return contract


def pair(client: Client, name: str) -> Any:
    [contract] = client.ib.qualifyContracts(client.lib.Forex(name))
    return contract


def filled(client: Client, contract: Any, order: Any) -> Any:
    trade = client.ib.placeOrder(contract, order)
    client.until(lambda: trade.orderStatus.status == "Filled")
    return trade


def test_a_eur_base_account_reports_cash_per_currency_and_totals_in_euro(
    client: Client,
) -> None:
    got = values(client)
    assert got[("CashBalance", "EUR")] == "100000.00"
    assert got[("CashBalance", "USD")] == "10000.00"
    total = 100_000 + 10_000 * EUR_PER_USD
    assert float(got[("CashBalance", "BASE")]) == pytest.approx(total, abs=0.01)
    assert float(got[("TotalCashValue", "EUR")]) == pytest.approx(total, abs=0.01)
    assert float(got[("NetLiquidation", "EUR")]) == pytest.approx(total, abs=0.01)
    assert got[("ExchangeRate", "EUR")] == "1.00"
    assert float(got[("ExchangeRate", "USD")]) == pytest.approx(EUR_PER_USD)
    assert ("NetLiquidation", "USD") not in got  # totals come in the base currency only


def test_buying_a_cad_stock_borrows_cad_in_a_margin_account(client: Client, sim: SimThread) -> None:
    filled(client, stock(client, "SHOP", "CAD"), client.lib.MarketOrder("BUY", 10))
    snapshot = sim.snapshot()
    assert snapshot.positions["SHOP.TSX"].quantity == 10
    assert "SHOP" not in snapshot.positions  # the NASDAQ listing is another holding
    cost = 10 * 225.01 + 1.0
    assert snapshot.cash_balances["CAD"] == pytest.approx(-cost)
    client.until(lambda: ("StockMarketValue", "CAD") in values(client))
    got = values(client)
    assert float(got[("StockMarketValue", "CAD")]) == pytest.approx(2250.0)
    assert float(got[("CashBalance", "CAD")]) == pytest.approx(-cost)
    nav = 100_000 + 10_000 * EUR_PER_USD + (2250.0 - cost) * EUR_PER_CAD
    assert float(got[("NetLiquidation", "EUR")]) == pytest.approx(nav, abs=0.01)
    [item] = client.ib.portfolio()
    assert (item.contract.currency, item.marketValue) == ("CAD", pytest.approx(2250.0))


@pytest.mark.parametrize("sim_state", [world(account=euro_account("reject"))])
def test_a_cash_account_converts_before_it_buys_in_a_currency_it_lacks(
    client: Client, sim: SimThread
) -> None:
    shop = stock(client, "SHOP", "CAD")
    refused = client.ib.placeOrder(shop, client.lib.MarketOrder("BUY", 10))
    client.until(lambda: refused.orderStatus.status == "Cancelled")
    [(_, _, message)] = [e for e in client.errors if e[1] == 201]
    assert "insufficient CAD cash" in message
    # EUR -> USD -> CAD on IDEALPRO: sell euros for dollars, then dollars for Canadian dollars
    filled(client, pair(client, "EURUSD"), client.lib.MarketOrder("SELL", 5_000))
    filled(client, pair(client, "USDCAD"), client.lib.MarketOrder("SELL", 5_000))
    balances = sim.snapshot().cash_balances
    assert balances["EUR"] == pytest.approx(95_000)
    assert balances["CAD"] == pytest.approx(5_000 * 1.39995 - 2.0 * 1.40, abs=1e-6)
    filled(client, shop, client.lib.MarketOrder("BUY", 10))
    assert sim.snapshot().positions["SHOP.TSX"].quantity == 10


def test_an_lse_listing_trades_in_pence_and_pays_in_pounds(client: Client, sim: SimThread) -> None:
    vod = stock(client, "VOD", "GBP")
    trade = filled(client, vod, client.lib.MarketOrder("BUY", 1_000))
    assert trade.orderStatus.avgFillPrice == pytest.approx(72.52)  # pence, steps of 0.02 here
    assert sim.snapshot().cash_balances["GBP"] == pytest.approx(-(725.20 + 5.0))


def test_a_move_of_the_rate_revalues_the_account_at_once(client: Client, sim: SimThread) -> None:
    sim.control.set_price("EUR.USD", 1.25)
    client.until(
        lambda: values(client)[("ExchangeRate", "USD")] == f"{1 / 1.25:.8g}",
    )
    total = 100_000 + 10_000 / 1.25
    assert float(values(client)[("NetLiquidation", "EUR")]) == pytest.approx(total, abs=0.01)


def test_the_ledger_summary_lists_every_currency_then_base(client: Client) -> None:
    rows = client.ib.accountSummary("DU111")
    currencies = [r.currency for r in rows if r.tag == "CashBalance"]
    assert currencies == ["EUR", "USD", "BASE"]
    assert {r.currency for r in rows if r.tag == "NetLiquidation"} == {"EUR"}


LINKED = {
    "account": {"id": "DU111", "cash": 100_000},
    "linked_accounts": [{"id": "DU222", "cash": 50_000}],
}


@pytest.mark.parametrize("sim_state", [world(**LINKED)])
def test_two_accounts_on_one_login(client: Client, sim: SimThread) -> None:
    assert client.ib.managedAccounts() == ["DU111", "DU222"]
    aapl = stock(client, "AAPL", "USD")
    unallocated = client.ib.placeOrder(aapl, client.lib.MarketOrder("BUY", 1))
    client.until(lambda: 436 in client.codes())
    assert unallocated.orderStatus.status == "Cancelled"
    first = filled(client, aapl, client.lib.MarketOrder("BUY", 5, account="DU111"))
    second = filled(client, aapl, client.lib.MarketOrder("BUY", 7, account="DU222"))
    assert sim.snapshot("DU111").positions["AAPL"].quantity == 5
    assert sim.snapshot("DU222").positions["AAPL"].quantity == 7
    assert sim.snapshot("DU222").cash == pytest.approx(50_000 - 7 * 275.01 - 1.0)
    held = {(p.account, p.position) for p in client.ib.reqPositions()}
    assert held == {("DU111", 5.0), ("DU222", 7.0)}
    mine = client.ib.reqExecutions(client.lib.ExecutionFilter(acctCode="DU222"))
    assert [(f.execution.acctNumber, f.execution.shares) for f in mine] == [("DU222", 7.0)]
    done = client.ib.reqCompletedOrders(apiOnly=True)
    accounts = {t.order.permId: t.order.account for t in done}
    assert accounts[first.order.permId] == "DU111"
    assert accounts[second.order.permId] == "DU222"
    summary = client.ib.accountSummary()
    assert {r.account for r in summary if r.tag == "NetLiquidation"} == {"DU111", "DU222"}
    client.ib.reqAccountUpdates("DU222")
    assert {(p.account, p.position) for p in client.ib.portfolio("DU222")} == {("DU222", 7.0)}
    assert float(values(client, "DU222")[("TotalCashValue", "USD")]) == pytest.approx(
        50_000 - 7 * 275.01 - 1.0
    )


@pytest.mark.parametrize("sim_state", [world(**LINKED)])
def test_open_orders_carry_their_account(client: Client, sim: SimThread) -> None:
    aapl = stock(client, "AAPL", "USD")
    resting = client.ib.placeOrder(aapl, client.lib.LimitOrder("BUY", 2, 200.0, account="DU222"))
    client.until(lambda: resting.orderStatus.status == "Submitted")
    [listed] = client.ib.reqAllOpenOrders()
    assert (listed.order.account, listed.order.permId) == ("DU222", resting.order.permId)
    assert [o.account for o in sim.snapshot("DU222").open_orders] == ["DU222"]
    assert sim.snapshot("DU111").open_orders == []


@pytest.mark.parametrize("sim_state", [world(**LINKED)])
def test_account_updates_multi_answer_the_named_account(client: Client) -> None:
    client.ib.reqAccountUpdatesMulti("DU222")
    got = values(client, "DU222")
    assert got[("TotalCashValue", "USD")] == "50000.00"
    assert got[("CashBalance", "BASE")] == "50000.00"
    assert values(client, "DU111")[("TotalCashValue", "USD")] == "100000.00"
