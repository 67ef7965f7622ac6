"""End-to-end helpers: the daemon as a subprocess, its JSON log, and the sim's wire log.

Everything waits on something observable (a log line, a wire message, a datagram) with a
deadline; nothing sleeps for synchronisation.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tradectl.cli import main
from tradectl.sim.wirelog import read_wire_log

ACCOUNT_RULES = """\
version: 1
account: {{id: DU0000001}}
gateway: {{host: 127.0.0.1, port: {port}, client_id: 17}}
risk:
  max_order_value: 500000
  max_position_fraction: 0.35
  max_risk_per_trade_fraction: 0.02
  max_daily_loss_fraction: 0.05
  max_orders_per_minute: 3000
schedule: {{reconcile_every: {every}}}
"""


def ladder(name: str, symbol: str, start: float, levels: int = 2, quantity: int = 20) -> str:
    return (
        f"  {name}: {{symbol: {symbol}, side: BUY, total_quantity: {quantity}, "
        f"levels: {levels}, start_price: {start}, step: 1}}\n"
    )


def write_atomically(path: Path, text: str) -> float:
    """Save like an editor does (temp file, rename); returns the wall time of the rename."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    os.replace(temp, path)
    return time.time()


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Wire:
    """What the simulated gateway received, read from its wire log."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def messages(self, name: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        found = read_wire_log(self.path)
        return [message for message in found if name is None or message["msg"] == name]

    def placed(self) -> list[dict[str, Any]]:
        return [message["fields"] for message in self.messages("placeOrder")]

    def cancels(self) -> list[dict[str, Any]]:
        return self.messages("cancelOrder")

    def order_actions(self) -> int:
        return len(self.messages("placeOrder")) + len(self.messages("cancelOrder"))

    def wait_placed(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float, what: str
    ) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            placed = self.placed()
            return placed if predicate(placed) else None

        result: list[dict[str, Any]] = wait_until(check, timeout, what)
        return result


def wire_time(message: dict[str, Any]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(message["time"]).timestamp()


class DaemonProcess:
    """``tradectl run`` as a subprocess with a JSON log file."""

    def __init__(
        self,
        rules_dir: Path | str,
        state_dir: Path | None,
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        extra: tuple[str, ...] = (),
        cwd: Path | None = None,
    ) -> None:
        """``state_dir`` None runs with the default state directory (no --state-dir)."""
        self.rules_dir = rules_dir
        self.state_dir = state_dir
        self.log_path = log_path
        self._env = env
        self._extra = extra
        self._cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def start(self) -> DaemonProcess:
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [
            sys.executable,
            "-m",
            "tradectl",
            "run",
            str(self.rules_dir),
            *self._state_dir_option(),
            "--log-format",
            "json",
            "--reconnect-max",
            "1",
            *self._extra,
        ]
        env = {**os.environ, **(self._env or {})}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env, cwd=self._cwd)
        return self

    def _state_dir_option(self) -> tuple[str, ...]:
        return () if self.state_dir is None else ("--state-dir", str(self.state_dir))

    def lines(self) -> list[dict[str, Any]]:
        """The JSON log lines of this run (a restart's lines start after the previous run's)."""
        if not self.log_path.exists():
            return []
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            text = log.read().decode(errors="replace")
        parsed = []
        for line in text.splitlines():
            try:
                parsed.append(json.loads(line))
            except ValueError:
                parsed.append({"message": line, "level": "raw"})
        return parsed

    def wait_log(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float, what: str, after: int = 0
    ) -> int:
        """Index of the first log line after ``after`` matching ``predicate``."""

        def find() -> int | None:
            self._check_alive(what)
            for index, line in enumerate(self.lines()):
                if index >= after and predicate(line):
                    return index + 1
            return None

        found: int = wait_until(find, timeout, what)
        return found - 1

    def wait_message(self, text: str, timeout: float = 15.0, after: int = 0) -> int:
        return self.wait_log(lambda line: text in line.get("message", ""), timeout, text, after)

    def _check_alive(self, what: str) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            tail = "\n".join(json.dumps(line) for line in self.lines()[-30:])
            raise AssertionError(f"daemon exited with {code} while waiting for {what}:\n{tail}")

    def stop(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; returns the exit code and the seconds it took."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tradectl", *args, *self._state_dir_option()],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def status(self) -> dict[str, Any]:
        """``tradectl status --json``, run in this process: tests poll it many times a second,
        and a Python started per poll took a core from the daemon under test."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["status", "--json", *self._state_dir_option()])
        assert code == 0, err.getvalue()
        status: dict[str, Any] = json.loads(out.getvalue())
        return status
