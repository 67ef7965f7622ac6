"""Price increments (docs/planning.md, "Price increments"): the prices IB accepts for a contract.

IB publishes a contract's increments as a *market rule* per exchange (``marketRuleIds`` in its
contract details, answered by ``reqMarketRule``): a list of bands, each with a low edge and an
increment. A price belongs to the band with the highest low edge at or below it (a price exactly
on an edge is in the band that starts there) and is valid when it is a whole multiple of that
band's increment. IB rejects any other price with error 110.

``PriceIncrements.round`` gives the nearest valid price on one side: ``down`` the largest valid
price at or below, ``up`` the smallest at or above. When a band's edge is not itself on the grid
of the band below, the walk crosses into the neighbouring band instead of returning a price
that belongs to one band but sits on the grid of another.

Everything here is pure: decimal arithmetic, so the same inputs round the same on every machine.
The arithmetic is exact for every finite float (``_EXACT``); a price that is not a finite
number has no valid neighbour and comes back from ``round`` as it is, for the caller's own check
(docs/planning.md, "Prices IB cannot use").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from typing import Literal

from tradectl.schemas.models import Side

Direction = Literal["down", "up"]

# Extra decimals kept before rounding so that 142.49999999999997 counts as 142.5.
_PRICE_GRID = Decimal("1e-9")
_NANOS = 10**9
# Enough digits for any finite float on the price grid and any quotient of two such prices
# (the largest float has 309 integer digits, the grid 9 decimals): the default 28 digits made
# a price around 1e20 raise InvalidOperation. Digits beyond a result's own cost nothing.
_EXACT = Context(prec=400)
# A decimal of at most this many significant digits is written back exactly by a float's repr,
# which is how ib_insync puts a price on the wire (str of the float).
_FLOAT_DIGITS = 15
# Digits kept free above a price orders are priced from, for the orders' own prices: a limit
# offset of at most 5 %, a stop or a take profit of at most 1000 % (11 times the price).
_ROOM = 2


def _increment_nanos(increment: float) -> int | None:
    """An increment as whole nanos (the price grid); None for one off that grid."""
    nanos = Decimal(repr(increment)) * _NANOS
    return int(nanos) if nanos == nanos.to_integral_value() else None


@dataclass(frozen=True)
class PriceBand:
    """Prices from ``low_edge`` (inclusive) up to the next band's edge move by ``increment``."""

    low_edge: float
    increment: float


def _decimal(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(_PRICE_GRID, context=_EXACT)


def _decimals(increment: float) -> int:
    """How many decimals an increment has on the price grid: 2 for 0.01 and 0.25, 0 for 5."""
    exponent = _decimal(increment).normalize(_EXACT).as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


@dataclass(frozen=True)
class PriceIncrements:
    """A contract's market rule: bands sorted by low edge, the first starting at 0."""

    bands: tuple[PriceBand, ...]
    # The one band's increment in whole nanos (None with more bands, or off the grid), for
    # ``round``: worked out once per instance, since the planner builds one instance per market
    # rule and pass and rounds every order of those listings with it. Set here rather than as
    # a cached property, whose write gives the instance a dict CPython 3.11 reads slowly.
    _single_step_nanos: int | None = field(init=False, repr=False, compare=False)
    # The lowest valid price above 0: the first band's increment (read once per target).
    lowest: float = field(init=False, repr=False, compare=False)
    # The highest price orders are priced from (a last price, a fill, a rule's own price),
    # exclusive: the prices of its orders, at most 11 times it (a take profit of 1000 %), are
    # then valid prices a float writes exactly (15 significant digits: whole digits and the
    # finest band's decimals), as ib_insync sends them. Above it IB would be sent prices off
    # the grid, if the price is not a data error in the first place.
    highest: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.bands:
            raise ValueError("a market rule needs at least one band")
        edges = [band.low_edge for band in self.bands]
        if edges != sorted(set(edges)) or edges[0] > 0:
            raise ValueError(f"band edges must rise from 0, got {edges}")
        if any(not 1e-9 <= band.increment < math.inf for band in self.bands):
            raise ValueError("every band's increment must be finite and at least 1e-9 (the grid)")
        step = _increment_nanos(self.bands[0].increment) if len(self.bands) == 1 else None
        object.__setattr__(self, "_single_step_nanos", step)
        object.__setattr__(self, "lowest", self.bands[0].increment)
        decimals = max(_decimals(band.increment) for band in self.bands)
        object.__setattr__(self, "highest", float(10 ** (_FLOAT_DIGITS - _ROOM - decimals)))

    @classmethod
    def single(cls, tick: float) -> PriceIncrements:
        """One increment at every price: IB's ``minTick`` when no market rule is known."""
        return cls((PriceBand(0.0, tick),))

    @classmethod
    def from_bands(cls, bands: tuple[PriceBand, ...], fallback_tick: float) -> PriceIncrements:
        """The bands as IB sent them (sorted here), or ``fallback_tick`` alone when none came.
        A first band starting above 0 is taken to start at 0 (no price below it is valid)."""
        if not bands:
            return cls.single(fallback_tick)
        ordered = sorted(bands, key=lambda band: band.low_edge)
        first = PriceBand(0.0, ordered[0].increment)
        return cls((first, *ordered[1:]))

    def _band_index(self, price: Decimal) -> int:
        index = 0
        for position, band in enumerate(self.bands):
            if _decimal(band.low_edge) <= price:
                index = position
        return index

    def increment_at(self, price: float) -> float:
        """The increment of the band ``price`` is in (the first band's for a NaN)."""
        if len(self.bands) == 1:
            return self.bands[0].increment
        if not math.isfinite(price):
            return self.bands[-1 if price > 0 else 0].increment
        return self.bands[self._band_index(_decimal(price))].increment

    def is_valid(self, price: float) -> bool:
        if not math.isfinite(price):
            return False
        exact = _decimal(price)
        step = _decimal(self.bands[self._band_index(exact)].increment)
        return _EXACT.remainder(exact, step) == 0

    def round(self, price: float, direction: Direction) -> float:
        """The nearest valid price at or below (``down``) or at or above (``up``) ``price``.

        One band is rounded in whole nanos with integers where that is provably the decimal
        rounding: when ``price * 10**9`` lies within 0.01 of an integer n (and the price is
        below 10**6, where the float product errs by less than 0.2), n is the price's decimal
        on the grid, so the integer division and the final float (Python's int / int is
        correctly rounded) give the decimal result bit for bit. The planner prices thousands
        of orders a pass, and the decimal path was its slowest step (benchmarks/README.md).
        A price that is not a finite number comes back as it is: no valid price is near it."""
        step = self._single_step_nanos
        if step is not None and 0 <= price < 1e6:
            scaled = price * _NANOS
            nanos = round(scaled)
            if abs(scaled - nanos) < 0.01:
                steps = nanos // step if direction == "down" else -(-nanos // step)
                return steps * step / _NANOS
        return self.round_exact(price, direction)

    def round_exact(self, price: float, direction: Direction) -> float:
        """``round`` in decimal arithmetic only (what the fast path must equal)."""
        if not math.isfinite(price):
            return price
        exact = _decimal(price)
        index = self._band_index(exact)
        if direction == "down":
            return float(self._down(exact, index))
        return float(self._up(exact, index))

    def _down(self, price: Decimal, index: int) -> Decimal:
        while True:
            band = self.bands[index]
            step = _decimal(band.increment)
            candidate = _on_grid(price, step, ROUND_FLOOR)
            edge = _decimal(band.low_edge)
            if candidate >= edge or index == 0:
                return max(candidate, Decimal(0))
            # The band's lowest grid price is above its edge: the answer is the highest grid
            # price of the band below, strictly under this edge.
            index -= 1
            below = _decimal(self.bands[index].increment)
            price = _EXACT.subtract(_on_grid(edge, below, ROUND_CEILING), below)

    def _up(self, price: Decimal, index: int) -> Decimal:
        while True:
            step = _decimal(self.bands[index].increment)
            candidate = _on_grid(price, step, ROUND_CEILING)
            if index + 1 == len(self.bands):
                return candidate
            next_edge = _decimal(self.bands[index + 1].low_edge)
            if candidate < next_edge:
                return candidate
            # Rounding up left this band: the answer is the first grid price of the next one.
            index += 1
            price = next_edge

    def passive(self, price: float, action: Side) -> float:
        """A limit price on the side that never pays more: BUY rounds down, SELL up."""
        return self.round(price, "down" if action == "BUY" else "up")


def _on_grid(price: Decimal, step: Decimal, rounding: str) -> Decimal:
    """``price`` rounded to a whole number of ``step``s, in ``_EXACT`` throughout (the
    thread's own context would round a large product to 28 digits)."""
    count = _EXACT.divide(price, step).to_integral_value(rounding=rounding, context=_EXACT)
    return _EXACT.multiply(count, step)
