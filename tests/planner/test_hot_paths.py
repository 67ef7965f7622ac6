"""The planner's fast paths give exactly what the plain code gives (benchmarks/README.md,
round three): tick rounding in whole nanos against the decimal rounding, and ``built`` against
the dataclasses' own ``__init__``."""

from __future__ import annotations

from dataclasses import fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradectl.planner.common import built
from tradectl.planner.domain import Intent, OrderSpec
from tradectl.planner.ticks import PriceIncrements

TICKS = (0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 1e-9, 3e-9, 0.3)
prices = st.one_of(
    st.floats(min_value=0, max_value=2e6, allow_nan=False, allow_infinity=False),
    # prices a limit offset makes: a quote in cents times (1 +- bps)
    st.builds(
        lambda cents, bps, sign: cents / 100 * (1 + sign * bps / 10_000),
        st.integers(1, 100_000_000),
        st.integers(0, 500),
        st.sampled_from((1, -1)),
    ),
    st.decimals(min_value=0, max_value=999_999, places=10).map(float),
)


@settings(max_examples=3000)
@given(prices, st.sampled_from(TICKS), st.sampled_from(("down", "up")))
def test_rounding_in_nanos_is_the_decimal_rounding(price: float, tick: float, way: str) -> None:
    increments = PriceIncrements.single(tick)
    assert increments.round(price, way) == increments.round_exact(price, way)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("price", "tick", "way", "expected"),
    [
        (142.49999999999997, 0.5, "up", 142.5),
        (142.49999999999997, 0.5, "down", 142.5),
        (100.1 * 1.001, 0.01, "down", 100.2),
        (100.1 * 1.001, 0.01, "up", 100.21),
        (0.0, 0.01, "up", 0.0),
    ],
)
def test_rounding_examples(price: float, tick: float, way: str, expected: float) -> None:
    assert PriceIncrements.single(tick).round(price, way) == expected  # type: ignore[arg-type]


def test_built_equals_the_dataclass_init() -> None:
    spec_fields = {"symbol": "AAPL", "action": "BUY", "quantity": 5, "order_type": "LMT"}
    spec = built(OrderSpec, **spec_fields, order_ref="tradectl:a:b:c", limit_price=1.5)
    assert spec == OrderSpec(**spec_fields, order_ref="tradectl:a:b:c", limit_price=1.5)  # type: ignore[arg-type]
    assert [item.name for item in fields(OrderSpec) if item.name not in vars(spec)] == []
    intent_fields = {
        "key": "k",
        "action": "place",
        "kind": "allocations",
        "rule": "r",
        "leg": "AAPL.abc123",
        "symbol": "AAPL",
        "purpose": "opening",
        "reason": "why",
    }
    intent = built(Intent, **intent_fields, order=spec)
    assert intent == Intent(**intent_fields, order=spec)  # type: ignore[arg-type]
    assert hash(intent) == hash(Intent(**intent_fields, order=spec))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="do not match"):
        built(Intent, key="k")
    with pytest.raises(TypeError, match="do not match"):
        built(OrderSpec, **spec_fields, order_ref="r", colour="red")
