"""The allocation planner's round-five shapes (benchmarks/README.md, "Round five: linear
planner, allocations") against the plain code they stand for: an intent whose reason is
written when read against one built with the text (and both against the dataclass's
``__init__``), the quote's age compared instead of subtracted against the subtraction, and the
per-listing look-up against the rate table and the increments."""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.planner.builders import NOW, rule_set
from tests.planner.builders import observed as account_with
from tradectl.planner import plan
from tradectl.planner.allocations import _describe, _Listings
from tradectl.planner.common import (
    QUOTE_MAX_AGE,
    Book,
    frozen_instance,
    place_or_modify,
)
from tradectl.planner.domain import (
    DEFERRED_REASON,
    ContractFacts,
    DeferredReason,
    Intent,
    OrderSpec,
    Quote,
    WorkingOrder,
    affixed,
    reason_text,
)
from tradectl.planner.money import Rates
from tradectl.planner.ticks import PriceBand

texts = st.text(max_size=12)
descriptions = st.tuples(
    st.sampled_from(("weight", "shares")),
    st.sampled_from(("0.0010", "0.0500")),
    st.sampled_from((0.0, 0.25, 12.0)),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.integers(0, 10**6),
    st.booleans(),
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.floats(min_value=-2, max_value=2, allow_nan=False),
    st.floats(min_value=0, max_value=1, allow_nan=False),
)
# A reason as the allocations build it: the description, then any suffixes (sliced, limited,
# cash-limited), each added as text or kept deferred.
reasons = st.tuples(descriptions, st.lists(texts, max_size=3))


def _deferred(description: tuple[object, ...], suffixes: list[str]) -> DeferredReason | str:
    reason: DeferredReason | str = (_describe, description)
    for suffix in suffixes:
        reason = affixed(reason, suffix=suffix)
    return reason


def _written(description: tuple[object, ...], suffixes: list[str]) -> str:
    return _describe(*description) + "".join(suffixes)  # type: ignore[arg-type]


SPEC = OrderSpec("AAPL", "BUY", 5, "LMT", "tctl:r:g:AAPL.abc123", limit_price=1.5)
WORKING = WorkingOrder(7, "AAPL", "BUY", "LMT", 3, order_ref="tctl:r:g:AAPL.abc123")


def _intent(reason: str | DeferredReason, existing: WorkingOrder | None) -> Intent:
    return place_or_modify(
        SPEC,
        kind="allocations",
        rule="r",
        leg="AAPL.abc123",
        purpose="opening",
        reason=reason,
        estimated_price=1.5,
        current=2.0,
        target=7.0,
        existing=existing,
        fx_rate=0.5,
    )


@settings(max_examples=300)
@given(reasons, st.sampled_from((None, WORKING)), st.sampled_from((None, "risk.x: too big")))
def test_a_deferred_reason_reads_as_its_text(
    reason: tuple[tuple[object, ...], list[str]],
    existing: WorkingOrder | None,
    blocked_by: str | None,
) -> None:
    description, suffixes = reason
    written = _intent(_written(description, suffixes), existing)

    def deferred() -> Intent:
        intent = _intent(_deferred(description, suffixes), existing)
        if blocked_by is not None:  # as the gate writes its verdict into a drafted intent
            vars(intent)["blocked_by"] = blocked_by
        return intent

    if blocked_by is not None:
        written = replace(written, blocked_by=blocked_by)
    # Every way of reading an intent sees the text, first read or not.
    assert deferred().reason == written.reason
    assert deferred() == written
    assert hash(deferred()) == hash(written)
    assert repr(deferred()) == repr(written)
    assert asdict(deferred()) == asdict(written)
    assert replace(deferred(), key="k") == replace(written, key="k")
    # The gate's copy of a blocked intent (its dict) writes the same text later.
    copied = frozen_instance(Intent, vars(deferred()).copy())
    assert copied.reason == written.reason
    # Once read, the text is kept: it is written once.
    intent = deferred()
    assert intent.reason is intent.reason


def test_an_intent_without_any_reason_has_no_reason_attribute() -> None:
    intent = object.__new__(Intent)
    with pytest.raises(AttributeError, match="reason"):
        intent.reason  # noqa: B018


@given(reasons, texts, texts)
def test_affixed_is_the_text_with_its_affixes(
    reason: tuple[tuple[object, ...], list[str]], prefix: str, suffix: str
) -> None:
    description, suffixes = reason
    text = _written(description, suffixes)
    assert reason_text(affixed(_deferred(description, suffixes), prefix, suffix)) == (
        prefix + text + suffix
    )
    assert affixed(text, prefix, suffix) == prefix + text + suffix


@given(st.sampled_from((None, WORKING)), st.booleans())
def test_place_or_modify_builds_what_the_intents_init_builds(
    existing: WorkingOrder | None, deferred: bool
) -> None:
    reason: str | DeferredReason = (str.upper, ("why",)) if deferred else "WHY"
    intent = _intent(reason, existing)
    expected = Intent(**{item.name: getattr(intent, item.name) for item in fields(Intent)})
    assert intent == expected
    # The same fields in the instance's dict (the reason written there once read), and the
    # deferred reason kept beside them.
    state = vars(intent)
    assert (DEFERRED_REASON in state) == deferred
    assert {name: value for name, value in state.items() if name != DEFERRED_REASON} == vars(
        expected
    )


def test_the_allocation_order_and_intent_are_what_init_builds() -> None:
    rules = rule_set(allocations={"core": {"capital": {"amount": 10_000}, "targets": {"AAA": 0.5}}})
    (intent,) = plan(rules, account_with(prices={"AAA": 10.0}), NOW).intents
    assert intent.order is not None
    assert vars(intent.order) == vars(OrderSpec(**vars(intent.order)))
    assert intent == Intent(**{item.name: getattr(intent, item.name) for item in fields(Intent)})
    assert intent.reason == "weight 0.0000 vs target 0.5000 (band 0.0100); 0 → 500 shares"


def _fresh_price_by_subtraction(book: Book, quote: Quote, now: datetime) -> float | None:
    """``Book.fresh_price`` before round five, for a quote with a usable last price and no
    market hours: the age subtracted."""
    quoted = quote.time if quote.time.tzinfo is not None else quote.time.replace(tzinfo=UTC)
    now_utc = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return None if now_utc - quoted > QUOTE_MAX_AGE else quote.last


zones = st.sampled_from(
    (
        None,
        UTC,
        timezone(timedelta(hours=-5)),
        timezone(timedelta(hours=9, minutes=30)),
        ZoneInfo("America/New_York"),
        ZoneInfo("Europe/London"),
    )
)
# Around the limit, to the microsecond, and across the US and UK clock changes of 2026.
instants = st.sampled_from(
    (
        NOW.replace(tzinfo=None),
        datetime(2026, 3, 8, 7, 5),
        datetime(2026, 11, 1, 6, 10),
        datetime(2026, 3, 29, 1, 10),
    )
)
offsets = st.one_of(
    st.sampled_from((QUOTE_MAX_AGE, QUOTE_MAX_AGE + timedelta(microseconds=1))),
    st.timedeltas(min_value=timedelta(hours=-3), max_value=timedelta(hours=3)),
)


@settings(max_examples=500)
@given(instants, zones, offsets, zones, st.sampled_from((None, {})))
def test_the_quote_age_compared_is_the_age_subtracted(
    instant: datetime,
    now_zone: timezone | ZoneInfo | None,
    age: timedelta,
    quote_zone: timezone | ZoneInfo | None,
    market_hours: dict[str, object] | None,
) -> None:
    now = instant if now_zone is None else instant.replace(tzinfo=UTC).astimezone(now_zone)
    quoted_utc = instant.replace(tzinfo=UTC) - age
    quoted = (
        quoted_utc.replace(tzinfo=None) if quote_zone is None else quoted_utc.astimezone(quote_zone)
    )
    quote = Quote("AAA", 10.0, quoted)
    account = replace(
        account_with(prices={"AAA": 10.0}),
        quotes={"AAA": quote},
        market_hours=market_hours,  # type: ignore[arg-type]
    )
    book = Book(account, now)
    price, why = book.fresh_price("AAA")
    assert price == _fresh_price_by_subtraction(book, quote, now)
    assert (why == "") == (price is not None)


listings = st.tuples(
    st.sampled_from(("USD", "EUR", "GBP", None)),
    st.sampled_from((1, 100)),
    st.sampled_from(((), (PriceBand(0.0, 0.0001), PriceBand(1.0, 0.01)))),
    st.sampled_from((0.01, 0.05, 0.5)),
)


@settings(max_examples=200)
@given(
    st.lists(listings, min_size=1, max_size=8),
    st.dictionaries(st.sampled_from(("EUR", "GBP", "USD")), st.sampled_from((0.0, 0.9, 1.3))),
)
def test_the_listing_lookup_is_the_rate_table_and_the_increments(
    contracts: list[tuple[str | None, int, tuple[PriceBand, ...], float]],
    rates: dict[str, float],
) -> None:
    facts = {
        f"S{index}": ContractFacts(
            f"S{index}",
            con_id=index + 1,
            currency=currency,
            price_magnifier=magnifier,
            price_bands=bands,
            min_tick=tick,
        )
        for index, (currency, magnifier, bands, tick) in enumerate(contracts)
    }
    account = account_with(contracts=facts, exchange_rates=rates)
    book = Book(account, NOW)
    lookup, table = _Listings(book), Rates(account)
    for symbol, contract in facts.items():
        rate, increments = lookup.of(symbol, contract)
        assert rate == table.of(symbol)
        assert increments == contract.increments
