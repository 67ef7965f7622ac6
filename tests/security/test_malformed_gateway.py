"""A malformed gateway cannot kill the daemon: garbled, truncated, non-UTF-8, unknown,
out-of-order and oversized messages from the sim. The daemon logs each, drops the connection
when it could not decode something, resyncs, carries on, sends no order because of them and
keeps its memory bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon.e2e_support import DaemonProcess, Wire, wait_until
from tradectl.ib.inbound_guard import MAX_FRAME_BYTES, oversized_frame
from tradectl.sim import SimThread
from tradectl.sim.faults import MALFORMED, malformed_frames

from .support import ladder_rules

pytestmark = pytest.mark.e2e

# Kinds after which the daemon cannot trust its view: it drops the connection and resyncs.
UNDECODABLE = (
    "garbled_fields",
    "truncated",
    "bad_id",
    "non_utf8",
    "oversized_field",
    "oversized_frame",
)
# Well-formed but unexpected: logged or ignored, the connection stays.
TOLERATED = ("unknown_message", "out_of_order")
RSS_GROWTH_LIMIT_KB = 64 * 1024


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_every_kind_is_covered() -> None:
    assert set(MALFORMED) == set(UNDECODABLE) | set(TOLERATED)
    with pytest.raises(ValueError, match="unknown malformed kind"):
        malformed_frames("nope")


def test_an_oversized_frame_is_seen_from_its_header() -> None:
    [announced] = malformed_frames("oversized_frame")
    assert oversized_frame(announced[:4]) == 1 << 30
    assert oversized_frame(b"".join(malformed_frames("out_of_order"))) is None
    assert MAX_FRAME_BYTES < 1 << 30


def test_the_daemon_survives_a_malformed_gateway_and_sends_nothing_because_of_it(
    tmp_path: Path, sim: SimThread
) -> None:
    wire = Wire(tmp_path / "wire.jsonl")
    rules = ladder_rules(tmp_path, sim.port)
    # Debug: a pass that sends nothing logs "pass complete" only at that level.
    daemon = DaemonProcess(
        rules, tmp_path / "state", tmp_path / "tradectl.log", extra=("--log-level", "debug")
    ).start()
    try:
        assert daemon.process is not None
        wire.wait_placed(lambda placed: len(placed) >= 2, 60, "the ladder")
        daemon.wait_message("pass complete", timeout=60)
        actions = wire.order_actions()
        working = sorted(order.order_ref for order in sim.snapshot().open_orders)
        rss_before = rss_kb(daemon.process.pid)
        for _ in range(3):
            for kind in UNDECODABLE:
                mark = len(daemon.lines())
                sim.control.send_malformed(kind)
                daemon.wait_message("the gateway sent", timeout=60, after=mark)
                resynced = daemon.wait_message("resynced with the gateway", timeout=60, after=mark)
            # Between passes, so that no listing of open orders is outstanding: an end sent
            # while one is cannot be told from the real one (docs/security.md).
            daemon.wait_message("pass complete", timeout=60, after=resynced)
            mark = len(daemon.lines())
            for kind in TOLERATED:
                sim.control.send_malformed(kind)
            daemon.wait_message("unknown to this client", timeout=30, after=0)
            daemon.wait_message("nobody asked for", timeout=30, after=mark)
        status = wait_until(
            lambda: (s := daemon.status())["connection"]["state"] == "connected" and s,
            60,
            "a connected daemon",
        )
        assert status["rules"]["health"] == "ok"
        assert daemon.process.poll() is None
        assert wire.order_actions() == actions
        assert sorted(order.order_ref for order in sim.snapshot().open_orders) == working
        growth = rss_kb(daemon.process.pid) - rss_before
        assert growth < RSS_GROWTH_LIMIT_KB, f"RSS grew by {growth} kB"
        faults = [line for line in daemon.lines() if "the gateway sent" in line["message"]]
        assert len(faults) == 3 * len(UNDECODABLE)
        assert max(len(line["message"]) for line in faults) < 1000
        assert daemon.stop(30)[0] == 0
    finally:
        daemon.kill()
