"""What the benchmark scripts share: the simulated gateway as a subprocess with a wire log,
rule sets of any size, the machine they ran on, and plain-text tables.

The gateway runs in its own process, as IB Gateway does, so its work is not counted against
the client's CPU and the two do not share one interpreter lock.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from tradectl.sim.wirelog import read_wire_log

ROOT = Path(__file__).resolve().parent.parent
IB_MESSAGES_PER_SECOND = 50
SIM_ACCOUNT = "DU0000001"
CLIENT_ID = 17

T = TypeVar("T")


@dataclass
class SimProcess:
    """``tradectl sim`` in a subprocess; control commands go to its stdin."""

    process: subprocess.Popen[str]
    port: int
    wire_log: Path

    def command(self, **op: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(op) + "\n")
        self.process.stdin.flush()
        reply: dict[str, Any] = json.loads(self.process.stdout.readline())
        if not reply.get("ok"):
            raise RuntimeError(f"sim refused {op}: {reply}")
        return reply

    def messages(self, client_id: int | None = CLIENT_ID) -> list[dict[str, Any]]:
        """Every message the gateway received from ``client_id`` (all clients when None)."""
        if not self.wire_log.exists():
            return []
        return [
            message
            for message in read_wire_log(self.wire_log)
            if client_id is None or message["client_id"] in (client_id, None)
        ]


@contextmanager
def sim_process(
    workdir: Path,
    *,
    symbols: int = 0,
    ack_delay_ms: float = 0.0,
    name: str = "wire",
    state: Path | None = None,
) -> Iterator[SimProcess]:
    """A fresh gateway (default account: 1,000,000 USD cash, IB's 50 messages/s enforced, or
    the ``state`` file) on a free loopback port, with ``symbols`` synthetic tickers and
    acknowledgements delayed."""
    wire_log = workdir / f"{name}.jsonl"
    command = [
        sys.executable,
        "-m",
        "tradectl",
        "sim",
        "--port",
        "0",
        "--wire-log",
        str(wire_log),
        "--control-stdin",
        "--log-level",
        "WARNING",
    ]
    if symbols:
        command += ["--symbols", str(symbols)]
    if state is not None:
        command += ["--state", str(state)]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the simulated gateway did not start: {line!r}")
        port = int(line.rsplit(":", 1)[1])
        sim = SimProcess(process, port, wire_log)
        if ack_delay_ms:
            sim.command(op="delay_acks", ms=ack_delay_ms)
        yield sim
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def synthetic_symbols(count: int) -> list[str]:
    return [f"SYM{i:04d}" for i in range(1, count + 1)]


def rules_header(port: int, records_dir: Path, *, reconcile_every: str = "30s") -> str:
    # Loose risk limits: nothing in a benchmark's plan is sliced or blocked. Fills are exported
    # (tradectl always does) into the benchmark's scratch directory, not the checkout's var/.
    return (
        "version: 1\n"
        f"account: {{id: {SIM_ACCOUNT}}}\n"
        f"gateway: {{host: 127.0.0.1, port: {port}, client_id: {CLIENT_ID}}}\n"
        "risk:\n"
        "  max_order_value: 1000000\n"
        "  max_position_fraction: 0.35\n"
        "  max_risk_per_trade_fraction: 0.02\n"
        "  max_daily_loss_fraction: 0.05\n"
        "  max_orders_per_minute: 3000\n"
        f"schedule: {{reconcile_every: {reconcile_every}}}\n"
        f"records: {{dir: {json.dumps(str(records_dir))}}}\n"
    )


def allocation_rules(port: int, records_dir: Path, symbols: Sequence[str]) -> str:
    """One allocation over ``symbols``, each weighted 0.9 / N of the whole NAV."""
    weight = 0.9 / len(symbols)
    targets = "".join(f"      {symbol}: {weight:.10f}\n" for symbol in symbols)
    return (
        rules_header(port, records_dir)
        + "allocations:\n"
        + "  bench:\n"
        + "    capital: {fraction_of_nav: 1.0}\n"
        + f"    drift: {{absolute: {weight / 4:.10f}}}\n"
        + "    min_trade_value: 0\n"
        + "    order: {type: limit, offset_bps: 10, tif: DAY}\n"
        + "    targets:\n"
        + targets
    )


def write_atomically(path: Path, text: str) -> float:
    """Save the way editors do (temp file, rename); returns the wall time of the rename."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    os.replace(temp, path)
    return time.time()


def wire_time(message: dict[str, Any]) -> float:
    return datetime.fromisoformat(message["time"]).timestamp()


def wait_until(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.005)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation, so it is always an observed value)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (readable in a terminal, pasteable into benchmarks/README.md)."""
    cells = [[str(header) for header in headers], *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return (
            "| "
            + " | ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
            + " |"
        )

    separator = "|" + "|".join("-" * (width + 1) + ":" for width in widths) + "|"
    return "\n".join([line(cells[0]), separator, *(line(row) for row in cells[1:])])


def machine() -> str:
    """The machine and its load, printed under every table (a shared machine is noisy)."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} CPUs, python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, load average {load}"
    )


@dataclass
class DaemonProcess:
    """``tradectl run`` as a subprocess, logging JSON lines to a file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"message": line})
        return lines

    def count(self, text: str) -> int:
        if self.process.poll() is not None:
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"the daemon exited with {self.process.returncode}:\n{tail}")
        return sum(text in line.get("message", "") for line in self.log_lines())


@contextmanager
def daemon_process(
    rules_dir: Path, state_dir: Path, log_path: Path, *, debounce: float | None = None
) -> Iterator[DaemonProcess]:
    command = [
        sys.executable,
        "-m",
        "tradectl",
        "run",
        str(rules_dir),
        "--state-dir",
        str(state_dir),
        "--log-format",
        "json",
    ]
    if debounce is not None:
        command += ["--debounce", str(debounce)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, cwd=ROOT)
    try:
        yield DaemonProcess(process, log_path)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def scale_ladder(name: str, symbol: str, start_price: float, quantity: int) -> str:
    """A two-level BUY ladder resting below the market (it never fills in a benchmark)."""
    return (
        f"  {name}: {{symbol: {symbol}, side: BUY, total_quantity: {quantity}, levels: 2, "
        f"start_price: {start_price:.2f}, step: 0.5}}\n"
    )


def finished_passes(state_dir: Path) -> int:
    """Reconcile passes the daemon has finished, read from its journal (a pass with nothing to
    do is logged only at debug level)."""
    uri = f"file:{state_dir / 'journal.sqlite3'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as connection:
        row = connection.execute(
            "SELECT count(*) FROM reconcile_passes WHERE finished_at IS NOT NULL"
        ).fetchone()
    return int(row[0])
