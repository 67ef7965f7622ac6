"""Prices the planner cannot use (docs/planning.md, "Prices"): a NaN, infinite, zero or tiny
last price never stops the plan of the other symbols; the symbol it belongs to is left out
with a note, and a working buy that cannot be valued never frees cash for other buys."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.planner.builders import NOW, observed, rule_set, summary, working
from tests.planner.test_gate import gated, intent
from tradectl.planner import plan
from tradectl.planner.common import MAX_ORDER_QUANTITY
from tradectl.planner.domain import ContractFacts, Observed, Plan, Position, WorkingOrder
from tradectl.planner.legs import ENTRY_LEG, STOP_LEG, order_ref
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


# Prices the properties below draw from: usual ones, 0, tiny ones, huge finite ones (whose tick
# grid once needed more digits than the decimal context had), NaN and inf.
HUGE = (1e12, 1e20, 1e300, 1.7976931348623157e308)
PRICES = st.one_of(
    st.sampled_from(
        (0.0, 0.004, 1e-300, 5e-324, float("nan"), float("inf"), -1.0, 12.0, 1e6, *HUGE)
    ),
    st.floats(min_value=1e-9, max_value=1e7),
)
SYMBOLS = ("AAA", "BBB", "CCC", "DDD")
# One bracket of each shape: a market entry with a percent stop, a risk-sized market entry with
# a trailing stop, a limit entry with fixed prices; and a scale.
BRACKETS = ("dip", "trail", "fixed")
STANDING = {"dip": "EEE", "trail": "GGG", "fixed": "HHH", "ladder": "FFF"}
ORDER_TYPES = ("MKT", "LMT", "STP", "STP LMT", "TRAIL")
# The currencies' rates the second family draws from: usual ones, and every kind of unusable.
RATES = (1.16, 0.0067, 1.27, float("nan"), float("inf"), float("-inf"), 0.0, -1.16, 1e300,
         1e-300, 5e-324, 1e7, 1e-7)  # fmt: skip
CURRENCIES = ("EUR", "JPY", "GBP")


def _rules(draw: st.DrawFn, market: bool) -> RuleSet:
    return rule_set(
        risk={
            "max_order_value": draw(st.sampled_from((50, 5_000, 1_000_000, 1e300))),
            "max_position_fraction": draw(st.sampled_from((0.05, 1.0))),
            "max_risk_per_trade_fraction": 1.0,
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
        brackets={
            # Priced from the quote: a market entry, percent stop and target.
            "dip": {
                "symbol": "EEE",
                "side": draw(st.sampled_from(("BUY", "SELL"))),
                "quantity": 100,
                "entry": draw(st.sampled_from(({"market": True}, {"limit": 12.0}))),
                "stop_loss": {"percent": 5},
                "take_profit": {"percent": draw(st.sampled_from((10, 1000)))},
            },
            # Sized by risk from a trailing stop: a tiny price makes the distance tiny.
            "trail": {
                "symbol": "GGG",
                "side": "BUY",
                "quantity": {"risk_fraction": 0.01},
                "entry": {"market": True},
                "stop_loss": {"trailing_percent": draw(st.sampled_from((5, 1e-9)))},
                "take_profit": {"percent": 10},
            },
            "fixed": {
                "symbol": "HHH",
                "side": "BUY",
                "quantity": 100,
                "entry": {"limit": draw(st.sampled_from((12.0, 1e-300, 999_999.0)))},
                "stop_loss": {"price": 1e-300},
                "take_profit": {"price": 999_999.5},
            },
        },
        scales={
            "ladder": {
                "symbol": "FFF",
                "side": draw(st.sampled_from(("BUY", "SELL"))),
                "total_quantity": 300,
                "levels": 3,
                "start_price": draw(st.sampled_from((10.0, 999_999.0, 1e-300))),
                "step": draw(st.sampled_from((0.5, 999_999.0))),
            }
        },
    )


def _working_orders(draw: st.DrawFn, rules: RuleSet) -> list[WorkingOrder]:
    """Working orders of every type on every symbol: manual ones, the allocation's, and the
    standing rules' legs, with prices from ``PRICES`` (a bracket's legs keep usable prices:
    IB holds no stop it would not accept, and a leg's price is copied as it stands)."""
    allocation = rule_generation(rules.allocations["core"])
    orders = []
    symbols = (*SYMBOLS, *STANDING.values())
    for index, symbol in enumerate(draw(st.lists(st.sampled_from(symbols), max_size=6))):
        order_type = draw(st.sampled_from(ORDER_TYPES))
        owners = [None, order_ref("core", allocation, f"{symbol}.0ff1ce")]
        prices = PRICES
        for name, standing in STANDING.items():
            if standing == symbol and name in rules.brackets:
                generation = rule_generation(rules.brackets[name])
                owners += [order_ref(name, generation, leg) for leg in (ENTRY_LEG, STOP_LEG)]
                prices = st.sampled_from((9.0, 12.0, 14.0))
            elif standing == symbol:
                owners.append(order_ref(name, rule_generation(rules.scales[name]), "L1"))
        orders.append(
            working(
                index + 1,
                symbol,
                draw(st.sampled_from(("BUY", "SELL"))),
                draw(st.sampled_from((1, 100, 10_000))),
                ref=draw(st.sampled_from(owners)),
                order_type=order_type,
                limit=draw(prices) if order_type in ("LMT", "STP LMT") else None,
                aux=draw(prices) if order_type in ("STP", "STP LMT") else None,
                trailing=5.0 if order_type == "TRAIL" else None,
            )
        )
    return orders


def _fills(draw: st.DrawFn, rules: RuleSet) -> dict[str, Any]:
    """Some brackets filled, at a price from ``PRICES`` or at an unknown price with IB's
    average cost from them: their protective legs are priced from it."""
    fills: dict[tuple[str, str], float] = {}
    prices: dict[tuple[str, str], float] = {}
    for name in BRACKETS:
        if draw(st.booleans()):
            key = (name, rule_generation(rules.brackets[name]))
            fills[key] = 100.0
            if draw(st.booleans()):
                prices[key] = draw(PRICES)
    return {"entry_fills": fills, "entry_fill_prices": prices}


@st.composite
def accounts(draw: st.DrawFn) -> tuple[RuleSet, Observed]:
    """Allocation targets over a few symbols, brackets of every shape and a scale, with random
    prices, fills and working orders of every type, cash from none to plenty."""
    rules = _rules(draw, market=draw(st.booleans()))
    symbols = (*SYMBOLS, *STANDING.values())
    account = observed(
        # A NAV of 1e300 is a number: every sizing divides it by a price.
        nav=draw(st.sampled_from((100_000.0, 1e300))),
        # None: all of the NAV is cash.
        cash=draw(st.sampled_from((0.0, 10_000.0, 100_000.0, None))),
        prices={symbol: draw(PRICES) for symbol in symbols},
        orders=_working_orders(draw, rules),
        contracts={
            symbol: ContractFacts(
                symbol, con_id=index + 1, min_tick=draw(st.sampled_from((0.01, 0.0001)))
            )
            for index, symbol in enumerate(symbols)
        },
        **_fills(draw, rules),
    )
    positions = {
        symbol: Position(
            symbol,
            draw(st.sampled_from((0.0, 100.0, -50.0))),
            average_cost=draw(PRICES),
        )
        for symbol in symbols
    }
    return rules, replace(account, positions=positions)


@st.composite
def accounts_in_currencies(draw: st.DrawFn) -> tuple[RuleSet, Observed]:
    """``accounts`` with usual prices, every symbol priced in a currency whose rate is drawn
    from ``RATES``, cash in some of them, and either ``account.fx``."""
    rules, account = draw(accounts())
    rules = replace_fx(rules, draw(st.sampled_from(("block", "convert"))))
    rates = {currency: draw(st.sampled_from(RATES)) for currency in CURRENCIES}
    contracts = {
        symbol: replace(facts, currency=draw(st.sampled_from((None, *CURRENCIES))))
        for symbol, facts in account.contracts.items()
    }
    quotes = {
        symbol: replace(quote, last=draw(st.sampled_from((12.0, 50.0, 0.5))))
        for symbol, quote in account.quotes.items()
    }
    balances = {
        currency: draw(st.sampled_from((0.0, 1_000.0, 1e6)))
        for currency in ("USD", *CURRENCIES)
        if draw(st.booleans())
    }
    return rules, replace(
        account,
        contracts=contracts,
        quotes=quotes,
        exchange_rates=rates,
        cash_balances=balances,
        trading_day=NOW.date(),
    )


def replace_fx(rules: RuleSet, fx: str) -> RuleSet:
    return rules.model_copy(update={"account": rules.account.model_copy(update={"fx": fx})})


def assert_sendable(result: Plan, account: Observed) -> None:
    """Every order the gate lets through has prices IB can take (finite, above 0, on the
    contract's grid and written exactly by the float ib_insync sends: 15 significant digits)
    and a whole number of shares above 0 and below IB's limit."""
    for found in result.intents:
        order = found.order
        if order is None or found.blocked_by is not None:
            continue
        facts = account.contracts.get(found.symbol)
        for price in (order.limit_price, order.aux_price):
            if price is None:
                continue
            assert 0 < price < math.inf, found
            assert facts is None or facts.increments.is_valid(price), found
            assert len(Decimal(repr(price)).normalize().as_tuple().digits) <= 15, found
        assert type(order.quantity) is int, found
        assert 0 < order.quantity < MAX_ORDER_QUANTITY, found


HIGHEST_NOTE = "is not below 1e+11, the highest price tradectl plans with a 0.01 tick"
TWO_CENT_TICKS = {
    symbol: ContractFacts(symbol, con_id=index + 1, min_tick=0.01)
    for index, symbol in enumerate(("AAA", "BBB", "EEE"))
}


def _bracket(**changes: Any) -> RuleSet:
    return rule_set(
        brackets={
            "dip": {
                "symbol": "EEE",
                "side": "BUY",
                "quantity": 100,
                "entry": {"market": True},
                "stop_loss": {"percent": 5},
                "take_profit": {"percent": 10},
                **changes,
            }
        }
    )


@pytest.mark.parametrize("last", HUGE)
def test_a_huge_last_price_leaves_that_symbol_out(last: float) -> None:
    """Held AAA would be sold at a limit near its huge price (IB would not take it): it is
    left out, with the note; BBB is bought as usual."""
    account = observed(
        prices={"AAA": last, "BBB": 50.0}, positions={"AAA": 100.0}, contracts=TWO_CENT_TICKS
    )
    result = plan(_core({"AAA": 0.2, "BBB": 0.2}), account, NOW)
    assert [(row[1], row[2], row[3]) for row in summary(result.intents)] == [("BBB", "BUY", 400)]
    assert f"allocations.core: AAA: last price {last:g} {HIGHEST_NOTE}: not planned" in (
        result.notes
    )


def test_an_allocation_whose_capital_buys_ibs_limit_of_shares_is_not_planned() -> None:
    """A NAV of 1e300 is a number; a fifth of it at 50 a share is some 4e297 shares."""
    account = observed(nav=1e300, prices={"AAA": 50.0}, contracts=TWO_CENT_TICKS)
    note = (
        "allocations.core: AAA: at 50 its capital of 1e+300 buys 9,007,199,254,740,992 shares "
        "or more (IB's limit): not planned"
    )
    left_out(_core({"AAA": 0.2}), account, note)


@pytest.mark.parametrize("last", HUGE)
@pytest.mark.parametrize("stop", [{"percent": 5}, {"trailing_percent": 5}])
def test_a_bracket_with_a_market_entry_is_not_priced_from_a_huge_last(
    last: float, stop: dict[str, float]
) -> None:
    account = observed(prices={"EEE": last}, contracts=TWO_CENT_TICKS)
    note = f"brackets.dip: EEE: last price {last:g} {HIGHEST_NOTE}; not planned"
    left_out(_bracket(stop_loss=stop), account, note)


def left_out(rules: RuleSet, account: Observed, note: str) -> None:
    """Nothing is planned, and the notes say why."""
    result = plan(rules, account, NOW)
    assert result.intents == ()
    assert note in result.notes, result.notes


def _filled(
    rules: RuleSet, fill: float, cost: float, orders: tuple[WorkingOrder, ...] = ()
) -> Observed:
    """``rules``' bracket ``dip`` entered 100 EEE at ``fill`` (the journal's price), which IB
    holds at an average cost of ``cost``."""
    key = ("dip", rule_generation(rules.brackets["dip"]))
    account = observed(
        prices={"EEE": 12.0},
        contracts=TWO_CENT_TICKS,
        entry_fills={key: 100.0},
        entry_fill_prices={key: fill},
        orders=orders,
    )
    return replace(account, positions={"EEE": Position("EEE", 100.0, average_cost=cost)})


@pytest.mark.parametrize("fill", [*HUGE, float("nan"), 0.0])
def test_a_filled_bracket_is_protected_from_ibs_average_cost_when_its_fill_price_is_unusable(
    fill: float,
) -> None:
    rules = _bracket()
    result = plan(rules, _filled(rules, fill, 12.0), NOW)
    assert [
        (intent.leg, intent.order.order_type, intent.order.aux_price, intent.order.limit_price)
        for intent in result.intents
        if intent.order is not None and intent.blocked_by is None
    ] == [("stop", "STP", 11.4, None), ("target", "LMT", None, 13.2)]


@pytest.mark.parametrize("cost", [*HUGE, float("inf")])
def test_a_filled_bracket_without_a_usable_price_keeps_its_working_legs(cost: float) -> None:
    """Neither the fill price nor IB's average cost can price a percent stop: the working
    stop stays as it is, with a note, rather than moving to a price IB would not take."""
    rules = _bracket()
    stop = working(8, "EEE", "SELL", 100, ref=order_ref("dip", "gen0000000", "stop"),
                   order_type="STP", aux=9.0, tif="GTC")  # fmt: skip
    result = plan(rules, _filled(rules, cost, cost, (stop,)), NOW)
    assert all(
        intent.order is None or intent.order.aux_price in (None, 9.0) for intent in result.intents
    )
    # The largest float times the 100 shares filled averages to inf.
    assert any(
        "stop: average fill price " in note
        and "tradectl plans with a 0.01 tick, so a percent stop or target cannot be priced" in note
        for note in result.notes
    )


@pytest.mark.parametrize("last", [1e-300, 5e-324, 0.004])
def test_a_bracket_is_not_priced_from_a_last_price_below_one_tick(last: float) -> None:
    account = observed(prices={"EEE": last}, contracts=TWO_CENT_TICKS)
    result = plan(_bracket(quantity={"risk_fraction": 0.01}), account, NOW)
    assert result.intents == ()
    assert (
        f"brackets.dip: EEE: last price {last:g} is below one tick (0.01); not planned"
        in result.notes
    )


def test_a_risk_sized_bracket_at_ibs_limit_of_shares_is_not_planned() -> None:
    """A trailing stop a billionth of a percent away sizes the entry at some 10**14 shares
    per unit of risk: beyond what an order can carry."""
    account = observed(nav=1e9, prices={"EEE": 12.0}, contracts=TWO_CENT_TICKS)
    rules = _bracket(quantity={"risk_fraction": 0.01}, stop_loss={"trailing_percent": 1e-9})
    note = (
        "brackets.dip: risk-sized quantity is 9,007,199,254,740,992 shares or more (IB's "
        "limit); not planned"
    )
    left_out(rules, account, note)


def test_a_sell_brackets_take_profit_of_100_percent_or_more_is_not_planned() -> None:
    account = observed(prices={"EEE": 12.0}, contracts=TWO_CENT_TICKS)
    rules = _bracket(side="SELL", take_profit={"percent": 1000})
    left_out(rules, account, "brackets.dip: target price -108 is not positive; not planned")


def test_a_scale_level_above_the_highest_price_of_its_grid_is_not_planned() -> None:
    """With a 1e-9 tick a float writes exactly only prices below 1e4 (with room above)."""
    rules = rule_set(
        scales={
            "ladder": {
                "symbol": "FFF",
                "side": "SELL",
                "total_quantity": 30,
                "levels": 3,
                "start_price": 9_000.0,
                "step": 1_000.0,
            }
        }
    )
    account = observed(contracts={"FFF": ContractFacts("FFF", con_id=1, min_tick=1e-9)})
    note = (
        "scales.ladder: level price 10000 is not below 10000, the highest price tradectl "
        "plans with a 1e-09 tick; not planned"
    )
    left_out(rules, account, note)


@settings(max_examples=300, deadline=None)
@given(accounts())
def test_plan_never_raises_whatever_the_prices(case: tuple[RuleSet, Observed]) -> None:
    rules, account = case
    plan(rules, account, NOW)


@settings(max_examples=300, deadline=None)
@given(accounts())
def test_no_order_the_gate_lets_through_has_a_price_or_size_ib_cannot_take(
    case: tuple[RuleSet, Observed],
) -> None:
    rules, account = case
    assert_sendable(plan(rules, account, NOW), account)


@settings(max_examples=300, deadline=None)
@given(accounts_in_currencies())
def test_plan_never_raises_whatever_the_exchange_rates(case: tuple[RuleSet, Observed]) -> None:
    """A rate that is not a usable number (NaN, infinite, 0, negative, or outside 1e-6 to
    1e6) is no rate: an order in that currency is held with the no-rate reason (protective
    legs excepted: the gate never holds a stop), and no value turns NaN or infinite."""
    rules, account = case
    result = plan(rules, account, NOW)
    assert_sendable(result, account)
    unrated = {
        currency for currency, rate in account.exchange_rates.items() if not 1e-6 <= rate <= 1e6
    }
    for found in result.intents:
        facts = account.contracts.get(found.symbol)
        if facts is None or facts.currency not in unrated or found.order is None:
            continue
        if found.purpose != "protective":
            assert f"IB reports no exchange rate for {facts.currency}" in (
                found.blocked_by or ""
            ), found
        assert math.isfinite(found.fx_rate) and found.fx_rate > 0


@pytest.mark.parametrize("limit", (float("nan"), float("inf"), -1.0))
def test_the_currency_check_values_a_modified_buy_without_a_usable_limit_as_the_cash_check_does(
    limit: float,
) -> None:
    """A modify of a working buy whose limit cannot be used adds its whole new size to the
    currency's commitment (the old order frees nothing), as the gate's cash check counts it."""
    before = working(7, "AAA", "BUY", 100, ref="tctl:core:gen0000000:AAA.abc123", limit=limit)
    modify = replace(intent("AAA", "BUY", 50, 10.0), action="modify", order_id=7)
    assert _local_change(modify, {7: before}) == 50 * 10.0
