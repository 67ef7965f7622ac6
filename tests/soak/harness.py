"""A simulated week (issue #13, ``make soak``): the daemon (``python -m tradectl run``) against
the sim (``python -m tradectl sim --state FILE --persist``, ``calendar: nyse``, a frozen clock),
both real subprocesses over loopback, the sim's clock moved by its ``advance`` control op.

Every invariant is checked from what the gateway saw and holds (its wire log and its
``snapshot``), never from tradectl's journal: see docs/reliability.md, "Simulated week".
"""

from __future__ import annotations

import itertools
import json
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from tests.daemon.e2e_support import DaemonProcess, write_atomically
from tests.reliability.chaos_support import daemon_status, wait_for
from tradectl.sim.hours import NyseHours

REPO = Path(__file__).resolve().parents[2]
NY = ZoneInfo("America/New_York")
ACCOUNT = "DU0000001"
DAEMON_CLIENT_ID = 17
CASH = 1_000_000.0
MAX_ORDER_VALUE = 60_000.0
MAX_POSITION_FRACTION = 0.3
CAPITAL_FRACTION = 0.5
DRIFT = 0.01
# Each matching step fills at most this many shares of an order: partial fills everywhere an
# order is larger (allocation slices of TLT and GLD, the NVDA bracket entry).
FILL_CHUNK = 100
PRICES = {"SPY": 660.0, "QQQ": 600.0, "TLT": 90.0, "GLD": 380.0, "NVDA": 180.0, "MSFT": 480.0}
ALLOCATION_SYMBOLS = ("SPY", "QQQ", "TLT", "GLD")
BASE_WEIGHTS = {"SPY": 0.3, "QQQ": 0.3, "TLT": 0.2, "GLD": 0.2}
TILTED_WEIGHTS = {"SPY": 0.2, "QQQ": 0.2, "TLT": 0.3, "GLD": 0.3}
BRACKET_SYMBOLS = {"nvda-dip": "NVDA", "msft-open": "MSFT"}
NVDA_BRACKET = (
    "  nvda-dip:\n"
    "    symbol: NVDA\n    side: BUY\n    quantity: 300\n"
    "    entry: {{limit: 175.0}}\n    stop_loss: {{price: {stop}}}\n"
    "    take_profit: {{price: 195.0}}\n    tif: GTC\n"
)
MSFT_BRACKET = (
    "  msft-open:\n"
    "    symbol: MSFT\n    side: BUY\n    quantity: 50\n"
    "    entry: {market: true}\n    stop_loss: {percent: 5}\n"
    "    take_profit: {percent: 3}\n    tif: DAY\n"
)
# Passes the protection invariant may take to settle after a fill or a restart (a pass to see
# the fill, one to place the resized or detached leg, one for IB's confirmation of a cancel).
SETTLE_PASSES = 4
# The allocation must hold its targets within this many clock steps of CONVERGE_STEP after the
# window opens (or a halt ends), each step followed by at least one daemon pass. From cash the
# longest chain is TLT's: 100,000 in two slices of at most max_order_value (60,000), one after
# the other, each a market order of 666 shares filled 100 shares a simulated minute (7 minutes:
# 4 steps) = 8 steps, plus the step whose pass sees the last fill. Counted in steps because the
# number of passes per step depends on the host's speed (the daemon passes every host second
# while the clock stands still); the passes are reported too.
CONVERGE_STEPS = 10
CONVERGE_STEP = timedelta(minutes=2)
BLACKOUT = ((23, 45), (0, 45))
STOP_TYPES = ("STP", "STP LMT", "TRAIL")
WORKING = ("Submitted", "PreSubmitted", "PendingSubmit")


def ny(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=NY)


def sim_state(start: datetime) -> dict[str, Any]:
    return {
        "calendar": "nyse",
        "clock": {"start": start.isoformat(), "frozen": True},
        "account": {"id": ACCOUNT, "cash": CASH},
        "matching": {"fill_chunk": FILL_CHUNK},
        # Chunked fills step with the simulated clock only (every advance_step_seconds), never
        # with the host's: the run does not depend on how fast the machine is.
        "market": {"tick_interval": 86_400},
        "symbols": {symbol: {"price": price} for symbol, price in PRICES.items()},
    }


def account_rules(port: int) -> str:
    return (
        "version: 1\n"
        f"account: {{id: {ACCOUNT}}}\n"
        f"gateway: {{host: 127.0.0.1, port: {port}, client_id: {DAEMON_CLIENT_ID}}}\n"
        "risk:\n"
        f"  max_order_value: {MAX_ORDER_VALUE:.0f}\n"
        f"  max_position_fraction: {MAX_POSITION_FRACTION}\n"
        "  max_risk_per_trade_fraction: 0.01\n"
        "  max_daily_loss_fraction: 0.05\n"
        "  max_orders_per_minute: 600\n"
        f"  allowed_symbols: [{', '.join(PRICES)}]\n"
        "schedule: {reconcile_every: 1s}\n"
    )


def allocation_rules(weights: dict[str, float]) -> str:
    targets = "".join(f"      {symbol}: {weight}\n" for symbol, weight in weights.items())
    return (
        "version: 1\nallocations:\n  core:\n"
        f"    capital: {{fraction_of_nav: {CAPITAL_FRACTION}}}\n"
        f"    drift: {{absolute: {DRIFT}}}\n"
        "    min_trade_value: 500\n"
        "    order: {type: market}\n"
        f"    targets:\n{targets}"
    )


# --- the gateway: a sim process -------------------------------------------------------------


class SimProcess:
    """``tradectl sim`` as a subprocess, driven through its control socket."""

    def __init__(self, state: Path, wire_log: Path, control: Path, port: int = 0) -> None:
        self.control_path = control
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "tradectl", "sim", "--port", str(port)),
                *("--state", str(state), "--persist", "--wire-log", str(wire_log)),
                *("--control-socket", str(control)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.fullmatch(r"tradectl sim listening on 127\.0\.0\.1:(\d+)\n", line)
        assert match, f"the sim did not start: {line!r}"
        self.port = int(match.group(1))
        wait_for(control.exists, 30, "the sim's control socket")

    def control(self, command: dict[str, Any]) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(120)
            client.connect(str(self.control_path))
            client.sendall(json.dumps(command).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = client.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        reply: dict[str, Any] = json.loads(data)
        assert reply.get("ok"), f"{command} failed: {reply}"
        return reply

    def snapshot(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = self.control({"op": "snapshot"})["snapshot"]
        return snapshot

    def now(self) -> datetime:
        return datetime.fromisoformat(self.control({"op": "now"})["now"])

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=60) == 0, "the sim did not exit cleanly"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


# --- the invariants -----------------------------------------------------------------------------


@dataclass
class Violations:
    market_order_while_closed: int = 0
    intent_sent_twice: int = 0
    limit_broken: int = 0
    halted_symbol_traded: int = 0
    sent_in_blackout: int = 0
    opening_order_on_holiday: int = 0
    protection_not_exact: int = 0
    stop_larger_than_position: int = 0
    allocation_not_converged: int = 0

    def total(self) -> int:
        return sum(vars(self).values())


@dataclass
class Figures:
    scenario: str
    seed: int
    days_simulated: float = 0.0
    sessions: int = 0
    hourly_checks: int = 0
    steps: int = 0
    passes: int = 0
    orders_placed: int = 0
    modifies: int = 0
    cancels: int = 0
    fills: int = 0
    partial_fills: int = 0
    fills_while_daemon_down: int = 0
    daemon_kills: int = 0
    daemon_restarts: int = 0
    gateway_restarts: int = 0
    journal_deletions: int = 0
    rule_edits: int = 0
    halts: int = 0
    protection_settle_passes_max: int = 0
    converge_steps: list[int] = field(default_factory=list)
    converge_passes: list[int] = field(default_factory=list)
    wall_seconds: float = 0.0
    events: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    violations: Violations = field(default_factory=Violations)


def _is_protective(ref: str) -> bool:
    return ref.endswith(":stop") or ref.endswith(":target")


def _leg(ref: str) -> str:
    return ref.rsplit(":", 1)[-1]


def in_blackout(moment: datetime) -> bool:
    local = moment.astimezone(NY)
    minutes = local.hour * 60 + local.minute
    (start_h, start_m), (end_h, end_m) = BLACKOUT
    return minutes >= start_h * 60 + start_m or minutes < end_h * 60 + end_m


class WireAudit:
    """Reads the wire log as it grows and judges each daemon order message on arrival."""

    def __init__(self, path: Path, figures: Figures, holidays: set[str]) -> None:
        self.path = path
        self.figures = figures
        self.holidays = holidays
        self._offset = 0
        self.halted: set[str] = set()
        self.prices = dict(PRICES)
        self.orders_by_ref: dict[str, set[int]] = defaultdict(set)
        self.placed: dict[int, dict[str, Any]] = {}
        self.placed_at: dict[int, float] = {}

    def violate(self, kind: str, detail: str) -> None:
        setattr(self.figures.violations, kind, getattr(self.figures.violations, kind) + 1)
        if len(self.figures.details) < 50:
            self.figures.details.append(f"{kind}: {detail}")

    def read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as log:
            log.seek(self._offset)
            data = log.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        for raw in complete.splitlines():
            if raw.strip():
                self._judge(json.loads(raw))

    def _judge(self, line: dict[str, Any]) -> None:
        if line.get("client_id") != DAEMON_CLIENT_ID or line.get("dropped"):
            return
        name = line["msg"]
        if name not in ("placeOrder", "cancelOrder"):
            return
        sim_time = datetime.fromisoformat(line["sim_time"])
        fields = line["fields"]
        if in_blackout(sim_time):
            self.violate("sent_in_blackout", f"{name} {fields.get('orderId')} at {sim_time}")
        if name == "cancelOrder":
            self.figures.cancels += 1
            return
        order_id = int(fields["orderId"])
        ref = fields.get("orderRef") or ""
        symbol = fields["contract"]["symbol"]
        new = order_id not in self.placed
        if new:
            self.placed_at[order_id] = sim_time.timestamp()
            self.figures.orders_placed += 1
            self.orders_by_ref[ref].add(order_id)
        else:
            self.figures.modifies += 1
        self.placed[order_id] = fields
        where = f"order {order_id} {ref} {fields['action']} {fields['totalQuantity']} {symbol}"
        if fields["orderType"] == "MKT" and line.get("market") != "regular":
            self.violate("market_order_while_closed", f"{where} at {sim_time} ({line['market']})")
        if symbol in self.halted:
            self.violate("halted_symbol_traded", f"{where} while {symbol} was halted")
        if (
            new
            and not _is_protective(ref)
            and sim_time.astimezone(NY).date().isoformat() in (self.holidays)
        ):
            self.violate("opening_order_on_holiday", f"{where} on {sim_time.date()}")
        if symbol not in PRICES:
            self.violate("limit_broken", f"{where}: outside allowed_symbols")
        price = fields.get("lmtPrice") or fields.get("auxPrice") or self.prices[symbol]
        value = float(fields["totalQuantity"]) * float(price)
        if value > MAX_ORDER_VALUE * 1.0001:
            self.violate("limit_broken", f"{where} worth {value:.0f} > max_order_value")


@dataclass
class Protection:
    oversized: list[str]
    """Rules whose working stop is larger than the position (it would open a new one)."""
    inexact: list[str]
    """Rules whose stop or target does not cover exactly the position."""

    @property
    def ok(self) -> bool:
        return not (self.oversized or self.inexact)


def protection_state(snapshot: dict[str, Any], brackets: dict[str, str]) -> Protection:
    """Issue #12's invariant on the gateway's own orders: for every symbol a bracket rule
    entered, the working stop and the working target each cover exactly the position; never a
    stop larger than the position. "Working" rules out a child behind an unfilled parent."""
    open_orders = [
        order
        for order in snapshot["open_orders"]
        if order["client_id"] == DAEMON_CLIENT_ID and order["status"] in WORKING
    ]
    parents = {order["order_id"]: order for order in open_orders}
    oversized: list[str] = []
    inexact: list[str] = []
    for rule, symbol in sorted(brackets.items()):
        held = snapshot["positions"].get(symbol, {}).get("quantity", 0.0)
        legs = [
            order
            for order in open_orders
            if order["symbol"] == symbol and order["order_ref"].startswith(f"tctl:{rule}:")
        ]
        working = [
            order
            for order in legs
            if _is_protective(order["order_ref"])
            and not (
                order["parent_id"]
                and parents.get(order["parent_id"], {}).get("filled", 0.0) == 0.0
                and order["parent_id"] in parents
            )
        ]
        stop = sum(o["quantity"] - o["filled"] for o in working if o["order_type"] in STOP_TYPES)
        target = sum(
            o["quantity"] - o["filled"] for o in working if o["order_type"] not in STOP_TYPES
        )
        if stop > held + 1e-9:
            oversized.append(f"{rule}: stop {stop:g} > position {held:g}")
        elif held and (stop != held or target != held):
            inexact.append(f"{rule}: position {held:g}, stop {stop:g}, target {target:g}")
    return Protection(oversized, inexact)


def off_target(snapshot: dict[str, Any], weights: dict[str, float]) -> list[str]:
    nav = snapshot["net_liquidation"]
    found = []
    for symbol, weight in weights.items():
        price = snapshot["prices"][symbol]
        held = snapshot["positions"].get(symbol, {}).get("quantity", 0.0) * price / nav
        wanted = weight * CAPITAL_FRACTION
        if abs(held - wanted) > DRIFT + price / nav:
            found.append(f"{symbol} {held:.2%} of NAV, target {wanted:.2%}")
    return found


def allocation_orders_working(snapshot: dict[str, Any]) -> bool:
    return any(o["order_ref"].startswith("tctl:core:") for o in snapshot["open_orders"])


# --- the run ------------------------------------------------------------------------------------


class Soak:
    """One scripted run: ``step_to`` moves the clock and checks; the scenario calls the events."""

    def __init__(self, work: Path, scenario: str, seed: int, start: datetime) -> None:
        self.work = work
        self.rng = random.Random(seed)
        self.figures = Figures(scenario=scenario, seed=seed)
        self.started = time.monotonic()
        self.start = start
        self.rules_dir = work / "rules"
        self.state_dir = work / "state"
        self.sim_state = work / "sim-state.yaml"
        self.wire_log = work / "wire.jsonl"
        self.log_path = work / "tradectl.log"
        self.sim_state.write_text(yaml.safe_dump(sim_state(start)))
        self.sim = SimProcess(self.sim_state, self.wire_log, work / "sim.sock")
        self.now = start
        self.weights = dict(BASE_WEIGHTS)
        self.brackets: dict[str, str] = {"nvda-dip": "NVDA"}
        self.nvda_stop = 165.0
        self.entered: dict[str, str] = {}
        self.audit = WireAudit(self.wire_log, self.figures, _holidays(start))
        self.daemon: DaemonProcess | None = None
        self.seen_passes: set[str] = set()
        self.seen_fills: set[str] = set()
        self.partial_orders: set[int] = set()
        self.fills_by_order: dict[int, list[float]] = defaultdict(list)
        self.duplicated_refs: set[str] = set()
        self.write_rules()

    # -- rules and processes

    def write_rules(self) -> None:
        self.rules_dir.mkdir(exist_ok=True)
        write_atomically(self.rules_dir / "account.yaml", account_rules(self.sim.port))
        write_atomically(self.rules_dir / "core.yaml", allocation_rules(self.weights))
        bracket_text = {
            "nvda-dip": NVDA_BRACKET.format(stop=self.nvda_stop),
            "msft-open": MSFT_BRACKET,
        }
        rules = "".join(bracket_text[name] for name in sorted(self.brackets))
        path = self.rules_dir / "brackets.yaml"
        if rules:
            write_atomically(path, "version: 1\nbrackets:\n" + rules)
        else:
            path.unlink(missing_ok=True)

    def edit_rules(self, what: str) -> None:
        self.figures.rule_edits += 1
        self.event(f"rules edited: {what}")
        self.write_rules()

    def start_daemon(self) -> None:
        assert self.daemon is None
        self.daemon = DaemonProcess(self.rules_dir, self.state_dir, self.log_path).start()
        self.figures.daemon_restarts += self.figures.daemon_kills > 0 or self.seen_passes != set()
        self.event("daemon started")
        self.wait_pass()

    def kill_daemon(self) -> None:
        assert self.daemon is not None
        self.wait_pass()
        self.daemon.kill()
        self.daemon = None
        self.figures.daemon_kills += 1
        self.event("daemon SIGKILLed")

    def stop_daemon(self) -> None:
        if self.daemon is not None:
            code, _ = self.daemon.stop(timeout=60)
            assert code == 0, f"the daemon exited {code} on SIGTERM"
            self.daemon = None

    def delete_journal(self) -> None:
        assert self.daemon is None, "the journal is deleted while the daemon is stopped"
        removed = [p for p in self.state_dir.glob("journal.sqlite3*") if p.is_file()]
        assert removed, "no journal to delete"
        for path in removed:
            path.unlink()
        self.figures.journal_deletions += 1
        self.event("journal deleted")

    def restart_gateway(self) -> None:
        """SIGTERM the sim (it writes the account back) and start it again on the same port."""
        self.collect_fills(self.sim.snapshot())
        before = self.sim.snapshot()
        port = self.sim.port
        self.sim.terminate()
        self.sim = SimProcess(self.sim_state, self.wire_log, self.work / "sim.sock", port=port)
        after = self.sim.snapshot()
        assert after["positions"] == before["positions"], "the gateway restart lost positions"
        assert {o["perm_id"] for o in after["open_orders"]} == {
            o["perm_id"] for o in before["open_orders"]
        }, "the gateway restart lost working orders"
        assert abs(self.sim.now().timestamp() - self.now.timestamp()) < 1
        self.figures.gateway_restarts += 1
        self.event("gateway restarted (--persist)")
        if self.daemon is not None:
            self.wait_pass()

    def halt(self, symbol: str) -> None:
        self.audit.read()
        self.sim.control({"op": "halt", "symbol": symbol})
        self.audit.halted.add(symbol)
        self.figures.halts += 1
        self.event(f"{symbol} halted")

    def resume(self, symbol: str) -> None:
        self.audit.read()
        self.sim.control({"op": "resume", "symbol": symbol})
        self.audit.halted.discard(symbol)
        self.event(f"{symbol} resumed")

    def set_price(self, symbol: str, price: float) -> None:
        self.audit.read()
        self.sim.control({"op": "set_price", "symbol": symbol, "price": price})
        self.audit.prices[symbol] = price

    def stop_price(self, symbol: str) -> float | None:
        """The trigger of the daemon's working stop on ``symbol`` at the gateway."""
        stops = [
            order["aux_price"]
            for order in self.sim.snapshot()["open_orders"]
            if order["client_id"] == DAEMON_CLIENT_ID
            and order["symbol"] == symbol
            and order["order_type"] in STOP_TYPES
        ]
        return stops[0] if len(stops) == 1 else None

    def event(self, text: str) -> None:
        self.figures.events.append(f"{self.now.astimezone(NY):%a %m-%d %H:%M} {text}")

    # -- passes

    def _passes(self) -> list[dict[str, Any]]:
        status = daemon_status(self.state_dir)
        return list((status or {}).get("passes", []))

    def wait_pass(self, after: datetime | None = None, timeout: float = 120) -> dict[str, Any]:
        """Wait for a daemon pass that started (host time) after ``after`` (default: now) and
        completed connected; count every pass seen on the way."""
        assert self.daemon is not None
        daemon = self.daemon
        since = after or datetime.now(UTC)

        def finished_ok() -> dict[str, Any] | None:
            daemon._check_alive("a reconcile pass")
            found = None
            for record in self._passes():
                if record.get("finished"):
                    self.seen_passes.add(record["started"])
                    if (
                        found is None
                        and record.get("outcome") == "ok"
                        and datetime.fromisoformat(record["started"]) > since
                    ):
                        found = record
            return found

        record: dict[str, Any] = wait_for(finished_ok, timeout, "a reconcile pass", poll=0.1)
        self.figures.passes = len(self.seen_passes)
        return record

    # -- the clock

    def step_to(self, moment: datetime, *, check: bool = True) -> None:
        assert moment >= self.now, (moment, self.now)
        reply = self.sim.control({"op": "advance", "to": moment.isoformat()})
        self.now = datetime.fromisoformat(reply["now"])
        self.figures.steps += 1
        if self.daemon is not None:
            self.wait_pass()
        if check:
            self.check()

    def run_until(self, end: datetime, events: dict[datetime, Callable[[], None]]) -> None:
        """Step hour by hour (and onto every event's time) up to ``end``."""
        moments = set(events)
        cursor = self.now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        while cursor <= end:
            moments.add(cursor)
            cursor += timedelta(hours=1)
        for moment in sorted(m for m in moments if m > self.now or m in events):
            if moment > self.now:
                self.step_to(moment)
            if moment in events:
                events[moment]()

    # -- checks

    def collect_fills(self, snapshot: dict[str, Any]) -> None:
        for fill in snapshot["fills"]:
            if fill["client_id"] != DAEMON_CLIENT_ID or fill["exec_id"] in self.seen_fills:
                continue
            self.seen_fills.add(fill["exec_id"])
            self.fills_by_order[fill["order_id"]].append(fill["time"])
            self.figures.fills += 1
            if self.daemon is None:
                self.figures.fills_while_daemon_down += 1
            placed = self.audit.placed.get(fill["order_id"])
            if placed is not None and fill["shares"] < float(placed["totalQuantity"]):
                self.partial_orders.add(fill["order_id"])
        self.figures.partial_fills = len(self.partial_orders)

    def check(self) -> None:
        """The hourly check, from the gateway's wire log and snapshot."""
        self.audit.read()
        snapshot = self.sim.snapshot()
        self.collect_fills(snapshot)
        self.figures.hourly_checks += 1
        self._check_duplicates(snapshot)
        self._check_positions(snapshot)
        if self.daemon is not None:
            self._check_protection()

    def _check_duplicates(self, snapshot: dict[str, Any]) -> None:
        """No intent sent twice. Intent keys repeat by design (docs/planning.md: the same gap
        against the same position gets the same orderRef), so a ref placed again is a duplicate
        when its two orders worked at the same time, or when the first one filled and nothing
        else moved that symbol before the second was placed (it would buy the gap twice). A new
        order after one that ended unfilled (rejected, a DAY order expired) is a new attempt; one
        after the position went elsewhere and came back (a rule edited there and back) is a new
        decision."""
        working: dict[str, set[int]] = defaultdict(set)
        for order in snapshot["open_orders"]:
            if order["client_id"] == DAEMON_CLIENT_ID and order["status"] in WORKING:
                working[order["order_ref"]].add(order["order_id"])
        for ref, ids in working.items():
            if len(ids) > 1 and ref not in self.duplicated_refs:
                self._duplicate(ref, sorted(ids), "working at the same time")
        for ref, ids in self.audit.orders_by_ref.items():
            if ref in self.duplicated_refs or len(ids) < 2:
                continue
            ordered = sorted(ids, key=lambda order_id: self.audit.placed_at[order_id])
            for first, second in itertools.pairwise(ordered):
                if self._gap_bought_twice(first, second):
                    self._duplicate(ref, [first, second], "the first filled, nothing moved since")
                    break

    def _gap_bought_twice(self, first: int, second: int) -> bool:
        fills = self.fills_by_order.get(first)
        if not fills:
            return False
        symbol = self.audit.placed[first]["contract"]["symbol"]
        since, until = max(fills), self.audit.placed_at[second]
        return not any(
            since < moment < until
            for order_id, moments in self.fills_by_order.items()
            if order_id not in (first, second)
            and self.audit.placed.get(order_id, {}).get("contract", {}).get("symbol") == symbol
            for moment in moments
        )

    def _duplicate(self, ref: str, orders: list[int], why: str) -> None:
        self.duplicated_refs.add(ref)
        self.audit.violate("intent_sent_twice", f"{ref} on orders {orders}: {why}")

    def _check_positions(self, snapshot: dict[str, Any]) -> None:
        nav = snapshot["net_liquidation"]
        for symbol, position in snapshot["positions"].items():
            value = abs(position["quantity"]) * snapshot["prices"][symbol]
            if value > MAX_POSITION_FRACTION * nav * 1.02:
                self.audit.violate(
                    "limit_broken", f"{symbol} worth {value:.0f} > max_position_fraction"
                )

    def _check_protection(self) -> None:
        """The protection invariant, allowing ``SETTLE_PASSES`` passes after a fill or restart."""
        brackets = {**self.brackets, **self.entered}
        for settled in range(SETTLE_PASSES + 1):
            state = protection_state(self.sim.snapshot(), brackets)
            if state.ok:
                self.figures.protection_settle_passes_max = max(
                    self.figures.protection_settle_passes_max, settled
                )
                return
            if settled < SETTLE_PASSES:
                self.wait_pass()
        when = self.now.astimezone(NY)
        for problem in state.oversized:
            self.audit.violate("stop_larger_than_position", f"{when}: {problem}")
        for problem in state.inexact:
            self.audit.violate("protection_not_exact", f"{when}: {problem}")

    def converge(self, what: str, excluded: tuple[str, ...] = ()) -> None:
        """Step the clock by ``CONVERGE_STEP`` until the allocation holds its targets (all but
        ``excluded``) with no allocation order working; count the steps and passes it took."""
        assert self.daemon is not None
        since = datetime.now(UTC)
        counted = set(self.seen_passes)
        weights = {s: w for s, w in self.weights.items() if s not in excluded}
        steps = 0
        while True:
            snapshot = self.sim.snapshot()
            passes = len(
                {p for p in self.seen_passes - counted if datetime.fromisoformat(p) > since}
            )
            if not off_target(snapshot, weights) and not allocation_orders_working(snapshot):
                self.figures.converge_steps.append(steps)
                self.figures.converge_passes.append(passes)
                self.event(f"allocation converged {what}: {steps} steps, {passes} passes")
                return
            if steps >= CONVERGE_STEPS:
                self.audit.violate(
                    "allocation_not_converged",
                    f"{what}: after {steps} steps {off_target(snapshot, weights)}",
                )
                return
            self.step_to(self.now + CONVERGE_STEP, check=False)
            steps += 1

    def finish(self) -> Figures:
        self.stop_daemon()
        self.audit.read()
        self.collect_fills(self.sim.snapshot())
        self.sim.terminate()
        elapsed = self.now - self.start
        self.figures.days_simulated = round(elapsed.total_seconds() / 86_400, 2)
        self.figures.wall_seconds = round(time.monotonic() - self.started, 1)
        return self.figures

    def abort(self) -> None:
        if self.daemon is not None:
            self.daemon.kill()
        self.sim.kill()


def _holidays(start: datetime) -> set[str]:
    """NYSE holidays (weekdays without a session) in the fortnight from ``start``, from the
    sim's own calendar."""
    calendar = NyseHours()
    days = (start.date() + timedelta(days=offset) for offset in range(14))
    return {
        day.isoformat() for day in days if day.weekday() < 5 and calendar.trading_day(day) is None
    }


def report(figures: Figures, directory: Path) -> dict[str, Any]:
    """Write the run's figures as JSON and as a markdown table; returns the JSON."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        **{k: v for k, v in vars(figures).items() if k != "violations"},
        "violations": vars(figures.violations),
    }
    (directory / f"{figures.scenario}.json").write_text(json.dumps(data, indent=2) + "\n")
    rows = [
        ("days simulated", figures.days_simulated),
        ("sessions", figures.sessions),
        ("hourly checks", figures.hourly_checks),
        ("clock steps", figures.steps),
        ("daemon passes", figures.passes),
        (
            "orders placed / modified / cancelled",
            f"{figures.orders_placed} / {figures.modifies} / {figures.cancels}",
        ),
        ("fills (orders filled in parts)", f"{figures.fills} ({figures.partial_fills})"),
        ("fills while the daemon was down", figures.fills_while_daemon_down),
        ("daemon SIGKILLs / restarts", f"{figures.daemon_kills} / {figures.daemon_restarts}"),
        ("gateway restarts", figures.gateway_restarts),
        ("journal deletions", figures.journal_deletions),
        ("rule edits", figures.rule_edits),
        ("halts", figures.halts),
        ("protection settled within (passes, max)", figures.protection_settle_passes_max),
        ("allocation converged within (2-minute steps)", figures.converge_steps),
        ("allocation converged within (passes)", figures.converge_passes),
        ("wall time (s)", figures.wall_seconds),
    ]
    rows += [
        (f"violations: {name.replace('_', ' ')}", count)
        for name, count in vars(figures.violations).items()
    ]
    table = ["| figure | value |", "| --- | --- |"]
    table += [f"| {name} | {value} |" for name, value in rows]
    (directory / f"{figures.scenario}.md").write_text("\n".join(table) + "\n")
    return data
