"""The daemon's live state (docs/daemon.md, "Live state"): orders, executions and positions
come from IB's streams, and a lost message is found, counted and corrected by a fresh read
before it can cause a wrong order. The sim swallows the message (``drop_next``, docs/sim.md)."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.e2e_support import ACCOUNT_RULES, DaemonProcess, Wire, wait_until
from tradectl.sim import SimThread

pytestmark = pytest.mark.e2e

BRACKET = (
    "version: 1\nbrackets:\n"
    "  dip: {symbol: AAPL, side: BUY, quantity: 10, entry: {limit: 270},\n"
    "        stop_loss: {price: 260}, take_profit: {price: 290}}\n"
)


def _start(tmp_path: Path, sim: SimThread, started: list[DaemonProcess]) -> DaemonProcess:
    directory = tmp_path / "rules"
    directory.mkdir()
    account = ACCOUNT_RULES.format(port=sim.port, every="1h").replace(
        "client_id: 17}", "client_id: 17, full_refresh_every: 1h}"
    )
    (directory / "account.yaml").write_text(account)
    (directory / "rules.yaml").write_text(BRACKET)
    daemon = DaemonProcess(directory, tmp_path / "state", tmp_path / "tradectl.log")
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
    daemon = _start(tmp_path, sim, started)
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
    assert wire.cancels() == []
    assert daemon.stop()[0] == 0
