"""What IB reports about money, read by the adapter (daemon/ib/money.py): the base currency,
cash per currency and rates from the account values; a contract's market rule; bands asked
once per rule id."""

from __future__ import annotations

from ib_insync import AccountValue, Contract, ContractDetails

from tradectl.ib.money import (
    MarketRules,
    account_currencies,
    market_rule_id,
    stored_contract_money,
)
from tradectl.planner.ticks import PriceBand


def row(tag: str, value: str, currency: str) -> AccountValue:
    return AccountValue("DU1", tag, value, currency, "")


def test_the_base_currency_cash_per_currency_and_rates() -> None:
    currencies = account_currencies(
        [
            row("NetLiquidation", "186206.90", "EUR"),
            row("CashBalance", "100000.00", "EUR"),
            row("CashBalance", "100000.00", "USD"),
            row("CashBalance", "186206.90", "BASE"),
            row("ExchangeRate", "1.00", "EUR"),
            row("ExchangeRate", "0.862069", "USD"),
            row("ExchangeRate", "1.00", "BASE"),
            row("Currency", "EUR", "EUR"),
        ]
    )
    assert currencies.base_currency == "EUR"
    assert currencies.cash_balances == {"EUR": 100_000.0, "USD": 100_000.0}
    assert currencies.exchange_rates == {"EUR": 1.0, "USD": 0.862069}
    assert account_currencies([]).base_currency == "USD"


def details(valid: str, rules: str, primary: str) -> ContractDetails:
    return ContractDetails(
        contract=Contract(primaryExchange=primary), validExchanges=valid, marketRuleIds=rules
    )


def test_the_market_rule_of_the_order_exchange_else_the_primary_else_the_first() -> None:
    listing = details("SMART,IBIS,FWB", "26,1002,1003", "IBIS")
    assert market_rule_id(listing, "SMART") == 26
    assert market_rule_id(listing, "FWB") == 1003
    assert market_rule_id(listing, "LSE") == 1002
    assert market_rule_id(details("SMART,TSX", "1001,1001", ""), "CHIX") == 1001
    assert market_rule_id(details("", "", ""), "SMART") is None
    assert stored_contract_money(None) == (None, 1)
    assert stored_contract_money("[1003, 100]") == (1003, 100)
    assert stored_contract_money("not json") == (None, 1)


def test_bands_are_asked_once_per_rule_and_kept() -> None:
    asked: list[int] = []
    kept: dict[str, str] = {}

    def fetch(rule_id: int) -> list[tuple[float, float]] | None:
        asked.append(rule_id)
        return [(0.0, 0.001), (200.0, 0.1)] if rule_id == 1002 else None

    rules = MarketRules(fetch, kept.get, kept.__setitem__)
    bands = (PriceBand(0.0, 0.001), PriceBand(200.0, 0.1))
    assert rules.bands(1002) == bands
    assert rules.bands(1002) == bands
    assert asked == [1002]
    # No answer: minTick applies this time, and the rule is asked again next time.
    assert rules.bands(7) == () and rules.bands(7) == ()
    assert asked == [1002, 7, 7]
    # A new process reads the journal instead of asking.
    again = MarketRules(fetch, kept.get, kept.__setitem__)
    assert again.bands(1002) == bands and asked == [1002, 7, 7]
    assert rules.bands(None) == ()
