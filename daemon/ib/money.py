"""Money as IB reports it (docs/planning.md, "Currencies" and "Price increments"): the account's
base currency, its cash per currency and IB's exchange rates from the account values, and each
contract's price increments from its market rule (``reqMarketRule``), asked once per rule id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence

from ib_insync import AccountValue, ContractDetails

from tradectl.broker_types import AccountCurrencies
from tradectl.planner.ticks import PriceBand

log = logging.getLogger(__name__)

# IB labels the base-currency total of a tag "BASE"; every other row is in its own currency.
BASE_ROW = "BASE"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def account_currencies(values: Iterable[AccountValue]) -> AccountCurrencies:
    """The base currency is the one IB reports ``NetLiquidation`` in (it reports it in the base
    currency only); USD when it reports none."""
    base = None
    cash: dict[str, float] = {}
    rates: dict[str, float] = {}
    for value in values:
        if value.modelCode or value.currency in ("", BASE_ROW):
            continue
        number = _number(value.value)
        if number is None:
            continue
        if value.tag == "NetLiquidation" and base is None:
            base = value.currency
        elif value.tag == "CashBalance":
            cash[value.currency] = number
        elif value.tag == "ExchangeRate" and number > 0:
            rates[value.currency] = number
    return AccountCurrencies(base or "USD", cash, rates)


def market_rule_id(details: ContractDetails, exchange: str) -> int | None:
    """The market rule of ``exchange`` (the exchange orders are routed to), else of the primary
    exchange, else the first one IB lists: ``marketRuleIds`` has one id per ``validExchanges``
    entry."""
    venues = [venue.strip() for venue in details.validExchanges.split(",")]
    rules = [rule.strip() for rule in details.marketRuleIds.split(",")]
    if not rules or not rules[0]:
        return None
    by_venue = dict(zip(venues, rules, strict=False))
    primary = details.contract.primaryExchange if details.contract is not None else ""
    chosen = by_venue.get(exchange) or by_venue.get(primary) or rules[0]
    try:
        return int(chosen)
    except ValueError:
        return None


def rule_key(symbol: str) -> str:
    """The journal key of a symbol's market rule id (read again from contract details daily)."""
    return f"market_rule:{symbol}"


def stored_contract_money(stored: str | None) -> tuple[int | None, int]:
    """A symbol's (market rule id, price magnifier) as the journal keeps it; (None, 1) when
    unknown or unreadable."""
    if stored is None:
        return None, 1
    try:
        rule, magnifier = json.loads(stored)
        return (None if rule is None else int(rule)), max(1, int(magnifier))
    except (ValueError, TypeError):
        return None, 1


def bands_key(rule_id: int) -> str:
    return f"market_rule_bands:{rule_id}"


class MarketRules:
    """Price bands per market rule id: asked of IB once, kept in memory and in the journal (a
    restart does not ask again). ``fetch`` returns IB's answer or None when none came in time;
    then the contract's ``minTick`` applies for this pass and the rule is asked again later."""

    def __init__(
        self,
        fetch: Callable[[int], Sequence[tuple[float, float]] | None],
        load: Callable[[str], str | None],
        store: Callable[[str, str], None],
    ) -> None:
        self._fetch = fetch
        self._load = load
        self._store = store
        self._bands: dict[int, tuple[PriceBand, ...]] = {}

    def bands(self, rule_id: int | None) -> tuple[PriceBand, ...]:
        if rule_id is None:
            return ()
        known = self._bands.get(rule_id)
        if known is not None:
            return known
        stored = self._load(bands_key(rule_id))
        if stored is not None:
            known = tuple(PriceBand(low, step) for low, step in json.loads(stored))
        else:
            answer = self._fetch(rule_id)
            if not answer:
                log.warning("market rule %s: no answer from the gateway; minTick applies", rule_id)
                return ()
            known = tuple(PriceBand(float(low), float(step)) for low, step in answer)
            self._store(bands_key(rule_id), json.dumps([[b.low_edge, b.increment] for b in known]))
        self._bands[rule_id] = known
        return known
