"""``account.fx: convert`` (docs/planning.md, "Currencies"): an IDEALPRO order that buys the
currency the held buys of a pass need, before them.

After the gate has held the buys the account lacks a currency for, one conversion per such
currency is planned, for what those buys and the working buys in it need beyond the balance,
plus a margin for the rate's move until it fills. It is an order like any other: journaled
under a deterministic key (its orderRef, with a hash of the trading day), paced, gated (halt,
circuit breaker, order rate, order value, cash in the base currency). The buys stay held until
IB reports the currency's cash; the next pass sends them. A currency with a conversion working,
in flight or done today gets no other one that day (daemon/planner/money.py).

A conversion is market order: IDEALPRO quotes around the clock on weekdays, and a limit would
need the pair's own increments. Pure.
"""

from __future__ import annotations

import math
from dataclasses import replace

from tradectl.planner.common import money, short_hash
from tradectl.planner.domain import Intent, Observed, OrderSpec, Plan
from tradectl.planner.fx import pair_of
from tradectl.planner.legs import conversion_leg, order_ref, parse_order_ref
from tradectl.planner.money import (
    FX_RULE,
    conversion_states,
    currency_check,
    is_conversion,
    rate_to_base,
    symbol_currency,
)
from tradectl.schemas.models import RuleSet

# Bought on top of the shortfall: the rate can move before the conversion fills, and the buys
# it pays for are priced at their limits, which a fill may not reach.
CONVERSION_MARGIN = 0.01
_CURRENCY_HOLD = f"{FX_RULE}: buys in "


def plan_conversions(gated: Plan, rules: RuleSet, observed: Observed) -> tuple[Intent, ...]:
    """The conversions ``gated`` (a plan the gate has marked) needs; none unless convert."""
    if rules.account.fx != "convert":
        return ()
    intents = gated.intents
    other_blocks = {
        index: intent.blocked_by
        for index, intent in enumerate(intents)
        if intent.blocked_by is not None and not intent.blocked_by.startswith(_CURRENCY_HOLD)
    }
    check = currency_check(intents, other_blocks, observed, "convert")
    states = conversion_states(observed)
    conversions: list[Intent] = []
    for currency, short in sorted(check.shortfalls.items()):
        rate = rate_to_base(observed, currency)
        if currency == observed.base_currency or currency in states or rate is None:
            continue
        held_buy = next(
            intents[index]
            for index in sorted(check.blocked)
            if symbol_currency(observed, intents[index].symbol) == currency
        )
        conversions.append(_conversion(held_buy, short.needed - short.held, rate, observed))
    return tuple(conversions)


def _conversion(held_buy: Intent, amount: float, rate: float, observed: Observed) -> Intent:
    """Buy ``amount`` (plus the margin) of the held buy's currency with the base currency."""
    base = observed.base_currency
    currency = symbol_currency(observed, held_buy.symbol)
    pair = pair_of(base, currency)
    wanted = amount * (1 + CONVERSION_MARGIN)
    if pair.first == base:
        # BASE.CCY is priced in CCY per BASE: sell the base currency for the amount.
        action, quantity, price, fx_rate = "SELL", math.ceil(wanted * rate), 1 / rate, rate
    else:
        action, quantity, price, fx_rate = "BUY", math.ceil(wanted), rate, 1.0
    parsed = parse_order_ref(held_buy.order.order_ref if held_buy.order else None)
    assert parsed is not None
    leg = conversion_leg(currency, short_hash(observed.trading_day, currency)[:6])
    ref = order_ref(held_buy.rule, parsed[1], leg)
    spec = OrderSpec(
        symbol=pair.name,
        action="SELL" if action == "SELL" else "BUY",
        quantity=quantity,
        order_type="MKT",
        order_ref=ref,
        tif="DAY",
    )
    return Intent(
        key=ref,
        action="place",
        kind=held_buy.kind,
        rule=held_buy.rule,
        leg=leg,
        symbol=pair.name,
        purpose="opening",
        reason=(
            f"convert {base} to {currency} on IDEALPRO: held buys need {currency} "
            f"{money(amount)} more than held (+{CONVERSION_MARGIN:.0%} for the rate's move)"
        ),
        order=spec,
        estimated_price=price,
        target_quantity=float(quantity),
        fx_rate=fx_rate,
    )


def with_conversions(plan: Plan, conversions: tuple[Intent, ...]) -> Plan:
    """``plan`` with the conversions placed before its first opening buy (after cancels and
    sells, which free cash first)."""
    intents = list(plan.intents)
    first_buy = next(
        (
            index
            for index, intent in enumerate(intents)
            if intent.order is not None
            and intent.order.action == "BUY"
            and intent.purpose == "opening"
            and not is_conversion(intent)
        ),
        len(intents),
    )
    return replace(plan, intents=(*intents[:first_buy], *conversions, *intents[first_buy:]))
