"""Crash-restart: a 200-order rebalance; the daemon is SIGKILLed at random points and restarted
each time; after the last restart it converges, and the wire log shows no intent sent twice, no
order owed to no intent, no limit broken and no manual order touched."""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import pytest

from .chaos_support import (
    DAEMON_CLIENT_ID,
    audit,
    daemons,
    gateway,
    gateway_converged,
    place_manual_orders,
    rebalance_symbols,
    records_survive_sigkill,
    rules_text,
    target_weights,
    wait_converged,
    wait_for,
    write_rules,
)
from .report import record_figures

pytestmark = pytest.mark.e2e
SEED = int(os.environ.get("TRADECTL_CHAOS_SEED", "9"))
HOOKS = ("journal", "send")


def kill_points(count: int, rng: random.Random) -> list[str]:
    """Where to kill: the IB adapter's crash hooks (exactly between journal and send, and
    between send and acknowledgement), after a random number of orders on the wire, or at a
    random moment (start-up, resync, market data, a quiet pass). The hooks come early, while
    there are still orders to send: they fire on a run's first intent group."""
    points = []
    for _ in range(count):
        if rng.random() < 0.5:
            points.append(f"orders:{rng.randrange(1, 60)}")
        else:
            points.append(f"time:{rng.uniform(0.5, 12.0):.2f}")
    hooks = HOOKS if count > 3 else HOOKS[1:]
    for index, hook in enumerate(hooks):
        points[1 + 2 * index] = f"hook:{hook}"
    return points


def daemon_orders(wire_log: Path) -> int:
    if not wire_log.exists():
        return 0
    text = wire_log.read_text(errors="replace")
    return sum(
        1
        for line in text.splitlines()
        if '"placeOrder"' in line and f'"client_id": {DAEMON_CLIENT_ID},' in line
    )


def crash_restart(
    tmp_path: Path, kills: int, *, name: str, clock_jump: timedelta | None = None
) -> dict[str, object]:
    """``clock_jump``: how far the gateway's clock moves on before the last restart. An order
    a kill cut off between the journal's ``sent`` and the wire is planned again only once the
    acknowledgement timeout (60 s on the gateway's clock) has passed; the jump lets it pass at
    once."""
    rng = random.Random(SEED)
    symbols = rebalance_symbols()
    points = kill_points(kills, rng)
    state_dir = tmp_path / "state"
    log_path = tmp_path / "tradectl.log"
    with gateway(tmp_path) as (sim, wire_log), daemons() as started:
        manual = place_manual_orders(sim)
        rules = write_rules(
            tmp_path / "rules", rules_text(sim.port, records_dir=tmp_path / "records")
        )
        killed_after_orders: list[int] = []
        hooks_fired = 0
        tilted = False
        retargets = 0
        for point in points:
            if gateway_converged(sim, target_weights(tilted=tilted)):
                # Nothing left to send: a new rebalance (the other weights, half of it sells),
                # so that every kill lands on a daemon with orders to send.
                tilted = not tilted
                retargets += 1
                write_rules(
                    rules,
                    rules_text(
                        sim.port,
                        records_dir=tmp_path / "records",
                        tilted=tilted,
                        variant=retargets,
                    ),
                )
            kind, _, argument = point.partition(":")
            before = daemon_orders(wire_log)
            begun = time.monotonic()
            if kind == "hook":
                daemon = started.start(
                    rules, state_dir, log_path, TRADECTL_TEST_CRASH_AFTER=argument
                )
                process = daemon.process
                assert process is not None
                # The hook kills the process on its first intent group; a run with nothing left
                # to send never reaches it and is killed at a quiet moment instead.
                wait_for(
                    lambda p=process, b=begun: p.poll() is not None or time.monotonic() - b > 20,
                    30,
                    f"the {point} crash",
                )
                hooks_fired += process.poll() == -signal.SIGKILL
            elif kind == "orders":
                daemon = started.start(rules, state_dir, log_path)
                wanted = before + int(argument)
                # When fewer orders are left to send, the kill lands on a quiet moment instead.
                wait_for(
                    lambda w=wanted, b=begun: (
                        daemon_orders(wire_log) >= w or time.monotonic() - b > 40
                    ),
                    60,
                    point,
                )
            else:
                daemon = started.start(rules, state_dir, log_path)
                deadline = begun + float(argument)
                wait_for(lambda d=deadline: time.monotonic() >= d, 30, point)
            daemon.kill()
            killed_after_orders.append(daemon_orders(wire_log) - before)
            if len(killed_after_orders) == 1:
                # A person places more orders in TWS while the daemon is down.
                manual += place_manual_orders(sim, limit=2.0)
        if clock_jump is not None:
            sim.control.advance(seconds=clock_jump.total_seconds())
        restarted = time.time()
        daemon = started.start(rules, state_dir, log_path)
        try:
            converged_at = wait_converged(
                sim, state_dir, target_weights(tilted=tilted), timeout=180
            )
        finally:
            code, _ = daemon.stop(timeout=20)
        assert code == 0, "the daemon did not stop cleanly after converging"
        result = audit(
            wire_log,
            sim,
            state_dir / "journal.sqlite3",
            manual,
            allowed=set(symbols),
            prices=sim.snapshot().prices,
            targets=target_weights(tilted=tilted),
        )
    records = records_survive_sigkill(state_dir, tmp_path / "records", kills, rng)
    figures: dict[str, object] = {
        "seed": SEED,
        "kills": kills,
        "kill points": points,
        "crash hooks that fired": hooks_fired,
        "rebalances (rule edits while the daemon was down)": 1 + retargets,
        "orders on the wire between each start and its kill": killed_after_orders,
        "converged after the last restart (s)": round(converged_at - restarted, 1),
        **result.figures(),
        "records": asdict(records),
    }
    record_figures(name, figures)
    assert result.clean, result.details
    assert records.journal_integrity == "ok"
    assert records.fills_in_journal == result.executions_at_gateway
    assert (records.fills_missing, records.fills_duplicated) == (0, 0)
    assert result.orders_placed >= len(symbols)
    return figures


@pytest.mark.chaos
@pytest.mark.timeout(3600)
def test_crash_restart_long(tmp_path: Path) -> None:
    crash_restart(tmp_path, kills=20, name="crash-restart-long")
