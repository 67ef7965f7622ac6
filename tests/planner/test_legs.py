"""The leg grammar (tradectl.planner.legs): every orderRef tradectl can write reads back as the
same rule, generation, leg and kind, and nothing else reads as tradectl's (hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tradectl.planner.legs import (
    BRACKET_LEGS,
    ORDER_REF_PREFIX,
    PROTECTIVE_LEGS,
    allocation_leg,
    is_entry_leg,
    is_protective_leg,
    kept_generation,
    leg_kind,
    oca_group_name,
    order_ref,
    parse_order_ref,
    scale_leg,
)
from tradectl.schemas.models import RuleKind

# The rule language's own patterns (schemas/models.py): rule names and tickers.
RULE_NAMES = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,39}", fullmatch=True)
TICKERS = st.from_regex(r"[A-Z][A-Z0-9]{0,9}([.][A-Z]{1,2})?", fullmatch=True)
HEX = st.text(alphabet="0123456789abcdef", min_size=6, max_size=10)
# Instrument keys beyond the bare ticker (schemas/models.py, docs/rules.md "Instruments"): other
# listings, contract ids and holdings no rule names. Some hold the orderRef's separator.
INSTRUMENT_KEYS = st.one_of(
    TICKERS,
    st.sampled_from(["BRK B", "SHOP@SMART/TSE:CAD", "DUAL@SMART/NASDAQ:USD", "SHOP~800000101"]),
    st.integers(min_value=1, max_value=10**9).map(lambda con_id: f"conid:{con_id}"),
)
GENERATIONS = st.one_of(HEX, HEX.map(kept_generation))

LEGS: st.SearchStrategy[tuple[RuleKind, str]] = st.one_of(
    st.sampled_from(BRACKET_LEGS).map(lambda leg: ("brackets", leg)),
    st.integers(min_value=1, max_value=500).map(lambda level: ("scales", scale_leg(level))),
    st.builds(allocation_leg, INSTRUMENT_KEYS, HEX).map(lambda leg: ("allocations", leg)),
)


@given(RULE_NAMES, GENERATIONS, LEGS)
def test_every_ref_tradectl_writes_reads_back_as_written(
    rule: str, generation: str, kind_and_leg: tuple[RuleKind, str]
) -> None:
    kind, leg = kind_and_leg
    parsed = parse_order_ref(order_ref(rule, generation, leg))
    assert parsed is not None
    assert (parsed.rule, parsed.generation, parsed.leg) == (rule, generation, leg)
    assert parsed.kind == leg_kind(leg) == kind


@given(LEGS)
def test_entries_and_protective_legs_are_told_apart_by_kind(
    kind_and_leg: tuple[RuleKind, str],
) -> None:
    kind, leg = kind_and_leg
    assert is_entry_leg(leg) == (leg == "entry" or kind == "scales")
    assert is_protective_leg(leg) == (leg in ("stop", "target"))
    assert not (is_entry_leg(leg) and is_protective_leg(leg))


def test_protective_legs_are_the_bracket_s_stop_and_target() -> None:
    assert PROTECTIVE_LEGS == ("stop", "target")
    assert set(PROTECTIVE_LEGS) < set(BRACKET_LEGS)


@given(st.one_of(st.none(), st.text()))
def test_text_without_the_prefix_is_never_tradectl_s(ref: str | None) -> None:
    if ref is None or not ref.startswith(f"{ORDER_REF_PREFIX}:"):
        assert parse_order_ref(ref) is None


@given(st.lists(st.text(alphabet="abc:", max_size=6), max_size=6))
def test_a_ref_needs_exactly_three_non_empty_fields_after_the_prefix(fields: list[str]) -> None:
    ref = ":".join([ORDER_REF_PREFIX, *fields])
    parsed = parse_order_ref(ref)
    well_formed = len(ref.split(":")) == 4 and all(ref.split(":")[1:])
    assert (parsed is not None) == well_formed


def test_foreign_refs_are_not_tradectl_s() -> None:
    for ref in (
        "",
        "manual",
        "TCTL:a:b:entry",
        "tctl:a:b",
        "tctl:a:b:c:d",
        "tctl::b:entry",
        "xtctl:a:b:entry",
        "tctl:a:b:",
    ):
        assert parse_order_ref(ref) is None, ref


@given(st.text())
def test_a_leg_of_unknown_form_has_no_kind(leg: str) -> None:
    known = leg in BRACKET_LEGS or leg.startswith("L") or "." in leg
    if not known:
        assert leg_kind(leg) is None


def test_unknown_leg_forms() -> None:
    for leg in ("L0", "L01", "Lx", "aapl.abc123", "AAPL.xyz", "AAPL", "exit", "STOP"):
        assert leg_kind(leg) is None, leg


@given(HEX)
def test_the_kept_generation_is_marked_once(generation: str) -> None:
    kept = kept_generation(generation)
    assert kept == f"{generation}-kept"
    assert kept_generation(kept) == kept


@given(RULE_NAMES, HEX)
def test_a_bracket_s_oca_group_is_its_ref_without_the_leg(rule: str, generation: str) -> None:
    assert order_ref(rule, generation, "entry") == f"{oca_group_name(rule, generation)}:entry"
