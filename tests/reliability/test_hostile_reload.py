"""Hostile rule sets fed to a running daemon by hot reload: it never crashes, never sends or
cancels an order because of them, logs each one with file:line:col, and keeps the last good
rule set (generation and working orders) in force."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tradectl.schemas.loader import RuleError, load_rule_set
from tradectl.sim import SimState, start_sim_thread
from tradectl.sim.wirelog import read_wire_log

from .chaos_support import (
    ACCOUNT,
    DAEMON_CLIENT_ID,
    daemon_status,
    daemons,
    place_manual_orders,
    wait_for,
)
from .hostile import HostileCase, hostile_cases
from .report import record_figures

pytestmark = pytest.mark.e2e
SEED = int(os.environ.get("TRADECTL_CHAOS_SEED", "9"))
LADDER_LEVELS = 3


def good_rules(port: int) -> dict[str, str]:
    return {
        "account.yaml": (
            "version: 1\n"
            f"account: {{id: {ACCOUNT}}}\n"
            f"gateway: {{host: 127.0.0.1, port: {port}, client_id: {DAEMON_CLIENT_ID}}}\n"
            "risk:\n"
            "  max_order_value: 50000\n"
            "  max_position_fraction: 0.25\n"
            "  max_risk_per_trade_fraction: 0.01\n"
            "  max_daily_loss_fraction: 0.03\n"
            "  max_orders_per_minute: 600\n"
            "  allowed_symbols: [AAPL, MSFT, SPY, TLT]\n"
            "schedule: {reconcile_every: 1s}\n"
        ),
        "entries.yaml": (
            "version: 1\n"
            "scales:\n"
            "  aapl-ladder:\n"
            "    symbol: AAPL\n"
            "    side: BUY\n"
            "    total_quantity: 30\n"
            f"    levels: {LADDER_LEVELS}\n"
            "    start_price: 150.00\n"
            "    step: 1.00\n"
            "brackets:\n"
            "  msft-dip:\n"
            "    symbol: MSFT\n"
            "    side: BUY\n"
            "    quantity: 10\n"
            "    entry: {limit: 300.00}\n"
            "    stop_loss: {price: 290.00}\n"
            "    take_profit: {price: 330.00}\n"
        ),
    }


class JsonLog:
    """The daemon's JSON log, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines: list[dict[str, Any]] = []

    def refresh(self) -> list[dict[str, Any]]:
        if self.path.exists():
            with self.path.open("rb") as log:
                log.seek(self.offset)
                chunk = log.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self.offset += len(complete)
            for raw in complete.decode(errors="replace").splitlines():
                try:
                    self.lines.append(json.loads(raw))
                except ValueError:
                    self.lines.append({"level": "raw", "message": raw})
        return self.lines


def _sync_directory(rules: Path, files: dict[str, bytes]) -> None:
    """Make the directory hold exactly ``files``, each replaced atomically as editors do."""
    for present in rules.iterdir():
        if present.name not in files:
            present.unlink()
    for name, content in files.items():
        target = rules / name
        if target.exists() and target.read_bytes() == content:
            continue
        temporary = rules / f".{name}.tmp"
        temporary.write_bytes(content)
        os.replace(temporary, target)


def _feed(
    rules: Path,
    base: dict[str, bytes],
    case: HostileCase,
    previous_errors: tuple[RuleError, ...],
    state_dir: Path,
) -> tuple[RuleError, ...]:
    """Save the hostile set; returns the errors the loader finds in it (the same strings the
    daemon logs: same loader, same paths)."""
    # Back to the good set first, then the one breaking change: the watcher may load in between,
    # but it can only ever see the good set or the hostile one, never a mix of two cases.
    _sync_directory(rules, base)
    _sync_directory(rules, case.files)
    errors = load_rule_set([rules]).errors
    if errors == previous_errors:
        # The daemon logs a repeated error set once, unless a good set came in between, which
        # the watcher may have coalesced away: show it the good set, then the hostile one again.
        _sync_directory(rules, base)
        wait_for(
            lambda: (daemon_status(state_dir) or {}).get("rules", {}).get("health") == "ok",
            30,
            "the daemon to see the good rules between two identical hostile sets",
            poll=0.01,
        )
        _sync_directory(rules, case.files)
    return errors


ERROR_LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): ")


def hostile_reload(tmp_path: Path, count: int, *, name: str) -> dict[str, object]:
    state = SimState.from_dict(
        {
            "account": {"id": ACCOUNT, "cash": 1_000_000},
            "symbols": {
                "AAPL": {"price": 190.0},
                "MSFT": {"price": 420.0},
                "SPY": {"price": 500.0},
            },
        }
    )
    wire_log = tmp_path / "wire.jsonl"
    rules = tmp_path / "rules"
    rules.mkdir()
    state_dir = tmp_path / "state"
    findings: list[str] = []
    with start_sim_thread(state, wire_log=wire_log) as sim, daemons() as started:
        base_text = good_rules(sim.port)
        base = {file: text.encode() for file, text in base_text.items()}
        _sync_directory(rules, base)
        daemon = started.start(rules, state_dir, tmp_path / "tradectl.log")
        log = JsonLog(tmp_path / "tradectl.log")
        try:
            wait_for(
                lambda: (
                    len([o for o in sim.snapshot().open_orders if o.client_id == 17])
                    == LADDER_LEVELS + 3
                ),
                60,
                "the ladder and the bracket working at the gateway",
            )
            place_manual_orders(sim, symbols=("AAPL", "MSFT", "SPY"))
            status = wait_for(
                lambda: (daemon_status(state_dir) or {}).get("passes"), 30, "a pass"
            ) and daemon_status(state_dir)
            assert status is not None
            good_generation = status["rules"]["generation"]
            working_before = sorted(
                (o.order_id, o.order_ref, o.quantity, o.lmt_price, o.aux_price)
                for o in sim.snapshot().open_orders
            )
            wire_before = len(read_wire_log(wire_log))
            started = time.monotonic()
            slowest = 0.0
            previous_errors: tuple[RuleError, ...] = ()
            for case in hostile_cases(count, seed=SEED, bases=[base_text]):
                rejections = sum(
                    1 for line in log.refresh() if "rule change rejected" in line["message"]
                )
                fed_at = time.monotonic()
                previous_errors = _feed(rules, base, case, previous_errors, state_dir)

                def located(already: int = rejections, case: HostileCase = case) -> str | None:
                    """None once a rejection after ``already`` names the broken file (and
                    line); else what the latest one named. The daemon may load while the
                    case is being saved: a file it listed and that was deleted before it read
                    it is an error at that file's line 1 (seen on a loaded machine: a rejection
                    at account.yaml:1 while account.yaml was being removed). The next load sees
                    the case as saved, and the wait goes on for that rejection."""
                    verdicts = _rejections_located(
                        log.refresh(), already, rules / case.bad_file, case.bad_line
                    )
                    if not verdicts:
                        return f"not rejected within 30 s of {case.name}"
                    return None if None in verdicts else verdicts[-1]

                verdict = located()
                deadline = time.monotonic() + 30
                while verdict is not None and time.monotonic() < deadline:
                    time.sleep(0.01)
                    verdict = located()
                slowest = max(slowest, time.monotonic() - fed_at)
                if daemon.process is not None and daemon.process.poll() is not None:
                    findings.append(f"{case.name}: the daemon exited")
                    break
                if verdict:
                    findings.append(f"{case.name}: {verdict}")
            elapsed = time.monotonic() - started
            _sync_directory(rules, base)
            final = wait_for(
                lambda: (s := daemon_status(state_dir)) and s["rules"]["health"] == "ok" and s,
                30,
                "the daemon to report the good rules again",
            )
            wire_after = [
                line
                for line in read_wire_log(wire_log)[wire_before:]
                if line["client_id"] == DAEMON_CLIENT_ID
                and line["msg"] in ("placeOrder", "cancelOrder", "reqGlobalCancel")
            ]
            working_after = sorted(
                (o.order_id, o.order_ref, o.quantity, o.lmt_price, o.aux_price)
                for o in sim.snapshot().open_orders
            )
            crashes_logged = [
                line
                for line in log.refresh()
                if "Traceback" in json.dumps(line)
                or "could not reload" in line.get("message", "")
                or "reconcile pass failed" in line.get("message", "")
            ]
        finally:
            code, _ = daemon.stop(timeout=20)
    figures: dict[str, object] = {
        "seed": SEED,
        "rule sets": count,
        "daemon exit code at the end (SIGTERM)": code,
        "exceptions logged": len(crashes_logged),
        "orders caused (place/cancel on the wire)": len(wire_after),
        "rule sets not logged with the broken file:line": len(findings),
        "generation in force before / after": [good_generation, final["rules"]["generation"]],
        "working orders unchanged": working_before == working_after,
        "slowest rejection (s)": round(slowest, 2),
        "total (s)": round(elapsed, 1),
        "findings": findings[:10],
    }
    record_figures(name, figures)
    assert findings == []
    assert crashes_logged == []
    assert wire_after == []
    assert final["rules"]["generation"] == good_generation
    assert working_before == working_after
    assert code == 0
    return figures


def _rejections_located(
    lines: list[dict[str, Any]], already: int, bad_file: Path, bad_line: int | None
) -> list[str | None]:
    """For each rejection after the first ``already``: None when the errors logged just before
    it name the broken file (and line), else what they named."""
    rejections = [i for i, line in enumerate(lines) if "rule change rejected" in line["message"]]
    verdicts: list[str | None] = []
    for number in range(already, len(rejections)):
        start = rejections[number - 1] if number > 0 else -1
        verdicts.append(_located(lines[start + 1 : rejections[number]], bad_file, bad_line))
    return verdicts


def _located(block: list[dict[str, Any]], bad_file: Path, bad_line: int | None) -> str | None:
    """Whether the errors logged before one rejection name the broken file (and line)."""
    locations = []
    for line in block:
        match = ERROR_LOCATION.match(line.get("message", ""))
        if match and line.get("level") == "error":
            locations.append((match.group("file"), int(match.group("line"))))
    in_file = [number for file, number in locations if Path(file).name == bad_file.name]
    if not in_file:
        return f"no error logged for {bad_file.name}: {locations[:3]}"
    if bad_line is not None and bad_line not in in_file:
        return f"no error logged at {bad_file.name}:{bad_line}: {in_file[:5]}"
    return None


def test_hostile_rule_sets_by_hot_reload_fast(tmp_path: Path) -> None:
    hostile_reload(tmp_path, 50, name="hostile-reload-fast")


@pytest.mark.chaos
@pytest.mark.timeout(3600)
def test_hostile_rule_sets_by_hot_reload_long(tmp_path: Path) -> None:
    hostile_reload(tmp_path, 1_000, name="hostile-reload-long")
