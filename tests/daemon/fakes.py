"""Test doubles for the daemon's seams: a broker session, a store and a rules loader."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tradectl.journal import LedgerRelease
from tradectl.planner.breaker import daily_loss
from tradectl.schemas.models import RuleSet
from tradectl.service.engine import PassContext, PassSummary, SessionEvents
from tradectl.service.safety import SafetyState
from tradectl.service.schedule import OpenWindow
from tradectl.service.sdnotify import SystemdNotifier
from tradectl.service.supervisor import LoadOutcome
from tradectl.timezones import trading_day

VALID_RULES = """\
version: 1
account: {id: DU0000001}
risk:
  max_order_value: 50000
  max_position_fraction: 0.5
  max_risk_per_trade_fraction: 0.02
  max_daily_loss_fraction: 0.05
schedule: {reconcile_every: 1h}
scales:
  ladder: {symbol: AAPL, side: BUY, total_quantity: QTY, levels: 2, start_price: 100, step: 1}
"""


def rules_text(quantity: int = 10) -> str:
    return VALID_RULES.replace("QTY", str(quantity))


def load_single_file(directory: Path) -> LoadOutcome:
    """A stand-in for the real loader: one rules.yaml validated against RuleSet."""
    path = directory / "rules.yaml"
    try:
        data = yaml.safe_load(path.read_text())
        return LoadOutcome(RuleSet.model_validate(data), (), (str(path),))
    except (OSError, yaml.YAMLError) as exc:
        return LoadOutcome(None, (f"{path}: {exc}",))
    except ValidationError as exc:
        return LoadOutcome(None, tuple(f"{path}:1:1: {error['msg']}" for error in exc.errors()))


class FakeSession:
    """Records every call; each reconcile 'sends' ``orders_per_pass`` orders, asking may_send
    before each one like the real runtime does."""

    def __init__(self, safety: SafetyState | None = None) -> None:
        self.events = SessionEvents()
        self.safety = safety or SafetyState()
        self.generations: list[str] = []
        self.calls: list[str] = []
        self.contexts: list[PassContext] = []
        self.refuse_connects = 0
        # Raised by every connect while set (a PermanentError, say).
        self.connect_error: Exception | None = None
        self.nav = 100_000.0
        self.day_start_nav = 100_000.0
        self.orders_per_pass = 0
        self.order_pause: asyncio.Event | None = None
        self.sent = 0
        self.owned_orders: list[dict[str, Any]] = [{"order_id": 7, "order_ref": "tctl:x:1:a"}]
        self.max_daily_loss = 0.05
        # How far the gateway's clock is ahead of the host's (docs/daemon.md, "Clock").
        self.gateway_offset = timedelta(0)
        self.rebalance_window: OpenWindow | None = None

    async def open(self) -> None:
        self.calls.append("open")

    async def close(self) -> None:
        self.calls.append("close")

    async def load_safety(self) -> SafetyState:
        return self.safety

    async def save_safety(self, state: SafetyState) -> None:
        self.safety = state

    async def record_generation(self, generation: str) -> None:
        self.generations.append(generation)

    async def load_rebalance_window(self) -> OpenWindow | None:
        return self.rebalance_window

    async def save_rebalance_window(self, window: OpenWindow | None) -> None:
        self.rebalance_window = window

    async def release(self, rule: str, reason: str) -> LedgerRelease:
        self.calls.append(f"release {rule}")
        return LedgerRelease(1, rule, "AAPL", "BUY", 100.0, reason, datetime.now(UTC))

    def address(self, rule_set: RuleSet) -> str:
        return f"{rule_set.gateway.host}:{rule_set.gateway.port}"

    def market_now(self) -> datetime:
        return datetime.now(UTC) + self.gateway_offset

    async def measure_clock(self) -> None:
        self.calls.append("measure clock")

    async def connect(self, rule_set: RuleSet) -> None:
        self.calls.append("connect")
        if self.connect_error is not None:
            raise self.connect_error
        if self.refuse_connects:
            self.refuse_connects -= 1
            raise ConnectionRefusedError("connection refused")

    async def disconnect(self) -> None:
        self.calls.append("disconnect")

    async def resync(self, rule_set: RuleSet) -> None:
        self.calls.append("resync")

    async def reconcile(self, rule_set: RuleSet, context: PassContext) -> PassSummary:
        self.calls.append("reconcile")
        self.contexts.append(context)
        tripped = None
        today = trading_day(self.market_now())
        loss = daily_loss(self.nav, self.day_start_nav, None)
        if not self.safety.breaker_active(today) and loss.exceeds(self.max_daily_loss):
            tripped = loss.describe(self.max_daily_loss)
            self.safety = self.safety.trip(today, tripped)
        sent = 0
        for _ in range(self.orders_per_pass):
            if not context.may_send():
                return PassSummary(
                    planned=self.orders_per_pass,
                    sent=sent,
                    stopped_early=True,
                    breaker_tripped=tripped,
                )
            if self.order_pause is not None:
                await self.order_pause.wait()
            await asyncio.sleep(0)
            sent += 1
            self.sent += 1
        return PassSummary(planned=self.orders_per_pass, sent=sent, breaker_tripped=tripped)

    async def cancel_owned_orders(self, may_send: Callable[[], bool]) -> list[dict[str, Any]]:
        self.calls.append("cancel")
        cancelled, self.owned_orders = self.owned_orders, []
        return cancelled

    def status(self) -> dict[str, Any]:
        return {"working_owned_orders": self.owned_orders}

    def pacer_waiting(self) -> int:
        return 0

    def messages_sent(self) -> int:
        return self.sent

    def live_state_mismatches(self) -> int:
        return 0


class RecordingNotifier(SystemdNotifier):
    """Captures what would go to systemd."""

    def __init__(self) -> None:
        super().__init__({})
        self.messages: list[str] = []

    def send(self, *assignments: str) -> None:
        self.messages.append("\n".join(assignments))


async def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait until ``condition()`` holds, polling the loop, or fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)
