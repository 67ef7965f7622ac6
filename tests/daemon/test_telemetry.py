"""What the daemon tells its telemetry (metrics and alerts), against a fake broker session:
each change once, in order, and the telemetry built from the rule set the daemon starts with."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.daemon.fakes import FakeSession, eventually, rules_text
from tests.daemon.test_supervisor import running
from tradectl.schemas.models import RuleSet
from tradectl.service.control import send_command
from tradectl.service.safety import SafetyState
from tradectl.service.telemetry import PassFacts, Telemetry


class RecordingTelemetry(Telemetry):
    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []
        self.closed = False

    def daemon_started(self, generation: str | None) -> None:
        self.events.append(("started",))

    def daemon_stopping(self) -> None:
        self.events.append(("stopping",))

    def close(self, timeout: float) -> None:
        self.closed = True

    def pass_finished(self, seconds: float, outcome: str, facts: PassFacts | None) -> None:
        self.events.append(("pass", outcome))

    def connection_changed(self, state: str) -> None:
        self.events.append(("connection", state))

    def reconnected(self) -> None:
        self.events.append(("reconnected",))

    def halt_changed(self, halted: bool, reason: str) -> None:
        self.events.append(("halt", halted))

    def breaker_changed(self, tripped: bool, reason: str) -> None:
        self.events.append(("breaker", tripped))

    def rules_changed(self, generation: str | None, errors: Sequence[str]) -> None:
        self.events.append(("rules", bool(errors)))

    def order_rejected(self, rule: str | None, code: int, text: str) -> None:
        self.events.append(("rejected", rule, code))

    def orphaned_protections(self, count: int) -> None:
        self.events.append(("orphaned", count))

    def of(self, kind: str) -> list[tuple[object, ...]]:
        return [event for event in self.events if event[0] == kind]


def test_the_daemon_reports_each_change_once(tmp_path: Path) -> None:
    telemetry = RecordingTelemetry()
    built_for: list[RuleSet] = []

    def factory(rules: RuleSet) -> Telemetry:
        built_for.append(rules)
        return telemetry

    async def scenario() -> None:
        session = FakeSession()
        session.nav = 90_000.0  # 10 % below the day's first NAV: the breaker trips
        async with running(tmp_path, session, telemetry=factory) as daemon:
            state_dir = daemon.settings.state_dir
            rules = daemon.settings.rules_dir / "rules.yaml"
            await eventually(lambda: ("breaker", True) in telemetry.events, 5)
            session.nav = 100_000.0
            await asyncio.to_thread(send_command, state_dir, "halt")
            await asyncio.to_thread(send_command, state_dir, "resume")
            await eventually(lambda: ("halt", False) in telemetry.events, 5)
            rules.write_text("version: 1\nrisk: [\n")
            await eventually(lambda: ("rules", True) in telemetry.events, 5)
            rules.write_text(rules_text())
            await eventually(lambda: telemetry.of("rules")[-1] == ("rules", False), 5)
            session.events.order_rejected("dip", 201, "Order rejected")
            session.events.disconnected()
            await eventually(lambda: ("reconnected",) in telemetry.events, 5)
            await eventually(
                lambda: telemetry.of("connection")[-1] == ("connection", "connected"), 5
            )

    asyncio.run(scenario())
    assert len(built_for) == 1
    assert telemetry.events[0] == ("started",)
    assert telemetry.events[-1] == ("stopping",) and telemetry.closed
    assert telemetry.of("breaker") == [("breaker", False), ("breaker", True), ("breaker", False)]
    assert telemetry.of("halt") == [("halt", False), ("halt", True), ("halt", False)]
    assert telemetry.of("rules") == [("rules", False), ("rules", True), ("rules", False)]
    assert telemetry.of("rejected") == [("rejected", "dip", 201)]
    assert telemetry.of("reconnected") == [("reconnected",)]
    assert telemetry.of("orphaned") == [("orphaned", 0)]
    connection = [event[1] for event in telemetry.of("connection")]
    assert connection[0] == "disconnected"
    assert connection.count("connected") == 2
    assert all(a != b for a, b in itertools.pairwise(connection))
    assert ("pass", "ok") in telemetry.events


class HaltReasons(RecordingTelemetry):
    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []

    def halt_changed(self, halted: bool, reason: str) -> None:
        super().halt_changed(halted, reason)
        if halted:
            self.reasons.append(reason)


class StatusDuringSave(FakeSession):
    """The daemon publishes its status while the halt is still being journaled."""

    publish: Callable[[], None] | None = None

    async def save_safety(self, state: SafetyState) -> None:
        if self.publish is not None:
            self.publish()
        await super().save_safety(state)


def test_a_halt_is_reported_with_its_own_reason_while_it_is_journaled(tmp_path: Path) -> None:
    telemetry = HaltReasons()

    async def scenario() -> None:
        session = StatusDuringSave()
        async with running(tmp_path, session, telemetry=lambda rules: telemetry) as daemon:
            session.publish = daemon._status_changed
            await asyncio.to_thread(
                send_command, daemon.settings.state_dir, "halt", reason="lunch break"
            )
            await eventually(lambda: bool(telemetry.reasons), 5)

    asyncio.run(scenario())
    assert telemetry.reasons == ["lunch break"]
