"""Price increments per band (daemon/planner/ticks.py): rounding to the price IB accepts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradectl.planner.ticks import PriceBand, PriceIncrements

# A European equity rule of the shape IB publishes for IBIS and LSE listings: finer increments
# for cheap shares, coarser ones above each edge.
EUROPEAN = PriceIncrements(
    (
        PriceBand(0.0, 0.0001),
        PriceBand(1.0, 0.0005),
        PriceBand(10.0, 0.005),
        PriceBand(50.0, 0.01),
        PriceBand(100.0, 0.05),
    )
)
# An odd rule whose edges are not on the grid of the band below, to exercise the band walk.
ODD = PriceIncrements((PriceBand(0.0, 0.03), PriceBand(1.0, 0.07), PriceBand(2.5, 0.2)))

SETTINGS = settings(max_examples=400, deadline=None)
prices = st.decimals(min_value="0.0001", max_value="500", places=4).map(float)
rules = st.sampled_from([EUROPEAN, ODD, PriceIncrements.single(0.01)])


def on_grid(increments: PriceIncrements, price: float) -> bool:
    return increments.is_valid(price)


def test_a_price_exactly_on_a_band_edge_is_in_the_band_that_starts_there() -> None:
    assert EUROPEAN.increment_at(100.0) == 0.05
    assert EUROPEAN.increment_at(99.99) == 0.01
    assert EUROPEAN.round(100.0, "down") == 100.0
    assert EUROPEAN.round(100.0, "up") == 100.0
    # Just above the edge the coarser increment applies: 100.01 is not a price at IBIS.
    assert not EUROPEAN.is_valid(100.01)
    assert EUROPEAN.round(100.01, "down") == 100.0
    assert EUROPEAN.round(100.01, "up") == 100.05
    # Just below it the finer one does.
    assert EUROPEAN.round(99.995, "down") == 99.99
    assert EUROPEAN.round(99.995, "up") == 100.0


@pytest.mark.parametrize(
    ("price", "buy", "sell"),
    [(0.51234, 0.5123, 0.5124), (5.00037, 5.0, 5.0005), (42.1234, 42.12, 42.125)],
)
def test_limit_prices_never_overpay(price: float, buy: float, sell: float) -> None:
    assert EUROPEAN.passive(price, "BUY") == buy
    assert EUROPEAN.passive(price, "SELL") == sell


def test_rounding_up_out_of_a_band_lands_on_the_next_bands_grid() -> None:
    # 0.99 + a bit rounds up on the 0.03 grid to 1.02, which is in the 0.07 band but not on
    # its grid: the first valid price of that band is 1.05.
    assert ODD.round(0.995, "up") == pytest.approx(1.05)
    # Down from just inside the 0.07 band: its first grid price 1.05 is above 1.01, so the
    # answer is the highest 0.03 step below 1.0.
    assert ODD.round(1.01, "down") == pytest.approx(0.99)


def test_without_a_market_rule_min_tick_applies_everywhere() -> None:
    increments = PriceIncrements.from_bands((), 0.25)
    assert increments.round(10.1, "down") == 10.0
    assert increments.round(10.1, "up") == 10.25


def test_bands_are_sorted_and_the_first_starts_at_zero() -> None:
    increments = PriceIncrements.from_bands((PriceBand(5.0, 0.01), PriceBand(0.5, 0.001)), 0.01)
    assert [band.low_edge for band in increments.bands] == [0.0, 5.0]
    with pytest.raises(ValueError, match="rise from 0"):
        PriceIncrements((PriceBand(1.0, 0.01),))


@SETTINGS
@given(rules, prices)
def test_rounding_gives_a_valid_price_on_the_asked_side(
    increments: PriceIncrements, price: float
) -> None:
    down = increments.round(price, "down")
    up = increments.round(price, "up")
    assert on_grid(increments, down) and on_grid(increments, up)
    assert Decimal(repr(down)) <= Decimal(repr(price)) <= Decimal(repr(up))


@SETTINGS
@given(rules, prices)
def test_rounding_is_idempotent_and_nothing_valid_lies_between(
    increments: PriceIncrements, price: float
) -> None:
    down = increments.round(price, "down")
    up = increments.round(price, "up")
    assert increments.round(down, "down") == down and increments.round(up, "up") == up
    assert increments.round(down, "up") == down and increments.round(up, "down") == up
    if down != up:
        # The next valid price above ``down`` is ``up``: nothing valid was skipped.
        step = increments.increment_at(down) / 10
        assert increments.round(down + step, "up") == up


@SETTINGS
@given(prices)
def test_every_band_edge_rounds_to_itself(price: float) -> None:
    for band in EUROPEAN.bands:
        assert EUROPEAN.round(band.low_edge, "down") == band.low_edge
        assert EUROPEAN.round(band.low_edge, "up") == band.low_edge
    assert EUROPEAN.passive(price, "BUY") <= price <= EUROPEAN.passive(price, "SELL")


# Finite prices far outside any market: the decimal context once had 28 digits, and a price
# around 1e20 raised InvalidOperation out of plan().
EXTREMES = (1e20, 1e300, 1.7976931348623157e308, 1e-300, 5e-324)


@pytest.mark.parametrize("increments", [EUROPEAN, ODD, PriceIncrements.single(0.01)])
@pytest.mark.parametrize("price", EXTREMES)
def test_every_finite_price_rounds_exactly(increments: PriceIncrements, price: float) -> None:
    """From 2**53 up every float is a whole number, so on each of these grids already: it
    rounds to itself. Below half a nano, the price grid's resolution, a price is 0 there (on
    the grid: the planner's own check keeps prices below one tick out, ``unusable_price``)."""
    expected = price if price > 1 else 0.0
    assert increments.round(price, "down") == expected
    assert increments.round(price, "up") == expected
    assert increments.is_valid(price)


@pytest.mark.parametrize("price", [float("nan"), float("inf"), float("-inf")])
def test_a_price_that_is_not_a_number_comes_back_as_it_is(price: float) -> None:
    for increments in (EUROPEAN, PriceIncrements.single(0.01)):
        for way in ("down", "up"):
            rounded = increments.round(price, way)  # type: ignore[arg-type]
            assert rounded == price or (rounded != rounded and price != price)
        assert not increments.is_valid(price)
        assert increments.increment_at(price) in {band.increment for band in increments.bands}


@pytest.mark.parametrize(
    ("increments", "highest"),
    [
        (PriceIncrements.single(0.01), 1e11),
        (PriceIncrements.single(0.25), 1e11),
        (PriceIncrements.single(5.0), 1e13),
        (EUROPEAN, 1e9),
        (ODD, 1e11),
    ],
)
def test_the_highest_price_leaves_every_derived_price_exact_in_a_float(
    increments: PriceIncrements, highest: float
) -> None:
    """Eleven times a price just below ``highest`` (a take profit of 1000 %), rounded to the
    grid, is still written by a float as the decimal it is."""
    assert increments.highest == highest
    below = highest - increments.increment_at(highest)
    for way in ("down", "up"):
        rounded = increments.round(below * 11, way)  # type: ignore[arg-type]
        assert increments.is_valid(rounded)
        assert len(Decimal(repr(rounded)).normalize().as_tuple().digits) <= 15
