"""The planner's fast paths give exactly what the plain code gives (benchmarks/README.md,
rounds three and four): tick rounding in whole nanos against the decimal rounding, ``built``
and the intents built field by field against the dataclasses' own ``__init__``, the per-pass
rate table and the allocation leg's digest against the general code they replace (the gate's
fast paths: test_gate_fast_paths.py)."""

from __future__ import annotations

from dataclasses import fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.planner.builders import NOW, rule_set
from tests.planner.builders import observed as account_with
from tradectl.planner import plan
from tradectl.planner.allocations import _trade_digest
from tradectl.planner.common import built, place_or_modify, shares, short_hash
from tradectl.planner.domain import ContractFacts, Intent, OrderSpec, WorkingOrder
from tradectl.planner.money import Rates, symbol_rate
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


# Round four (issue #17, a linear planner): the specialised pieces of the allocation and gate
# hot paths against the general code they stand for.

actions = st.sampled_from(("BUY", "SELL"))
quantities = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)


@settings(max_examples=500)
@given(actions, st.integers(0, 10**9), st.integers(0, 10**9), st.one_of(quantities, st.integers()))
def test_the_trade_digest_is_short_hash(
    action: str, quantity: int, desired: int, position: float
) -> None:
    digest = _trade_digest(action, quantity, desired, position)  # type: ignore[arg-type]
    assert digest == short_hash(action, quantity, desired, position)[:6]


@settings(max_examples=300)
@given(st.integers(-(10**12), 10**12))
def test_whole_shares_are_written_as_shares_writes_them(desired: int) -> None:
    assert f"{desired:,}" == shares(desired)


currencies = st.sampled_from(("USD", "EUR", "GBP", "JPY", None))


@settings(max_examples=300)
@given(
    st.lists(st.tuples(currencies, st.sampled_from((0, 1, 100))), min_size=1, max_size=8),
    st.dictionaries(
        st.sampled_from(("EUR", "GBP", "JPY", "USD")),
        st.one_of(st.just(0.0), st.floats(min_value=1e-6, max_value=1e3)),
    ),
    st.sampled_from(("USD", "EUR")),
    st.lists(st.integers(0, 9), max_size=20),
)
def test_the_pass_rate_table_is_symbol_rate(
    listings: list[tuple[str | None, int]],
    rates: dict[str, float],
    base: str,
    asked: list[int],
) -> None:
    contracts = {
        f"S{index}": ContractFacts(
            f"S{index}", con_id=index + 1, currency=currency, price_magnifier=magnifier
        )
        for index, (currency, magnifier) in enumerate(listings)
    }
    account = account_with(contracts=contracts, base_currency=base, exchange_rates=rates)
    table = Rates(account)
    # Unknown symbols (S8, S9 when fewer listings) take the base currency, as symbol_rate does.
    for symbol in [f"S{index}" for index in asked] + sorted(contracts):
        assert table.of(symbol) == symbol_rate(account, symbol)


def test_place_or_modify_builds_what_the_intents_init_builds() -> None:
    spec = OrderSpec("AAPL", "BUY", 5, "LMT", "tctl:r:g:AAPL.abc123", limit_price=1.5)
    working = WorkingOrder(7, "AAPL", "BUY", "LMT", 3, order_ref="tctl:r:g:AAPL.abc123")
    for existing in (None, working):
        intent = place_or_modify(
            spec,
            kind="allocations",
            rule="r",
            leg="AAPL.abc123",
            purpose="opening",
            reason="why",
            estimated_price=1.5,
            current=2.0,
            target=7.0,
            existing=existing,
            fx_rate=0.5,
        )
        expected = Intent(**{item.name: getattr(intent, item.name) for item in fields(Intent)})
        assert intent == expected
        assert vars(intent) == vars(expected)


def test_the_allocation_spec_has_every_field_of_the_order_spec_init() -> None:
    rules = rule_set(allocations={"core": {"capital": {"amount": 10_000}, "targets": {"AAA": 0.5}}})
    result = plan(rules, account_with(prices={"AAA": 10.0}), NOW)
    (intent,) = result.intents
    assert intent.order is not None
    assert vars(intent.order) == vars(OrderSpec(**vars(intent.order)))
