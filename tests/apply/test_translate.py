from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from ib_insync import Contract, Order
from ib_insync.util import UNSET_DOUBLE

from tradectl.ib import AccountRefused, ConnectionSettings, IbAdapter, check_account
from tradectl.ib.translate import to_ib_order, working_order
from tradectl.ib_codes import is_informational
from tradectl.journal import Journal, JournaledIntent
from tradectl.planner.domain import Intent, OrderSpec
from tradectl.runtime.tracking import tracker_for


def spec(**fields: object) -> OrderSpec:
    base: dict[str, object] = {
        "symbol": "AAPL",
        "action": "BUY",
        "quantity": 100,
        "order_type": "LMT",
        "order_ref": "tctl:aapl:abc:entry",
        "limit_price": 150.0,
    }
    base.update(fields)
    return OrderSpec(**base)  # type: ignore[arg-type]


def tracked_entry(tmp_path: Path) -> tuple[Journal, IbAdapter, JournaledIntent]:
    """An adapter with a journaled bracket entry (order id 3) it follows."""
    journal = Journal.open(tmp_path)
    adapter = IbAdapter(ConnectionSettings("127.0.0.1", 1, 17, "DU1", live_allowed=False), journal)
    placed = Intent(
        key="tctl:aapl:abc:entry",
        action="place",
        kind="brackets",
        rule="aapl",
        leg="entry",
        symbol="AAPL",
        purpose="opening",
        reason="test",
        order=spec(),
    )
    (entry,) = journal.journal_intents([placed], client_id=17, session="s", next_valid_order_id=3)
    # The runtime's tracker journals what the adapter reports (tradectl.runtime.tracking).
    tracker_for(adapter, journal).track([entry])
    return journal, adapter, entry


def test_limit_order_carries_account_ref_tif_and_id() -> None:
    order = to_ib_order(spec(tif="GTC"), order_id=42, account="DU1", parent_ids={})
    assert (order.orderId, order.action, order.totalQuantity) == (42, "BUY", 100)
    assert (order.orderType, order.lmtPrice, order.tif) == ("LMT", 150.0, "GTC")
    assert (order.account, order.orderRef, order.transmit) == ("DU1", "tctl:aapl:abc:entry", True)
    assert order.auxPrice == UNSET_DOUBLE


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"order_type": "MKT", "limit_price": None}, {"orderType": "MKT"}),
        (
            {"order_type": "STP", "limit_price": None, "aux_price": 140.0},
            {"orderType": "STP", "auxPrice": 140.0},
        ),
        (
            {"order_type": "STP LMT", "limit_price": 152.5, "aux_price": 152.0},
            {"orderType": "STP LMT", "auxPrice": 152.0, "lmtPrice": 152.5},
        ),
        (
            {"order_type": "TRAIL", "limit_price": None, "trailing_percent": 2.0},
            {"orderType": "TRAIL", "trailingPercent": 2.0, "auxPrice": UNSET_DOUBLE},
        ),
    ],
)
def test_each_order_type_sets_its_prices(
    fields: dict[str, object], expected: dict[str, object]
) -> None:
    order = to_ib_order(spec(**fields), order_id=1, account="DU1", parent_ids={})
    for name, value in expected.items():
        assert getattr(order, name) == value


def test_bracket_children_point_at_the_parent_and_share_an_oca_group() -> None:
    child = spec(
        action="SELL",
        order_type="STP",
        limit_price=None,
        aux_price=140.0,
        order_ref="tctl:aapl:abc:stop",
        parent_ref="tctl:aapl:abc:entry",
        oca_group="tctl:aapl:abc",
        transmit=False,
    )
    order = to_ib_order(child, order_id=8, account="DU1", parent_ids={"tctl:aapl:abc:entry": 7})
    assert (order.parentId, order.ocaGroup, order.ocaType, order.transmit) == (
        7,
        "tctl:aapl:abc",
        2,
        False,
    )
    with pytest.raises(ValueError, match="parent"):
        to_ib_order(child, order_id=8, account="DU1", parent_ids={})


def test_an_order_type_without_its_price_is_refused() -> None:
    with pytest.raises(ValueError, match="stop price"):
        to_ib_order(
            spec(order_type="STP", limit_price=None), order_id=1, account="D", parent_ids={}
        )


def test_open_order_becomes_a_working_order() -> None:
    order = Order(
        orderId=5,
        clientId=17,
        permId=900,
        action="SELL",
        totalQuantity=30,
        orderType="LMT",
        lmtPrice=500.0,
        tif="GTC",
        orderRef="tctl:core:g:MSFT.abcd",
    )
    working = working_order("MSFT", order, "Submitted", 10)
    assert working.owned and working.rule == "core"
    assert (working.symbol, working.remaining, working.limit_price, working.aux_price) == (
        "MSFT",
        20,
        500.0,
        None,
    )
    manual = working_order("MSFT", Order(orderId=0, permId=1, action="BUY"), "Submitted", 0)
    assert not manual.owned


def test_informational_codes() -> None:
    assert all(is_informational(code) for code in (2104, 2158, 404, 10349, 399))
    assert not any(is_informational(code) for code in (201, 103, 110, 200))


def test_account_checks() -> None:
    check_account("DU1", live_allowed=False, managed=["DU1"])
    check_account("U1", live_allowed=True, managed=["U1"])
    with pytest.raises(AccountRefused, match="not among the gateway's managed accounts"):
        check_account("DU2", live_allowed=False, managed=["DU1"])
    with pytest.raises(AccountRefused, match=r"live account .* account.live: true"):
        check_account("U1", live_allowed=False, managed=["U1"])


def test_notices_do_not_end_an_order_only_a_terminal_status_does(tmp_path: Path) -> None:
    journal, adapter, entry = tracked_entry(tmp_path)
    adapter._on_error(3, 10349, "Order TIF was set to DAY based on order preset.", "")
    adapter._on_error(3, 404, "Shares for this order are not immediately available.", "")
    assert journal.intent(entry.id).state == "journaled"
    adapter._on_order_status(3, "Submitted", 0, 100, 0, 77, 0, 0, 17, "", 0)
    assert journal.intent(entry.id).state == "acknowledged"
    assert journal.intent(entry.id).perm_id == 77
    adapter._on_error(3, 201, "Order rejected - reason: no funds", "")
    assert journal.intent(entry.id).state == "acknowledged"
    adapter._on_order_status(3, "Cancelled", 0, 100, 0, 77, 0, 0, 17, "", 0)
    finished = journal.intent(entry.id)
    assert (finished.state, finished.error_code) == ("rejected", 201)
    assert tracker_for(adapter, journal).progress.errors == [
        "tctl:aapl:abc:entry: IB error 201: Order rejected - reason: no funds"
    ]
    journal.close()


def test_the_execution_filter_starts_at_new_york_midnight_in_utc() -> None:
    from tradectl.ib.adapter import _utc_filter_time
    from tradectl.timezones import trading_day_start

    start = trading_day_start(datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
    assert _utc_filter_time(start) == "20261124-05:00:00"


def test_a_rejected_modify_is_rejected_and_the_order_lives_on(tmp_path: Path) -> None:
    journal, adapter, entry = tracked_entry(tmp_path)
    adapter._on_order_status(3, "Submitted", 0, 100, 0, 77, 0, 0, 17, "", 0)
    modify = Intent(
        key="tctl:aapl:abc:entry#mod:1",
        action="modify",
        kind="brackets",
        rule="aapl",
        leg="entry",
        symbol="AAPL",
        purpose="opening",
        reason="edit",
        order=spec(limit_price=150.005),
        order_id=3,
    )
    (change,) = journal.journal_intents([modify], client_id=17, session="s", next_valid_order_id=4)
    tracker_for(adapter, journal).track([change])
    adapter._on_error(3, 110, "The price does not conform to the minimum price variation.", "")
    assert (journal.intent(change.id).state, journal.intent(change.id).error_code) == (
        "rejected",
        110,
    )
    assert journal.intent(entry.id).state == "acknowledged"
    assert journal.intent(entry.id).error_code is None
    journal.close()


def test_out_of_order_events_through_the_adapter(tmp_path: Path) -> None:
    """permId 0 on the first status, Inactive without an error, a fill after Cancelled: the
    runtime's tracker writes what the one lifecycle decides (docs/apply.md, "One order
    lifecycle")."""
    from ib_insync import Execution as IbExecution

    journal, adapter, entry = tracked_entry(tmp_path)
    adapter._on_order_status(3, "PreSubmitted", 0, 100, 0, 0, 0, 0, 17, "", 0)
    assert (journal.intent(entry.id).state, journal.intent(entry.id).perm_id) == ("acknowledged", 0)
    adapter._on_order_status(3, "Inactive", 0, 100, 0, 77, 0, 0, 17, "", 0)
    assert (journal.intent(entry.id).state, journal.intent(entry.id).perm_id) == (
        "acknowledged",
        77,
    )
    adapter._on_order_status(3, "Cancelled", 0, 100, 0, 77, 0, 0, 17, "", 0)
    assert journal.intent(entry.id).state == "cancelled"
    late_fill = IbExecution(
        execId="0001.01",
        time=datetime(2026, 11, 25, 15, 0, tzinfo=UTC),
        side="BOT",
        shares=30,
        price=150.0,
        permId=77,
        clientId=17,
        orderId=3,
        orderRef="tctl:aapl:abc:entry",
    )
    adapter._on_exec_details(1, Contract(symbol="AAPL", secType="STK"), late_fill)
    finished = journal.intent(entry.id)
    assert (finished.state, finished.filled) == ("cancelled", 30)
    journal.close()


def test_an_inactive_order_counts_as_working_until_ib_rejected_it() -> None:
    from ib_insync.order import OrderState

    adapter = IbAdapter(ConnectionSettings("127.0.0.1", 1, 17, "DU1", live_allowed=False), None)
    contract = Contract(symbol="AAPL", secType="STK")

    def open_order(order_id: int) -> tuple[int, int]:
        order = Order(
            orderId=order_id,
            clientId=17,
            permId=100 + order_id,
            action="BUY",
            totalQuantity=10,
            orderType="LMT",
            lmtPrice=150.0,
            orderRef=f"tctl:aapl:abc:L{order_id}",
        )
        adapter._on_open_order(order_id, contract, order, OrderState(status="Inactive"))
        return (17, order_id)

    held, rejected = open_order(3), open_order(4)
    adapter._on_error(4, 201, "Order rejected - reason: no funds", "")
    adapter._on_open_order(
        4, contract, adapter._orders[rejected].order, OrderState(status="Inactive")
    )
    working = adapter.working_orders(frozenset({held, rejected}))
    assert [order.order_id for order in working] == [3]


def _adapter_knowing(keys: dict[int, str]) -> IbAdapter:
    adapter = IbAdapter(ConnectionSettings("127.0.0.1", 1, 17, "DU1", live_allowed=False), None)
    adapter._keys_by_con_id.update(keys)
    return adapter


def test_contracts_are_keyed_by_con_id_never_by_their_symbol() -> None:
    adapter = _adapter_knowing({195014116: "SHOP", 195014117: "SHOP@SMART/TSE:CAD"})

    def key(con_id: int, currency: str, symbol: str = "SHOP") -> str:
        return adapter.instrument_key(
            Contract(conId=con_id, symbol=symbol, secType="STK", currency=currency)
        )

    assert key(195014116, "USD") == "SHOP"
    assert key(195014117, "CAD") == "SHOP@SMART/TSE:CAD"
    # Another USD listing of a ticker a rule resolved elsewhere: never that rule's key.
    assert key(195099999, "USD") == "SHOP~195099999"
    # A holding no rule names: a US stock keeps its ticker (journals from before conIds),
    # any other listing gets a key no rule can write.
    assert key(265598, "USD", "AAPL") == "AAPL"
    assert key(12087792, "GBP", "VOD") == "VOD~12087792"


def test_another_accounts_orders_fills_and_completed_orders_are_not_this_ones() -> None:
    from ib_insync import Execution as IbExecution
    from ib_insync.order import OrderState

    adapter = _adapter_knowing({265598: "AAPL"})
    contract = Contract(conId=265598, symbol="AAPL", secType="STK", currency="USD")

    def open_order(order_id: int, account: str) -> None:
        order = Order(
            orderId=order_id,
            clientId=18,
            permId=500 + order_id,
            action="BUY",
            totalQuantity=10,
            orderType="LMT",
            lmtPrice=150.0,
            account=account,
            orderRef="tctl:core:abc:AAPL.1",
        )
        adapter._on_open_order(order_id, contract, order, OrderState(status="Submitted"))

    open_order(1, "DU1")
    open_order(2, "DU2")
    for exec_id, account in (("e1", "DU1"), ("e2", "DU2")):
        execution = IbExecution(
            execId=exec_id, orderId=1, clientId=18, acctNumber=account, side="BOT", shares=5
        )
        adapter._on_exec_details(0, contract, execution)

    for account in ("DU1", "DU2"):
        done = Order(orderId=9, clientId=18, permId=700, account=account, orderRef="tctl:x:g:entry")
        adapter._on_completed_order(contract, done, OrderState(status="Filled"))

    working = adapter.working_orders(frozenset(adapter._orders))
    assert [(order.order_id, order.symbol) for order in working] == [(1, "AAPL")]
    assert [done.order.account for done in adapter._completed] == ["DU1"]
    assert list(adapter._executions) == ["e1"]
    assert adapter._executions["e1"].con_id == 265598
