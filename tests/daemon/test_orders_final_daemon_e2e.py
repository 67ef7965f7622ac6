"""The daemon, after a disconnect during which one of its orders filled, brings that order's
row in the journal's ``orders`` table to ``Filled`` from IB's completed orders, so the order
reaches the ``orders`` records dataset (docs/records.md, "When an order's final status is
recorded")."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.daemon.e2e_support import DaemonProcess, Wire, ladder, wait_until
from tests.daemon.test_e2e import owned, rules_dir, start_daemon
from tradectl.journal.store import JOURNAL_FILE
from tradectl.sim import SimThread

pytestmark = pytest.mark.e2e


def level_rows(state: Path, order_ref: str) -> list[tuple[int, str, float]]:
    """(permId, status, filled) of the journal's rows of one order, read beside the daemon."""
    db = sqlite3.connect(f"{(state / JOURNAL_FILE).resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT perm_id, status, filled FROM orders WHERE order_ref = ? ORDER BY perm_id",
            (order_ref,),
        ).fetchall()
    finally:
        db.close()
    return [tuple(row) for row in rows]


def test_a_level_filled_while_the_daemon_was_disconnected_is_journaled_filled_on_reconnect(
    tmp_path: Path, sim: SimThread, wire: Wire, started: list[DaemonProcess]
) -> None:
    price = sim.snapshot().prices["AAPL"]
    top = round(price - 1.0, 2)
    directory = rules_dir(tmp_path, sim, "version: 1\nscales:\n" + ladder("dip", "AAPL", top))
    daemon = start_daemon(started, directory, tmp_path)
    placed = wire.wait_placed(lambda placed: len(owned(placed, "dip")) == 2, 30, "the ladder")
    [first] = [order for order in placed if float(order["lmtPrice"]) == top]
    state = tmp_path / "state"
    wait_until(lambda: level_rows(state, first["orderRef"]), 15, "the level's journal row")

    mark = len(daemon.lines())
    sim.control.refuse_connections(6)
    daemon.wait_message("disconnected from the gateway", after=mark)
    sim.control.set_price("AAPL", round(top - 0.5, 2))
    [level] = [o for o in sim.snapshot().orders if o.order_ref == first["orderRef"]]
    assert level.status == "Filled"
    assert level_rows(state, first["orderRef"])[-1][1] != "Filled"

    daemon.wait_message("resynced with the gateway", timeout=30, after=mark)
    rows = wait_until(
        lambda: (
            (found := level_rows(state, first["orderRef"]))[-1][1:] == ("Filled", level.filled)
            and found
        ),
        15,
        "the level's row to be Filled",
    )
    assert rows[-1][0] == level.perm_id
    assert daemon.stop()[0] == 0
