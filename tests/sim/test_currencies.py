"""The pure parts of listings, price bands, currencies and accounts (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradectl.sim.engine import Engine
from tradectl.sim.model import ErrorNotice, OrderFilled, round_to_tick
from tradectl.sim.protocol import ContractFields, OrderRequest
from tradectl.sim.state import DEFAULT_MARKET_RULES, SimState, SimStateError

from .helpers import order, world

NOW = 1_764_500_000.0


def engine_of(state: SimState) -> Engine:
    return Engine(state, clock=lambda: NOW)


def request(
    order_id: int,
    contract: ContractFields,
    action: str = "BUY",
    quantity: float = 10,
    *,
    account: str = "",
    lmt: float | None = None,
) -> OrderRequest:
    kind = "MKT" if lmt is None else "LMT"
    return order(order_id, action, quantity, kind, lmt=lmt, contract=contract, account=account)


def codes(events: list[object]) -> list[int]:
    return [e.code for e in events if isinstance(e, ErrorNotice)]


SHOP_TSX = ContractFields(symbol="SHOP", sec_type="STK", exchange="SMART", currency="CAD")
AAPL = ContractFields(symbol="AAPL", sec_type="STK", exchange="SMART", currency="USD")


def test_the_default_state_keeps_its_us_stocks_and_the_world_adds_listings() -> None:
    default, world_state = SimState.default(), SimState.world()
    assert len(default.symbols) == 40
    assert {s.currency for s in default.symbols.values()} == {"USD"}
    added = set(world_state.symbols) - set(default.symbols)
    assert {"SHOP.TSX", "SAP.IBIS", "VOD.LSE", "BRK B", "EUR.USD", "USD.CAD"} <= added
    assert world_state.account == default.account


def test_rates_come_from_the_pairs_against_usd() -> None:
    engine = engine_of(SimState.world())
    rates = engine.rates
    assert rates.rate("EUR", "USD") == pytest.approx(1.16)
    assert rates.rate("CAD", "USD") == pytest.approx(1 / 1.40)
    assert rates.rate("CAD", "EUR") == pytest.approx(1 / 1.40 / 1.16)
    assert rates.moves(engine.instruments["USD.CAD"])
    assert not rates.moves(engine.instruments["EUR.GBP"])  # a cross, not a rate
    engine.set_price("EUR.USD", 1.20)
    assert rates.rate("EUR", "USD") == pytest.approx(1.20)


def test_a_currency_without_a_pair_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text("account: {currency: CHF}\nsymbols: {AAPL: {price: 100}}\n")
    with pytest.raises(SimStateError, match="no exchange rate for CHF"):
        SimState.load(path)


def test_a_market_rule_must_exist_and_accounts_must_differ() -> None:
    with pytest.raises(ValueError, match="market rule 77"):
        SimState.from_dict({"symbols": {"AAPL": {"price": 1, "market_rule": 77}}})
    with pytest.raises(ValueError, match="account ids must differ"):
        SimState.from_dict({"linked_accounts": [{"id": "DU0000001"}]})


def test_an_older_state_file_keeps_its_ticks() -> None:
    state = SimState.from_dict(
        {"symbols": {"A": {"price": 10}, "B": {"price": 10, "min_tick": 0.05}}}
    )
    engine = engine_of(state)
    assert engine.instruments["A"].market_rule == 26
    assert engine.instruments["B"].bands == ((0.0, 0.05),)
    assert (engine.instruments["B"].bid, engine.instruments["B"].ask) == (9.95, 10.05)


BANDS = [(b.low_edge, b.increment) for b in DEFAULT_MARKET_RULES[1002]]


@given(st.integers(min_value=1, max_value=100_000_000))
def test_a_price_rounded_to_its_band_conforms(thousandths: int) -> None:
    engine = engine_of(SimState.world())
    sap = engine.instruments["SAP.IBIS"]
    price = thousandths / 1000
    rounded = round_to_tick(price, sap.increment(price))
    assert sap.conforms(rounded)
    low_edge, step = max(b for b in BANDS if b[0] <= rounded + 1e-12)
    assert sap.increment(rounded) == step and rounded >= low_edge


@pytest.mark.parametrize(
    ("price", "step"), [(0.9999, 0.001), (1.0, 0.002), (199.95, 0.05), (200.0, 0.1), (500.0, 0.2)]
)
def test_a_price_on_a_band_edge_takes_the_upper_bands_step(price: float, step: float) -> None:
    assert engine_of(SimState.world()).instruments["SAP.IBIS"].increment(price) == step


def test_buying_power_is_checked_in_the_base_currency() -> None:
    state = world(
        account={"id": "DU111", "currency": "EUR", "cash": 10_000, "currency_shortfall": "borrow"},
    )
    engine = engine_of(state)
    # 40 x 275.01 USD is about 9,483 EUR: it fits into 10,000 EUR; 50 shares do not
    assert codes(engine.place(1, request(1, AAPL, quantity=40))) == []
    refused = codes(engine.place(1, request(2, AAPL, quantity=10)))
    assert refused == [201]
    assert engine.account.balances["USD"] == pytest.approx(-(40 * 275.01 + 1.0))


def test_a_cash_account_needs_the_currency_and_a_margin_account_borrows_it() -> None:
    cash_account = engine_of(world(account={"id": "DU111", "cash": 100_000}))
    assert codes(cash_account.place(1, request(1, SHOP_TSX))) == [201]
    margin = engine_of(world(account={"id": "DU111", "cash": 100_000}, matching={"leverage": 2}))
    assert codes(margin.place(1, request(1, SHOP_TSX))) == []
    assert margin.account.balances["CAD"] == pytest.approx(-(10 * 225.01 + 1.0))


def test_pending_orders_count_against_a_currencys_cash() -> None:
    engine = engine_of(
        world(account={"id": "DU111", "cash": 100_000, "cash_balances": {"CAD": 3_000}})
    )
    assert codes(engine.place(1, request(1, SHOP_TSX, lmt=200.0))) == []  # 2,000 CAD resting
    assert codes(engine.place(1, request(2, SHOP_TSX, lmt=200.0))) == [201]


def test_the_base_ledger_converts_every_currency() -> None:
    engine = engine_of(
        world(
            account={"id": "DU111", "currency": "EUR", "cash": 1_000, "cash_balances": {"USD": 116}}
        )
    )
    base = engine.account.base_ledger()
    assert base["CashBalance"] == pytest.approx(1_100)
    assert engine.account.ledger("USD")["ExchangeRate"] == pytest.approx(1 / 1.16)
    assert engine.account.currencies() == ["EUR", "USD"]


def test_an_order_without_account_on_two_accounts_is_436_or_goes_to_the_first() -> None:
    linked = {"account": {"id": "DU111"}, "linked_accounts": [{"id": "DU222"}]}
    engine = engine_of(world(**linked))
    assert codes(engine.place(1, request(1, AAPL))) == [436]
    assert engine.orders == {}
    lenient = engine_of(world(**linked, gateway={"order_without_account": "first"}))
    fills = [e for e in lenient.place(1, request(1, AAPL)) if isinstance(e, OrderFilled)]
    assert [f.execution.account for f in fills] == ["DU111"]
    assert codes(lenient.place(1, request(2, AAPL, account="DU999"))) == [201]


def test_accounts_cash_and_positions_survive_a_restart() -> None:
    engine = engine_of(
        world(
            account={"id": "DU111", "currency": "EUR", "cash": 50_000},
            linked_accounts=[{"id": "DU222", "cash": 20_000}],
            matching={"leverage": 2},
        )
    )
    engine.place(1, request(1, SHOP_TSX, account="DU111"))
    engine.place(1, request(2, AAPL, quantity=3, account="DU222"))
    restarted = engine_of(SimState.from_dict(engine.export_state().model_dump(mode="json")))
    for account in ("DU111", "DU222"):
        before, after = engine.snapshot(account), restarted.snapshot(account)
        assert after.cash_balances == pytest.approx(before.cash_balances)
        assert after.positions == before.positions
    assert restarted.snapshot("DU222").positions["AAPL"].quantity == 3


def test_a_working_order_of_a_second_listing_is_modified_and_kept_on_an_off_tick_price() -> None:
    engine = engine_of(world(account={"id": "DU111", "cash_balances": {"CAD": 10_000}}))
    assert codes(engine.place(1, request(1, SHOP_TSX, lmt=200.0))) == []
    assert codes(engine.place(1, request(1, SHOP_TSX, lmt=201.5))) == []
    assert engine.orders[(1, 1)].lmt_price == 201.5
    assert codes(engine.place(1, request(1, SHOP_TSX, lmt=201.555))) == [110]
    assert engine.orders[(1, 1)].lmt_price == 201.5
    assert engine.orders[(1, 1)].status == "Submitted"
    us_listing = ContractFields(symbol="SHOP", sec_type="STK", exchange="SMART", currency="USD")
    assert codes(engine.place(1, request(1, us_listing, lmt=150.0))) == [201]


def test_a_cross_pair_converts_between_two_currencies_without_usd() -> None:
    engine = engine_of(world(account={"id": "DU111", "currency": "EUR", "cash": 10_000}))
    eur_gbp = ContractFields(symbol="EUR", sec_type="CASH", exchange="IDEALPRO", currency="GBP")
    assert codes(engine.place(1, request(1, eur_gbp, "SELL", 1_000))) == []
    balances = engine.account.balances
    assert balances["EUR"] == pytest.approx(9_000)
    # 1,000 x the bid 0.87195, less IB's 2 USD minimum in pounds
    assert balances["GBP"] == pytest.approx(1_000 * 0.87195 - 2.0 / 1.33)
    assert "USD" not in balances and engine.account.positions == {}


def test_an_off_tick_stop_price_is_110_too() -> None:
    engine = engine_of(world(account={"id": "DU111", "cash_balances": {"EUR": 10_000}}))
    sap = ContractFields(symbol="SAP", sec_type="STK", exchange="SMART", currency="EUR")
    off_tick = order(1, "SELL", 5, "STP", aux=199.97, contract=sap)
    assert codes(engine.place(1, off_tick)) == [110]
    assert engine.orders[(1, 1)].status == "Cancelled"
    on_tick = order(2, "SELL", 5, "STP", aux=199.95, contract=sap)
    assert codes(engine.place(1, on_tick)) == []
