"""Matching, account and limits of the pure engine (no sockets)."""

from __future__ import annotations

import pytest

from tradectl.sim.engine import Engine
from tradectl.sim.model import ErrorNotice, OrderChanged, OrderFilled

from .helpers import order, small_state

CLIENT = 1


def fills(events: list[object]) -> list[OrderFilled]:
    return [e for e in events if isinstance(e, OrderFilled)]


def errors(events: list[object]) -> list[ErrorNotice]:
    return [e for e in events if isinstance(e, ErrorNotice)]


@pytest.fixture
def engine() -> Engine:
    return Engine(small_state(), clock=lambda: 1_700_000_000.0)


def test_market_orders_fill_at_the_touch(engine: Engine) -> None:
    buy = fills(engine.place(CLIENT, order(1, "BUY", 10)))
    sell = fills(engine.place(CLIENT, order(2, "SELL", 4)))
    assert [f.execution.price for f in buy + sell] == [100.01, 99.99]
    assert engine.account.positions["AAPL"].quantity == 6
    assert engine.orders[(CLIENT, 1)].status == "Filled"


def test_commission_is_per_share_with_minimum_and_cap(engine: Engine) -> None:
    small = fills(engine.place(CLIENT, order(1, "BUY", 10)))[0].execution
    large = fills(engine.place(CLIENT, order(2, "BUY", 400)))[0].execution
    assert small.commission == 1.0  # minimum 1.00
    assert large.commission == pytest.approx(2.0)  # 400 * 0.005
    engine.set_price("LOT", 0.5)
    tiny = fills(engine.place(CLIENT, order(3, "BUY", 100, symbol="LOT")))[0].execution
    assert tiny.commission == pytest.approx(0.51 * 100 * 0.01)  # capped at 1% of value


def test_cash_and_average_cost_include_commission(engine: Engine) -> None:
    engine.place(CLIENT, order(1, "BUY", 100))
    avg_cost = engine.account.positions["AAPL"].avg_cost
    assert avg_cost == pytest.approx(100.01 + 1.0 / 100)
    assert engine.account.cash == pytest.approx(100_000 - 100 * 100.01 - 1.0)
    engine.set_price("AAPL", 110.0)
    closing = fills(engine.place(CLIENT, order(2, "SELL", 100)))[0].execution
    assert closing.realized_pnl == pytest.approx((109.99 - avg_cost) * 100 - 1.0)
    assert "AAPL" in engine.account.positions and engine.account.positions["AAPL"].quantity == 0


def test_limit_rests_until_marketable(engine: Engine) -> None:
    events = engine.place(CLIENT, order(1, "BUY", 10, "LMT", lmt=99.0))
    assert not fills(events)
    assert engine.orders[(CLIENT, 1)].status == "Submitted"
    assert not fills(engine.set_price("AAPL", 99.5))  # ask 99.51 > 99
    filled = fills(engine.set_price("AAPL", 98.5))
    assert [f.execution.price for f in filled] == [98.51]


def test_marketable_sell_limit_fills_at_bid(engine: Engine) -> None:
    filled = fills(engine.place(CLIENT, order(1, "SELL", 5, "LMT", lmt=95.0)))
    assert filled[0].execution.price == 99.99


def test_stop_triggers_on_last_then_fills_at_market(engine: Engine) -> None:
    engine.place(CLIENT, order(1, "BUY", 10))
    engine.place(CLIENT, order(2, "SELL", 10, "STP", aux=95.0))
    assert not fills(engine.set_price("AAPL", 95.01))
    filled = fills(engine.set_price("AAPL", 94.0))
    assert filled[0].execution.price == 93.99


def test_stop_limit_becomes_a_limit_once_triggered(engine: Engine) -> None:
    engine.place(CLIENT, order(1, "BUY", 10, "STP LMT", aux=105.0, lmt=105.5))
    assert not fills(engine.set_price("AAPL", 104.0))
    # triggered, but the ask 107.01 is above the limit: the order rests
    assert not fills(engine.set_price("AAPL", 107.0))
    assert engine.orders[(CLIENT, 1)].triggered
    filled = fills(engine.set_price("AAPL", 105.2))
    assert filled[0].execution.price == 105.21


def test_trailing_stop_by_amount_ratchets_up_only(engine: Engine) -> None:
    engine.place(CLIENT, order(1, "BUY", 10))
    engine.place(CLIENT, order(2, "SELL", 10, "TRAIL", aux=2.0))
    trail = engine.orders[(CLIENT, 2)]
    assert trail.trail_stop_price == 98.0
    engine.set_price("AAPL", 110.0)
    assert trail.trail_stop_price == 108.0
    assert not fills(engine.set_price("AAPL", 108.5))
    assert trail.trail_stop_price == 108.0  # never moves against the position
    filled = fills(engine.set_price("AAPL", 107.9))
    assert filled[0].execution.price == 107.89


def test_trailing_stop_by_percent_for_a_buy(engine: Engine) -> None:
    engine.place(CLIENT, order(1, "BUY", 10, "TRAIL", trailing_percent=5.0))
    trail = engine.orders[(CLIENT, 1)]
    assert trail.trail_stop_price == 105.0
    engine.set_price("AAPL", 90.0)
    assert trail.trail_stop_price == 94.5
    assert fills(engine.set_price("AAPL", 94.6))


def test_oca_type_1_fill_cancels_the_others(engine: Engine) -> None:
    engine.place(CLIENT, order(1, "BUY", 10, "LMT", lmt=95.0, oca_group="g", oca_type=1))
    engine.place(CLIENT, order(2, "BUY", 10, "LMT", lmt=90.0, oca_group="g", oca_type=1))
    events = engine.set_price("AAPL", 94.0)
    assert len(fills(events)) == 1
    assert engine.orders[(CLIENT, 2)].status == "Cancelled"
    assert [e.code for e in errors(events)] == [202]


def test_bracket_children_wait_for_parent_and_reduce_each_other(engine: Engine) -> None:
    assert engine.place(CLIENT, order(1, "BUY", 10, "LMT", lmt=95.0, transmit=False)) == []
    assert (
        engine.place(CLIENT, order(2, "SELL", 10, "LMT", lmt=110, parent_id=1, transmit=False))
        == []
    )
    events = engine.place(CLIENT, order(3, "SELL", 10, "STP", aux=90.0, parent_id=1))
    changed = [e.order.order_id for e in events if isinstance(e, OrderChanged)]
    assert changed == [1, 2, 3]  # the whole chain goes out with the last leg
    assert [engine.orders[(CLIENT, i)].status for i in (1, 2, 3)] == [
        "Submitted",
        "PreSubmitted",
        "PreSubmitted",
    ]
    engine.set_price("AAPL", 94.0)
    assert [engine.orders[(CLIENT, i)].status for i in (1, 2, 3)] == [
        "Filled",
        "Submitted",
        "Submitted",
    ]
    events = engine.set_price("AAPL", 111.0)
    assert [f.order.order_id for f in fills(events)] == [2]
    assert engine.orders[(CLIENT, 3)].status == "Cancelled"
    assert engine.account.positions["AAPL"].quantity == 0


def test_cancelling_a_parent_cancels_its_children(engine: Engine) -> None:
    engine.place(CLIENT, order(1, "BUY", 10, "LMT", lmt=95.0, transmit=False))
    engine.place(CLIENT, order(2, "SELL", 10, "STP", aux=90.0, parent_id=1))
    engine.cancel(CLIENT, 1)
    assert engine.orders[(CLIENT, 2)].status == "Cancelled"


def test_partial_fills_in_chunks() -> None:
    state = small_state(matching={"fill_chunk": 30})
    engine = Engine(state)
    first = fills(engine.place(CLIENT, order(1, "BUY", 100)))
    assert [f.execution.shares for f in first] == [30]
    assert engine.orders[(CLIENT, 1)].status == "Submitted"
    shares = [f.execution.shares for _ in range(3) for f in fills(engine.step())]
    assert shares == [30, 30, 10]
    done = engine.orders[(CLIENT, 1)]
    assert (done.status, done.filled) == ("Filled", 100)
    total = sum(e.commission for e in engine.executions)
    assert total == pytest.approx(1.0)  # the minimum applies per order, not per fill


def test_insufficient_buying_power_is_rejected(engine: Engine) -> None:
    events = engine.place(CLIENT, order(1, "BUY", 1_000))  # 100k at 100.01 > 100k cash
    assert [e.code for e in errors(events)] == [201]
    assert "buying power" in errors(events)[0].message
    assert engine.orders[(CLIENT, 1)].status == "Cancelled"
    assert not engine.executions


def test_working_buys_commit_buying_power(engine: Engine) -> None:
    assert not errors(engine.place(CLIENT, order(1, "BUY", 600, "LMT", lmt=90.0)))
    events = engine.place(CLIENT, order(2, "BUY", 600, "LMT", lmt=90.0))
    assert [e.code for e in errors(events)] == [201]


def test_a_buy_that_covers_a_short_is_not_charged_as_new_exposure() -> None:
    # short 900 at 100: net liquidation 100k, gross positions 90k, buying power 10k
    state = small_state(
        account={"cash": 190_000},
        positions=[{"symbol": "AAPL", "quantity": -900, "avg_cost": 100.0}],
    )
    engine = Engine(state, clock=lambda: 1_700_000_000.0)
    assert engine.account.buying_power() == pytest.approx(10_000)
    too_far = engine.place(CLIENT, order(1, "BUY", 1_000))  # 100 beyond the cover: 10,001
    assert [e.code for e in errors(too_far)] == [201]
    cover = engine.place(CLIENT, order(2, "BUY", 900))
    assert not errors(cover)
    assert [f.execution.shares for f in fills(cover)] == [900]
    assert engine.account.positions["AAPL"].quantity == 0


def test_twenty_active_orders_per_contract_and_side() -> None:
    engine = Engine(small_state(account={"cash": 10_000_000}))
    for i in range(1, 21):
        assert not errors(engine.place(CLIENT, order(i, "BUY", 1, "LMT", lmt=50.0)))
    events = engine.place(CLIENT, order(21, "BUY", 1, "LMT", lmt=50.0))
    assert [e.code for e in errors(events)] == [201]
    # the other side and other contracts are unaffected
    assert not errors(engine.place(CLIENT, order(22, "SELL", 1, "LMT", lmt=150.0)))
    assert not errors(engine.place(CLIENT, order(23, "BUY", 1, "LMT", lmt=50.0, symbol="MSFT")))
    engine.cancel(CLIENT, 1)
    assert not errors(engine.place(CLIENT, order(24, "BUY", 1, "LMT", lmt=50.0)))


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (order(1, "HOLD"), "invalid action"),
        (order(1, quantity=0), "invalid total quantity"),
        (order(1, quantity=50, symbol="LOT"), "multiple of 100"),
        (order(1, order_type="LMT"), "limit price"),
        (order(1, order_type="STP"), "stop price"),
        (order(1, order_type="TRAIL"), "trailing"),
        (order(1, order_type="MOC"), "not supported"),
        (order(1, parent_id=99), "parent order 99"),
    ],
)
def test_invalid_orders_are_rejected_with_201(
    engine: Engine, request_: object, reason: str
) -> None:
    events = engine.place(CLIENT, request_)  # type: ignore[arg-type]
    assert [e.code for e in errors(events)] == [201]
    assert reason in errors(events)[0].message
    assert errors(events)[0].message.startswith("Order rejected - reason:")


def test_unknown_symbol_is_200(engine: Engine) -> None:
    events = engine.place(CLIENT, order(1, symbol="NOPE"))
    assert [(e.code, e.message) for e in errors(events)] == [
        (200, "No security definition has been found for the request")
    ]


def test_cancel_unknown_and_filled_orders(engine: Engine) -> None:
    assert [e.code for e in errors(engine.cancel(CLIENT, 42))] == [10147]
    assert errors(engine.cancel(CLIENT, 42))[0].message == (
        "OrderId 42 that needs to be cancelled is not found."
    )
    engine.place(CLIENT, order(1))
    assert [e.code for e in errors(engine.cancel(CLIENT, 1))] == [10148]


def test_modify_changes_price_and_quantity_in_place(engine: Engine) -> None:
    engine.place(CLIENT, order(1, "BUY", 10, "LMT", lmt=90.0, order_ref="r1"))
    perm = engine.orders[(CLIENT, 1)].perm_id
    events = engine.place(CLIENT, order(1, "BUY", 20, "LMT", lmt=100.5, order_ref="r1"))
    assert [e.execution.shares for e in fills(events)] == [20]
    modified = engine.orders[(CLIENT, 1)]
    assert (modified.perm_id, modified.quantity, modified.lmt_price) == (perm, 20, 100.5)


def test_orders_are_keyed_per_client(engine: Engine) -> None:
    engine.place(1, order(1, "BUY", 10, "LMT", lmt=90.0))
    engine.place(2, order(1, "BUY", 10, "LMT", lmt=80.0))
    assert engine.orders[(1, 1)].lmt_price == 90.0
    assert engine.orders[(2, 1)].lmt_price == 80.0
    assert [e.code for e in errors(engine.cancel(3, 1))] == [10147]


def test_rejection_fault_rejects_the_next_n_orders(engine: Engine) -> None:
    engine.reject_next = 2
    codes = [[e.code for e in errors(engine.place(CLIENT, order(i)))] for i in (1, 2, 3)]
    assert codes == [[201], [201], []]


def test_exec_and_perm_ids_are_unique(engine: Engine) -> None:
    state = small_state(matching={"fill_chunk": 5})
    engine = Engine(state)
    engine.place(CLIENT, order(1, "BUY", 20))
    engine.place(CLIENT, order(2, "BUY", 20))
    for _ in range(4):
        engine.step()
    exec_ids = [e.exec_id for e in engine.executions]
    assert len(exec_ids) == 8 and len(set(exec_ids)) == 8
    assert engine.orders[(CLIENT, 1)].perm_id != engine.orders[(CLIENT, 2)].perm_id


def test_modify_that_needs_more_buying_power_is_rejected(engine: Engine) -> None:
    engine.place(CLIENT, order(1, "BUY", 500, "LMT", lmt=90.0))
    assert not errors(engine.place(CLIENT, order(1, "BUY", 500, "LMT", lmt=95.0)))
    events = engine.place(CLIENT, order(1, "BUY", 2_000, "LMT", lmt=95.0))
    assert [e.code for e in errors(events)] == [201]
    working = engine.orders[(CLIENT, 1)]
    assert (working.status, working.quantity, working.lmt_price) == ("Submitted", 500, 95.0)


def test_perm_ids_do_not_repeat_across_restarts() -> None:
    first = Engine(small_state(), clock=lambda: 1_700_000_000.0)
    later = Engine(small_state(), clock=lambda: 1_700_000_001.0)
    first.place(CLIENT, order(1))
    later.place(CLIENT, order(1))
    assert first.orders[(CLIENT, 1)].perm_id != later.orders[(CLIENT, 1)].perm_id
    assert first.executions[0].exec_id != later.executions[0].exec_id
    assert later.orders[(CLIENT, 1)].perm_id < 2**31  # IB's permId is a 32-bit int


def _bracket(engine: Engine, quantity: int = 100) -> None:
    engine.place(CLIENT, order(1, "BUY", quantity, "LMT", lmt=95.0, transmit=False))
    engine.place(
        CLIENT,
        order(2, "SELL", quantity, "LMT", lmt=110, parent_id=1, transmit=False, oca_group="b"),
    )
    engine.place(CLIENT, order(3, "SELL", quantity, "STP", aux=90.0, parent_id=1, oca_group="b"))


def _children(engine: Engine) -> list[tuple[str, float]]:
    return [
        (engine.orders[(CLIENT, i)].status, engine.orders[(CLIENT, i)].remaining) for i in (2, 3)
    ]


@pytest.mark.parametrize(
    ("mode", "after_partial"),
    [
        ("activate_filled", [("Submitted", 30), ("Submitted", 30)]),
        ("activate_full", [("Submitted", 100), ("Submitted", 100)]),
        ("hold_until_complete", [("PreSubmitted", 100), ("PreSubmitted", 100)]),
    ],
)
def test_children_on_a_partial_parent_fill_follow_the_state_option(
    mode: str, after_partial: list[tuple[str, float]]
) -> None:
    state = small_state(matching={"fill_chunk": 30}, brackets={"children_on_partial_fill": mode})
    engine = Engine(state)
    _bracket(engine)
    events = engine.set_price("AAPL", 94.0)
    assert [f.execution.shares for f in fills(events)] == [30]
    assert _children(engine) == after_partial
    state.matching.fill_chunk = 0
    engine.step()
    assert engine.orders[(CLIENT, 1)].status == "Filled"
    assert _children(engine) == [("Submitted", 100), ("Submitted", 100)]


@pytest.mark.parametrize(
    ("mode", "after_cancel"),
    [
        ("cancel", [("Cancelled", 100), ("Cancelled", 100)]),
        ("keep_filled", [("Submitted", 30), ("Submitted", 30)]),
    ],
)
def test_cancelling_the_rest_of_a_partly_filled_parent_follows_the_state_option(
    mode: str, after_cancel: list[tuple[str, float]]
) -> None:
    state = small_state(
        matching={"fill_chunk": 30},
        brackets={
            "children_on_partial_fill": "hold_until_complete",
            "children_on_partial_parent_cancel": mode,
        },
    )
    engine = Engine(state)
    _bracket(engine)
    engine.set_price("AAPL", 94.0)
    engine.cancel(CLIENT, 1)
    assert engine.orders[(CLIENT, 1)].status == "Cancelled"
    assert _children(engine) == after_cancel
    assert engine.account.positions["AAPL"].quantity == 30


def test_a_child_can_be_resized_after_its_parent_filled(engine: Engine) -> None:
    _bracket(engine, quantity=10)
    engine.set_price("AAPL", 94.0)
    events = engine.place(CLIENT, order(3, "SELL", 4, "STP", aux=90.0, parent_id=1, oca_group="b"))
    assert errors(events) == []
    assert engine.orders[(CLIENT, 3)].quantity == 4
