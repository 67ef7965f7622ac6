"""Currencies (docs/planning.md, "Currencies"): what a price is worth in the account's base
currency, and whether the account holds the currency a buy is paid in.

* NAV, cash, allocation capital, weights and every risk limit are in the account's base
  currency. A contract's prices are in its own currency; they convert with IB's own rate for
  that currency (the account value ``ExchangeRate``: the base-currency value of one unit). A
  currency IB gives no rate for is never guessed: its orders are held.
* Cash is checked per currency: the opening buys of a currency other than the base, with every
  working buy in it, may commit no more than the account's ``CashBalance`` in that currency.
  What happens to a buy the account lacks the currency for is the rule file's ``account.fx``:
  ``block`` holds it with the reason.

Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from tradectl.planner.common import TERMINAL_STATUSES, money, working_price
from tradectl.planner.types import Intent, Observed, WorkingOrder
from tradectl.schemas.models import FxPolicy

# Sums of floats: a commitment this close to the balance still fits.
_SLACK = 1e-6
FX_RULE = "account.fx"


def symbol_currency(observed: Observed, symbol: str) -> str:
    """The currency ``symbol``'s prices are in; the base currency when its facts do not say."""
    facts = observed.contracts.get(symbol)
    if facts is None or facts.currency is None:
        return observed.base_currency
    return facts.currency


def rate_to_base(observed: Observed, currency: str) -> float | None:
    """Base currency per unit of ``currency`` as IB reports it; None when IB gave no usable
    rate."""
    if currency == observed.base_currency:
        return 1.0
    rate = observed.exchange_rates.get(currency)
    if rate is None or not rate > 0:
        return None
    return rate


def _magnifier(observed: Observed, symbol: str) -> int:
    facts = observed.contracts.get(symbol)
    return 1 if facts is None else max(1, facts.price_magnifier)


def symbol_rate(observed: Observed, symbol: str) -> float | None:
    """Base currency per unit of ``symbol``'s price: IB's rate for its currency, divided by its
    price magnifier (a price in pence is a hundredth of a pound)."""
    rate = rate_to_base(observed, symbol_currency(observed, symbol))
    return None if rate is None else rate / _magnifier(observed, symbol)


def base_rate(observed: Observed, symbol: str) -> float:
    """``symbol``'s rate to the base currency for sizing and valuing; 1 when IB gives none
    (the gate then holds that symbol's orders, so nothing is sent at a guessed rate)."""
    rate = symbol_rate(observed, symbol)
    return 1.0 if rate is None else rate


def with_fx_rates(intents: list[Intent], observed: Observed) -> None:
    """Set each order intent's ``fx_rate`` (its value in the base currency), in place."""
    for index, intent in enumerate(intents):
        if intent.order is None:
            continue
        rate = base_rate(observed, intent.symbol)
        if rate != intent.fx_rate:
            intents[index] = replace(intent, fx_rate=rate)


def no_rate_reason(observed: Observed, symbol: str) -> str:
    currency = symbol_currency(observed, symbol)
    return (
        f"{symbol}: IB reports no exchange rate for {currency} (account value ExchangeRate, "
        f"base {observed.base_currency}); its orders are not valued, so not planned"
    )


def _buys_cash(intent: Intent) -> bool:
    """An opening buy: it spends the currency it is priced in."""
    return intent.order is not None and intent.order.action == "BUY" and intent.purpose == "opening"


def _local_change(intent: Intent, live: Mapping[int, WorkingOrder]) -> float:
    """How much this place or modify adds to the buy commitment, in the order's price units."""
    assert intent.order is not None
    before = live.get(intent.order_id) if intent.action == "modify" and intent.order_id else None
    filled = 0.0 if before is None else before.filled
    new = (intent.order.quantity - filled) * (intent.estimated_price or 0.0)
    old = 0.0
    if before is not None and before.action == "BUY":
        old = before.remaining * (working_price(before, None) or 0.0)
    return new - old


@dataclass(frozen=True)
class CurrencyShortfall:
    """Buys of ``currency`` that would commit ``needed`` against a balance of ``held``."""

    currency: str
    held: float
    needed: float


def check_currencies(
    intents: Sequence[Intent], blocked_by: Mapping[int, str], observed: Observed, policy: FxPolicy
) -> dict[int, str]:
    """The opening buys (not already blocked) to hold because the account lacks their currency,
    with the reason. Only currencies other than the base are checked here: the base currency's
    cash (or a margin account's buying power) is the gate's cash check. Without per-currency
    balances from IB nothing is checked."""
    if not observed.cash_balances:
        return {}
    live = {
        order.order_id: order
        for order in observed.working_orders
        if order.status not in TERMINAL_STATUSES
    }
    committed: dict[str, float] = {}
    for order in live.values():
        currency = symbol_currency(observed, order.symbol)
        if order.action == "BUY" and currency != observed.base_currency:
            quote = observed.quotes.get(order.symbol)
            price = working_price(order, None if quote is None else quote.last) or 0.0
            amount = order.remaining * price / _magnifier(observed, order.symbol)
            committed[currency] = committed.get(currency, 0.0) + amount
    blocked: dict[int, str] = {}
    for index, intent in enumerate(intents):
        if index in blocked_by or not _buys_cash(intent):
            continue
        currency = symbol_currency(observed, intent.symbol)
        if currency == observed.base_currency:
            continue
        change = _local_change(intent, live) / _magnifier(observed, intent.symbol)
        held = observed.cash_balances.get(currency, 0.0)
        after = committed.get(currency, 0.0) + change
        if change > 0 and after > held + _SLACK:
            blocked[index] = _short_reason(
                observed, policy, CurrencyShortfall(currency, held, after)
            )
            continue
        committed[currency] = after
    return blocked


def _short_reason(observed: Observed, policy: FxPolicy, short: CurrencyShortfall) -> str:
    lacks = (
        f"{FX_RULE}: buys in {short.currency} would commit {short.currency} "
        f"{money(short.needed)} > {short.currency} {money(max(short.held, 0.0))} held "
        f"(account base {observed.base_currency})"
    )
    if policy == "block":
        fund = f"fund {short.currency} at IB or set account.fx: convert"
        return f"{lacks}; account.fx is block: {fund}"
    return f"{lacks}; waiting for the {short.currency} conversion to fill"
