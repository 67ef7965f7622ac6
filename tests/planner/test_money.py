"""Currencies (daemon/planner/money.py): a EUR-base account holding US, Canadian and German
stocks. Weights, capital and limits are in EUR; prices convert with IB's exchange rates; cash
is checked per currency and ``account.fx: block`` holds a buy the account lacks the currency for.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.planner.builders import NOW, observed, rule_set, working
from tradectl.planner.domain import ContractFacts, Observed, Plan
from tradectl.planner.plan import plan

# IB's ExchangeRate: EUR per unit of each currency.
RATES = {"USD": 0.9, "CAD": 0.7}
PRICES = {"SAP": 100.0, "AAPL": 200.0, "SHOP": 70.0}
CONTRACTS = {
    "SAP": ContractFacts("SAP", con_id=14204, currency="EUR"),
    "AAPL": ContractFacts("AAPL", con_id=265598, currency="USD"),
    "SHOP": ContractFacts("SHOP", con_id=195014116, currency="CAD"),
}
ALLOCATION: dict[str, Any] = {
    "capital": {"fraction_of_nav": 0.9},
    "drift": {"absolute": 0.01},
    "min_trade_value": 100,
    "order": {"type": "market"},
    "targets": {"SAP": 0.3, "AAPL": 0.3, "SHOP": 0.3},
}


def eur_account(
    cash_balances: dict[str, float], rates: dict[str, float] | None = None, **extra: Any
) -> Observed:
    return observed(
        nav=100_000.0,
        cash=sum(amount * (rates or RATES).get(ccy, 1.0) for ccy, amount in cash_balances.items()),
        prices=PRICES,
        contracts=CONTRACTS,
        base_currency="EUR",
        cash_balances=cash_balances,
        exchange_rates=RATES if rates is None else rates,
        **extra,
    )


def planned(fx: str = "block", **risk: Any) -> Any:
    rules = rule_set(allocations={"core": ALLOCATION}, risk=risk or None)
    return rules.model_copy(update={"account": rules.account.model_copy(update={"fx": fx})})


def by_symbol(result: Plan) -> dict[str, Any]:
    return {intent.symbol: intent for intent in result.intents}


def test_weights_are_sized_in_the_base_currency_at_ibs_rates() -> None:
    result = plan(planned(), eur_account({"EUR": 40_000, "USD": 40_000, "CAD": 40_000}), NOW)
    intents = by_symbol(result)
    # 0.3 x 90,000 EUR capital: 27,000 EUR each. SAP 100 EUR; AAPL 200 USD = 180 EUR;
    # SHOP 70 CAD = 49 EUR.
    assert {symbol: intent.order.quantity for symbol, intent in intents.items()} == {
        "SAP": 270,
        "AAPL": 150,
        "SHOP": 551,
    }
    assert not result.blocked
    assert intents["AAPL"].value == 150 * 200 * 0.9
    assert intents["SHOP"].value == 551 * 70 * 0.7


def test_max_order_value_is_in_the_base_currency() -> None:
    result = plan(
        planned(max_order_value=9_000), eur_account({"EUR": 1e6, "USD": 1e6, "CAD": 1e6}), NOW
    )
    intents = by_symbol(result)
    # 9,000 EUR: 90 SAP at 100 EUR, 50 AAPL at 180 EUR, 183 SHOP at 49 EUR.
    assert intents["SAP"].order.quantity == 90
    assert intents["AAPL"].order.quantity == 50
    assert intents["SHOP"].order.quantity == 183
    assert not result.blocked


def test_block_holds_buys_in_a_currency_the_account_lacks_and_nothing_else() -> None:
    result = plan(planned("block"), eur_account({"EUR": 100_000}), NOW)
    intents = by_symbol(result)
    assert intents["SAP"].blocked_by is None
    for symbol, currency in (("AAPL", "USD"), ("SHOP", "CAD")):
        reason = intents[symbol].blocked_by
        assert reason is not None
        assert reason.startswith(f"account.fx: buys in {currency} would commit {currency} ")
        assert f"> {currency} 0 held (account base EUR)" in reason
        assert "account.fx is block" in reason
    assert [intent.symbol for intent in result.actionable] == ["SAP"]


def test_a_currency_held_but_short_blocks_the_buy_it_cannot_pay() -> None:
    # 10,000 USD does not pay 150 AAPL at 200 USD (30,000 USD); CAD is plentiful.
    result = plan(planned(), eur_account({"EUR": 50_000, "USD": 10_000, "CAD": 50_000}), NOW)
    intents = by_symbol(result)
    assert intents["AAPL"].blocked_by is not None
    assert "USD 30,000 > USD 10,000 held" in intents["AAPL"].blocked_by
    assert intents["SHOP"].blocked_by is None and intents["SAP"].blocked_by is None


def test_working_buys_in_a_currency_count_against_its_balance() -> None:
    manual = working(7, "AAPL", "BUY", 100, ref=None, limit=200.0)
    account = eur_account({"EUR": 50_000, "USD": 35_000, "CAD": 50_000}, orders=[manual])
    result = plan(planned(), account, NOW)
    # The manual buy holds 20,000 USD; the planned 150 AAPL (30,000 USD) no longer fits.
    aapl = by_symbol(result)["AAPL"]
    assert aapl.blocked_by is not None and "USD 50,000 > USD 35,000 held" in aapl.blocked_by


def test_a_currency_without_an_exchange_rate_is_never_guessed() -> None:
    result = plan(planned(), eur_account({"EUR": 1e6, "CAD": 1e6}, rates={"USD": 0.9}), NOW)
    assert "SHOP" not in by_symbol(result)
    assert any("IB reports no exchange rate for CAD" in note for note in result.notes)


UNUSABLE_RATES = (float("nan"), float("inf"), 0.0, -0.7, 1e300, 1e-300, 5e-324, 1e7, 1e-7)


@pytest.mark.parametrize("rate", UNUSABLE_RATES)
def test_a_rate_that_is_not_a_usable_number_is_no_rate(rate: float) -> None:
    """IB's CAD rate is garbage: SHOP is left out with the no-rate note, and a scale in CAD,
    which needs no quote, is held by the gate with the same words; the others are planned."""
    rules = planned().model_copy(
        update={
            "scales": rule_set(
                scales={
                    "ladder": {
                        "symbol": "SHOP",
                        "side": "BUY",
                        "total_quantity": 30,
                        "levels": 3,
                        "start_price": 60.0,
                        "step": 1.0,
                    }
                }
            ).scales
        }
    )
    account = eur_account({"EUR": 1e6, "USD": 1e6, "CAD": 1e6})
    result = plan(rules, replace(account, exchange_rates={**RATES, "CAD": rate}), NOW)
    no_rate = "IB reports no exchange rate for CAD (account value ExchangeRate, base EUR)"
    assert any(no_rate in note for note in result.notes)
    shop = [intent for intent in result.intents if intent.symbol == "SHOP"]
    assert [intent.kind for intent in shop] == ["scales"] * 3
    assert all(no_rate in (intent.blocked_by or "") for intent in shop)
    assert all(intent.fx_rate == 1.0 for intent in shop)
    assert {intent.symbol for intent in result.actionable} == {"SAP", "AAPL"}


def test_sells_need_no_currency() -> None:
    account = eur_account({"EUR": 0.0}, positions={"AAPL": 400})
    result = plan(planned(), account, NOW)
    aapl = by_symbol(result)["AAPL"]
    assert aapl.order.action == "SELL" and aapl.blocked_by is None


def test_a_usd_account_without_per_currency_balances_plans_as_before() -> None:
    usd = observed(nav=100_000.0, prices={"AAPL": 200.0})
    rules = rule_set(allocations={"core": {**ALLOCATION, "targets": {"AAPL": 0.3}}})
    [intent] = plan(rules, usd, NOW).intents
    assert intent.order is not None and intent.order.quantity == 135 and intent.fx_rate == 1.0


@settings(max_examples=150, deadline=None)
@given(
    usd=st.floats(min_value=0.2, max_value=5.0),
    cad=st.floats(min_value=0.2, max_value=5.0),
    usd_cash=st.floats(min_value=0.0, max_value=200_000.0),
    cad_cash=st.floats(min_value=0.0, max_value=200_000.0),
)
def test_no_currency_is_overcommitted_and_no_target_is_overbought(
    usd: float, cad: float, usd_cash: float, cad_cash: float
) -> None:
    rates = {"USD": usd, "CAD": cad}
    account = eur_account({"EUR": 100_000, "USD": usd_cash, "CAD": cad_cash}, rates=rates)
    result = plan(planned(), account, NOW)
    spent = {"USD": 0.0, "CAD": 0.0}
    currency = {"AAPL": "USD", "SHOP": "CAD", "SAP": "EUR"}
    for intent in result.actionable:
        assert intent.order is not None and intent.order.action == "BUY"
        rate = rates.get(currency[intent.symbol], 1.0)
        assert intent.fx_rate == rate
        # Never more than the weight of the capital, in EUR.
        assert intent.value <= 0.3 * 90_000 + 1e-6
        if currency[intent.symbol] in spent:
            spent[currency[intent.symbol]] += intent.order.quantity * PRICES[intent.symbol]
    assert spent["USD"] <= usd_cash + 1e-6
    assert spent["CAD"] <= cad_cash + 1e-6


def conversions(result: Plan) -> list[Any]:
    return [intent for intent in result.intents if intent.leg.startswith("fx.")]


def test_convert_buys_each_missing_currency_first_and_holds_the_buys() -> None:
    result = plan(planned("convert"), eur_account({"EUR": 100_000}, trading_day=NOW.date()), NOW)
    fx = conversions(result)
    # EUR.USD and EUR.CAD are priced per euro: sell euros. AAPL needs 150 x 200 = 30,000 USD,
    # +1%: 30,300 USD = 27,270 EUR at 0.9; SHOP 551 x 70 = 38,570 CAD, +1%: 38,955.7 CAD =
    # 27,269 EUR at 0.7 (rounded up).
    assert [(i.symbol, i.order.action, i.order.quantity, i.order.order_type) for i in fx] == [
        ("EUR.CAD", "SELL", 27_269, "MKT"),
        ("EUR.USD", "SELL", 27_270, "MKT"),
    ]
    assert all(intent.blocked_by is None for intent in fx)
    assert all(i.order.order_ref.startswith("tctl:core:") for i in fx)
    # Each conversion is worth its euros (the base currency).
    assert fx[1].value == pytest.approx(27_270)
    intents = by_symbol(result)
    for symbol, currency in (("AAPL", "USD"), ("SHOP", "CAD")):
        assert f"converting EUR to {currency} first" in intents[symbol].blocked_by
    assert intents["SAP"].blocked_by is None
    # Conversions go before the buys they pay for.
    order = [intent.symbol for intent in result.intents]
    assert order.index("EUR.USD") < order.index("AAPL")


def test_a_conversion_is_placed_once_a_day() -> None:
    first = plan(planned("convert"), eur_account({"EUR": 100_000}, trading_day=NOW.date()), NOW)
    usd = next(i for i in conversions(first) if i.symbol == "EUR.USD")
    assert usd.order is not None
    working_fx = working(
        9, "EUR", "SELL", usd.order.quantity, ref=usd.order.order_ref, order_type="MKT"
    )
    # Sent and not yet seen, working, or already filled today with IB's balance not yet
    # updated: never a second conversion.
    for extra in (
        {"in_flight": frozenset({usd.key})},
        {"orders": [working_fx]},
        {"completed_orders": (replace(working_fx, filled=usd.order.quantity, status="Filled"),)},
    ):
        again = plan(
            planned("convert"),
            eur_account({"EUR": 100_000}, trading_day=NOW.date(), **extra),
            NOW,
        )
        assert [i.symbol for i in conversions(again)] == ["EUR.CAD"]
        aapl = by_symbol(again)["AAPL"].blocked_by
        assert aapl is not None and "conversion" in aapl


def test_a_conversion_is_sized_for_the_shortfall_only() -> None:
    # 20,000 USD held of the 30,000 AAPL needs: 10,000 more, +1%.
    account = eur_account({"EUR": 100_000, "USD": 20_000, "CAD": 50_000}, trading_day=NOW.date())
    [usd] = conversions(plan(planned("convert"), account, NOW))
    assert usd.order is not None and usd.order.quantity == 9_090  # 10,100 USD at 0.9


def test_convert_is_gated_like_any_order() -> None:
    # Buys sliced to 20,000 EUR need conversions of 20,180 EUR (with the margin): above
    # risk.max_order_value, so they are held, and the buys with them.
    account = eur_account({"EUR": 100_000}, trading_day=NOW.date())
    result = plan(planned("convert", max_order_value=20_000), account, NOW)
    fx = conversions(result)
    assert len(fx) == 2
    assert all(i.blocked_by and i.blocked_by.startswith("risk.max_order_value") for i in fx)
    assert by_symbol(result)["AAPL"].blocked_by is not None
    halted = plan(planned("convert"), eur_account({"EUR": 100_000}, halted=True), NOW)
    assert not halted.actionable


def test_the_currency_is_bought_when_the_base_comes_second() -> None:
    # A CAD-base account buying a USD stock: USD.CAD is priced in CAD per USD; buy USD.
    account = observed(
        nav=100_000.0,
        prices={"AAPL": 200.0},
        contracts={"AAPL": CONTRACTS["AAPL"]},
        base_currency="CAD",
        cash_balances={"CAD": 100_000},
        exchange_rates={"USD": 1.4},
        trading_day=NOW.date(),
    )
    rules = planned("convert")
    rules = rules.model_copy(
        update={
            "allocations": {
                "core": rules.allocations["core"].model_copy(update={"targets": {"AAPL": 0.3}})
            }
        }
    )
    [usd] = conversions(plan(rules, account, NOW))
    # 0.3 x 90,000 CAD = 27,000 CAD: 96 AAPL at 280 CAD = 19,200 USD, +1%: 19,392 USD.
    assert usd.symbol == "USD.CAD" and usd.order is not None
    assert (usd.order.action, usd.order.quantity) == ("BUY", 19_392)
