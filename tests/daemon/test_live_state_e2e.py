"""The daemon's live state (docs/daemon.md, "Live state"): orders, executions and positions
come from IB's streams, and a lost message is found, counted and corrected by a fresh read
before it can cause a wrong order. The sim swallows the message (``drop_next``, docs/sim.md)."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest
from ib_insync import IB, LimitOrder, Stock

from tests.daemon.e2e_support import (
    ACCOUNT_RULES,
    DaemonProcess,
    Wire,
    wait_until,
    write_atomically,
)
from tests.daemon.test_e2e import assert_nothing_sent_twice
from tests.daemon.test_observability_e2e import metrics_url, scrape, value
from tradectl.sim import SimThread

pytestmark = pytest.mark.e2e

BRACKET = (
    "version: 1\nbrackets:\n"
    "  dip: {symbol: AAPL, side: BUY, quantity: 10, entry: {limit: 270},\n"
    "        stop_loss: {price: 260}, take_profit: {price: 290}}\n"
)


def start_daemon(
    tmp_path: Path,
    sim: SimThread,
    started: list[DaemonProcess],
    *,
    every: str = "1h",
    full_refresh: str = "1h",
    rules: str = BRACKET,
    extra: tuple[str, ...] = (),
) -> DaemonProcess:
    directory = tmp_path / "rules"
    directory.mkdir()
    account = ACCOUNT_RULES.format(port=sim.port, every=every).replace(
        "client_id: 17}", f"client_id: 17, full_refresh_every: {full_refresh}}}"
    )
    (directory / "account.yaml").write_text(account)
    (directory / "rules.yaml").write_text(rules)
    daemon = DaemonProcess(
        directory,
        tmp_path / "state",
        tmp_path / "tradectl.log",
        extra=("--metrics", "127.0.0.1:0", *extra),
    )
    started.append(daemon.start())
    return daemon


def _dip_orders(wire: Wire) -> list[dict[str, Any]]:
    return [order for order in wire.placed() if str(order["orderRef"]).startswith("tctl:dip:")]


def _live_state(daemon: DaemonProcess) -> dict[str, int]:
    account: dict[str, Any] = daemon.status()["account"]
    live: dict[str, int] = account.get("live_state") or {}
    return live


@pytest.mark.parametrize("lost", ["execDetails", "orderStatus"])
def test_a_lost_fill_message_is_found_counted_and_corrected_without_a_wrong_order(
    lost: str, tmp_path: Path, sim: SimThread, wire: Wire, started: list[DaemonProcess]
) -> None:
    daemon = start_daemon(tmp_path, sim, started)
    wire.wait_placed(lambda placed: len(_dip_orders(wire)) == 3, 30, "the bracket")
    wait_until(lambda: _live_state(daemon).get("full_reads", 0) >= 1, 30, "the first pass")
    requests_before = collections.Counter(message["msg"] for message in wire.messages())

    assert sim.control.apply({"op": "drop_next", "message": lost}) == {"ok": True}
    sim.control.set_price("AAPL", 269.0)
    wait_until(lambda: sim.snapshot().positions["AAPL"].quantity == 10, 15, "the entry fill")

    # The fill's pass finds its status and its executions disagree, reads afresh, logs and
    # counts the difference; the fresh read wins.
    wait_until(lambda: _live_state(daemon).get("mismatches", 0) >= 1, 30, "the mismatch found")
    daemon.wait_message("streamed state differed from a fresh read", 30)
    mismatches = _live_state(daemon)["mismatches"]
    assert value(scrape(metrics_url(daemon)), "tradectl_live_state_mismatches_total") == mismatches
    requests = collections.Counter(message["msg"] for message in wire.messages())
    assert requests["reqExecutions"] > requests_before["reqExecutions"]
    wait_until(
        lambda: len(daemon.status()["account"]["fills_today"]) == 1, 30, "the fill in the state"
    )
    fills = daemon.status()["account"]["fills_today"]
    assert [fill["shares"] for fill in fills] == [10]

    # No wrong order meanwhile: the entry went once, the position is protected by the
    # bracket's stop and target for all 10 shares, and nothing was placed again.
    snapshot = sim.snapshot()
    assert snapshot.positions["AAPL"].quantity == 10
    assert len(snapshot.executions) == 1
    legs = {
        str(order.order_ref).rsplit(":", 1)[1]: order.remaining
        for order in snapshot.open_orders
        if str(order.order_ref).startswith("tctl:dip:")
    }
    assert legs == {"stop": 10, "target": 10}
    placed = _dip_orders(wire)
    assert len(placed) == 3, placed
    assert len({order["orderId"] for order in placed}) == 3
    assert_nothing_sent_twice(wire)
    assert wire.cancels() == []
    assert daemon.stop()[0] == 0


def test_the_periodic_refresh_finds_what_ib_does_not_stream_to_this_client(
    tmp_path: Path, sim: SimThread, wire: Wire, started: list[DaemonProcess]
) -> None:
    # IB streams an order's events to the client that placed it: an order placed by another
    # client id reaches the daemon's state only through a full read.
    daemon = start_daemon(tmp_path, sim, started, every="1s", full_refresh="5s")
    wire.wait_placed(lambda placed: len(_dip_orders(wire)) == 3, 30, "the bracket")
    wait_until(lambda: _live_state(daemon).get("full_reads", 0) >= 1, 30, "the first pass")
    other = IB()
    other.connect(sim.host, sim.port, clientId=5, timeout=10)
    try:
        other.placeOrder(Stock("MSFT", "SMART", "USD"), LimitOrder("BUY", 1, 100.0))
        wait_until(
            lambda: any(order.client_id == 5 for order in sim.snapshot().open_orders),
            15,
            "the other client's order",
        )
        wait_until(lambda: _live_state(daemon).get("mismatches", 0) >= 1, 30, "the refresh")
        daemon.wait_message("(the periodic full refresh)", 15)
        wait_until(
            lambda: daemon.status()["account"]["manual_orders"] == 1, 15, "the order in the state"
        )
    finally:
        other.disconnect()
    assert len(_dip_orders(wire)) == 3
    assert wire.cancels() == []
    assert daemon.stop()[0] == 0


def test_a_rule_edit_is_planned_from_the_live_state_without_a_request(
    tmp_path: Path, sim: SimThread, wire: Wire, started: list[DaemonProcess]
) -> None:
    daemon = start_daemon(tmp_path, sim, started)
    wire.wait_placed(lambda placed: len(_dip_orders(wire)) == 3, 30, "the bracket")
    wait_until(lambda: _live_state(daemon).get("full_reads", 0) >= 1, 30, "the first pass")
    seen = len(wire.messages())

    write_atomically(
        tmp_path / "rules" / "rules.yaml",
        BRACKET
        + "  rip: {symbol: MSFT, side: BUY, quantity: 5, entry: {limit: 300},\n"
        + "        stop_loss: {price: 290}, take_profit: {price: 330}}\n",
    )
    wire.wait_placed(
        lambda placed: sum(str(order["orderRef"]).startswith("tctl:rip:") for order in placed) == 3,
        30,
        "the new bracket",
    )

    after = collections.Counter(message["msg"] for message in wire.messages()[seen:])
    # Before: reqAllOpenOrders, reqCompletedOrders and reqExecutions ahead of every pass.
    for request in ("reqAllOpenOrders", "reqCompletedOrders", "reqExecutions", "reqPositions"):
        assert after[request] == 0, after
    assert after["placeOrder"] == 3
    assert _live_state(daemon) == {"full_reads": 1, "mismatches": 0}
    assert daemon.stop()[0] == 0
