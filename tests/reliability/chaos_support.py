"""The reliability scenario: a 200-order rebalance against the simulated gateway, the daemon as a
subprocess that can be SIGKILLed and restarted, manual orders of another client, and an audit
that counts what went over the wire (the sim's wire log), not what the daemon believes.
"""

from __future__ import annotations

import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
from ib_insync import IB, LimitOrder, Stock

from tests.daemon.e2e_support import DaemonProcess
from tradectl.service.control import ControlError, DaemonNotRunning, send_command
from tradectl.sim import SimState, SimThread, start_sim_thread
from tradectl.sim.model import AccountSnapshot
from tradectl.sim.wirelog import read_wire_log

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "DU0000001"
DAEMON_CLIENT_ID = 17
MANUAL_CLIENT_ID = 99
REBALANCE_SYMBOLS = 200
CASH = 10_000_000.0
CAPITAL_FRACTION = 0.8
MAX_ORDER_VALUE = 60_000.0
MAX_POSITION_FRACTION = 0.01
# Quoted by the sim, never in the rules: an order for it would break the allow-list.
FORBIDDEN_SYMBOL = "AAPL"
MANUAL_SYMBOLS = ("SYM0001", "SYM0002", FORBIDDEN_SYMBOL)


def rebalance_symbols() -> list[str]:
    return [f"SYM{index:04d}" for index in range(1, REBALANCE_SYMBOLS + 1)]


def sim_state() -> SimState:
    base = SimState.from_dict(
        {
            "account": {"id": ACCOUNT, "cash": CASH},
            "symbols": {FORBIDDEN_SYMBOL: {"price": 190.0}},
        }
    )
    return base.with_synthetic_symbols(REBALANCE_SYMBOLS)


DRIFT_BAND = 0.001


def target_weights(*, tilted: bool = False) -> dict[str, float]:
    symbols = rebalance_symbols()
    return {
        symbol: (0.0075 if index % 2 else 0.0025) if tilted else round(1 / len(symbols), 6)
        for index, symbol in enumerate(symbols)
    }


def rules_text(
    port: int,
    *,
    records_dir: Path,
    reconcile_every: str = "2s",
    tilted: bool = False,
    variant: int = 0,
) -> dict[str, str]:
    """Equal weights; ``tilted`` moves half the symbols to 0.75 % and half to 0.25 % (a second
    rebalance that sells as much as it buys). Each ``variant`` is a new generation of the rule
    (its orderRefs differ), so that orders of one generation can be told apart on the wire."""
    targets = "".join(
        f"      {symbol}: {weight}\n" for symbol, weight in target_weights(tilted=tilted).items()
    )
    return {
        "account.yaml": (
            "version: 1\n"
            f"account: {{id: {ACCOUNT}}}\n"
            f"gateway: {{host: 127.0.0.1, port: {port}, client_id: {DAEMON_CLIENT_ID}}}\n"
            "risk:\n"
            f"  max_order_value: {MAX_ORDER_VALUE:.0f}\n"
            f"  max_position_fraction: {MAX_POSITION_FRACTION}\n"
            "  max_risk_per_trade_fraction: 0.01\n"
            "  max_daily_loss_fraction: 0.05\n"
            "  max_orders_per_minute: 3000\n"
            f"  allowed_symbols: [{', '.join(rebalance_symbols())}]\n"
            f"schedule: {{reconcile_every: {reconcile_every}}}\n"
            f"records: {{dir: '{records_dir}'}}\n"
        ),
        "rebalance.yaml": (
            "version: 1\n"
            "allocations:\n"
            "  rebalance:\n"
            f"    capital: {{fraction_of_nav: {CAPITAL_FRACTION}}}\n"
            f"    drift: {{absolute: {DRIFT_BAND}}}\n"
            f"    min_trade_value: {100 + variant}\n"
            "    order: {type: limit, offset_bps: 10, tif: DAY}\n"
            f"    targets:\n{targets}"
        ),
    }


def write_rules(directory: Path, files: dict[str, str]) -> Path:
    """Write the rule files as an editor saves them: a temp file, then a rename."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        temporary = directory / f".{name}.tmp"
        temporary.write_text(text)
        os.replace(temporary, directory / name)
    return directory


def wait_for(condition: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


@contextmanager
def gateway(tmp_path: Path) -> Iterator[tuple[SimThread, Path]]:
    wire_log = tmp_path / "wire.jsonl"
    sim = start_sim_thread(sim_state(), wire_log=wire_log)
    try:
        yield sim, wire_log
    finally:
        sim.stop()


# --- manual orders of another client --------------------------------------------------------------


@dataclass(frozen=True)
class ManualOrder:
    order_id: int
    symbol: str
    action: str
    quantity: float
    limit: float


def place_manual_orders(
    sim: SimThread, limit: float = 1.0, symbols: tuple[str, ...] = MANUAL_SYMBOLS
) -> list[ManualOrder]:
    """Resting limit orders far from the market, placed by a person in TWS (another client id),
    without an orderRef; the daemon must never modify or cancel them."""
    ib = IB()
    ib.connect(sim.host, sim.port, clientId=MANUAL_CLIENT_ID, timeout=10)
    placed = []
    try:
        for symbol in symbols:
            contract = Stock(symbol, "SMART", "USD")
            ib.qualifyContracts(contract)
            order = LimitOrder("BUY", 7, limit, tif="GTC", account=ACCOUNT)
            trade = ib.placeOrder(contract, order)
            placed.append(ManualOrder(trade.order.orderId, symbol, "BUY", 7, limit))
        wait_for(
            lambda: all(
                any(
                    order.client_id == MANUAL_CLIENT_ID and order.order_id == manual.order_id
                    for order in sim.snapshot().open_orders
                )
                for manual in placed
            ),
            10,
            "the manual orders to rest at the gateway",
        )
    finally:
        ib.disconnect()
    return placed


# --- the daemon under test --------------------------------------------------------------------


def daemon_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        return send_command(state_dir, "status", timeout=5)
    except (DaemonNotRunning, ControlError, OSError, ValueError):
        return None


def rejected_symbols(sim: SimThread) -> set[str]:
    """Symbols whose latest daemon order the gateway rejected (it ended Cancelled, unfilled)
    and that are not held: the daemon waits out its rejection backoff before trying again."""
    snapshot = sim.snapshot()
    latest: dict[str, Any] = {}
    for order in sorted(snapshot.orders, key=lambda order: order.order_id):
        if order.client_id == DAEMON_CLIENT_ID:
            latest[order.symbol] = order
    return {
        symbol
        for symbol, order in latest.items()
        if order.status == "Cancelled"
        and not order.filled
        and not (symbol in snapshot.positions and snapshot.positions[symbol].quantity)
    }


def lost_on_the_wire(journal: Path, wire_log: Path) -> set[str]:
    """Symbols of intents the daemon marked sent whose order never reached the gateway (written
    to a connection as it died): the daemon cannot know that and rightly waits out its
    acknowledgement timeout before planning them again."""
    if not journal.exists() or not wire_log.exists():
        return set()
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as connection:
        sent = connection.execute(
            "SELECT symbol, order_id FROM intents WHERE state = 'sent' AND order_id IS NOT NULL"
        ).fetchall()
    on_wire = {
        line["fields"]["orderId"]
        for line in read_wire_log(wire_log)
        if line["msg"] == "placeOrder" and line["client_id"] == DAEMON_CLIENT_ID
    }
    return {str(symbol) for symbol, order_id in sent if order_id not in on_wire}


def off_target(snapshot: AccountSnapshot, targets: dict[str, float]) -> dict[str, str]:
    """Symbols further from their target than the drift band plus one share, and why."""
    found = {}
    for symbol, weight in targets.items():
        position = snapshot.positions.get(symbol)
        price = snapshot.prices[symbol]
        held = (position.quantity if position else 0.0) * price / snapshot.net_liquidation
        wanted = weight * CAPITAL_FRACTION
        if abs(held - wanted) > DRIFT_BAND + price / snapshot.net_liquidation:
            found[symbol] = f"{symbol} holds {held:.4%} of NAV, target {wanted:.4%}"
    return found


def gateway_converged(
    sim: SimThread, targets: dict[str, float], *, excused: Callable[[], set[str]] | None = None
) -> bool:
    """Every symbol within its drift band of the target (but the ``excused`` ones) and no owned
    order working at the gateway."""
    snapshot = sim.snapshot()
    if any(order.order_ref.startswith("tctl:") for order in snapshot.open_orders):
        return False
    missing = set(off_target(snapshot, targets))
    return not missing or (excused is not None and missing <= excused())


def wait_converged(
    sim: SimThread,
    state_dir: Path,
    targets: dict[str, float],
    timeout: float,
    *,
    excused: Callable[[], set[str]] | None = None,
) -> float:
    """Wait until the gateway holds the targets and a pass that started after that sent nothing
    and planned nothing that was not blocked (the daemon agrees); returns the wall time that
    pass finished. Symbols in ``excused()`` may still be missing (the fast tier cannot wait out
    IB's rejection backoff or the daemon's acknowledgement timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        wait_for(
            lambda: gateway_converged(sim, targets, excused=excused),
            max(0.1, deadline - time.monotonic()),
            "the gateway to hold every target (within the drift band) with no order working",
            poll=0.2,
        )
        settled_at = datetime.now(UTC)

        def quiet_pass(settled_at: datetime = settled_at) -> float | None:
            status = daemon_status(state_dir)
            for record in (status or {}).get("passes", []):
                if not record.get("finished") or record.get("outcome") != "ok":
                    continue
                if datetime.fromisoformat(record["started"]) <= settled_at:
                    continue
                summary = record.get("summary") or {}
                acting = summary.get("planned", 0) - summary.get("blocked", 0)
                quiet = summary.get("sent") == 0 and acting == 0
                if quiet and (excused is not None or summary.get("blocked") == 0):
                    return datetime.fromisoformat(record["finished"]).timestamp()
                return -1.0  # a later pass still acted: look at the gateway again
            return None

        found = wait_for(
            quiet_pass,
            max(0.1, deadline - time.monotonic()),
            "a reconcile pass that finds nothing to do",
            poll=0.2,
        )
        if found > 0:
            return float(found)


class Daemons:
    """Every daemon a test starts, so that a failing or timed-out test leaves none behind."""

    def __init__(self) -> None:
        self.started: list[DaemonProcess] = []

    def start(self, rules: Path, state_dir: Path, log_path: Path, **env: str) -> DaemonProcess:
        daemon = DaemonProcess(rules, state_dir, log_path, env=env or None).start()
        self.started.append(daemon)
        return daemon

    def kill_all(self) -> None:
        for daemon in self.started:
            daemon.kill()


@contextmanager
def daemons() -> Iterator[Daemons]:
    started = Daemons()
    try:
        yield started
    finally:
        started.kill_all()


# --- the audit ------------------------------------------------------------------------------------


@dataclass
class Audit:
    """What the wire log, the gateway and the journal say happened."""

    orders_placed: int = 0
    modifies: int = 0
    cancels: int = 0
    intents_sent_twice: int = 0
    orders_not_owed: int = 0
    risk_violations: int = 0
    manual_orders_touched: int = 0
    overshoot_symbols: int = 0
    off_target_symbols: int = 0
    """Symbols further from their target weight than the drift band (plus one share) at the end."""
    journal_integrity: str = ""
    executions_at_gateway: int = 0
    executions_in_journal: int = 0
    executions_missing_or_duplicated: int = 0
    details: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        figures = asdict(self)
        figures["details"] = self.details[:10]
        return figures

    @property
    def clean(self) -> bool:
        return not (
            self.intents_sent_twice
            or self.orders_not_owed
            or self.risk_violations
            or self.manual_orders_touched
            or self.overshoot_symbols
            or self.off_target_symbols
            or self.journal_integrity != "ok"
            or self.executions_missing_or_duplicated
        )


def audit(
    wire_log: Path,
    sim: SimThread,
    journal: Path,
    manual: list[ManualOrder],
    *,
    allowed: set[str],
    prices: dict[str, float],
    targets: dict[str, float],
    excused: frozenset[str] = frozenset(),
) -> Audit:
    result = Audit()
    messages = [line for line in read_wire_log(wire_log) if not line.get("dropped")]
    snapshot = sim.snapshot()
    final_status = {
        (order.client_id, order.order_id): (order.status, order.filled) for order in snapshot.orders
    }
    nav = CASH
    journal_intents = _journal_intents(journal)

    first_placements: dict[tuple[int, int], dict[str, Any]] = {}
    live_by_ref: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for line in messages:
        client = line["client_id"]
        fields = line["fields"]
        if line["msg"] == "reqGlobalCancel" and client is not None:
            result.manual_orders_touched += len(manual)
            result.details.append(f"reqGlobalCancel from client {client}")
        if line["msg"] == "cancelOrder" and client == DAEMON_CLIENT_ID:
            result.cancels += 1
        if line["msg"] != "placeOrder" or client != DAEMON_CLIENT_ID:
            continue
        key = (client, fields["orderId"])
        ref = fields.get("orderRef") or ""
        if key in first_placements:
            result.modifies += 1
        else:
            first_placements[key] = fields
            result.orders_placed += 1
            live_by_ref[ref].append(key)
        symbol = fields["contract"]["symbol"]
        price = fields.get("lmtPrice") or prices.get(symbol, math.inf)
        value = float(fields["totalQuantity"]) * float(price)
        if not ref.startswith("tctl:") or (ref, fields["orderId"]) not in journal_intents:
            result.orders_not_owed += 1
            result.details.append(f"order {key} {ref!r} is owed to no journaled intent")
        if symbol not in allowed:
            result.risk_violations += 1
            result.details.append(f"order {key} for {symbol}, outside allowed_symbols")
        if value > MAX_ORDER_VALUE + 1e-6:
            result.risk_violations += 1
            result.details.append(f"order {key} worth {value:.0f} > max_order_value")
        if value > MAX_POSITION_FRACTION * nav * 1.0001:
            result.risk_violations += 1
            result.details.append(f"order {key} worth {value:.0f} > max_position_fraction")

    # An intent sent twice: two orders with the same orderRef that were both live (neither
    # rejected before any fill); a rejected order's retry is a new attempt, not a duplicate.
    for ref, keys in live_by_ref.items():
        live = [
            key
            for key in keys
            if not (
                final_status.get(key, ("", 0.0))[0] in ("Cancelled", "Inactive")
                and not final_status.get(key, ("", 0.0))[1]
            )
        ]
        if len(live) > 1:
            result.intents_sent_twice += len(live) - 1
            result.details.append(f"{ref} sent as {len(live)} live orders: {live}")

    # Positions: what was bought must not exceed the target by more than one order's rounding.
    for symbol, position in snapshot.positions.items():
        if not position.quantity:
            continue
        value = position.quantity * snapshot.prices.get(symbol, 0.0)
        if value > MAX_POSITION_FRACTION * snapshot.net_liquidation * 1.05:
            result.overshoot_symbols += 1
            result.details.append(f"{symbol} position worth {value:.0f} overshoots its target")

    for symbol, why in off_target(snapshot, targets).items():
        if symbol not in excused:
            result.off_target_symbols += 1
            result.details.append(why)

    for manual_order in manual:
        match = [
            order
            for order in snapshot.orders
            if order.client_id == MANUAL_CLIENT_ID and order.order_id == manual_order.order_id
        ]
        if not (
            len(match) == 1
            and match[0].status in ("Submitted", "PreSubmitted")
            and match[0].quantity == manual_order.quantity
            and match[0].lmt_price == manual_order.limit
        ):
            result.manual_orders_touched += 1
            result.details.append(f"manual order {manual_order} changed: {match}")

    result.journal_integrity, journal_exec_ids = _journal_check(journal)
    gateway_exec_ids = [
        execution.exec_id
        for execution in snapshot.executions
        if execution.client_id == DAEMON_CLIENT_ID
    ]
    result.executions_at_gateway = len(gateway_exec_ids)
    result.executions_in_journal = len(journal_exec_ids)
    missing = set(gateway_exec_ids) - set(journal_exec_ids)
    duplicated = len(journal_exec_ids) - len(set(journal_exec_ids))
    result.executions_missing_or_duplicated = len(missing) + duplicated
    if missing:
        result.details.append(f"{len(missing)} executions missing from the journal")
    return result


def _journal_intents(journal: Path) -> set[tuple[str, int]]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT order_ref, order_id FROM intents WHERE order_id IS NOT NULL"
        ).fetchall()
    return {(str(ref), int(order_id)) for ref, order_id in rows}


def _journal_check(journal: Path) -> tuple[str, list[str]]:
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as connection:
        integrity = "; ".join(row[0] for row in connection.execute("PRAGMA integrity_check"))
        exec_ids = [
            str(row[0])
            for row in connection.execute(
                "SELECT exec_id FROM executions WHERE client_id = ?", (DAEMON_CLIENT_ID,)
            )
        ]
    return integrity, exec_ids


# --- records under SIGKILL --------------------------------------------------------------------


@dataclass
class RecordsAudit:
    kills: int = 0
    killed_before_done: int = 0
    fills_in_journal: int = 0
    fills_in_parquet: int = 0
    fills_missing: int = 0
    fills_duplicated: int = 0
    journal_integrity: str = ""


def records_survive_sigkill(
    state_dir: Path, records_dir: Path, kills: int, rng: random.Random
) -> RecordsAudit:
    """Export the journal's fills to Parquet, SIGKILLing the exporter ``kills`` times at random
    moments of its work, then once to the end; every fill must be in the files exactly once."""
    result = RecordsAudit(kills=kills)
    command = [
        sys.executable,
        "-m",
        "tests.reliability.records_writer",
        str(state_dir),
        str(records_dir),
        ACCOUNT,
    ]
    for _ in range(kills + 1):
        killing = result.killed_before_done < kills
        process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        if killing:
            moment = time.monotonic() + rng.uniform(0.0, 0.3)
            wait_for(
                lambda m=moment, p=process: time.monotonic() >= m or p.poll() is not None,
                5,
                "the kill moment",
                poll=0.005,
            )
            process.kill()
            result.killed_before_done += process.wait(10) == -signal.SIGKILL
        else:
            assert process.wait(60) == 0, "the final export failed"
    table = ds.dataset(records_dir / "fills", format="parquet", partitioning="hive").to_table()
    in_files = Counter(str(value) for value in table.column("exec_id").to_pylist())
    result.journal_integrity, journal_ids = _journal_check(state_dir / "journal.sqlite3")
    result.fills_in_journal = len(journal_ids)
    result.fills_in_parquet = sum(in_files.values())
    result.fills_missing = len(set(journal_ids) - set(in_files))
    result.fills_duplicated = sum(count - 1 for count in in_files.values())
    return result
