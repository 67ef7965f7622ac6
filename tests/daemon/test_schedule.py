"""The resync timer and the rebalance cron: allocation orders only in a rebalance window."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

from daemon.service.schedule import PassScheduler, RebalanceWindow
from schemas.models import Rebalance, ReportSchedule, Schedule


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
