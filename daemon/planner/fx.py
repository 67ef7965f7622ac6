"""Currency pairs as IDEALPRO quotes them (docs/planning.md, "Currencies").

IB names a pair ``BASE.QUOTE`` with the currency that comes first in the market's convention
(EUR before GBP before AUD, NZD, USD, CAD, CHF, JPY): ``EUR.USD``, ``USD.CAD``, ``EUR.CAD``.
Its price is units of the second currency per unit of the first.

Pure: names and arithmetic only.
"""

from __future__ import annotations

from dataclasses import dataclass

# The market's order of precedence for naming a pair; a currency not listed comes after
# these, alphabetically.
_PRECEDENCE = ("EUR", "GBP", "AUD", "NZD", "USD", "CAD", "CHF", "NOK", "SEK", "DKK", "JPY")


def _rank(currency: str) -> tuple[int, str]:
    if currency in _PRECEDENCE:
        return _PRECEDENCE.index(currency), currency
    return len(_PRECEDENCE), currency


@dataclass(frozen=True)
class Pair:
    """An IDEALPRO pair: ``first.second``, priced in ``second`` per ``first``."""

    first: str
    second: str

    @property
    def name(self) -> str:
        return f"{self.first}.{self.second}"


def pair_of(one: str, other: str) -> Pair:
    """The pair two currencies trade as on IDEALPRO."""
    if one == other:
        raise ValueError(f"a pair needs two currencies, got {one} twice")
    first, second = sorted((one, other), key=_rank)
    return Pair(first, second)


def rate_from_pair(pair: Pair, price: float, base: str) -> float:
    """IB's ExchangeRate for the pair's other currency, from the pair's price: the base-currency
    value of one unit of it."""
    if base == pair.first:
        return 1.0 / price
    if base == pair.second:
        return price
    raise ValueError(f"{pair.name} does not trade {base}")


def pair_named(name: str) -> Pair | None:
    """The pair a conversion's symbol names (``EUR.USD``); None for anything else."""
    parts = name.split(".")
    if len(parts) != 2 or not all(
        len(part) == 3 and part.isalpha() and part.isupper() for part in parts
    ):
        return None
    if pair_of(parts[0], parts[1]) != Pair(parts[0], parts[1]):
        return None
    return Pair(parts[0], parts[1])
