"""`tradectl run` started on a Saturday on the sim's NYSE clock (issue #13; docs/planning.md,
"Market time" and "Re-entry is explicit").

The sim's clock is frozen and moved only by its `advance` op; the daemon measures the gateway's
clock at every pass (docs/daemon.md, "Clock"), so after each jump it waits for passes that
started after it. Everything asserted is read from the sim: its wire log and its snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.e2e_support import ACCOUNT_RULES, DaemonProcess, Wire, wait_until
from tradectl.sim import SimState, SimThread, start_sim_thread
from tradectl.timezones import TRADING_TIME_ZONE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=TRADING_TIME_ZONE)  # type: ignore[misc]


SATURDAY = ny(2026, 12, 5, 10, 0)

# Market-order allocations (20% of half the NAV each) and two DAY brackets whose entry limits
# the market never reaches (NVDA at 180, AMZN at 225), so IB expires them at Monday's close;
# only the second one says `reenter: daily`.
RULES = """\
version: 1
allocations:
  core:
    capital: {fraction_of_nav: 0.5}
    min_trade_value: 0
    order: {type: market}
    targets: {AAPL: 0.2, MSFT: 0.2}
brackets:
  nvda-dip:
    symbol: NVDA
    side: BUY
    quantity: 10
    entry: {limit: 120.0}
    stop_loss: {price: 110.0}
    take_profit: {price: 140.0}
    tif: DAY
  amzn-daily:
    symbol: AMZN
    side: BUY
    quantity: 10
    entry: {limit: 150.0}
    stop_loss: {price: 140.0}
    take_profit: {price: 170.0}
    tif: DAY
    reenter: daily
"""


@pytest.fixture
def weekend_sim(tmp_path: Path) -> Iterator[SimThread]:
    state = SimState.default()
    state.calendar = "nyse"
    state.clock.start = SATURDAY
    state.clock.frozen = True
    gateway = start_sim_thread(state, port=0, wire_log=tmp_path / "wire.jsonl")
    yield gateway
    gateway.stop()


def rules_dir(directory: Path, port: int, client_id: int) -> Path:
    directory.mkdir()
    account = ACCOUNT_RULES.format(port=port, every="1s").replace(
        "client_id: 17", f"client_id: {client_id}"
    )
    (directory / "account.yaml").write_text(account)
    (directory / "rules.yaml").write_text(RULES)
    return directory


def passes_since(daemon: DaemonProcess, mark: datetime, count: int) -> None:
    """Wait for ``count`` completed passes that began after ``mark`` (host time)."""

    def done() -> bool:
        passes = daemon.status()["passes"]
        return (
            sum(1 for p in passes if datetime.fromisoformat(p["started"]) > mark and p["finished"])
            >= count
        )

    wait_until(done, 60, f"{count} passes after {mark.isoformat()}")


def advance(sim: SimThread, daemon: DaemonProcess, to: datetime) -> None:
    """Jump the sim's clock, then wait for two passes that began after the jump (a pass in
    flight may have read the clock before it)."""
    mark = datetime.now(UTC)
    reply = sim.control.apply({"op": "advance", "to": to.isoformat()})
    assert reply["ok"] is True, reply
    passes_since(daemon, mark, 2)


def owned_refs(orders: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    """The placeOrder fields of ``rule``'s orders."""
    return [order for order in orders if str(order.get("orderRef")).startswith(f"tctl:{rule}:")]


def test_started_on_a_saturday_waits_for_monday_converges_and_does_not_reenter_an_expired_day_entry(
    tmp_path: Path, weekend_sim: SimThread, started: list[DaemonProcess]
) -> None:
    sim = weekend_sim
    wire = Wire(tmp_path / "wire.jsonl")
    rules = rules_dir(tmp_path / "rules", sim.port, client_id=17)
    daemon = DaemonProcess(rules, tmp_path / "state", tmp_path / "tradectl.log")
    started.append(daemon.start())
    daemon.wait_message("first sync complete", timeout=60)

    # `plan` (read-only, another client id, the daemon's journal) says when each intent goes.
    shown = daemon.cli("plan", str(rules_dir(tmp_path / "plan-rules", sim.port, client_id=18)))
    assert shown.returncode == 2, shown.stdout + shown.stderr
    for symbol in ("AAPL", "MSFT"):
        line = next(line for line in shown.stdout.splitlines() if f" {symbol} " in line)
        assert "held until Mon 2026-12-07 09:35" in line, shown.stdout
    entry = next(line for line in shown.stdout.splitlines() if "nvda-dip" in line)
    assert "held until Mon 2026-12-07 04:00" in entry, shown.stdout
    assert wire.placed() == [], "sent on a Saturday"

    advance(sim, daemon, ny(2026, 12, 6, 12, 0))
    assert wire.placed() == [], "sent on a Sunday"

    # Monday's pre-market: the DAY limit entry may rest at IB (held until the open, 399); no
    # market order goes before the allocation window opens.
    advance(sim, daemon, ny(2026, 12, 7, 8, 0))
    entry_orders = wire.wait_placed(
        lambda placed: (
            len(owned_refs(placed, "nvda-dip")) >= 3 and len(owned_refs(placed, "amzn-daily")) >= 3
        ),
        30,
        "the brackets",
    )
    assert all(order["orderType"] != "MKT" for order in entry_orders)
    assert owned_refs(entry_orders, "core") == []
    assert sim.snapshot().positions == {}

    advance(sim, daemon, ny(2026, 12, 7, 10, 0))
    wait_until(
        lambda: {"AAPL", "MSFT"} <= {s for s, p in sim.snapshot().positions.items() if p.quantity},
        60,
        "the allocation to converge after the open",
    )
    snapshot = sim.snapshot()
    nav = snapshot.net_liquidation
    for symbol in ("AAPL", "MSFT"):
        weight = snapshot.positions[symbol].quantity * snapshot.prices[symbol] / (0.5 * nav)
        assert weight == pytest.approx(0.2, abs=0.01), (symbol, weight)
    allocation_orders = owned_refs(wire.placed(), "core")
    assert {order["orderType"] for order in allocation_orders} == {"MKT"}
    # Every order went while its market was on: the sim stamps each message with its phase.
    phases = {(m["fields"]["orderType"], m["market"]) for m in wire.messages("placeOrder")}
    assert phases <= {("LMT", "pre_market"), ("STP", "pre_market"), ("MKT", "regular")}, phases

    # IB expires the unfilled DAY entries (and their children) at Monday's close.
    advance(sim, daemon, ny(2026, 12, 7, 16, 30))
    working = [{"orderRef": order.order_ref} for order in sim.snapshot().open_orders]
    assert owned_refs(working, "nvda-dip") == [], "the DAY bracket still works after the close"
    assert owned_refs(working, "amzn-daily") == []
    # `reenter: daily` waits for the next trading day of the gateway's clock, not the host's.
    advance(sim, daemon, ny(2026, 12, 7, 18, 0))
    monday = wire.placed()
    assert len(owned_refs(monday, "amzn-daily")) == 3, "re-entered on the day it expired"

    advance(sim, daemon, ny(2026, 12, 8, 10, 0))
    advance(sim, daemon, ny(2026, 12, 8, 10, 30))
    tuesday = wire.placed()[len(monday) :]
    assert owned_refs(tuesday, "nvda-dip") == [], "the expired DAY entry was entered again"
    assert len(owned_refs(tuesday, "amzn-daily")) == 3, "reenter: daily enters once on Tuesday"
    assert len(tuesday) == 3, tuesday
    assert daemon.stop()[0] == 0
