"""The resync timer and the rebalance cron: allocation orders only in a rebalance window."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tradectl.schemas.models import Rebalance, ReportSchedule, Schedule
from tradectl.service.schedule import OpenWindow, PassScheduler, RebalanceWindow


def test_without_a_cron_allocations_are_always_due() -> None:
    window = RebalanceWindow()
    window.configure(cron_set=False)
    assert window.due
    window.pass_completed(allocations_were_due=True)
    assert window.due


def test_with_a_cron_allocations_are_due_from_the_cron_until_a_completed_pass() -> None:
    window = RebalanceWindow()
    window.configure(cron_set=True)
    assert not window.due
    window.open()
    assert window.due
    window.pass_completed(allocations_were_due=False)
    assert window.due, "a pass that did not plan allocations must not close the window"
    window.pass_completed(allocations_were_due=True)
    assert not window.due


def test_cron_runs_in_its_time_zone_and_fires_a_rebalance_pass() -> None:
    async def scenario() -> None:
        requested: list[str] = []
        scheduler = PassScheduler(requested.append)
        scheduler.start()
        try:
            schedule = Schedule(
                reconcile_every=timedelta(minutes=5),
                rebalance=Rebalance(cron="45 15 * * mon-fri", timezone="America/New_York"),
            )
            scheduler.apply(schedule)
            next_run = scheduler.next_rebalance()
            assert next_run is not None
            local = next_run.astimezone(ZoneInfo("America/New_York"))
            assert (local.hour, local.minute) == (15, 45)
            assert local.weekday() < 5
            assert not scheduler.window.due
            await scheduler._rebalance_due()
            assert scheduler.window.due
            assert requested == ["rebalance"]

            scheduler.apply(Schedule(reconcile_every=timedelta(minutes=5)))
            assert scheduler.next_rebalance() is None
            assert scheduler.window.due
        finally:
            scheduler.shutdown()

    asyncio.run(scenario())


def test_the_resync_timer_requests_passes() -> None:
    async def scenario() -> None:
        fired = asyncio.Event()
        requested: list[str] = []
        loop = asyncio.get_running_loop()

        def request(reason: str) -> None:
            # asyncio.get_running_loop() raises off the loop's thread.
            assert asyncio.get_running_loop() is loop
            requested.append(reason)
            fired.set()

        scheduler = PassScheduler(request)
        scheduler.start()
        try:
            scheduler.apply(Schedule(reconcile_every=timedelta(seconds=1)))
            await asyncio.wait_for(fired.wait(), 5)
            assert requested[0] == "timer"
        finally:
            scheduler.shutdown()

    asyncio.run(scenario())


def test_the_report_cron_runs_in_its_time_zone_and_writes_the_report() -> None:
    async def scenario() -> None:
        written: list[ReportSchedule] = []

        async def write_report(report: ReportSchedule) -> None:
            written.append(report)

        scheduler = PassScheduler(lambda reason: None, write_report)
        scheduler.start()
        try:
            report = ReportSchedule(cron="15 16 * * mon-fri", dir="reports")
            scheduler.apply(Schedule(report=report))
            next_run = scheduler.next_report()
            assert next_run is not None
            local = next_run.astimezone(ZoneInfo("America/New_York"))
            assert (local.hour, local.minute) == (16, 15)
            await scheduler._report_due(report)
            assert written == [report]

            scheduler.apply(Schedule())
            assert scheduler.next_report() is None
        finally:
            scheduler.shutdown()

    asyncio.run(scenario())


UTC_NOON = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)


def opened_at_noon() -> RebalanceWindow:
    window = RebalanceWindow()
    window.configure(cron_set=True)
    window.open(at=UTC_NOON)
    return window


def test_the_window_stays_open_until_the_allocation_has_converged() -> None:
    window = opened_at_noon()
    close = UTC_NOON + timedelta(hours=4)
    for minutes in (1, 2, 3):
        window.pass_completed(
            True, work_left=True, now=UTC_NOON + timedelta(minutes=minutes), session_close=close
        )
        assert window.due, "slices and sell-funded buys still to go: the window stays open"
    assert window.deadline == close
    window.pass_completed(True, work_left=False, now=UTC_NOON + timedelta(minutes=4))
    assert not window.due


def test_the_window_closes_at_the_session_close_even_with_work_left() -> None:
    window = opened_at_noon()
    close = UTC_NOON + timedelta(hours=4)
    window.pass_completed(True, work_left=True, now=UTC_NOON, session_close=close)
    assert window.due
    window.pass_completed(True, work_left=True, now=close, session_close=close)
    assert not window.due


def test_window_end_overrides_the_session_close() -> None:
    window = opened_at_noon()
    window.pass_completed(
        True,
        work_left=True,
        now=UTC_NOON,
        session_close=UTC_NOON + timedelta(hours=4),
        window_end=timedelta(minutes=30),
    )
    assert window.deadline == UTC_NOON + timedelta(minutes=30)
    window.pass_completed(True, work_left=True, now=UTC_NOON + timedelta(minutes=30))
    assert not window.due


def test_an_unknown_window_end_closes_after_the_pass_as_before() -> None:
    window = opened_at_noon()
    window.pass_completed(True, work_left=True, now=UTC_NOON, session_close=None)
    assert not window.due


def test_window_end_is_a_rule_key() -> None:
    rebalance = Rebalance.model_validate(
        {"cron": "0 10 1 * *", "timezone": "America/New_York", "window_end": "2h"}
    )
    assert rebalance.window_end == timedelta(hours=2)


def journaled_window() -> tuple[RebalanceWindow, list[OpenWindow | None]]:
    journaled: list[OpenWindow | None] = []
    window = RebalanceWindow(journaled.append)
    window.configure(cron_set=True)
    return window, journaled


def test_every_change_of_the_open_window_is_journaled() -> None:
    window, journaled = journaled_window()
    close = UTC_NOON + timedelta(hours=4)
    window.open(at=UTC_NOON)
    window.pass_completed(True, work_left=True, now=UTC_NOON, session_close=close)
    window.pass_completed(True, work_left=True, now=UTC_NOON, session_close=close)
    window.pass_completed(True, work_left=False, now=UTC_NOON + timedelta(minutes=2))
    assert journaled == [OpenWindow(UTC_NOON), OpenWindow(UTC_NOON, close), None]
    assert OpenWindow.from_json(OpenWindow(UTC_NOON, close).to_json()) == OpenWindow(
        UTC_NOON, close
    )
    assert OpenWindow.from_json("not json") is None


def test_a_restart_reopens_the_window_while_its_end_is_in_the_future() -> None:
    close = UTC_NOON + timedelta(hours=4)
    window, journaled = journaled_window()
    assert window.restore(OpenWindow(UTC_NOON, close), UTC_NOON + timedelta(hours=1), None)
    assert window.due and window.deadline == close
    window.pass_completed(True, work_left=True, now=close, session_close=close)
    assert not window.due and journaled == [None]

    window, journaled = journaled_window()
    assert not window.restore(OpenWindow(UTC_NOON, close), close, None)
    assert not window.due and journaled == [None], "an ended window is forgotten"


def test_a_restored_window_without_a_known_end_takes_window_end_from_the_cron_time() -> None:
    window, _ = journaled_window()
    later = UTC_NOON + timedelta(hours=1)
    assert not window.restore(OpenWindow(UTC_NOON), later, timedelta(minutes=30))
    assert window.restore(OpenWindow(UTC_NOON), later, timedelta(hours=2))
    # No end known yet (the first pass never completed): the next pass sets it.
    window, _ = journaled_window()
    assert window.restore(OpenWindow(UTC_NOON), later, None)
    assert window.due and window.deadline is None


def test_a_window_is_not_restored_once_the_cron_is_gone() -> None:
    window = RebalanceWindow()
    window.configure(cron_set=False)
    assert not window.restore(OpenWindow(UTC_NOON), UTC_NOON, None)
    assert window.due  # allocations are always due without a cron


def test_a_window_whose_end_passed_while_disconnected_closes_before_the_next_pass() -> None:
    window, journaled = journaled_window()
    close = UTC_NOON + timedelta(hours=4)
    window.open(at=UTC_NOON)
    window.pass_completed(True, work_left=True, now=UTC_NOON, session_close=close)
    window.close_if_ended(close - timedelta(seconds=1))
    assert window.due
    window.close_if_ended(close + timedelta(hours=1))
    assert not window.due and journaled[-1] is None
