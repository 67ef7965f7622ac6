"""The passes of a fill and of a rule edit, and the gateway's clock (docs/daemon.md, "Clock";
issue #17).

A pass that only a fill started plans on the clock measured earlier, anchored on the host's
monotonic clock, so its protective order goes out without a ``reqCurrentTime`` round trip (and
the pacer token it costs) before it. When the fill's own execution time, which the gateway
stamps, is later than that clock (the simulated gateway's clock jumped), the pass measures
first and plans on the gateway's new day. A rule edit's clock is measured when the edit begins,
during the debounce. Read from the sim's wire log and its snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.e2e_support import DaemonProcess, Wire, wait_until, wire_time, write_atomically
from tests.daemon.test_live_state_e2e import start_daemon as start_bracket_daemon
from tradectl.sim import SimState, SimThread, start_sim_thread
from tradectl.sim.state import BracketsSpec
from tradectl.timezones import TRADING_TIME_ZONE

pytestmark = pytest.mark.e2e

# The entry fills 5 shares at a time and the sim activates the children for the whole 10 on
# the first 5 (brackets.children_on_partial_fill: activate_full): the daemon must place
# standalone protection for the shares filled (docs/planning.md), a pass after each fill.
BRACKET = (
    "version: 1\nbrackets:\n"
    "  dip: {symbol: AAPL, side: BUY, quantity: 10, entry: {limit: 270},\n"
    "        stop_loss: {price: 260}, take_profit: {price: 290}, tif: GTC}\n"
)


OUTSIDE_RTH_BRACKET = BRACKET.replace("tif: GTC}", "tif: GTC, outside_rth: true}")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=TRADING_TIME_ZONE)  # type: ignore[misc]


def chunked_state(start: datetime | None) -> SimState:
    state = SimState.default()
    state.matching = state.matching.model_copy(update={"fill_chunk": 5})
    state.brackets = BracketsSpec(children_on_partial_fill="activate_full")
    if start is not None:
        state.calendar = "nyse"
        state.clock.start = start
        state.clock.frozen = True
    return state


@pytest.fixture
def sim_at(tmp_path: Path) -> Iterator[Any]:
    gateways: list[SimThread] = []

    def start(moment: datetime | None) -> SimThread:
        gateway = start_sim_thread(chunked_state(moment), port=0, wire_log=tmp_path / "wire.jsonl")
        gateways.append(gateway)
        return gateway

    yield start
    for gateway in gateways:
        gateway.stop()


def start_daemon(
    tmp_path: Path,
    sim: SimThread,
    started: list[DaemonProcess],
    *,
    rules: str = BRACKET,
    debounce: float = 0.15,
) -> DaemonProcess:
    # No timer pass and no periodic full read while the test runs: only the fills start passes.
    daemon = start_bracket_daemon(
        tmp_path, sim, started, rules=rules, extra=("--debounce", str(debounce))
    )
    daemon.wait_message("first sync complete", timeout=60)
    return daemon


def is_protective(message: dict[str, Any]) -> bool:
    return message["msg"] == "placeOrder" and str(message["fields"]["orderRef"]).endswith(
        (":stop", ":target")
    )


def fill_entry(sim: SimThread, wire: Wire) -> list[dict[str, Any]]:
    """Move AAPL through the entry's limit; the messages the daemon sent from then on, up to
    and including its first protective order."""
    seen = len(wire.messages())
    sim.control.set_price("AAPL", 265.0)

    def first_protective() -> list[dict[str, Any]] | None:
        since = wire.messages()[seen:]
        found = next((i for i, message in enumerate(since) if is_protective(message)), None)
        return None if found is None else since[: found + 1]

    messages: list[dict[str, Any]] = wait_until(first_protective, 30, "a protective order")
    return messages


def protected(sim: SimThread) -> bool:
    """The whole position, once filled, covered by exactly one stop and one take-profit."""
    snapshot = sim.snapshot()
    position = snapshot.positions.get("AAPL")
    sells = [order for order in snapshot.open_orders if order.action == "SELL"]
    return (
        position is not None
        and position.quantity == 10
        and len(sells) == 2
        and all(order.quantity == position.quantity for order in sells)
    )


def passes(daemon: DaemonProcess) -> int:
    return len(daemon.status()["passes"])


def test_a_fills_pass_sends_its_protective_order_without_measuring_the_clock_first(
    tmp_path: Path, sim_at: Any, started: list[DaemonProcess]
) -> None:
    sim: SimThread = sim_at(None)
    wire = Wire(tmp_path / "wire.jsonl")
    daemon = start_daemon(tmp_path, sim, started)
    assert len(wire.messages("reqCurrentTime")) >= 1, "the connection measured the clock"

    sent = fill_entry(sim, wire)
    assert [message["msg"] for message in sent] == ["placeOrder"], sent
    wait_until(lambda: protected(sim), 30, "the position protected by its stop and target")
    assert daemon.stop()[0] == 0


@pytest.mark.parametrize(
    ("start", "jump_to"),
    [
        # Across the close into the after-hours session (the bracket trades outside RTH).
        (ny(2026, 11, 24, 15, 50), ny(2026, 11, 24, 16, 30)),
        # Across midnight New York: another trading day.
        (ny(2026, 11, 24, 11, 0), ny(2026, 11, 25, 11, 0)),
        # Across a weekend: Friday to Monday.
        (ny(2026, 12, 4, 11, 0), ny(2026, 12, 7, 11, 0)),
    ],
    ids=["close", "midnight", "weekend"],
)
def test_a_fill_stamped_after_a_clock_jump_makes_its_pass_measure_before_it_plans(
    start: datetime,
    jump_to: datetime,
    tmp_path: Path,
    sim_at: Any,
    started: list[DaemonProcess],
) -> None:
    sim: SimThread = sim_at(start)
    wire = Wire(tmp_path / "wire.jsonl")
    daemon = start_daemon(tmp_path, sim, started, rules=OUTSIDE_RTH_BRACKET)
    before = passes(daemon)

    reply = sim.control.apply({"op": "advance", "to": jump_to.isoformat()})
    assert reply["ok"] is True, reply
    # The GTC bracket outlives the jump, so nothing but the fill starts the next pass.
    assert passes(daemon) == before

    sent = fill_entry(sim, wire)
    names = [message["msg"] for message in sent]
    # The fill's time (after the jump) is later than the anchored clock (before it): the pass
    # measures before it plans, and on a new trading day reads the state afresh.
    assert "reqCurrentTime" in names, names
    if jump_to.date() != start.date():
        assert names.index("reqCurrentTime") < names.index("reqExecutions") < len(names) - 1
    assert sent[-1]["market"] == ("after_hours" if jump_to.hour >= 16 else "regular")
    wait_until(lambda: protected(sim), 30, "the position protected by its stop and target")
    assert daemon.stop()[0] == 0


def test_a_rule_edits_clock_is_measured_during_the_debounce_not_before_its_order(
    tmp_path: Path, sim_at: Any, started: list[DaemonProcess]
) -> None:
    sim: SimThread = sim_at(None)
    wire = Wire(tmp_path / "wire.jsonl")
    debounce = 0.5
    daemon = start_daemon(tmp_path, sim, started, debounce=debounce)
    wire.wait_placed(lambda placed: len(placed) == 3, 30, "the bracket")
    seen = len(wire.messages())

    write_atomically(tmp_path / "rules" / "rules.yaml", BRACKET.replace("limit: 270", "limit: 271"))

    def first_order() -> list[dict[str, Any]] | None:
        since = wire.messages()[seen:]
        found = next((i for i, m in enumerate(since) if m["msg"] == "placeOrder"), None)
        return None if found is None else since[: found + 1]

    sent = wait_until(first_order, 30, "the entry's modify")
    assert [message["msg"] for message in sent] == ["reqCurrentTime", "placeOrder"], sent
    assert sent[1]["fields"]["lmtPrice"] == 271.0
    # Measured when the edit began, not at the start of the pass a debounce later.
    assert wire_time(sent[1]) - wire_time(sent[0]) >= debounce / 2
    assert daemon.stop()[0] == 0
