"""Currencies (docs/planning.md, "Currencies"): what a price is worth in the account's base
currency, and whether the account holds the currency a buy is paid in.

* NAV, cash, allocation capital, weights and every risk limit are in the account's base
  currency. A contract's prices are in its own currency; they convert with IB's own rate for
  that currency (the account value ``ExchangeRate``: the base-currency value of one unit). A
  currency IB gives no rate for is never guessed: its orders are held.
* Cash is checked per currency: the opening buys of a currency, with every working buy in it,
  may commit no more than the account's ``CashBalance`` in that currency (a margin account's
  base currency is left to its buying power, the gate's cash check).
  What happens to a buy the account lacks the currency for is the rule file's ``account.fx``:
  ``block`` holds it with the reason; ``convert`` holds it too, while an IDEALPRO order buys the
  currency first (daemon/planner/conversions.py). At most one conversion per currency and
  trading day: one that is working, in flight or done today is never placed again, so a
  balance IB has not updated yet cannot cause a second one.

Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from tradectl.planner.common import TERMINAL_STATUSES, buy_price, money
from tradectl.planner.domain import Intent, Observed, WorkingOrder
from tradectl.planner.legs import converted_currency, parse_order_ref
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


# The rates a currency's value may have in another, inclusive: the farthest apart of the
# currencies IB trades are some ten thousand to one. A rate outside (NaN, infinite, 0,
# negative, or a huge or tiny number) is a data error: it would value orders at NaN or
# infinity, or size them at astronomic share counts, so it counts as no rate at all.
_LOWEST_RATE = 1e-6
_HIGHEST_RATE = 1e6


def rate_to_base(observed: Observed, currency: str) -> float | None:
    """Base currency per unit of ``currency`` as IB reports it; None when IB gave no usable
    rate (none, or one outside ``_LOWEST_RATE`` to ``_HIGHEST_RATE``: NaN and infinity too).
    Every reader of a rate reads it through here (``symbol_rate``, ``Rates``, ``base_rate``,
    the gate's currency check, conversions)."""
    if currency == observed.base_currency:
        return 1.0
    rate = observed.exchange_rates.get(currency)
    if rate is None or not _LOWEST_RATE <= rate <= _HIGHEST_RATE:
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


class Rates:
    """``symbol_rate`` for one pass, computed once per currency and price magnifier (all it
    depends on): a large plan asks for the rate of every target and every intent, and a
    single-currency account has one rate. Built per pass, never kept between passes."""

    def __init__(self, observed: Observed) -> None:
        self._observed = observed
        self._contracts = observed.contracts
        self._by_listing: dict[tuple[str | None, int], float | None] = {}

    def of(self, symbol: str) -> float | None:
        facts = self._contracts.get(symbol)
        listing = (None, 1) if facts is None else (facts.currency, facts.price_magnifier)
        if listing in self._by_listing:
            return self._by_listing[listing]
        rate = self._by_listing[listing] = symbol_rate(self._observed, symbol)
        return rate


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


def is_conversion(intent: Intent) -> bool:
    return converted_currency(intent.leg) is not None


def _buys_cash(intent: Intent) -> bool:
    """An opening buy of a contract: it spends the currency it is priced in."""
    return (
        intent.order is not None
        and intent.order.action == "BUY"
        and intent.purpose == "opening"
        and not is_conversion(intent)
    )


ConversionState = Literal["none", "working", "done"]


def _conversion_of(order_ref: str | None) -> str | None:
    parsed = parse_order_ref(order_ref)
    return None if parsed is None else converted_currency(parsed[2])


def conversion_states(observed: Observed) -> dict[str, ConversionState]:
    """Per currency, today's conversion: ``working`` (live at IB or sent and not yet seen) or
    ``done`` (it filled or ended today); currencies without one are absent."""
    states: dict[str, ConversionState] = {}
    for order in observed.completed_orders:
        currency = _conversion_of(order.order_ref)
        if currency is not None:
            states[currency] = "done"
    for execution in observed.executions:
        currency = _conversion_of(execution.order_ref)
        if currency is not None:
            states[currency] = "done"
    for order in observed.working_orders:
        currency = _conversion_of(order.order_ref)
        if currency is not None and order.status not in TERMINAL_STATUSES:
            states[currency] = "working"
        elif currency is not None:
            states[currency] = "done"
    for key in observed.in_flight:
        currency = _conversion_of(key.split("#", 1)[0])
        if currency is not None:
            states.setdefault(currency, "working")
    return states


def _local_change(intent: Intent, live: Mapping[int, WorkingOrder]) -> float:
    """How much this place or modify adds to the buy commitment, in the order's price units."""
    assert intent.order is not None
    before = live.get(intent.order_id) if intent.action == "modify" and intent.order_id else None
    filled = 0.0 if before is None else before.filled
    new = (intent.order.quantity - filled) * (intent.estimated_price or 0.0)
    old = 0.0
    if before is not None and before.action == "BUY":
        # As the gate's cash check values it (``commitment_change``): an order without a usable
        # price frees nothing.
        old = before.remaining * (buy_price(before, None) or 0.0)
    return new - old


@dataclass(frozen=True)
class CurrencyShortfall:
    """Buys of ``currency`` that would commit ``needed`` against a balance of ``held``."""

    currency: str
    held: float
    needed: float


@dataclass
class CurrencyCheck:
    """``blocked``: intent index to reason. ``shortfalls``: per currency, what every opening
    buy in it (the held ones too) and the working buys would commit, against what is held."""

    blocked: dict[int, str]
    shortfalls: dict[str, CurrencyShortfall]


def check_currencies(
    intents: Sequence[Intent], blocked_by: Mapping[int, str], observed: Observed, policy: FxPolicy
) -> dict[int, str]:
    """The opening buys (not already blocked) to hold because the account lacks their currency,
    with the reason (see ``currency_check``)."""
    return currency_check(intents, blocked_by, observed, policy).blocked


def currency_check(
    intents: Sequence[Intent], blocked_by: Mapping[int, str], observed: Observed, policy: FxPolicy
) -> CurrencyCheck:
    """Every currency of a cash account; in a margin account, which borrows its base currency,
    all but the base (its buying power is the gate's cash check). A conversion spends the base
    currency. Without per-currency balances from IB nothing is checked."""
    check = CurrencyCheck({}, {})
    if not observed.cash_balances:
        return check
    states = conversion_states(observed)
    live = {
        order.order_id: order
        for order in observed.working_orders
        if order.status not in TERMINAL_STATUSES
    }
    base = observed.base_currency

    def checked(currency: str) -> bool:
        if currency != base:
            return True
        return not observed.margin_account and base in observed.cash_balances

    committed: dict[str, float] = {}
    for order in live.values():
        currency = symbol_currency(observed, order.symbol)
        if order.action == "BUY" and checked(currency):
            quote = observed.quotes.get(order.symbol)
            # Without a usable price the gate's cash check (run first) blocks every buy.
            price = buy_price(order, None if quote is None else quote.last) or 0.0
            amount = order.remaining * price / _magnifier(observed, order.symbol)
            committed[currency] = committed.get(currency, 0.0) + amount
    wanted = dict(committed)
    for index, intent in enumerate(intents):
        if index not in blocked_by and is_conversion(intent):
            committed[base] = committed.get(base, 0.0) + intent.value
            wanted[base] = wanted.get(base, 0.0) + intent.value
            continue
        if index in blocked_by or not _buys_cash(intent):
            continue
        currency = symbol_currency(observed, intent.symbol)
        if not checked(currency):
            continue
        change = _local_change(intent, live) / _magnifier(observed, intent.symbol)
        held = observed.cash_balances.get(currency, 0.0)
        wanted[currency] = wanted.get(currency, 0.0) + change
        after = committed.get(currency, 0.0) + change
        if change > 0 and after > held + _SLACK:
            short = CurrencyShortfall(currency, held, after)
            check.blocked[index] = _short_reason(observed, policy, short, states.get(currency))
            continue
        committed[currency] = after
    for currency in sorted({symbol_currency(observed, intents[i].symbol) for i in check.blocked}):
        held = observed.cash_balances.get(currency, 0.0)
        check.shortfalls[currency] = CurrencyShortfall(currency, held, wanted[currency])
    return check


def _short_reason(
    observed: Observed,
    policy: FxPolicy,
    short: CurrencyShortfall,
    conversion: ConversionState | None,
) -> str:
    currency, base = short.currency, observed.base_currency
    lacks = (
        f"{FX_RULE}: buys in {currency} would commit {currency} {money(short.needed)} > "
        f"{currency} {money(max(short.held, 0.0))} held (account base {base})"
    )
    if currency == base:
        return f"{lacks}; the base currency is not converted into"
    if policy == "block":
        return f"{lacks}; account.fx is block: fund {currency} at IB or set account.fx: convert"
    if conversion == "working":
        return f"{lacks}; waiting for today's {base} to {currency} conversion to fill"
    if conversion == "done":
        return (
            f"{lacks}; today's {currency} conversion has ended: held until IB reports the "
            f"{currency} cash (one conversion per currency a day)"
        )
    return f"{lacks}; converting {base} to {currency} first (IDEALPRO); the buy follows its fill"
