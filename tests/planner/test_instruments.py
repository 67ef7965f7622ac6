"""Resolving a rule's instrument against IB's contract details: one contract or a named error."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tradectl.planner.instruments import (
    ContractCandidate,
    ResolvedInstrument,
    UnresolvedInstrument,
    resolve,
)
from tradectl.schemas.models import parse_instrument

SHOP_US = ContractCandidate(
    con_id=195014116,
    symbol="SHOP",
    sec_type="STK",
    exchange="SMART",
    primary_exchange="NYSE",
    currency="USD",
    valid_exchanges=("SMART", "NYSE", "ARCA"),
    market_rule_ids=(26, 26, 26),
)
SHOP_CA = ContractCandidate(
    con_id=195014117,
    symbol="SHOP",
    sec_type="STK",
    exchange="SMART",
    primary_exchange="TSE",
    currency="CAD",
    min_tick=0.01,
    valid_exchanges=("SMART", "TSE"),
    market_rule_ids=(26, 1187),
)
DUAL_NASDAQ = ContractCandidate(900001, "DUAL", "STK", "SMART", "NASDAQ", "USD")
DUAL_NYSE = ContractCandidate(900002, "DUAL", "STK", "SMART", "NYSE", "USD")


def test_the_shorthand_names_the_us_listing_only() -> None:
    resolved = resolve(parse_instrument("SHOP"), [SHOP_US, SHOP_CA])

    assert isinstance(resolved, ResolvedInstrument)
    assert (resolved.con_id, resolved.exchange, resolved.currency) == (195014116, "SMART", "USD")
    assert resolved.market_rule_id == 26


def test_the_full_form_names_the_canadian_listing() -> None:
    resolved = resolve(parse_instrument("SHOP@SMART/TSE:CAD"), [SHOP_US, SHOP_CA])

    assert isinstance(resolved, ResolvedInstrument)
    assert (resolved.con_id, resolved.primary_exchange, resolved.currency) == (
        195014117,
        "TSE",
        "CAD",
    )


def test_a_direct_exchange_routes_there() -> None:
    resolved = resolve(parse_instrument("SHOP@TSE:CAD"), [SHOP_CA])

    assert isinstance(resolved, ResolvedInstrument)
    assert (resolved.exchange, resolved.market_rule_id) == ("TSE", 1187)


def test_two_matching_contracts_are_an_error_naming_both_never_the_first() -> None:
    unresolved = resolve(parse_instrument("DUAL"), [DUAL_NYSE, DUAL_NASDAQ])

    assert isinstance(unresolved, UnresolvedInstrument)
    assert unresolved.problem.startswith("ambiguous: 2 contracts match DUAL on SMART in USD")
    assert [c.con_id for c in unresolved.candidates] == [900001, 900002]
    assert "conId 900001 DUAL on NASDAQ in USD" in unresolved.describe()
    assert "conId 900002 DUAL on NYSE in USD" in unresolved.describe()


def test_the_primary_exchange_settles_an_ambiguity() -> None:
    resolved = resolve(parse_instrument("DUAL@SMART/NYSE:USD"), [DUAL_NYSE, DUAL_NASDAQ])

    assert isinstance(resolved, ResolvedInstrument)
    assert resolved.con_id == 900002


def test_an_unknown_listing_names_what_ib_lists_instead() -> None:
    unresolved = resolve(parse_instrument("SHOP@LSE:GBP"), [SHOP_US, SHOP_CA])

    assert isinstance(unresolved, UnresolvedInstrument)
    assert unresolved.problem.startswith("IB has no stock SHOP on LSE in GBP")
    assert {c.con_id for c in unresolved.candidates} == {195014116, 195014117}


def test_nothing_at_all_is_an_error_without_candidates() -> None:
    unresolved = resolve(parse_instrument("BRK B"), [])

    assert isinstance(unresolved, UnresolvedInstrument)
    assert unresolved.describe() == "BRK B: IB has no stock BRK B on SMART in USD"


def test_a_con_id_names_its_contract_and_routes_smart() -> None:
    resolved = resolve(parse_instrument("conid:195014117"), [SHOP_CA])

    assert isinstance(resolved, ResolvedInstrument)
    assert (resolved.symbol, resolved.exchange, resolved.currency) == ("SHOP", "SMART", "CAD")


listings = st.builds(
    ContractCandidate,
    con_id=st.integers(1, 50),
    symbol=st.sampled_from(["SHOP", "DUAL"]),
    sec_type=st.sampled_from(["STK", "OPT"]),
    exchange=st.sampled_from(["SMART", "TSE", "NYSE"]),
    primary_exchange=st.sampled_from(["TSE", "NYSE", "NASDAQ"]),
    currency=st.sampled_from(["USD", "CAD"]),
)
keys = st.sampled_from(["SHOP", "DUAL", "SHOP@SMART/TSE:CAD", "DUAL@NYSE:USD", "conid:7"])


@given(keys, st.lists(listings, max_size=8))
def test_resolution_is_one_matching_contract_or_an_error(
    key: str, answers: list[ContractCandidate]
) -> None:
    outcome = resolve(parse_instrument(key), answers)

    if isinstance(outcome, ResolvedInstrument):
        matching = {a.con_id for a in answers if resolve(parse_instrument(key), [a]) == outcome}
        assert matching == {outcome.con_id}
        assert all(
            isinstance(resolve(parse_instrument(key), [a]), UnresolvedInstrument)
            for a in answers
            if a.con_id != outcome.con_id
        )
    else:
        assert outcome.key == key
        assert len({c.con_id for c in outcome.candidates}) == len(outcome.candidates)
