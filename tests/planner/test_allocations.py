"""Allocation rules, docs/planning.md: hand-computed plans for a 100,000 account.

Capital 0.95 x 100,000 = 95,000. Targets AAPL 0.30, MSFT 0.30, GOOGL 0.40 at 190 / 400 / 150:
desired AAPL floor(28,500 / 190) = 150, MSFT floor(28,500 / 400) = 71, GOOGL floor(38,000 / 150)
= 253. Limit buys 10 bps through the last, rounded down to the tick: 190.19, 400.40, 150.15;
limit sells rounded up: MSFT 399.60, GOOGL 149.85.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from tests.planner.builders import NOW, observed, rule_set, summary, working
from tests.planner.simulator import apply
from tradectl.planner import plan
from tradectl.planner.domain import ContractFacts
from tradectl.planner.legs import order_ref
from tradectl.schemas.models import rule_generation

PRICES = {"AAPL": 190.0, "MSFT": 400.0, "GOOGL": 150.0}
CORE: dict[str, Any] = {
    "capital": {"fraction_of_nav": 0.95},
    "targets": {"AAPL": 0.30, "MSFT": 0.30, "GOOGL": 0.40},
}


def core_rules(risk: dict[str, Any] | None = None, **changes: Any) -> Any:
    return rule_set(
        allocations={"core": {**CORE, **changes}},
        risk={"max_order_value": 50_000, **(risk or {})},
    )


def generation(rules: Any) -> str:
    return rule_generation(rules.allocations["core"])


def drawn_rules(
    *,
    cash_buffer: float,
    order: dict[str, Any],
    targets: dict[str, float],
    max_order_value: float,
) -> Any:
    """The allocation of examples test_properties.py found: all of NAV, band 1/32, no minimum
    trade, a position limit of 25 %."""
    return rule_set(
        allocations={
            "core": {
                "capital": {"fraction_of_nav": 1.0},
                "drift": {"absolute": 0.03125},
                "min_trade_value": 0,
                "cash_buffer": {"amount": cash_buffer},
                "order": order,
                "targets": targets,
            }
        },
        risk={"max_order_value": max_order_value, "max_position_fraction": 0.25},
    )


def test_empty_account_buys_every_target_at_its_rounded_limit() -> None:
    result = plan(core_rules(), observed(prices=PRICES), NOW)
    assert summary(result.intents) == [
        ("place", "AAPL", "BUY", 150, 190.19, None),
        ("place", "GOOGL", "BUY", 253, 150.15, None),
        ("place", "MSFT", "BUY", 71, 400.40, None),
    ]
    for intent in result.intents:
        assert intent.purpose == "opening"
        assert intent.order is not None and intent.order.order_type == "LMT"
        assert intent.key == intent.order.order_ref
        assert intent.order.order_ref.startswith(f"tctl:core:{generation(core_rules())}:")
        assert intent.leg.startswith(f"{intent.symbol}.")


def test_sells_come_first_and_buys_share_cash_proportionally_without_sale_proceeds() -> None:
    # 200 MSFT (80,000) + 20,000 cash. Sell 129 MSFT. Buys want 28,528.50 + 37,987.95 = 66,516.45
    # but only 20,000 is cash: factor 0.3007 -> AAPL 45, GOOGL 76 (19,969.95 in all).
    rules = core_rules(risk={"max_order_value": 60_000})
    result = plan(rules, observed(prices=PRICES, cash=20_000, positions={"MSFT": 200}), NOW)
    assert summary(result.intents) == [
        ("place", "MSFT", "SELL", 129, 399.60, None),
        ("place", "AAPL", "BUY", 45, 190.19, None),
        ("place", "GOOGL", "BUY", 76, 150.15, None),
    ]
    assert result.intents[0].purpose == "closing"
    assert "cash-limited: 45 of 150 shares" in result.intents[1].reason
    assert any("buys limited by cash" in note for note in result.notes)


def test_cash_buffer_and_working_buys_of_other_rules_reduce_the_cash_for_buys() -> None:
    # Cash 40,000 - buffer 10,000 - a working bracket entry of 100 x 100 = 20,000 available.
    # The entry's rule is gone, so it is cancelled, but its cash counts until IB confirms.
    rules = rule_set(
        allocations={
            "core": {**CORE, "targets": {"AAPL": 0.30}, "cash_buffer": {"amount": 10_000}}
        },
        risk={"max_order_value": 50_000},
    )
    entry = working(7, "SPY", "BUY", 100, ref="tctl:spy-dip:abc:entry", limit=100.0)
    result = plan(rules, observed(prices=PRICES, cash=40_000, orders=[entry]), NOW)
    # 20,000 / 28,528.50 -> 0.701 x 150 = 105.1 -> 105 shares.
    assert summary(result.intents) == [
        ("cancel", "SPY", None, None, None, None),
        ("place", "AAPL", "BUY", 105, 190.19, None),
    ]


def test_orders_are_sliced_to_max_order_value_and_say_so() -> None:
    result = plan(core_rules(risk={"max_order_value": 25_000}), observed(prices=PRICES), NOW)
    aapl = next(intent for intent in result.intents if intent.symbol == "AAPL")
    # floor(25,000 / 190.19) = 131
    assert summary([aapl]) == [("place", "AAPL", "BUY", 131, 190.19, None)]
    assert "sliced: 131 of 150 shares, risk.max_order_value" in aapl.reason
    assert not result.blocked


def test_inside_the_drift_band_nothing_is_done() -> None:
    # AAPL 146 x 190 / 95,000 = 0.292: 0.008 from target, inside the 0.01 band.
    only_aapl = core_rules(targets={"AAPL": 0.30})
    result = plan(only_aapl, observed(prices=PRICES, positions={"AAPL": 146}), NOW)
    assert result.intents == ()


def test_outside_the_band_but_below_min_trade_value_nothing_is_done() -> None:
    # 149 shares: 0.298, outside a 0.001 band; the gap is one share, 190 < 200.
    rules = core_rules(targets={"AAPL": 0.30}, drift={"absolute": 0.001}, min_trade_value=200)
    assert plan(rules, observed(prices=PRICES, positions={"AAPL": 149}), NOW).intents == ()
    rules = core_rules(targets={"AAPL": 0.30}, drift={"absolute": 0.001}, min_trade_value=100)
    result = plan(rules, observed(prices=PRICES, positions={"AAPL": 149}), NOW)
    assert summary(result.intents) == [("place", "AAPL", "BUY", 1, 190.19, None)]


def test_weight_zero_sells_everything_and_untargeted_holdings_are_left_alone() -> None:
    rules = core_rules(targets={"GOOGL": 0.0})
    account = observed(prices={**PRICES, "TSLA": 250.0}, positions={"GOOGL": 7, "TSLA": 50})
    result = plan(rules, account, NOW)
    assert summary(result.intents) == [("place", "GOOGL", "SELL", 7, 149.85, None)]
    assert result.intents[0].purpose == "closing"


def test_lot_rounding_rounds_desired_shares_down_to_the_lot() -> None:
    contracts = {"AAPL": ContractFacts("AAPL", con_id=1, min_tick=0.05, lot_size=100)}
    rules = core_rules(targets={"AAPL": 0.30})
    result = plan(rules, observed(prices={"AAPL": 47.0}, contracts=contracts), NOW)
    # 28,500 / 47 = 606.4 -> 600; limit 47 x 1.001 = 47.047 -> 47.00 on a 0.05 tick.
    assert summary(result.intents) == [("place", "AAPL", "BUY", 600, 47.0, None)]


def test_market_orders_carry_no_price() -> None:
    rules = core_rules(targets={"AAPL": 0.30}, order={"type": "market"})
    result = plan(rules, observed(prices=PRICES), NOW)
    assert summary(result.intents) == [("place", "AAPL", "BUY", 150, None, None)]
    assert result.intents[0].order is not None
    assert result.intents[0].order.order_type == "MKT"
    assert result.intents[0].estimated_price == 190.0


def test_working_order_of_the_current_generation_counts_toward_the_position() -> None:
    rules = core_rules(targets={"AAPL": 0.30})
    ref = order_ref("core", generation(rules), "AAPL.abc123")
    order = working(5, "AAPL", "BUY", 50, ref=ref, limit=190.19)
    result = plan(rules, observed(prices=PRICES, positions={"AAPL": 100}, orders=[order]), NOW)
    assert result.intents == ()


def test_working_order_with_wrong_quantity_is_modified_in_place() -> None:
    rules = core_rules(targets={"AAPL": 0.30})
    ref = order_ref("core", generation(rules), "AAPL.abc123")
    order = working(5, "AAPL", "BUY", 20, ref=ref, limit=190.19)
    result = plan(rules, observed(prices=PRICES, positions={"AAPL": 100}, orders=[order]), NOW)
    assert summary(result.intents) == [("modify", "AAPL", "BUY", 50, 190.19, None)]
    intent = result.intents[0]
    assert intent.order_id == 5
    assert intent.order is not None and intent.order.order_ref == ref
    assert intent.key.startswith(f"{ref}#mod:")


def test_partly_filled_working_order_is_modified_to_filled_plus_remaining() -> None:
    rules = core_rules(targets={"AAPL": 0.30})
    ref = order_ref("core", generation(rules), "AAPL.abc123")
    order = working(5, "AAPL", "BUY", 30, filled=10, ref=ref, limit=190.19)
    # Position 110 (10 filled); 40 more wanted: the order's total becomes 10 + 40.
    result = plan(rules, observed(prices=PRICES, positions={"AAPL": 110}, orders=[order]), NOW)
    assert summary(result.intents) == [("modify", "AAPL", "BUY", 50, 190.19, None)]


def test_lagging_limit_is_repriced_but_a_small_lag_is_not() -> None:
    rules = core_rules(targets={"AAPL": 0.30})
    ref = order_ref("core", generation(rules), "AAPL.abc123")
    near = working(5, "AAPL", "BUY", 50, ref=ref, limit=190.05)  # 0.14 off, tolerance 0.19
    account = observed(prices=PRICES, positions={"AAPL": 100}, orders=[near])
    assert plan(rules, account, NOW).intents == ()
    far = working(5, "AAPL", "BUY", 50, ref=ref, limit=185.00)
    account = observed(prices=PRICES, positions={"AAPL": 100}, orders=[far])
    assert summary(plan(rules, account, NOW).intents) == [
        ("modify", "AAPL", "BUY", 50, 190.19, None)
    ]


def test_order_of_an_earlier_generation_is_modified_to_the_new_ref() -> None:
    rules = core_rules(targets={"AAPL": 0.30})
    old_ref = order_ref("core", "0ldgen0000", "AAPL.abc123")
    order = working(5, "AAPL", "BUY", 50, ref=old_ref, limit=190.19)
    result = plan(rules, observed(prices=PRICES, positions={"AAPL": 100}, orders=[order]), NOW)
    assert summary(result.intents) == [("modify", "AAPL", "BUY", 50, 190.19, None)]
    intent = result.intents[0]
    assert intent.order is not None
    assert intent.order.order_ref.startswith(f"tctl:core:{generation(rules)}:AAPL.")
    assert intent.key.startswith(f"{old_ref}#mod:")


def test_order_of_an_earlier_generation_no_longer_needed_is_cancelled() -> None:
    rules = core_rules(targets={"AAPL": 0.30})
    old_ref = order_ref("core", "0ldgen0000", "AAPL.abc123")
    order = working(5, "AAPL", "BUY", 50, ref=old_ref, limit=190.19)
    result = plan(rules, observed(prices=PRICES, positions={"AAPL": 150}, orders=[order]), NOW)
    assert summary(result.intents) == [("cancel", "AAPL", None, None, None, None)]
    assert result.intents[0].key == f"{old_ref}#cancel"


def test_wrong_side_order_is_cancelled_and_replacement_waits_for_the_next_pass() -> None:
    rules = core_rules(targets={"AAPL": 0.30})
    ref = order_ref("core", generation(rules), "AAPL.abc123")
    order = working(5, "AAPL", "SELL", 10, ref=ref, limit=200.0)
    result = plan(rules, observed(prices=PRICES, orders=[order]), NOW)
    assert summary(result.intents) == [("cancel", "AAPL", None, None, None, None)]
    assert any("next pass" in note for note in result.notes)


def test_orders_of_a_removed_rule_or_target_are_cancelled() -> None:
    rules = core_rules(targets={"AAPL": 0.30})
    gen = generation(rules)
    gone_rule = working(5, "MSFT", "BUY", 3, ref="tctl:growth:abc:MSFT.abc123", limit=400.0)
    gone_target = working(6, "GOOGL", "BUY", 3, ref=order_ref("core", gen, "GOOGL.abc123"))
    account = observed(prices=PRICES, positions={"AAPL": 150}, orders=[gone_rule, gone_target])
    result = plan(rules, account, NOW)
    assert sorted((intent.action, intent.order_id) for intent in result.intents) == [
        ("cancel", 5),
        ("cancel", 6),
    ]


def test_stale_or_missing_quote_or_contract_means_no_intents_and_a_note() -> None:
    rules = core_rules(targets={"AAPL": 0.5, "MSFT": 0.45})
    stale = observed(prices=PRICES, quote_age=timedelta(minutes=16))
    result = plan(rules, stale, NOW)
    assert result.intents == ()
    assert any("AAPL: quote is stale (16 min old" in note for note in result.notes)

    no_facts = observed(prices=PRICES, contracts={})
    result = plan(rules, no_facts, NOW)
    assert result.intents == ()
    assert any("no contract details" in note for note in result.notes)

    no_quote = observed(prices={"AAPL": 190.0})
    result = plan(rules, no_quote, NOW)
    assert [intent.symbol for intent in result.intents] == ["AAPL"]
    assert any("MSFT: no quote" in note for note in result.notes)


def test_with_a_rebalance_schedule_allocations_act_only_when_due() -> None:
    rules = rule_set(
        allocations={"core": CORE},
        risk={"max_order_value": 50_000},
        schedule={"rebalance": {"cron": "45 15 * * mon-fri", "timezone": "America/New_York"}},
    )
    not_due = plan(rules, observed(prices=PRICES, allocations_due=False), NOW)
    assert not_due.intents == ()
    assert any("not due" in note for note in not_due.notes)
    due = plan(rules, observed(prices=PRICES, allocations_due=True), NOW)
    assert len(due.intents) == 3


def test_manual_orders_are_reported_and_never_touched() -> None:
    rules = core_rules(targets={"AAPL": 0.30})
    manual = working(9, "AAPL", "BUY", 50, ref=None, limit=180.0)
    result = plan(rules, observed(prices=PRICES, orders=[manual]), NOW)
    assert result.manual_orders == (manual,)
    assert all(intent.order_id != 9 for intent in result.intents)
    # The manual buy's 9,000 is committed cash, but 100,000 is plenty: AAPL is still bought.
    assert summary(result.intents) == [("place", "AAPL", "BUY", 150, 190.19, None)]


def test_pending_cancel_order_holds_the_symbol_until_confirmed() -> None:
    rules = core_rules(targets={"AAPL": 0.30})
    ref = order_ref("core", "0ldgen0000", "AAPL.abc123")
    order = working(5, "AAPL", "BUY", 50, ref=ref, limit=190.19, status="PendingCancel")
    result = plan(rules, observed(prices=PRICES, orders=[order]), NOW)
    assert result.intents == ()
    assert any("waiting for the cancel of order 5" in note for note in result.notes)


def test_in_flight_intent_is_not_planned_again() -> None:
    rules = core_rules(targets={"AAPL": 0.30})
    first = plan(rules, observed(prices=PRICES), NOW)
    key = first.intents[0].key
    again = plan(rules, observed(prices=PRICES, in_flight=frozenset({key})), NOW)
    assert again.intents == ()
    assert any("waiting for the broker" in note for note in again.notes)


def test_same_inputs_give_the_same_plan_and_a_new_state_gives_a_new_key() -> None:
    rules = core_rules()
    assert plan(rules, observed(prices=PRICES), NOW) == plan(rules, observed(prices=PRICES), NOW)
    first = plan(rules, observed(prices=PRICES), NOW).intents[0]
    later = plan(rules, observed(prices=PRICES, positions={"AAPL": 20}), NOW).intents[0]
    assert first.symbol == later.symbol == "AAPL"
    assert first.key != later.key


def test_a_buy_being_cancelled_still_holds_its_cash_until_ib_confirms() -> None:
    # AAPL's old-generation buy of 100 x 190 is cancelled (AAPL is in band without it)
    # but may still fill: only 40,000 - 19,000 = 21,000 is left for MSFT (52 x 400.40).
    rules = core_rules(targets={"AAPL": 0.30, "MSFT": 0.30})
    old = working(5, "AAPL", "BUY", 100, ref=order_ref("core", "0ldgen0000", "AAPL.abc123"),
                  limit=190.0)  # fmt: skip
    account = observed(prices=PRICES, cash=40_000, positions={"AAPL": 150}, orders=[old])
    result = plan(rules, account, NOW)
    assert summary(result.intents) == [
        ("cancel", "AAPL", None, None, None, None),
        ("place", "MSFT", "BUY", 52, 400.40, None),
    ]


def test_targets_inside_their_own_drift_band_are_reported() -> None:
    rules = core_rules(targets={"AAPL": 0.005, "MSFT": 0.5})
    result = plan(rules, observed(prices=PRICES), NOW)
    assert any("1 target(s) (AAPL) weigh no more than the drift band" in n for n in result.notes)


def test_capital_above_nav_is_capped_at_the_position_limit_not_blocked() -> None:
    # 0.30 x 200,000 / 190 = 315 shares wanted, but 35 % of a 100,000 NAV is 184 shares.
    rules = core_rules(
        capital={"amount": 200_000}, targets={"AAPL": 0.30}, risk={"max_position_fraction": 0.35}
    )
    result = plan(rules, observed(prices=PRICES), NOW)
    assert summary(result.intents) == [("place", "AAPL", "BUY", 184, 190.19, None)]
    assert "capped by risk.max_position_fraction" in result.intents[0].reason


def test_account_values_that_are_not_numbers_plan_nothing() -> None:
    result = plan(core_rules(), observed(prices=PRICES, cash=float("nan")), NOW)
    assert result.intents == ()
    assert any("not all numbers" in note for note in result.notes)


def test_quote_times_without_a_zone_are_utc() -> None:
    naive = observed(prices=PRICES, quote_age=timedelta(minutes=16))
    quotes = {s: replace(q, time=q.time.replace(tzinfo=None)) for s, q in naive.quotes.items()}
    result = plan(core_rules(), replace(naive, quotes=quotes), NOW)
    assert result.intents == ()
    assert any("quote is stale (16 min old" in note for note in result.notes)


def test_order_with_a_modify_in_flight_is_not_modified_again_when_the_market_moves() -> None:
    rules = core_rules(targets={"AAPL": 0.30})
    ref = order_ref("core", generation(rules), "AAPL.abc123")
    order = working(5, "AAPL", "BUY", 20, ref=ref, limit=190.19)
    account = observed(prices=PRICES, positions={"AAPL": 100}, orders=[order])
    first = plan(rules, account, NOW).intents[0]
    assert first.action == "modify"
    moved = replace(
        account,
        quotes={"AAPL": replace(account.quotes["AAPL"], last=185.0)},
        in_flight=frozenset({first.key}),
    )
    again = plan(rules, moved, NOW)
    assert again.intents == ()
    assert any("waiting for the broker to acknowledge" in note for note in again.notes)


def test_an_over_limit_order_is_cancelled_not_left_holding_cash_for_buys_it_funds() -> None:
    """Found by test_buys_never_exceed_cash_minus_buffer. Cash 2,004; working buys of an older
    generation: MSFT 1 @ 1 and AAPL 4 @ 501 (2,004, all the cash). The rule wants 1 AAPL (one
    lot, 501 > max_order_value 500) and 501 MSFT (sliced to 500). Modifying AAPL down to one lot
    would still be over the limit, so the gate blocks it and the 2,004 stay committed: the
    planner used to count that cash as freed and raise MSFT to 500, 2,504 of buys on 2,004."""
    rules = drawn_rules(
        cash_buffer=0,
        order={"type": "limit", "offset_bps": 0},
        targets={"MSFT": 0.25, "AAPL": 0.25},
        max_order_value=500,
    )
    old = "tctl:core:0ldgen0000"
    account = observed(
        nav=2004.0,
        prices={"MSFT": 1.0, "AAPL": 501.0},
        orders=[
            working(800, "MSFT", "BUY", 1, ref=f"{old}:MSFT.abc123", limit=1.0),
            working(801, "AAPL", "BUY", 4, ref=f"{old}:AAPL.abc123", limit=501.0),
        ],
    )
    result = plan(rules, account, NOW)
    assert summary(result.intents) == [
        ("cancel", "AAPL", None, None, None, None),
        ("cancel", "MSFT", None, None, None, None),
    ]
    assert result.intents[0].reason.startswith(
        "one lot of AAPL (501) is worth more than risk.max_order_value (500)"
    )
    assert result.intents[1].reason == "no cash left for this buy"

    # Once IB confirms the cancels: MSFT is bought, the one AAPL lot is shown blocked.
    confirmed = replace(account, working_orders=())
    assert summary(plan(rules, confirmed, NOW).intents) == [
        ("place", "AAPL", "BUY", 1, 501.0, "risk.max_order_value: 501 > 500"),
        ("place", "MSFT", "BUY", 500, 1.0, None),
    ]


def test_a_buy_dropped_for_cash_keeps_its_orders_cash_from_the_others() -> None:
    """Cash 150. AAPL (lot 100 at 1.00) wants 300 and has a working 100 of an older generation;
    MSFT wants 10 at 100. Shared proportionally, AAPL comes to 0 lots: its order is cancelled,
    but until IB confirms it may still fill, so its 100 stay committed and MSFT's share shrinks
    to 50, below one share. (It used to get the whole 150: 200 of buys on 150 of cash.)"""
    rules = rule_set(
        allocations={
            "core": {
                "capital": {"amount": 10_000},
                "order": {"type": "limit", "offset_bps": 0},
                "targets": {"AAPL": 0.03, "MSFT": 0.1},
            }
        }
    )
    account = observed(
        nav=10_000,
        cash=150,
        prices={"AAPL": 1.0, "MSFT": 100.0},
        contracts={
            "AAPL": ContractFacts("AAPL", con_id=1, lot_size=100),
            "MSFT": ContractFacts("MSFT", con_id=2),
        },
        orders=[
            working(801, "AAPL", "BUY", 100, ref="tctl:core:0ldgen0000:AAPL.abc123", limit=1.0)
        ],
    )
    result = plan(rules, account, NOW)
    assert summary(result.intents) == [("cancel", "AAPL", None, None, None, None)]
    assert result.intents[0].reason == "no cash left for this buy"


def test_a_buy_the_position_limit_leaves_no_room_for_takes_no_cash_from_the_others() -> None:
    """Found by test_applying_plans_converges. NAV and cash 5,164; a manual buy of SPY 73 @ 67
    (4,891 reserved); targets SPY and AAPL 0.25 each, max_position_fraction 0.25 (1,291), cash
    buffer 79: 194 available. 73 SPY at 24 (1,752) already exceed the limit, so the gate blocks
    any SPY buy. The planner used to plan one anyway and share the 194 with it: AAPL got half,
    then half again each pass (98, 48, 24, 24, ...). Now SPY is not planned (a note says why)
    and AAPL gets the whole 194; the next pass has nothing to do."""
    rules = drawn_rules(
        cash_buffer=79,
        order={"type": "market", "tif": "DAY"},
        targets={"SPY": 0.25, "AAPL": 0.25},
        max_order_value=1312,
    )
    account = observed(
        nav=5164.0,
        prices={"SPY": 24.0, "AAPL": 1.0},
        orders=[working(900, "SPY", "BUY", 73, ref=None, limit=67.0)],
    )
    result = plan(rules, account, NOW)
    assert summary(result.intents) == [("place", "AAPL", "BUY", 194, None, None)]
    assert (
        "allocations.core: SPY: no buy: risk.max_position_fraction 1,291: position 0 and other "
        "working buys of 73 shares at 24 leave room for 0"
    ) in result.notes
    assert plan(rules, apply(result, account), NOW).actionable == ()


def test_a_buy_is_limited_to_the_room_other_working_buys_leave_under_the_position_limit() -> None:
    # 35 % of 100,000 at 190 is 184 AAPL; manual buys of 50 and 30 leave room for 104.
    rules = core_rules(targets={"AAPL": 0.30}, risk={"max_position_fraction": 0.35})
    account = observed(
        prices=PRICES,
        orders=[
            working(7, "AAPL", "BUY", 50, ref=None, limit=180.0),
            working(8, "AAPL", "BUY", 30, ref="another-program", limit=170.0),
        ],
    )
    result = plan(rules, account, NOW)
    assert summary(result.intents) == [("place", "AAPL", "BUY", 104, 190.19, None)]
    assert "limited: 104 of 150 shares, risk.max_position_fraction 35,000" in (
        result.intents[0].reason
    )


def test_room_under_the_position_limit_never_shrinks_a_working_buy_nor_sells() -> None:
    """The limit only holds back growth, as the gate does: a working buy of the rule that a
    later manual order leaves without room keeps its size, and a held position is not sold to
    make room for a manual buy."""
    rules = core_rules(targets={"AAPL": 0.30}, risk={"max_position_fraction": 0.35})
    ref = order_ref("core", generation(rules), "AAPL.abc123")
    manual = working(7, "AAPL", "BUY", 150, ref=None, limit=180.0)
    own = working(8, "AAPL", "BUY", 100, ref=ref, limit=190.19)
    result = plan(rules, observed(prices=PRICES, orders=[manual, own]), NOW)
    assert result.intents == ()

    held = plan(rules, observed(prices=PRICES, positions={"AAPL": 100}, orders=[manual]), NOW)
    assert held.intents == ()
    assert any("AAPL: no buy: risk.max_position_fraction" in note for note in held.notes)
