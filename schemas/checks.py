"""Cross-field checks on a merged rule set (docs/rules.md).

Each check returns ``Problem``s: the field path at fault, a message, and the field paths of the
other side of the conflict (``see``). The loader turns paths into ``file:line:col`` and appends
each ``see`` path with its location, so that both sides of every conflict are named.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import NamedTuple

from tradectl.schemas.models import (
    Bracket,
    RiskSizedQuantity,
    RuleSet,
    Scale,
    instrument_allowed,
)

PathKey = str | int
FieldPath = tuple[PathKey, ...]

MAX_WORKING_ORDERS_PER_SIDE = 20
_EPSILON = 1e-9


class Problem(NamedTuple):
    path: FieldPath
    message: str
    see: tuple[FieldPath, ...] = ()


def number(value: float) -> str:
    """A number as a trader writes it: 0.35, 150.5, 50,000."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.10g}" if abs(value) >= 1000 else f"{value:.10g}"


def money(value: float) -> str:
    return f"{value:,.2f}"


def check_rule_set(rules: RuleSet) -> list[Problem]:
    """Every cross-field problem of the rule set, in a stable order."""
    problems: list[Problem] = []
    for check in CHECKS:
        problems.extend(check(rules))
    return problems


def _check_account(rules: RuleSet) -> Iterator[Problem]:
    if not rules.account.is_paper and not rules.account.live:
        yield Problem(
            ("account", "id"),
            f"live account: {rules.account.id} is not a paper account (DU...); "
            "set account.live: true to trade it",
        )


def _check_allocations(rules: RuleSet) -> Iterator[Problem]:
    limit = rules.risk.max_position_fraction
    owner: dict[str, str] = {}
    fraction_paths: list[FieldPath] = []
    fraction_total = 0.0
    for name, allocation in rules.allocations.items():
        targets_path: FieldPath = ("allocations", name, "targets")
        total = sum(allocation.inline_targets.values())
        if total > 1 + _EPSILON:
            yield Problem(
                targets_path,
                f"target weights sum to {number(round(total, 10))}; they must sum to at most 1 "
                "(what is left stays in cash)",
            )
        locations = allocation.target_locations()
        for symbol, weight in allocation.inline_targets.items():
            if weight > limit + _EPSILON:
                yield Problem(
                    _weight_path(targets_path, locations[symbol]),
                    f"must be <= {number(limit)}",
                    (("risk", "max_position_fraction"),),
                )
            if symbol in owner:
                yield Problem(
                    (*targets_path, locations[symbol]),
                    f"{symbol} is already a target of allocation {owner[symbol]!r}; two "
                    "allocations would fight over the same shares, keep it in one",
                    (_target_path(rules, owner[symbol], symbol),),
                )
            else:
                owner[symbol] = name
        fraction = allocation.capital.fraction_of_nav
        if fraction is not None:
            fraction_total += fraction
            fraction_paths.append(("allocations", name, "capital", "fraction_of_nav"))
            if fraction_total > 1 + _EPSILON:
                yield Problem(
                    fraction_paths[-1],
                    f"capital.fraction_of_nav of all allocations sums to "
                    f"{number(round(fraction_total, 10))}; it must be at most 1",
                    tuple(fraction_paths[:-1]),
                )
    for kind, standing in (("brackets", rules.brackets), ("scales", rules.scales)):
        for name, rule in standing.items():
            if rule.symbol in owner:
                allocation_name = owner[rule.symbol]
                yield Problem(
                    (kind, name, "symbol"),
                    f"{rule.symbol} is also a target of allocation {allocation_name!r}: the "
                    f"allocation would treat the shares this rule trades as drift and trade them "
                    f"away; trade a symbol through an allocation or through brackets and scales, "
                    f"not both",
                    (_target_path(rules, allocation_name, rule.symbol),),
                )


def _target_path(rules: RuleSet, allocation: str, key: str) -> FieldPath:
    location = rules.allocations[allocation].target_locations()[key]
    return ("allocations", allocation, "targets", location)


def _weight_path(targets_path: FieldPath, location: str | int) -> FieldPath:
    # In the list form the weight is a key of the item; in the mapping form it is the value.
    if isinstance(location, int):
        return (*targets_path, location, "weight")
    return (*targets_path, location)


def _check_allowed_symbols(rules: RuleSet) -> Iterator[Problem]:
    allowed = rules.risk.allowed_symbols
    if allowed is None:
        return
    see = (("risk", "allowed_symbols"),)
    for name, allocation in rules.allocations.items():
        for symbol, location in allocation.target_locations().items():
            if not instrument_allowed(symbol, allowed):
                yield Problem(
                    ("allocations", name, "targets", location),
                    f"{symbol} is not an allowed symbol",
                    see,
                )
    for kind, standing in (("brackets", rules.brackets), ("scales", rules.scales)):
        for name, rule in standing.items():
            if not instrument_allowed(rule.symbol, allowed):
                yield Problem(
                    (kind, name, "symbol"), f"{rule.symbol} is not an allowed symbol", see
                )


class _Legs(NamedTuple):
    """Prices of a bracket's orders, where the rule states them."""

    entry_low: float
    entry_high: float
    stop: float | None
    take_profit: float | None


def _bracket_legs(bracket: Bracket) -> _Legs | None:
    entry = bracket.entry
    if entry.limit is None:
        return None
    prices = [entry.limit] if entry.stop is None else [entry.limit, entry.stop]
    low, high = min(prices), max(prices)
    buying = bracket.side == "BUY"
    stop = bracket.stop_loss.price
    if bracket.stop_loss.percent is not None:
        percent = bracket.stop_loss.percent / 100
        stop = low * (1 - percent) if buying else high * (1 + percent)
    take_profit = bracket.take_profit.price
    if bracket.take_profit.percent is not None:
        percent = bracket.take_profit.percent / 100
        take_profit = high * (1 + percent) if buying else low * (1 - percent)
    return _Legs(low, high, stop, take_profit)


def _check_brackets(rules: RuleSet) -> Iterator[Problem]:
    for name, bracket in rules.brackets.items():
        base: FieldPath = ("brackets", name)
        entry = bracket.entry
        buying = bracket.side == "BUY"
        if entry.stop is not None and entry.limit is not None:
            if buying and entry.limit < entry.stop:
                yield Problem(
                    (*base, "entry", "limit"),
                    f"a BUY stop-limit entry needs limit >= stop ({number(entry.limit)} < "
                    f"{number(entry.stop)}): it could never fill once triggered",
                    ((*base, "entry", "stop"),),
                )
            if not buying and entry.limit > entry.stop:
                yield Problem(
                    (*base, "entry", "limit"),
                    f"a SELL stop-limit entry needs limit <= stop ({number(entry.limit)} > "
                    f"{number(entry.stop)}): it could never fill once triggered",
                    ((*base, "entry", "stop"),),
                )
        legs = _bracket_legs(bracket)
        entry_path: FieldPath = (*base, "entry")
        stop_price = bracket.stop_loss.price
        if legs is not None and stop_price is not None:
            if buying and stop_price >= legs.entry_low:
                yield Problem(
                    (*base, "stop_loss", "price"),
                    f"a BUY bracket's stop must be below its entry ({number(stop_price)} >= "
                    f"{number(legs.entry_low)})",
                    (entry_path,),
                )
            if not buying and stop_price <= legs.entry_high:
                yield Problem(
                    (*base, "stop_loss", "price"),
                    f"a SELL bracket's stop must be above its entry ({number(stop_price)} <= "
                    f"{number(legs.entry_high)})",
                    (entry_path,),
                )
        target_price = bracket.take_profit.price
        if legs is not None and target_price is not None:
            if buying and target_price <= legs.entry_high:
                yield Problem(
                    (*base, "take_profit", "price"),
                    f"a BUY bracket's take_profit must be above its entry "
                    f"({number(target_price)} <= {number(legs.entry_high)})",
                    (entry_path,),
                )
            if not buying and target_price >= legs.entry_low:
                yield Problem(
                    (*base, "take_profit", "price"),
                    f"a SELL bracket's take_profit must be below its entry "
                    f"({number(target_price)} >= {number(legs.entry_low)})",
                    (entry_path,),
                )
        yield from _check_bracket_size(rules, base, bracket, legs)


def _check_bracket_size(
    rules: RuleSet, base: FieldPath, bracket: Bracket, legs: _Legs | None
) -> Iterator[Problem]:
    # The gate checks these limits again on every planned order (daemon/planner/gate.py), on
    # purpose: here they are checked on the rule's own prices, so that `validate` names a rule
    # that could never pass; the gate sees the quantities and prices a file cannot know.
    quantity = bracket.quantity
    if isinstance(quantity, RiskSizedQuantity):
        limit = rules.risk.max_risk_per_trade_fraction
        if quantity.risk_fraction > limit + _EPSILON:
            yield Problem(
                (*base, "quantity", "risk_fraction"),
                f"must be <= {number(limit)}",
                (("risk", "max_risk_per_trade_fraction"),),
            )
        return
    if legs is None:
        return
    max_value = rules.risk.max_order_value
    candidates = [("entry", legs.entry_high)]
    if legs.take_profit is not None:
        candidates.append(("take_profit", legs.take_profit))
    if legs.stop is not None:
        candidates.append(("stop_loss", legs.stop))
    leg, price = max(candidates, key=lambda candidate: candidate[1])
    value = quantity * price
    if value > max_value + _EPSILON:
        yield Problem(
            (*base, "quantity"),
            f"the {leg} order is worth {number(quantity)} x {money(price)} = {money(value)}, "
            f"more than the {money(max_value)} allowed per order; lower the quantity or raise "
            "the limit",
            (("risk", "max_order_value"),),
        )


def _check_scales(rules: RuleSet) -> Iterator[Problem]:
    max_value = rules.risk.max_order_value
    for name, scale in rules.scales.items():
        base: FieldPath = ("scales", name)
        prices = scale.level_prices()
        last = prices[-1]
        if last <= _EPSILON:
            yield Problem(
                (*base, "step"),
                f"the last of {scale.levels} levels would be priced {number(scale.start_price)} - "
                f"{number(scale.step)} x {scale.levels - 1} = {number(round(last, 10))}; "
                "prices must stay positive, use a smaller step or fewer levels",
                ((*base, "start_price"), (*base, "levels")),
            )
            continue
        values = [
            (index, quantity, price, quantity * price)
            for index, (quantity, price) in enumerate(
                zip(scale.level_quantities(), prices, strict=True), start=1
            )
        ]
        index, quantity, price, value = max(values, key=lambda level: level[3])
        if value > max_value + _EPSILON:
            yield Problem(
                (*base, "total_quantity"),
                f"level {index} is worth {number(quantity)} x {money(price)} = {money(value)}, "
                f"more than the {money(max_value)} allowed per order; lower total_quantity or "
                "add levels",
                (("risk", "max_order_value"),),
            )


def _scale_orders(scale: Scale) -> dict[str, int]:
    return {scale.side: scale.levels}


def _bracket_orders(bracket: Bracket) -> dict[str, int]:
    opposite = "SELL" if bracket.side == "BUY" else "BUY"
    return {bracket.side: 1, opposite: 2}


def _check_working_orders(rules: RuleSet) -> Iterator[Problem]:
    needs: dict[tuple[str, str], list[tuple[FieldPath, int]]] = defaultdict(list)
    for name, allocation in rules.allocations.items():
        for symbol, location in allocation.target_locations().items():
            for side in ("BUY", "SELL"):
                needs[(symbol, side)].append((("allocations", name, "targets", location), 1))
    for name, bracket in rules.brackets.items():
        for side, count in _bracket_orders(bracket).items():
            needs[(bracket.symbol, side)].append((("brackets", name, "symbol"), count))
    for name, scale in rules.scales.items():
        for side, count in _scale_orders(scale).items():
            needs[(scale.symbol, side)].append((("scales", name, "symbol"), count))
    for (symbol, side), contributions in needs.items():
        total = sum(count for _, count in contributions)
        if total <= MAX_WORKING_ORDERS_PER_SIDE:
            continue
        breakdown = ", ".join(
            f"{'.'.join(str(part) for part in path[:2])}: {count}" for path, count in contributions
        )
        yield Problem(
            contributions[-1][0],
            f"the rules need {total} working {side} orders on {symbol} ({breakdown}); IB allows "
            f"at most {MAX_WORKING_ORDERS_PER_SIDE} per symbol and side",
            tuple(path for path, _ in contributions[:-1]),
        )


CHECKS: tuple[Callable[[RuleSet], Iterator[Problem]], ...] = (
    _check_account,
    _check_allocations,
    _check_allowed_symbols,
    _check_brackets,
    _check_scales,
    _check_working_orders,
)
