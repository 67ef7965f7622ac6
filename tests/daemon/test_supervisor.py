"""The daemon's decisions against a fake broker session: when passes run, when nothing may be
sent, hot reload with last-good fallback, halt, resume, the breaker and a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.daemon.fakes import (
    FakeSession,
    RecordingNotifier,
    eventually,
    load_single_file,
    rules_text,
)
from tradectl.service.control import ControlError, send_command
from tradectl.service.safety import SafetyState
from tradectl.service.supervisor import Daemon, DaemonSettings, TelemetryFactory
from tradectl.timezones import trading_day


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, session: FakeSession, telemetry: TelemetryFactory | None = None
) -> AsyncIterator[Daemon]:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir(exist_ok=True)
    if not (rules_dir / "rules.yaml").exists():
        (rules_dir / "rules.yaml").write_text(rules_text())
    settings = DaemonSettings(
        rules_dir=rules_dir,
        state_dir=tmp_path / "state",
        debounce=0.05,
        reconnect_initial=0.01,
        reconnect_max=0.05,
        stop_grace=2.0,
    )
    daemon = Daemon(settings, session, load_single_file, RecordingNotifier(), telemetry=telemetry)
    task = asyncio.create_task(daemon.run())
    started = asyncio.create_task(daemon.started.wait())
    await asyncio.wait({task, started}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    started.cancel()
    assert daemon.started.is_set(), "the daemon did not start"
    try:
        yield daemon
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(task, 10) == 0


def notifications(daemon: Daemon) -> list[str]:
    assert isinstance(daemon.notifier, RecordingNotifier)
    return daemon.notifier.messages


async def command(daemon: Daemon, name: str, **arguments: object) -> dict[str, object]:
    return await asyncio.to_thread(send_command, daemon.settings.state_dir, name, **arguments)


def run(coroutine: object) -> None:
    asyncio.run(coroutine)  # type: ignore[arg-type]


def test_start_resyncs_before_the_first_pass_then_reports_ready(tmp_path: Path) -> None:
    async def scenario() -> None:
        session = FakeSession()
        session.refuse_connects = 3
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: any(m.startswith("READY=1") for m in notifications(daemon)))
            assert session.calls[:6] == ["open"] + ["connect", "disconnect"] * 2 + ["connect"]
            assert session.calls[session.calls.index("resync") + 1] == "reconcile"
            status = await command(daemon, "status")
            assert status["connection"] == {  # type: ignore[comparison-overlap]
                "state": "connected",
                "gateway": "127.0.0.1:4002",
                "error": "",
                "resynced": True,
            }
            assert status["passes"][-1]["outcome"] == "ok"  # type: ignore[index]

    run(scenario())


def test_an_invalid_edit_keeps_the_last_good_rules_and_the_next_valid_edit_applies(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        session = FakeSession()
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: "reconcile" in session.calls)
            good = daemon.rules.generation
            rule_file = daemon.settings.rules_dir / "rules.yaml"
            rule_file.write_text(rules_text().replace("levels: 2", "levels: 0"))
            await eventually(lambda: daemon.rules.degraded)
            status = await command(daemon, "status")
            assert status["rules"]["health"] == "degraded"  # type: ignore[index]
            assert status["rules"]["generation"] == good  # type: ignore[index]
            assert status["rules"]["errors"]  # type: ignore[index]
            passes_before = len(session.contexts)
            rule_file.write_text(rules_text(quantity=20))
            await eventually(lambda: daemon.rules.generation != good)
            await eventually(lambda: len(session.contexts) > passes_before)
            assert not daemon.rules.degraded
            assert "rules" in session.contexts[-1].reasons
            assert session.generations == [good, daemon.rules.generation]

    run(scenario())


def test_nothing_is_sent_while_disconnected_and_reconnect_resyncs_first(tmp_path: Path) -> None:
    async def scenario() -> None:
        session = FakeSession()
        async with running(tmp_path, session):
            await eventually(lambda: "reconcile" in session.calls)
            context = session.contexts[-1]
            assert context.may_send()
            session.refuse_connects = 2
            session.calls.clear()
            session.events.disconnected()
            assert not context.may_send()
            await eventually(lambda: "reconcile" in session.calls)
            assert session.calls.count("connect") == 3
            assert session.calls.index("resync") < session.calls.index("reconcile")
            assert "connect" in session.contexts[-1].reasons

    run(scenario())


def test_between_1100_and_1102_nothing_is_sent(tmp_path: Path) -> None:
    async def scenario() -> None:
        session = FakeSession()
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: "reconcile" in session.calls)
            context = session.contexts[-1]
            session.events.link_lost()
            assert not context.may_send()
            assert (await command(daemon, "status"))["connection"]["state"] == "link down (1100)"  # type: ignore[index]
            session.calls.clear()
            session.events.link_restored(False)
            await eventually(lambda: "reconcile" in session.calls)
            assert session.calls == ["resync", "reconcile"]
            assert session.contexts[-1].may_send()

    run(scenario())


def test_breaker_trips_on_daily_loss_and_survives_a_restart(tmp_path: Path) -> None:
    async def scenario() -> None:
        session = FakeSession()
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: "reconcile" in session.calls)
            assert not daemon.safety.breaker_active(trading_day(datetime.now(UTC)))
            session.nav = 94_000.0
            session.events.order_event("fill")
            await eventually(lambda: daemon.safety.breaker_day is not None)
            assert "6.00% below" in daemon.safety.breaker_reason
            status = await command(daemon, "status")
            assert status["breaker"]["tripped"] is True  # type: ignore[index]
        session = FakeSession(safety=session.safety)
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: "reconcile" in session.calls)
            status = await command(daemon, "status")
            assert status["breaker"]["tripped"] is True  # type: ignore[index]
            await command(daemon, "resume")
            assert session.safety == SafetyState()
            assert not daemon.safety.breaker_active(trading_day(datetime.now(UTC)))

    run(scenario())


def test_halt_cancel_cancels_owned_orders_and_blocks_sending_until_resume(tmp_path: Path) -> None:
    async def scenario() -> None:
        session = FakeSession()
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: "reconcile" in session.calls)
            reply = await command(daemon, "halt", cancel=True)
            assert reply["cancelled"] == [{"order_id": 7, "order_ref": "tctl:x:1:a"}]
            assert session.safety.halted
            await eventually(lambda: session.contexts[-1].halted)
            assert not session.contexts[-1].may_send()
            await command(daemon, "resume")
            await eventually(lambda: not session.contexts[-1].halted)
            assert session.contexts[-1].may_send()

    run(scenario())


def test_halt_file_halts_while_it_exists(tmp_path: Path) -> None:
    async def scenario() -> None:
        session = FakeSession()
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: "reconcile" in session.calls)
            halt_file = daemon.settings.rules_dir / "HALT"
            halt_file.touch()
            await eventually(lambda: session.contexts[-1].halted)
            assert "halt-file" in session.contexts[-1].reasons
            reply = await command(daemon, "resume")
            assert "remove" in str(reply["message"])
            assert daemon.halted
            halt_file.unlink()
            await eventually(lambda: not session.contexts[-1].halted)

    run(scenario())


def test_stop_during_a_long_pass_stops_sending_and_exits_cleanly(tmp_path: Path) -> None:
    async def scenario() -> None:
        session = FakeSession()
        session.orders_per_pass = 200
        session.order_pause = asyncio.Event()
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: "reconcile" in session.calls)
            daemon.request_stop()
            session.order_pause.set()
        # The order already being sent when the stop arrived completes; nothing after it goes.
        assert session.sent == 1
        assert session.calls[-1] == "close"

    run(scenario())


def test_a_second_daemon_on_the_same_state_dir_refuses_to_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, FakeSession()) as daemon:
            second = Daemon(daemon.settings, FakeSession(), load_single_file, RecordingNotifier())
            assert await second.run() == 1

    run(scenario())


def test_invalid_rules_at_start_refuse_to_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "rules.yaml").write_text(rules_text().replace("levels: 2", "levels: 0"))
    session = FakeSession()
    daemon = Daemon(
        DaemonSettings(rules_dir, tmp_path / "state"),
        session,
        load_single_file,
        RecordingNotifier(),
    )
    assert asyncio.run(daemon.run()) == 1
    assert session.calls == ["open", "close"]
    assert "is invalid: not starting" in caplog.text


def test_control_refuses_while_stopping(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, FakeSession()) as daemon:
            daemon._stopping = True
            with pytest.raises(ControlError, match="stopping"):
                await command(daemon, "halt")
            daemon._stopping = False

    run(scenario())


def test_sighup_reloads_the_rules_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        session = FakeSession()
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: "reconcile" in session.calls)
            before = daemon.rules.generation
            daemon._watcher.stop()
            (daemon.settings.rules_dir / "rules.yaml").write_text(rules_text(quantity=30))
            os.kill(os.getpid(), signal.SIGHUP)
            await eventually(lambda: daemon.rules.generation != before)
            await eventually(lambda: "rules" in session.contexts[-1].reasons)
            assert any(m.startswith("RELOADING=1") for m in notifications(daemon))

    run(scenario())


def test_the_resync_timer_picks_up_changes_the_watcher_missed_and_repeats_no_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        session = FakeSession()
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: "reconcile" in session.calls)
            daemon._watcher.stop()
            rule_file = daemon.settings.rules_dir / "rules.yaml"
            rule_file.write_text(rules_text().replace("levels: 2", "levels: 0"))
            daemon._on_schedule("timer")
            await eventually(lambda: daemon.rules.degraded)
            await eventually(lambda: "timer" in session.contexts[-1].reasons)
            for _ in range(2):
                await daemon._reload()
            assert caplog.text.count("rule change rejected") == 1

            before = daemon.rules.generation
            rule_file.write_text(rules_text(quantity=40))
            daemon._on_schedule("timer")
            await eventually(lambda: daemon.rules.generation != before)
            assert not daemon.rules.degraded

    run(scenario())


def test_halt_during_a_long_pass_stops_it_before_the_next_order(tmp_path: Path) -> None:
    async def scenario() -> None:
        session = FakeSession()
        session.orders_per_pass = 200
        session.order_pause = asyncio.Event()
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: "reconcile" in session.calls)
            await command(daemon, "halt")
            session.order_pause.set()
            await eventually(lambda: daemon.passes[0].outcome == "stopped early")
            # The order already being sent when the halt arrived completes; nothing after it.
            assert session.sent == 1
            assert session.safety.halted

    run(scenario())


def test_the_scheduled_report_is_written_by_tradectl_report(tmp_path: Path) -> None:
    from tradectl.journal import Journal
    from tradectl.schemas.models import ReportSchedule

    state_dir = tmp_path / "state"
    Journal.open(state_dir).close()
    daemon = Daemon(
        DaemonSettings(tmp_path / "rules", state_dir),
        FakeSession(),
        load_single_file,
        RecordingNotifier(),
        clock=lambda: datetime(2026, 11, 30, 21, 15, tzinfo=UTC),
    )
    schedule = ReportSchedule(
        cron="15 16 * * mon-fri", dir=str(tmp_path / "reports"), format="json"
    )

    asyncio.run(daemon._write_report(schedule))

    written = tmp_path / "reports" / "report-2026-11-30.json"
    data = json.loads(written.read_text())
    assert (data["start"], data["end"]) == ("2026-11-30", "2026-11-30")


def test_release_through_the_control_socket_journals_it_and_runs_a_pass(tmp_path: Path) -> None:
    async def scenario() -> None:
        session = FakeSession()
        async with running(tmp_path, session) as daemon:
            await eventually(lambda: "reconcile" in session.calls)
            passes = session.calls.count("reconcile")
            reply = await command(daemon, "release", rule="gone", reason="closing by hand")
            assert reply["rule"] == "gone" and reply["held"] == 100.0
            assert reply["reason"] == "closing by hand"
            assert "release gone" in session.calls
            await eventually(lambda: session.calls.count("reconcile") > passes)
            with pytest.raises(ControlError, match="needs a rule name"):
                await command(daemon, "release")

    run(scenario())
