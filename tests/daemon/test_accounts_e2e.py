"""Two daemons, one per account, on one gateway login that manages both (docs/daemon.md,
"Several accounts on one login"): each trades and protects only its own account, although
their rules, and so their orderRefs, are the same."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.e2e_support import ACCOUNT_RULES, DaemonProcess, ladder, wait_until
from tradectl.sim import SimState, SimThread, start_sim_thread

pytestmark = pytest.mark.e2e

FIRST, SECOND = "DU0000001", "DU0000002"

# Both accounts' rules: the same names, so the same orderRefs.
RULES = """\
allocations:
  core:
    capital: {amount: 20000}
    order: {type: market}
    targets: {AAPL: 0.3}
scales:
""" + ladder("dip", "MSFT", 150)


@pytest.fixture
def two_accounts(tmp_path: Path) -> Iterator[SimThread]:
    state = SimState.from_dict(
        {
            "account": {"id": FIRST, "cash": 1_000_000},
            "linked_accounts": [{"id": SECOND, "cash": 1_000_000}],
            "positions": [
                {"symbol": "NVDA", "quantity": 30, "avg_cost": 100.0, "account": FIRST},
                {"symbol": "AAPL", "quantity": 40, "avg_cost": 100.0, "account": SECOND},
            ],
            "symbols": {
                "AAPL": {"price": 100.0, "con_id": 265598},
                "MSFT": {"price": 200.0, "con_id": 272093},
                "NVDA": {"price": 50.0, "con_id": 4815747},
            },
        }
    )
    gateway = start_sim_thread(state, port=0, wire_log=tmp_path / "wire.jsonl")
    yield gateway
    gateway.stop()


def daemon_for(tmp_path: Path, sim: SimThread, account: str, client_id: int) -> DaemonProcess:
    rules = tmp_path / account / "rules"
    rules.mkdir(parents=True)
    text = ACCOUNT_RULES.format(port=sim.port, every="1s") + RULES
    (rules / "rules.yaml").write_text(
        text.replace(f"id: {FIRST}", f"id: {account}").replace(
            "client_id: 17", f"client_id: {client_id}"
        )
    )
    return DaemonProcess(rules, tmp_path / account / "state", tmp_path / f"{account}.log")


def settled(daemon: DaemonProcess) -> bool:
    passes: list[dict[str, Any]] = daemon.status()["passes"]
    summary = passes[-1].get("summary") or {} if passes else {}
    return bool(passes) and summary.get("planned", 1) == 0


def test_two_daemons_on_two_accounts_touch_only_their_own(
    tmp_path: Path, two_accounts: SimThread, started: list[DaemonProcess]
) -> None:
    sim = two_accounts
    first = daemon_for(tmp_path, sim, FIRST, 21).start()
    started.append(first)
    wait_until(lambda: sim.snapshot(FIRST).positions.get("AAPL"), 60, "the first account's AAPL")
    second = daemon_for(tmp_path, sim, SECOND, 22).start()
    started.append(second)
    # Its status answers once it has started: ask no sooner.
    second.wait_message("first sync complete", timeout=60)

    wait_until(lambda: settled(first) and settled(second), 90, "both daemons to converge")

    one, two = sim.snapshot(FIRST), sim.snapshot(SECOND)
    # 6,000 of AAPL at 100 each; the second account already held 40 of its 60.
    assert {s: p.quantity for s, p in one.positions.items()} == {"AAPL": 60, "NVDA": 30}
    assert {s: p.quantity for s, p in two.positions.items()} == {"AAPL": 60}
    assert [e.shares for e in two.executions] == [20]
    # Each account has its own ladder, placed by its own daemon, under the same orderRefs.
    for snapshot, client_id in ((one, 21), (two, 22)):
        ladder = sorted(
            (o.order_ref, o.client_id, o.lmt_price)
            for o in snapshot.open_orders
            if o.order_ref.startswith("tctl:dip:")
        )
        assert [(ref.rsplit(":", 1)[1], cid, price) for ref, cid, price in ladder] == [
            ("L1", client_id, 150.0),
            ("L2", client_id, 149.0),
        ]
    assert sorted(o.order_ref for o in one.open_orders) == sorted(
        o.order_ref for o in two.open_orders
    )
    # Nothing was ever cancelled: neither daemon took the other's orders for its own.
    assert not [o for o in [*one.orders, *two.orders] if o.status == "Cancelled"]
