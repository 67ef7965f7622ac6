"""``already_this_spec``: the one answer brackets, scales and allocations give to "is the working
order already what the rule wants?" (a wrong yes leaves a stale order working, a wrong no
modifies an order every pass)."""

from __future__ import annotations

from dataclasses import replace

from tests.planner.builders import working
from tradectl.planner.common import already_this_spec
from tradectl.planner.domain import OrderSpec
from tradectl.planner.legs import order_ref

REF = order_ref("dip", "3f09a1c2d4", "L1")
LIMIT = OrderSpec("AAPL", "BUY", 10, "LMT", REF, limit_price=200.0)
STOP = OrderSpec("AAPL", "SELL", 10, "STP", REF, aux_price=190.0)
TRAIL = OrderSpec("AAPL", "SELL", 10, "TRAIL", REF, trailing_percent=5.0)


def test_the_working_order_as_planned_needs_no_modify() -> None:
    assert already_this_spec(working(1, "AAPL", "BUY", 10, ref=REF, limit=200.0), LIMIT)
    assert already_this_spec(
        working(1, "AAPL", "SELL", 10, ref=REF, order_type="STP", aux=190.0), STOP
    )
    assert already_this_spec(
        working(1, "AAPL", "SELL", 10, ref=REF, order_type="TRAIL", trailing=5.0), TRAIL
    )


def test_any_field_ib_can_modify_is_a_difference() -> None:
    order = working(1, "AAPL", "BUY", 10, ref=REF, limit=200.0)
    assert not already_this_spec(order, replace(LIMIT, quantity=11))
    assert not already_this_spec(order, replace(LIMIT, tif="GTC"))
    assert not already_this_spec(order, replace(LIMIT, order_ref=order_ref("dip", "new", "L1")))
    assert not already_this_spec(order, replace(LIMIT, limit_price=200.01))
    assert not already_this_spec(order, replace(LIMIT, order_type="MKT", limit_price=None))
    stop = working(1, "AAPL", "SELL", 10, ref=REF, order_type="STP", aux=190.0)
    assert not already_this_spec(stop, replace(STOP, aux_price=189.5))
    trail = working(1, "AAPL", "SELL", 10, ref=REF, order_type="TRAIL", trailing=5.0)
    assert not already_this_spec(trail, replace(TRAIL, trailing_percent=4.0))


def test_a_limit_may_lag_by_the_tolerance_given() -> None:
    order = working(1, "AAPL", "BUY", 10, ref=REF, limit=199.5)
    assert not already_this_spec(order, LIMIT)
    assert already_this_spec(order, LIMIT, price_tolerance=0.5 + 1e-9)
    assert not already_this_spec(order, LIMIT, price_tolerance=0.49)


def test_float_noise_is_not_a_new_price() -> None:
    order = working(1, "AAPL", "BUY", 10, ref=REF, limit=142.49999999999997)
    assert already_this_spec(order, replace(LIMIT, limit_price=142.5))


def test_a_limit_on_one_side_only_is_a_difference() -> None:
    assert not already_this_spec(working(1, "AAPL", "BUY", 10, ref=REF, limit=None), LIMIT)
    market = replace(LIMIT, order_type="MKT", limit_price=None)
    assert not already_this_spec(
        working(1, "AAPL", "BUY", 10, ref=REF, order_type="MKT", limit=200.0), market
    )


def test_stop_fields_count_only_on_stop_and_trailing_orders() -> None:
    assert already_this_spec(working(1, "AAPL", "BUY", 10, ref=REF, limit=200.0, aux=180.0), LIMIT)
    stop = working(1, "AAPL", "SELL", 10, ref=REF, order_type="STP", aux=190.0, trailing=1.0)
    assert not already_this_spec(stop, STOP)
