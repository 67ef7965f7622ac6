from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.planner.builders import observed, rule_set, working
from tradectl.ib import BrokerState
from tradectl.journal import Journal, RecordedExecution
from tradectl.planner.domain import Intent, OrderSpec, Plan
from tradectl.planner.gate import recheck_cash
from tradectl.runtime.reconcile import (
    REJECTIONS_PER_RULE_PER_DAY,
    build_observed,
    hold_rejected,
    sending_groups,
)
from tradectl.schemas.models import RuleSet

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def intent(key: str, rule: str = "core", parent: str | None = None, **fields: object) -> Intent:
    order = OrderSpec(
        symbol="AAPL",
        action="BUY",
        quantity=10,
        order_type="LMT",
        order_ref=key,
        limit_price=100.0,
        parent_ref=parent,
    )
    base = Intent(
        key=key,
        action="place",
        kind="allocations",
        rule=rule,
        leg=key.rsplit(":", 1)[1],
        symbol="AAPL",
        purpose="opening",
        reason="test",
        order=order,
        estimated_price=100.0,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def journal(tmp_path: Path, clock: Clock) -> Journal:
    return Journal.open(tmp_path, clock=clock)


def reject(journal: Journal, item: Intent) -> None:
    (entry,) = journal.journal_intents([item], client_id=1, session="s", next_valid_order_id=1)
    journal.mark_sent(entry.id)
    journal.record_intent_error(entry.id, 201, "Order rejected - reason: test")
    journal.finish_intent(entry.id, "rejected")


def test_a_rejected_intent_backs_off_exponentially(journal: Journal, clock: Clock) -> None:
    planned = Plan(intents=(intent("tctl:core:g:AAPL.1"),))
    reject(journal, planned.intents[0])
    clock.now += timedelta(seconds=30)
    (held,) = hold_rejected(planned, journal, clock.now).intents
    assert held.blocked_by is not None
    assert "rejected by IB (IB 201: Order rejected - reason: test); retry after" in held.blocked_by
    clock.now += timedelta(seconds=31)
    assert not hold_rejected(planned, journal, clock.now).intents[0].blocked
    reject(journal, planned.intents[0])
    clock.now += timedelta(seconds=90)
    assert hold_rejected(planned, journal, clock.now).intents[0].blocked
    clock.now += timedelta(seconds=31)
    assert not hold_rejected(planned, journal, clock.now).intents[0].blocked


def test_a_rule_rejected_too_often_today_is_held_but_not_its_protection(
    journal: Journal, clock: Clock
) -> None:
    for number in range(REJECTIONS_PER_RULE_PER_DAY):
        reject(journal, intent(f"tctl:core:g:AAPL.{number}"))
    clock.now += timedelta(hours=2)
    fresh = intent("tctl:core:g:AAPL.new")
    protective = intent("tctl:core:g:stop", purpose="protective")
    other_rule = intent("tctl:other:g:AAPL.x", rule="other")
    held = hold_rejected(Plan(intents=(fresh, protective, other_rule)), journal, clock.now)
    assert [item.blocked for item in held.intents] == [True, False, False]
    assert "held until the next trading day" in (held.intents[0].blocked_by or "")
    tomorrow = clock.now + timedelta(days=1)
    assert not hold_rejected(Plan(intents=(fresh,)), journal, tomorrow).intents[0].blocked


def test_bracket_legs_are_sent_as_one_group_in_plan_order() -> None:
    entry = intent("tctl:b:g:entry", rule="b")
    stop = intent("tctl:b:g:stop", rule="b", parent="tctl:b:g:entry")
    target = intent("tctl:b:g:target", rule="b", parent="tctl:b:g:entry")
    single = intent("tctl:core:g:MSFT.1")
    groups = sending_groups([single, entry, stop, target])
    assert [[item.leg for item in group] for group in groups] == [
        ["MSFT.1"],
        ["entry", "stop", "target"],
    ]


def test_entry_and_exit_fills_come_from_the_journal_across_days(
    journal: Journal, tmp_path: Path
) -> None:
    rules = RuleSet.model_validate(
        {
            "account": {"id": "DU1234567"},
            "risk": {
                "max_order_value": 1e6,
                "max_position_fraction": 0.5,
                "max_risk_per_trade_fraction": 0.05,
                "max_daily_loss_fraction": 0.05,
            },
            "brackets": {
                "b": {
                    "symbol": "AAPL",
                    "side": "BUY",
                    "quantity": 10,
                    "entry": {"limit": 100.0},
                    "stop_loss": {"price": 90.0},
                    "take_profit": {"price": 120.0},
                }
            },
        },
        strict=False,
    )
    yesterday = NOW - timedelta(days=1)
    for exec_id, leg, shares, price in (
        ("e1", "entry", 6, 100.0),
        ("e2", "entry", 4, 99.0),
        ("e3", "stop", 3, 90.0),
        ("e4", "AAPL.1", 5, 1.0),
    ):
        journal.record_execution(
            RecordedExecution(
                exec_id, 1, 1, 1, f"tctl:b:g:{leg}", "AAPL", "BUY", shares, price, yesterday
            )
        )
    state = BrokerState("DU1234567", 1e6, 1e6, 1e6, {}, (), (), {}, {}, {})
    observed = build_observed(rules, state, journal, NOW)
    assert observed.entry_fills == {("b", "g"): 10}
    assert observed.entry_fill_prices == {("b", "g"): pytest.approx(99.6)}
    assert observed.exit_fills == {("b", "g"): 3}
    assert observed.day_start_nav == 1e6
    later = replace(state, net_liquidation=9e5)
    assert build_observed(rules, later, journal, NOW + timedelta(hours=1)).day_start_nav == 1e6


def test_sent_but_unseen_orders_count_as_working_orders(journal: Journal) -> None:
    rules = RuleSet.model_validate(
        {
            "account": {"id": "DU1234567"},
            "risk": {
                "max_order_value": 1e6,
                "max_position_fraction": 0.5,
                "max_risk_per_trade_fraction": 0.05,
                "max_daily_loss_fraction": 0.05,
            },
        },
        strict=False,
    )
    entry = intent("tctl:b:g:entry", rule="b")
    stop = intent("tctl:b:g:stop", rule="b", parent="tctl:b:g:entry")
    sent = journal.journal_intents([entry, stop], client_id=7, session="s", next_valid_order_id=40)
    for item in sent:
        journal.mark_sent(item.id)
    state = BrokerState("DU1234567", 1e6, 1e6, 1e6, {}, (), (), {}, {}, {})
    pending = build_observed(rules, state, journal, NOW).working_orders
    assert [(o.order_id, o.order_ref, o.status, o.parent_id) for o in pending] == [
        (40, "tctl:b:g:entry", "PendingSubmit", 0),
        (41, "tctl:b:g:stop", "PendingSubmit", 40),
    ]
    assert all(order.owned and order.client_id == 7 for order in pending)
    journal.mark_acknowledged(sent[0].id, perm_id=1)
    journal.mark_acknowledged(sent[1].id, perm_id=2)
    assert build_observed(rules, state, journal, NOW).working_orders == ()


def test_a_held_modify_that_was_to_free_cash_blocks_the_buy_it_funded(
    journal: Journal, clock: Clock
) -> None:
    # Cash 2,100, all in working buys: AAPL 20 @ 100 and MSFT 1 @ 100. The plan shrinks AAPL to 5
    # (freeing 1,500) and grows MSFT to 11 (1,000 more). IB rejected that AAPL modify a moment
    # ago, so the runtime holds it: AAPL stays at 2,000 and the MSFT growth has no cash.
    old = "tctl:core:0ldgen0000"
    rules = rule_set(
        allocations={"core": {"capital": {"fraction_of_nav": 1.0}, "targets": {"AAPL": 0.5}}}
    )
    account = observed(
        nav=2_100.0,
        prices={"AAPL": 100.0, "MSFT": 100.0},
        orders=[
            working(1, "AAPL", "BUY", 20, ref=f"{old}:AAPL.abc123", limit=100.0),
            working(2, "MSFT", "BUY", 1, ref=f"{old}:MSFT.abc123", limit=100.0),
        ],
    )
    shrink = intent(f"{old}:AAPL.abc123#mod:1", action="modify", order_id=1)
    grow = intent(f"{old}:MSFT.abc123#mod:2", action="modify", order_id=2, symbol="MSFT")
    assert shrink.order is not None and grow.order is not None
    shrink = replace(shrink, order=replace(shrink.order, quantity=5))
    grow = replace(grow, order=replace(grow.order, symbol="MSFT", quantity=11))
    reject(journal, shrink)
    clock.now += timedelta(seconds=5)
    held = hold_rejected(Plan(intents=(shrink, grow)), journal, clock.now)
    assert [item.blocked for item in held.intents] == [True, False]
    checked = recheck_cash(held, rules, account)
    assert checked.intents[0].blocked_by == held.intents[0].blocked_by
    assert checked.intents[1].blocked_by == (
        "cash: buys would commit 3,100 > 2,100 available (cash 2,100 - buffer 0)"
    )
