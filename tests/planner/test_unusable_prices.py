"""Prices the planner cannot use (docs/planning.md, "Prices"): a NaN, infinite, zero or tiny
last price never stops the plan of the other symbols; the symbol it belongs to is left out
with a note, and a working buy that cannot be valued never frees cash for other buys."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.planner.builders import NOW, observed, rule_set, summary, working
from tests.planner.test_gate import gated, intent
from tradectl.planner import plan
from tradectl.planner.domain import ContractFacts, Observed
from tradectl.planner.legs import order_ref
from tradectl.planner.money import _local_change
from tradectl.schemas.models import RuleSet, rule_generation

UNUSABLE = (float("nan"), float("inf"), 0.0, -1.0)


def _core(targets: dict[str, float], **changes: Any) -> RuleSet:
    return rule_set(
        allocations={
            "core": {
                "capital": {"fraction_of_nav": 1.0},
                "cash_buffer": {"amount": 0},
                "targets": targets,
                **changes,
            }
        }
    )


@pytest.mark.parametrize("last", UNUSABLE)
def test_a_working_market_buy_without_a_usable_price_frees_no_cash(last: float) -> None:
    """Cash short of the buys: the manual market buy of AAA cannot be valued, so it is not
    counted as worth 0; nothing new is bought, BBB's sell still goes."""
    account = observed(
        cash=20_000.0,
        prices={"AAA": last, "BBB": 50.0, "CCC": 20.0},
        positions={"BBB": 1_000.0},
        orders=[working(7, "AAA", "BUY", 100, ref=None, order_type="MKT")],
    )
    result = plan(_core({"BBB": 0.1, "CCC": 0.5}), account, NOW)
    assert summary(result.intents) == [("place", "BBB", "SELL", 800, 49.95, None)]
    assert (
        f"allocations: no usable price to value the working buy of AAA (order 7, last price "
        f"{last:g}): its cash is unknown; no allocation buys are placed or changed"
    ) in result.notes


def test_a_working_market_buy_without_a_quote_frees_no_cash() -> None:
    account = observed(
        cash=20_000.0,
        prices={"CCC": 20.0},
        orders=[working(7, "AAA", "BUY", 100, ref=None, order_type="MKT")],
    )
    result = plan(_core({"CCC": 0.5}), account, NOW)
    assert result.intents == ()
    assert any("working buy of AAA (order 7, no quote)" in note for note in result.notes)


@pytest.mark.parametrize("order", [{"type": "limit", "offset_bps": 10}, {"type": "market"}])
def test_a_last_price_below_one_tick_leaves_that_symbol_out(order: dict[str, str]) -> None:
    account = observed(
        prices={"AAA": 0.004, "BBB": 50.0},
        contracts={
            "AAA": ContractFacts("AAA", con_id=1, min_tick=0.01),
            "BBB": ContractFacts("BBB", con_id=2, min_tick=0.01),
        },
    )
    result = plan(_core({"AAA": 0.2, "BBB": 0.2}, order=order), account, NOW)
    assert [(row[1], row[2], row[3]) for row in summary(result.intents)] == [("BBB", "BUY", 400)]
    assert "allocations.core: AAA: last price 0.004 is below one tick (0.01): not planned" in (
        result.notes
    )


def test_a_working_order_of_a_symbol_below_one_tick_is_left_as_it_is() -> None:
    """Inside the band, a kept limit buy would be repriced to 0: it is left alone instead."""
    rules = _core({"AAA": 0.2})
    ref = order_ref("core", rule_generation(rules.allocations["core"]), "AAA.0ff1ce")
    account = observed(
        cash=0.0,
        prices={"AAA": 0.004},
        positions={"AAA": 4_000_000.0},
        orders=[working(7, "AAA", "BUY", 1_000_000, ref=ref, limit=0.01)],
        contracts={"AAA": ContractFacts("AAA", con_id=1, min_tick=0.01)},
    )
    result = plan(rules, account, NOW)
    assert result.intents == ()
    assert "allocations.core: AAA: last price 0.004 is below one tick (0.01): not planned" in (
        result.notes
    )


@pytest.mark.parametrize("price", [float("nan"), float("inf"), 0.0, -3.0])
def test_the_gate_blocks_an_order_it_cannot_value(price: float) -> None:
    assert gated(intent("AAPL", "BUY", 10, price), prices={"AAPL": 100.0}) == [
        f"risk.max_order_value: no usable price to value the order ({price:g})"
    ]


@pytest.mark.parametrize("last", UNUSABLE)
def test_the_gate_blocks_buys_while_a_working_buy_cannot_be_valued(last: float) -> None:
    blocks = gated(
        intent("MSFT", "BUY", 10, 100.0),
        intent("MSFT", "SELL", 5, 100.0, purpose="closing"),
        prices={"AAPL": last, "MSFT": 100.0},
        orders=[working(7, "AAPL", "BUY", 100, ref=None, order_type="MKT")],
        allocations={"core": {"capital": {"fraction_of_nav": 1.0}, "targets": {"MSFT": 0.1}}},
    )
    assert blocks == [
        f"cash: no usable price to value the working buy of AAPL (order 7, last price "
        f"{last:g}): buys blocked",
        None,
    ]


def test_the_gate_values_a_position_with_an_infinite_last_at_the_order_price() -> None:
    assert gated(
        intent("AAPL", "BUY", 10, 100.0),
        prices={"AAPL": float("inf")},
        positions={"AAPL": 10.0},
    ) == [None]


# Prices the property below draws from: usual ones, 0, tiny and huge ones, NaN and inf.
PRICES = st.one_of(
    st.sampled_from((0.0, 0.004, 1e-300, 5e-324, float("nan"), float("inf"), -1.0, 12.0, 1e6)),
    st.floats(min_value=1e-9, max_value=1e7),
)
SYMBOLS = ("AAA", "BBB", "CCC", "DDD")


@st.composite
def accounts(draw: st.DrawFn) -> tuple[RuleSet, Observed]:
    """Allocation targets over a few symbols, a bracket and a scale, with random prices and
    working market and limit buys and sells (manual and of the rule), cash from none to
    plenty."""
    market = draw(st.booleans())
    rules = rule_set(
        risk={
            "max_order_value": draw(st.sampled_from((50, 5_000, 1_000_000))),
            "max_position_fraction": draw(st.sampled_from((0.05, 1.0))),
        },
        allocations={
            "core": {
                "capital": {"fraction_of_nav": 0.9},
                "drift": {"absolute": 0.001},
                "min_trade_value": 0,
                "order": {"type": "market"} if market else {"offset_bps": 5},
                "targets": {symbol: draw(st.sampled_from((0.0, 0.1, 0.3))) for symbol in SYMBOLS},
            }
        },
        # Priced from the quote: a market entry, percent stop and target.
        brackets={
            "dip": {
                "symbol": "EEE",
                "side": "BUY",
                "quantity": 100,
                "entry": draw(st.sampled_from(({"market": True}, {"limit": 12.0}))),
                "stop_loss": {"percent": 5},
                "take_profit": {"percent": 10},
            }
        },
        scales={
            "ladder": {
                "symbol": "FFF",
                "side": "BUY",
                "total_quantity": 300,
                "levels": 3,
                "start_price": 10.0,
                "step": 0.5,
            }
        },
    )
    generation = rule_generation(rules.allocations["core"])
    orders = []
    for index, symbol in enumerate(draw(st.lists(st.sampled_from(SYMBOLS), max_size=5))):
        order_type = draw(st.sampled_from(("MKT", "LMT")))
        orders.append(
            working(
                index + 1,
                symbol,
                draw(st.sampled_from(("BUY", "SELL"))),
                draw(st.sampled_from((1, 100, 10_000))),
                ref=draw(
                    st.sampled_from((None, order_ref("core", generation, f"{symbol}.0ff1ce")))
                ),
                order_type=order_type,
                limit=draw(PRICES) if order_type == "LMT" else None,
            )
        )
    account = observed(
        cash=draw(st.sampled_from((0.0, 10_000.0, 100_000.0))),
        prices={symbol: draw(PRICES) for symbol in (*SYMBOLS, "EEE", "FFF")},
        positions={
            symbol: draw(st.sampled_from((0.0, 100.0, -50.0))) for symbol in (*SYMBOLS, "EEE")
        },
        orders=orders,
        contracts={
            symbol: ContractFacts(
                symbol, con_id=index + 1, min_tick=draw(st.sampled_from((0.01, 0.0001)))
            )
            for index, symbol in enumerate((*SYMBOLS, "EEE", "FFF"))
        },
    )
    return rules, account


@settings(max_examples=300, deadline=None)
@given(accounts())
def test_plan_never_raises_whatever_the_prices(case: tuple[RuleSet, Observed]) -> None:
    rules, account = case
    result = plan(rules, account, NOW)
    for found in result.intents:
        if found.order is not None and found.order.limit_price is not None:
            assert found.order.limit_price > 0


@pytest.mark.parametrize("limit", (float("nan"), float("inf"), -1.0))
def test_the_currency_check_values_a_modified_buy_without_a_usable_limit_as_the_cash_check_does(
    limit: float,
) -> None:
    """A modify of a working buy whose limit cannot be used adds its whole new size to the
    currency's commitment (the old order frees nothing), as the gate's cash check counts it."""
    before = working(7, "AAA", "BUY", 100, ref="tctl:core:gen0000000:AAA.abc123", limit=limit)
    modify = replace(intent("AAA", "BUY", 50, 10.0), action="modify", order_id=7)
    assert _local_change(modify, {7: before}) == 50 * 10.0
