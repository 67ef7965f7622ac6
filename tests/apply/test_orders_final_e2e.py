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
from ib_insync import IB

from tradectl.cli import main

from .conftest import Gateway, Outcome, wait_until, write_rules
from .test_protection_e2e import BRACKET

pytestmark = pytest.mark.e2e

ENTRY_REF_END = ":entry"


def entry_rows(state: Path) -> list[tuple[int, int, int, str, float]]:
    """(client id, order id, permId, status, filled) of every journal row of the entry."""
    with sqlite3.connect(state / "journal.sqlite3") as db:
        rows = db.execute(
            "SELECT client_id, order_id, perm_id, status, filled FROM orders "
            "WHERE order_ref LIKE ? ORDER BY perm_id",
            (f"%{ENTRY_REF_END}",),
        ).fetchall()
    return [tuple(row) for row in rows]


def cancel_everything_from_another_client(gateway: Gateway) -> None:
    """The user's own tool cancels every order (IB's global cancel) while tradectl is away."""
    other = IB()
    other.connect("127.0.0.1", gateway.sim.port, clientId=99, timeout=10)
    try:
        other.reqGlobalCancel()
        wait_until(lambda: not gateway.sim.snapshot().open_orders, timeout=30)
    finally:
        other.disconnect()


def fill_at_the_limit(gateway: Gateway) -> None:
    gateway.sim.control.set_price("AAPL", 98.5)


@pytest.mark.parametrize(
    ("end_unseen", "status", "filled"),
    [
        (fill_at_the_limit, "Filled", 100.0),
        (cancel_everything_from_another_client, "Cancelled", 0.0),
    ],
    ids=["filled", "cancelled"],
)
def test_an_entry_that_ended_while_apply_was_not_running_reaches_the_orders_dataset_once(
    gateway: Gateway,
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    end_unseen: Callable[[Gateway], None],
    status: str,
    filled: float,
) -> None:
    state = tmp_path / "state"
    rules = write_rules(tmp_path / "rules", gateway, brackets={"dip": BRACKET})
    placed = apply_in_process(rules, state_dir=state)
    assert placed.code == 0, placed.out + placed.err
    assert {row[3] for row in entry_rows(state)} <= {"PreSubmitted", "Submitted"}

    end_unseen(gateway)
    [entry] = [o for o in gateway.sim.snapshot().orders if o.order_ref.endswith(ENTRY_REF_END)]
    assert (entry.status, entry.filled) == (status, filled)

    again = apply_in_process(rules, state_dir=state)
    assert again.code == 0, again.out + again.err

    rows = entry_rows(state)
    assert rows, "the entry has no row in the journal's orders table"
    assert max(row[2] for row in rows) == entry.perm_id
    assert all(row[3:] == (status, filled) for row in rows), rows

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
    assert (row["status"], row["filled"], row["perm_id"]) == (status, filled, entry.perm_id)
    executions = 1 if filled else 0
    average = pytest.approx(entry.avg_fill_price) if filled else None
    assert (row["executions"], row["average_price"]) == (executions, average)
