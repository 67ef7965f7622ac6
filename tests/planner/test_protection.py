"""Issue #12 in the pure planner: protection from the broker's truth, orphaned protections,
release, and the order of operations when a removed rule's entry is partly filled."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from tests.planner.builders import NOW, rule_set
from tests.planner.test_brackets import NAME, account, gen, legs_of, rules_with, wire
from tradectl.planner import plan
from tradectl.planner.brackets import reconstructed_entries
from tradectl.planner.common import Book
from tradectl.planner.legs import order_ref


def test_children_working_without_their_entry_prove_the_fill_and_keep_protecting() -> None:
    g = gen(rules_with())
    held = account(positions={"AAPL": 100}, orders=legs_of(g, entry=False))
    assert plan(rules_with(), held, NOW).intents == ()
    assert plan(rule_set(), held, NOW).intents == ()
    [found] = reconstructed_entries(Book(held, NOW))
    assert (found.rule, found.symbol, found.side, found.entered) == (NAME, "AAPL", "BUY", 100)
    remembered = replace(held, entered_floor={NAME: 100.0})
    assert reconstructed_entries(Book(remembered, NOW)) == []


def test_order_graph_proof_is_bounded_by_the_position_on_the_entrys_side() -> None:
    g = gen(rules_with())
    smaller = account(positions={"AAPL": 60}, orders=legs_of(g, entry=False))
    assert wire(plan(rules_with(), smaller, NOW)) == [
        ("modify", "stop", "SELL", "STP", 60, None, 142.5, None, None),
        ("modify", "target", "SELL", "LMT", 60, 165.0, None, None, None),
    ]
    short = account(positions={"AAPL": -50}, orders=legs_of(g, entry=False))
    assert [row[:2] for row in wire(plan(rules_with(), short, NOW))] == [
        ("cancel", "stop"),
        ("cancel", "target"),
    ]


def test_children_of_an_entry_the_journal_saw_end_unfilled_are_not_proof() -> None:
    g = gen(rules_with())
    ended = account(
        positions={"AAPL": 100},
        orders=legs_of(g, entry=False),
        unfilled_entry_refs=frozenset({order_ref(NAME, g, "entry")}),
    )
    assert [row[:2] for row in wire(plan(rules_with(), ended, NOW))] == [
        ("cancel", "stop"),
        ("cancel", "target"),
    ]


@pytest.mark.parametrize(
    ("rule_present", "then"),
    [
        (False, [("cancel", "entry", 1, None)]),
        (True, [("cancel", "stop", 2, None), ("cancel", "target", 3, None)]),
    ],
    ids=["rule-removed", "rule-kept"],
)
def test_a_partly_filled_attached_entry_gets_standalone_legs_placed_first(
    rule_present: bool, then: list[tuple[object, ...]]
) -> None:
    """Standalone stop and target for the 40 filled go out before anything is cancelled. A
    removed rule then cancels its entry (IB takes the attached children with it). A kept rule
    cancels the attached children and lets the entry work on: children held until the parent
    completes would leave the fill without a stop at the exchange (docs/sim.md)."""
    g = gen(rules_with())
    entry, stop, target = legs_of(g, filled=40)
    attached = [entry, replace(stop, parent_id=1), replace(target, parent_id=1)]
    partial = account(positions={"AAPL": 40}, entry_fills={(NAME, g): 40}, orders=attached)

    result = plan(rules_with() if rule_present else rule_set(), partial, NOW)

    assert wire(result) == [
        ("place", "stop", "SELL", "STP", 40, None, 142.5, None, None),
        ("place", "target", "SELL", "LMT", 40, 165.0, None, None, None),
        *then,
    ]
    placed = [intent.order for intent in result.intents if intent.order is not None]
    assert [spec.order_ref for spec in placed] == [
        order_ref(NAME, f"{g}-kept", "stop"),
        order_ref(NAME, f"{g}-kept", "target"),
    ]
    assert all(spec.parent_ref is None and spec.oca_group == f"tctl:{NAME}:{g}" for spec in placed)


def test_standalone_legs_of_a_working_entry_grow_with_its_fills_and_keep_their_refs() -> None:
    g = gen(rules_with())
    entry, stop, target = legs_of(g, filled=70)
    standalone = [
        entry,
        replace(stop, order_ref=order_ref(NAME, f"{g}-kept", "stop"), total_quantity=40),
        replace(target, order_ref=order_ref(NAME, f"{g}-kept", "target"), total_quantity=40),
    ]
    grown = account(positions={"AAPL": 70}, entry_fills={(NAME, g): 70}, orders=standalone)

    result = plan(rules_with(), grown, NOW)

    assert wire(result) == [
        ("modify", "stop", "SELL", "STP", 70, None, 142.5, None, None),
        ("modify", "target", "SELL", "LMT", 70, 165.0, None, None, None),
    ]
    assert [intent.order.order_ref for intent in result.intents if intent.order] == [
        order_ref(NAME, f"{g}-kept", "stop"),
        order_ref(NAME, f"{g}-kept", "target"),
    ]
    settled = [replace(order, total_quantity=70) for order in standalone[1:]]
    assert plan(rules_with(), replace(grown, working_orders=(entry, *settled)), NOW).intents == ()


def test_a_child_whose_cancel_is_pending_beside_its_standalone_copy_is_waited_for() -> None:
    g = gen(rules_with())
    entry, stop, target = legs_of(g, filled=40)
    kept_stop = replace(
        stop, order_id=4, order_ref=order_ref(NAME, f"{g}-kept", "stop"), total_quantity=40
    )
    cancelling = replace(stop, parent_id=1, status="PendingCancel")
    both = account(
        positions={"AAPL": 40},
        entry_fills={(NAME, g): 40},
        orders=[entry, cancelling, kept_stop, target],
    )

    result = plan(rules_with(), both, NOW)

    assert result.intents == ()
    assert any("waiting for the cancel of order 2" in note for note in result.notes)


def test_an_attached_child_left_beside_its_standalone_copy_is_cancelled() -> None:
    """The standalone legs went out but the cancel of the attached children did not (a crash
    between the two): the next pass cancels the attached ones instead of calling it a
    duplicate, and the pass after that finds the standalone legs in place."""
    g = gen(rules_with())
    entry, stop, target = legs_of(g, filled=40)
    attached = [replace(stop, parent_id=1), replace(target, parent_id=1)]
    standalone = [
        replace(
            stop, order_id=4, order_ref=order_ref(NAME, f"{g}-kept", "stop"), total_quantity=40
        ),
        replace(
            target, order_id=5, order_ref=order_ref(NAME, f"{g}-kept", "target"), total_quantity=40
        ),
    ]
    both = account(
        positions={"AAPL": 40},
        entry_fills={(NAME, g): 40},
        orders=[entry, *standalone, *attached],
    )

    assert wire(plan(rules_with(), both, NOW)) == [
        ("cancel", "stop", 2, None),
        ("cancel", "target", 3, None),
    ]
    after = replace(both, working_orders=(entry, *standalone))
    assert plan(rules_with(), after, NOW).intents == ()


def test_a_removed_rule_whose_legs_all_finished_still_protects_what_it_holds() -> None:
    """Removed while its entry worked; the entry then completed (100) and the standalone stop
    (40) filled, its target cancelled by the OCA group: no working leg is left, yet the rule
    holds 60, so they are placed again, priced from today's finished legs."""
    g = gen(rules_with())
    kept = f"{g}-kept"
    _, stop, target = legs_of(g)
    finished = (
        replace(
            stop, order_ref=order_ref(NAME, kept, "stop"), total_quantity=40, filled=40.0,
            status="Filled",
        ),
        replace(
            target, order_ref=order_ref(NAME, kept, "target"), total_quantity=40,
            status="Cancelled",
        ),
    )  # fmt: skip
    holding = account(
        positions={"AAPL": 60},
        entry_fills={(NAME, g): 100},
        exit_fills={(NAME, kept): 40},
        completed_orders=finished,
    )

    result = plan(rule_set(), holding, NOW)

    assert wire(result) == [
        ("place", "stop", "SELL", "STP", 60, None, 142.5, None, None),
        ("place", "target", "SELL", "LMT", 60, 165.0, None, None, None),
    ]


def test_kept_legs_follow_the_held_quantity_on_later_passes() -> None:
    g = gen(rules_with())
    _, stop, target = legs_of(g)
    kept = [
        replace(stop, order_ref=order_ref(NAME, f"{g}-kept", "stop"), total_quantity=40),
        replace(target, order_ref=order_ref(NAME, f"{g}-kept", "target"), total_quantity=40),
    ]
    later = account(positions={"AAPL": 40}, entry_fills={(NAME, g): 40}, orders=kept)
    assert plan(rule_set(), later, NOW).intents == ()
    closed_some = account(
        positions={"AAPL": 25},
        entry_fills={(NAME, g): 40},
        exit_fills={(NAME, f"{g}-kept"): 15},
        orders=kept,
    )
    assert [row[:5] for row in wire(plan(rule_set(), closed_some, NOW))] == [
        ("modify", "stop", "SELL", "STP", 25),
        ("modify", "target", "SELL", "LMT", 25),
    ]


def test_a_released_orphan_has_its_legs_cancelled_and_its_position_left_alone() -> None:
    g = gen(rules_with())
    released = account(
        positions={"AAPL": 100},
        entry_fills={(NAME, g): 100},
        released=frozenset({NAME}),
        orders=legs_of(g, entry=False),
    )
    result = plan(rule_set(), released, NOW)
    assert [row[:2] for row in wire(result)] == [("cancel", "stop"), ("cancel", "target")]
    assert all("tradectl release" in intent.reason for intent in result.intents)
    assert all(intent.order is None for intent in result.intents)
    # The rule's filled entry still counts: re-adding it does not enter it again.
    assert plan(rules_with(), replace(released, working_orders=()), NOW).intents == ()


TODAY = date(2026, 11, 25)


def test_an_expired_day_entry_is_not_placed_again_unless_reenter_daily() -> None:
    rules = rules_with(tif="DAY")
    g = gen(rules)
    yesterday = account(entries_expired={(NAME, g): TODAY - timedelta(days=1)}, trading_day=TODAY)
    never = plan(rules, yesterday, NOW)
    assert never.intents == ()
    assert any("expired unfilled on 2026-11-24; reenter: never" in note for note in never.notes)

    daily = rules_with(tif="DAY", reenter="daily")
    assert gen(daily) == g, "reenter is not part of the generation: no modify for it"
    assert [row[:2] for row in wire(plan(daily, yesterday, NOW))] == [
        ("place", "entry"),
        ("place", "stop"),
        ("place", "target"),
    ]
    today = replace(yesterday, entries_expired={(NAME, g): TODAY})
    assert plan(daily, today, NOW).intents == ()
    # An edited rule is a new setup: its new generation is placed.
    edited = rules_with(tif="DAY", entry={"limit": 149.0})
    assert wire(plan(edited, yesterday, NOW))[0][:2] == ("place", "entry")


def test_a_filled_and_closed_bracket_reenters_only_when_daily_once_per_day() -> None:
    g = gen(rules_with())
    closed = account(
        entry_fills={(NAME, g): 100},
        exit_fills={(NAME, g): 100},
        entries_filled={(NAME, g): TODAY - timedelta(days=1)},
        trading_day=TODAY,
    )
    never = plan(rules_with(), closed, NOW)
    assert never.intents == ()
    assert any("filled and closed; reenter: never" in note for note in never.notes)
    again = plan(rules_with(reenter="daily"), closed, NOW)
    assert [row[:2] for row in wire(again)] == [
        ("place", "entry"),
        ("place", "stop"),
        ("place", "target"),
    ]
    same_day = replace(closed, entries_filled={(NAME, g): TODAY})
    assert plan(rules_with(reenter="daily"), same_day, NOW).intents == ()
    # Its new entry, working and unfilled, is managed like a first entry (not "closed").
    entry, stop, target = legs_of(g)
    working_again = replace(closed, working_orders=(entry, stop, target))
    assert plan(rules_with(reenter="daily"), working_again, NOW).intents == ()
