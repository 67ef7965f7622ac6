"""IB's error 100 (docs/daemon.md, "Pacing"): the gateway dropped a message and does not say
which. The daemon must not wait out the acknowledgement timeout: a full read settles what was
sent, the pass after it places what never arrived, and nothing goes twice. The sim drops the
order deterministically (``pace_out_next``, docs/sim.md)."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from tests.daemon.e2e_support import (
    ACCOUNT_RULES,
    DaemonProcess,
    Wire,
    ladder,
    wait_until,
    wire_time,
)
from tests.daemon.test_e2e import assert_nothing_sent_twice
from tradectl.runtime.acting import ACK_TIMEOUT
from tradectl.sim import SimThread

pytestmark = pytest.mark.e2e

# Well inside the 60 s acknowledgement timeout the daemon waited before, with room for a
# loaded machine.
PROMPT_SECONDS = 20.0


def test_an_order_ib_dropped_with_error_100_is_placed_again_promptly_and_once(
    tmp_path: Path, sim: SimThread, wire: Wire, started: list[DaemonProcess]
) -> None:
    assert sim.control.apply({"op": "pace_out_next", "message": "placeOrder"}) == {"ok": True}
    directory = tmp_path / "rules"
    directory.mkdir()
    (directory / "account.yaml").write_text(ACCOUNT_RULES.format(port=sim.port, every="1h"))
    (directory / "rules.yaml").write_text("version: 1\nscales:\n" + ladder("dip", "MSFT", 150))
    daemon = DaemonProcess(directory, tmp_path / "state", tmp_path / "tradectl.log")
    started.append(daemon.start())

    def accepted() -> list[dict[str, object]]:
        return [message for message in wire.messages("placeOrder") if not message.get("dropped")]

    daemon.wait_message("IB dropped a message for pacing", 60)
    dropped = [message for message in wire.messages("placeOrder") if message.get("dropped")]
    assert len(dropped) == 1
    lost_ref = dropped[0]["fields"]["orderRef"]

    def both_levels_working() -> bool:
        refs = {str(order.order_ref) for order in sim.snapshot().open_orders}
        return len(refs) == 2 and lost_ref in refs

    deadline = PROMPT_SECONDS + 40.0

    wait_until(both_levels_working, deadline, "the dropped level placed again")
    again = [message for message in accepted() if message["fields"]["orderRef"] == lost_ref]
    assert len(again) == 1, again
    waited = wire_time(again[0]) - wire_time(dropped[0])
    assert waited < PROMPT_SECONDS < ACK_TIMEOUT.total_seconds(), waited

    # Exactly one order per level at the gateway, and no orderRef accepted twice.
    snapshot = sim.snapshot()
    refs = collections.Counter(str(order.order_ref) for order in snapshot.open_orders)
    assert len(refs) == 2 and set(refs.values()) == {1}, refs
    accepted_refs = collections.Counter(message["fields"]["orderRef"] for message in accepted())
    assert set(accepted_refs.values()) == {1}, accepted_refs
    assert_nothing_sent_twice(wire)
    assert wire.cancels() == []
    assert daemon.stop()[0] == 0
