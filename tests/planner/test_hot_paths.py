"""The planner's fast paths give exactly what the plain code gives (benchmarks/README.md,
rounds three to six): tick rounding in whole nanos against the decimal rounding, ``built``,
``new_order_spec``, ``new_intent`` and the intents built field by field against the
dataclasses' own ``__init__``, the per-pass rate table and the allocation leg's digest
against the general code they replace (the gate's fast paths: test_gate_fast_paths.py)."""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError, asdict, fields, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.planner.builders import NOW, rule_set, stored_fields
from tests.planner.builders import observed as account_with
from tradectl.planner import plan
from tradectl.planner.allocations import _trade_digest
from tradectl.planner.common import OwnedOrder, built, place_or_modify, shares, short_hash
from tradectl.planner.domain import (
    ContractFacts,
    Intent,
    OrderSpec,
    WorkingOrder,
    new_intent,
    new_order_spec,
)
from tradectl.planner.money import Rates, symbol_rate
from tradectl.planner.ticks import PriceIncrements

WORKING = WorkingOrder(7, "AAPL", "BUY", "LMT", 10, limit_price=1.4, order_ref="tctl:r:g:AAPL.1")
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


def test_the_builders_equal_the_dataclass_init() -> None:
    spec = new_order_spec(
        "AAPL", "BUY", 5, "LMT", "tradectl:a:b:c", "GTC", 1.5, None, None, "p", None, False, True
    )
    expected_spec = OrderSpec(
        symbol="AAPL",
        action="BUY",
        quantity=5,
        order_type="LMT",
        order_ref="tradectl:a:b:c",
        tif="GTC",
        limit_price=1.5,
        parent_ref="p",
        transmit=False,
        outside_rth=True,
    )
    assert (type(spec), spec, hash(spec)) == (OrderSpec, expected_spec, hash(expected_spec))
    intent = new_intent(
        "k", "place", "allocations", "r", "AAPL.1", "AAPL", "opening", "why", spec, None,
        1.5, 2.0, 7.0, "blocked", WORKING, 0.5,
    )  # fmt: skip
    expected = Intent(
        key="k",
        action="place",
        kind="allocations",
        rule="r",
        leg="AAPL.1",
        symbol="AAPL",
        purpose="opening",
        reason="why",
        order=expected_spec,
        estimated_price=1.5,
        current_quantity=2.0,
        target_quantity=7.0,
        blocked_by="blocked",
        replaces=WORKING,
        fx_rate=0.5,
    )
    assert (type(intent), intent, hash(intent)) == (Intent, expected, hash(expected))
    assert repr(intent) == repr(expected)
    for frozen in (spec, intent):
        with pytest.raises(FrozenInstanceError):
            frozen.symbol = "MSFT"  # type: ignore[misc]
        # Copied and pickled (the saved plan, the daemon's threads) as any instance is.
        assert copy.copy(frozen) == copy.deepcopy(frozen) == pickle.loads(pickle.dumps(frozen))
    deferred = new_intent(
        "k", "place", "allocations", "r", "AAPL.1", "AAPL", "opening", (str.upper, ("why",)),
        spec, None, 1.5, 2.0, 7.0, None, None, 0.5,
    )  # fmt: skip
    assert pickle.loads(pickle.dumps(deferred)) == replace(
        expected, reason="WHY", blocked_by=None, replaces=None
    )


def test_built_equals_the_dataclass_init() -> None:
    order = WORKING
    owned = built(OwnedOrder, order=order, rule="r", generation="g", leg="AAPL.1", kind=None)
    assert owned == OwnedOrder(order, "r", "g", "AAPL.1", None)
    with pytest.raises(TypeError, match="do not match"):
        built(OwnedOrder, order=order)
    with pytest.raises(TypeError, match="do not match"):
        built(OwnedOrder, order=order, rule="r", generation="g", leg="l", kind=None, colour=1)


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
        assert stored_fields(intent) == stored_fields(expected)


def test_the_allocation_spec_has_every_field_of_the_order_spec_init() -> None:
    rules = rule_set(allocations={"core": {"capital": {"amount": 10_000}, "targets": {"AAA": 0.5}}})
    result = plan(rules, account_with(prices={"AAA": 10.0}), NOW)
    (intent,) = result.intents
    assert intent.order is not None
    assert stored_fields(intent.order) == stored_fields(OrderSpec(**asdict(intent.order)))
