"""An order that reaches its final status while no tradectl process is connected still reaches
the journal's ``orders`` table and the ``orders`` records dataset (docs/records.md, "When an
order's final status is recorded"): the next run reads it among IB's completed orders."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from tradectl.cli import main

from .conftest import Gateway, Outcome, write_rules

pytestmark = pytest.mark.e2e

ENTRY_REF_END = ":entry"
BRACKET = {
    "symbol": "AAPL",
    "side": "BUY",
    "quantity": 100,
    "entry": {"limit": 99.0},
    "stop_loss": {"price": 95.0},
    "take_profit": {"price": 110.0},
}


def entry_rows(state: Path) -> list[tuple[int, int, int, str, float]]:
    """(client id, order id, permId, status, filled) of every journal row of the entry."""
    with sqlite3.connect(state / "journal.sqlite3") as db:
        rows = db.execute(
            "SELECT client_id, order_id, perm_id, status, filled FROM orders "
            "WHERE order_ref LIKE ? ORDER BY perm_id",
            (f"%{ENTRY_REF_END}",),
        ).fetchall()
    return [tuple(row) for row in rows]


def test_an_entry_filled_while_apply_was_not_running_reaches_the_orders_dataset_once(
    gateway: Gateway,
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "state"
    rules = write_rules(tmp_path / "rules", gateway, brackets={"dip": BRACKET})
    placed = apply_in_process(rules, state_dir=state)
    assert placed.code == 0, placed.out + placed.err
    assert {row[3] for row in entry_rows(state)} <= {"PreSubmitted", "Submitted"}

    # No tradectl process is connected while the entry fills.
    gateway.sim.control.set_price("AAPL", 98.5)
    [entry] = [o for o in gateway.sim.snapshot().orders if o.order_ref.endswith(ENTRY_REF_END)]
    assert entry.status == "Filled"

    again = apply_in_process(rules, state_dir=state)
    assert again.code == 0, again.out + again.err

    rows = entry_rows(state)
    assert rows, "the entry has no row in the journal's orders table"
    latest = max(rows, key=lambda row: row[2] != 0)
    assert latest[2] == entry.perm_id
    assert latest[3:] == ("Filled", 100.0), rows
    assert all(row[3] == "Filled" for row in rows), rows

    today = datetime.now(ZoneInfo("America/New_York")).date().isoformat()
    out = tmp_path / "orders.parquet"
    capsys.readouterr()
    code = main(
        ["records", "export", "--since", today, "--dataset", "orders", "--out", str(out),
         "--state-dir", str(state)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    exported = pq.read_table(out).to_pylist()
    entries = [row for row in exported if str(row["order_ref"]).endswith(ENTRY_REF_END)]
    assert len(entries) == 1, exported
    [row] = entries
    assert (row["status"], row["filled"], row["perm_id"]) == ("Filled", 100.0, entry.perm_id)
    assert (row["executions"], row["average_price"]) == (1, pytest.approx(entry.avg_fill_price))
