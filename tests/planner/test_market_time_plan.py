"""Market time in the plan: held intents stay in the plan with when they go; quotes are judged
by their last-trade time (docs/planning.md, "Market time")."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.planner.builders import NOW, observed, rule_set
from tests.planner.test_brackets import BASE, NAME, legs_of
from tests.planner.test_market_time import WEEK
from tradectl.planner import plan
from tradectl.planner.common import Book
from tradectl.planner.domain import Observed, Quote
from tradectl.schemas.models import rule_generation

NEW_YORK = ZoneInfo("America/New_York")
SATURDAY = datetime(2026, 11, 28, 12, tzinfo=NEW_YORK)
HOURS = {"AAPL": WEEK, "MSFT": WEEK}


def market_allocation(**order: object) -> dict[str, object]:
    return {
        "core": {
            "capital": {"fraction_of_nav": 0.9},
            "targets": {"AAPL": 0.3, "MSFT": 0.3},
            "min_trade_value": 0,
            "order": {"type": "market", **order},
        }
    }


def account(now: datetime, **kwargs: Any) -> Observed:
    """AAPL at 152 and MSFT at 400, quoted 5 s before ``now``, with WEEK's hours."""
    base = observed(prices={"AAPL": 152.0, "MSFT": 400.0}, market_hours=HOURS, **kwargs)
    return with_quotes(
        base, *(Quote(q.symbol, q.last, now - timedelta(seconds=5)) for q in base.quotes.values())
    )


def with_quotes(state: Observed, *quotes: Quote) -> Observed:
    return replace(state, quotes={quote.symbol: quote for quote in quotes})


def test_saturday_holds_market_allocations_until_mondays_window() -> None:
    result = plan(rule_set(allocations=market_allocation()), account(SATURDAY), SATURDAY)
    assert {intent.symbol for intent in result.intents} == {"AAPL", "MSFT"}
    assert result.actionable == ()
    for intent in result.intents:
        assert intent.blocked_by is not None
        assert intent.blocked_by.startswith("held until Mon 2026-11-30 09:35 America/New_York")


def test_inside_the_window_the_same_allocation_goes() -> None:
    result = plan(rule_set(allocations=market_allocation()), account(NOW), NOW)
    assert len(result.actionable) == 2


def test_a_held_market_bracket_entry_holds_its_children() -> None:
    rules = rule_set(brackets={NAME: {**BASE, "entry": {"market": True}}})
    result = plan(rules, account(SATURDAY), SATURDAY)
    assert [intent.leg for intent in result.intents] == ["entry", "stop", "target"]
    assert all(
        intent.blocked_by and intent.blocked_by.startswith("held until Mon 2026-11-30 09:30")
        for intent in result.intents
    )


def test_protective_orders_of_a_filled_entry_go_on_a_saturday() -> None:
    rules = rule_set(brackets={NAME: BASE})
    generation = rule_generation(rules.brackets[NAME])
    state = account(
        SATURDAY,
        positions={"AAPL": 40},
        entry_fills={(NAME, generation): 40},
        orders=legs_of(generation, filled=40),
    )
    result = plan(rules, state, SATURDAY)
    assert [(i.leg, i.purpose, i.blocked_by) for i in result.intents] == [
        ("stop", "protective", None),
        ("target", "protective", None),
    ]


def test_outside_rth_allocation_sets_outside_rth_and_trades_after_hours() -> None:
    evening = datetime(2026, 11, 25, 18, tzinfo=NEW_YORK)
    rules = rule_set(
        allocations=market_allocation(type="limit", outside_rth=True),
    )
    result = plan(rules, account(evening), evening)
    assert len(result.actionable) == 2
    assert all(intent.order is not None and intent.order.outside_rth for intent in result.intents)


def test_a_quote_is_stale_by_its_last_trade_time_during_the_session() -> None:
    during = datetime(2026, 11, 25, 11, tzinfo=NEW_YORK)
    old = Quote("AAPL", last=152.0, time=during - timedelta(minutes=20))
    state = with_quotes(observed(prices={"AAPL": 152.0}, market_hours=HOURS), old)
    price, why = Book(state, during).fresh_price("AAPL")
    assert price is None and "stale (20 min old" in why
    # On Saturday the last trade is Friday's: no trade is expected, so it is not stale.
    friday_close = Quote("AAPL", last=152.0, time=datetime(2026, 11, 27, 13, tzinfo=NEW_YORK))
    state = with_quotes(state, friday_close)
    assert Book(state, SATURDAY).fresh_price("AAPL") == (152.0, "")


def test_a_halted_symbol_has_no_price() -> None:
    halted = Quote("AAPL", last=152.0, time=NOW, halted=True)
    state = with_quotes(observed(prices={"AAPL": 152.0}), halted)
    price, why = Book(state, NOW).fresh_price("AAPL")
    assert price is None and "halted" in why
