"""Timed triggers: the periodic resync (``schedule.reconcile_every``) and the rebalance cron
(``schedule.rebalance``), both on APScheduler's AsyncIOScheduler.

With a rebalance cron set, allocation orders may go only at those times: the cron opens a
rebalance window (``allocations_due``), which stays open until a completed pass finds the
allocation converged or the window's end passes, so slices left by ``max_order_value`` and buys
funded by the pass's sells follow in the next passes. A window stays open across a disconnect,
so a rebalance missed while the gateway was restarting happens as soon as it is back. Without a
cron, allocations are always due.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tradectl.schemas.models import ReportSchedule, Schedule

log = logging.getLogger("tradectl.daemon")

_RESYNC_JOB = "resync"
_REBALANCE_JOB = "rebalance"
_REPORT_JOB = "report"


@dataclass(frozen=True)
class OpenWindow:
    """An open rebalance window as the journal keeps it, so that a restart reopens it."""

    opened_at: datetime
    # Unknown until the window's first completed pass has seen the session's close.
    deadline: datetime | None = None

    def to_json(self) -> str:
        deadline = None if self.deadline is None else self.deadline.isoformat()
        return json.dumps({"opened_at": self.opened_at.isoformat(), "deadline": deadline})

    @classmethod
    def from_json(cls, text: str) -> OpenWindow | None:
        """None for a value this version cannot read: the window is then lost, as before."""
        try:
            data = json.loads(text)
            opened_at = datetime.fromisoformat(data["opened_at"])
            deadline = data["deadline"]
            return cls(opened_at, None if deadline is None else datetime.fromisoformat(deadline))
        except (ValueError, KeyError, TypeError):
            return None


WindowChanged = Callable[[OpenWindow | None], None]


class RebalanceWindow:
    """Whether allocation orders may go. A cron time opens the window; it stays open until a
    pass finds the allocation converged, or until its end: ``schedule.rebalance.window_end``
    after the cron time, by default the close of the regular session the first pass saw
    (docs/daemon.md, "Rebalance window"). ``changed`` hears every change of the open window
    (None when it closes): the daemon journals it, so a restart mid-window reopens it."""

    def __init__(self, changed: WindowChanged = lambda window: None) -> None:
        self._changed = changed
        self._cron_set = False
        self._open = False
        self._opened_at: datetime | None = None
        self._deadline: datetime | None = None

    def configure(self, cron_set: bool) -> None:
        self._cron_set = cron_set
        if not cron_set and self._open:
            self._close()

    def open(self, at: datetime | None = None) -> None:
        self._open = True
        self._opened_at = at or datetime.now(UTC)
        self._deadline = None
        self._changed(self.state)

    def restore(self, saved: OpenWindow, now: datetime, window_end: timedelta | None) -> bool:
        """Reopen a journaled window after a restart, while its end is in the future (an end
        still unknown is ``window_end`` after the cron time when that is set). A window that
        has ended is forgotten."""
        deadline = saved.deadline
        if deadline is None and window_end is not None:
            deadline = saved.opened_at + window_end
        if not self._cron_set or (deadline is not None and now >= deadline):
            self._changed(None)
            return False
        self._open = True
        self._opened_at = saved.opened_at
        self._deadline = saved.deadline
        return True

    def close_if_ended(self, now: datetime) -> None:
        """Before a pass: a window whose end passed while no pass could complete (the gateway
        was down) is closed, so that pass sends no allocation orders."""
        if self._open and self._deadline is not None and now >= self._deadline:
            self._close()

    @property
    def state(self) -> OpenWindow | None:
        if not self._open or self._opened_at is None:
            return None
        return OpenWindow(self._opened_at, self._deadline)

    def _close(self) -> None:
        self._open = False
        self._deadline = None
        self._changed(None)

    @property
    def due(self) -> bool:
        return not self._cron_set or self._open

    @property
    def deadline(self) -> datetime | None:
        return self._deadline if self._open else None

    def pass_completed(
        self,
        allocations_were_due: bool,
        *,
        work_left: bool = False,
        now: datetime | None = None,
        session_close: datetime | None = None,
        window_end: timedelta | None = None,
    ) -> None:
        """After a connected pass that planned allocations: close the window when nothing is
        left to do, or when its end has passed (an unknown end closes it at once)."""
        if not allocations_were_due or not self._open:
            return
        if self._deadline is None:
            if window_end is not None and self._opened_at is not None:
                self._deadline = self._opened_at + window_end
            else:
                self._deadline = session_close
            if self._deadline is not None:
                self._changed(self.state)
        moment = now or datetime.now(UTC)
        if not work_left or self._deadline is None or moment >= self._deadline:
            self._close()


class PassScheduler:
    def __init__(
        self,
        request_pass: Callable[[str], None],
        write_report: Callable[[ReportSchedule], Awaitable[None]] | None = None,
        market_now: Callable[[], datetime] = lambda: datetime.now(UTC),
        window_changed: WindowChanged = lambda window: None,
    ) -> None:
        self._request_pass = request_pass
        self._write_report = write_report
        self._market_now = market_now
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self.window = RebalanceWindow(window_changed)
        self._applied: Schedule | None = None

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def apply(self, schedule: Schedule) -> None:
        """(Re)configure the jobs for ``schedule``; keeps the timers when nothing changed."""
        if schedule == self._applied:
            return
        previous = self._applied
        self._applied = schedule
        if previous is None or previous.reconcile_every != schedule.reconcile_every:
            self._scheduler.add_job(
                self._resync_due,
                IntervalTrigger(seconds=schedule.reconcile_every.total_seconds()),
                id=_RESYNC_JOB,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
            )
        if previous is None or previous.rebalance != schedule.rebalance:
            if self._scheduler.get_job(_REBALANCE_JOB) is not None:
                self._scheduler.remove_job(_REBALANCE_JOB)
            rebalance = schedule.rebalance
            self.window.configure(rebalance is not None)
            if rebalance is not None:
                self._scheduler.add_job(
                    self._rebalance_due,
                    CronTrigger.from_crontab(rebalance.cron, timezone=ZoneInfo(rebalance.timezone)),
                    id=_REBALANCE_JOB,
                    replace_existing=True,
                    coalesce=True,
                    max_instances=1,
                    # A rebalance fires even if the loop was busy for a while at that minute.
                    misfire_grace_time=int(timedelta(minutes=5).total_seconds()),
                )

        if previous is None or previous.report != schedule.report:
            if self._scheduler.get_job(_REPORT_JOB) is not None:
                self._scheduler.remove_job(_REPORT_JOB)
            report = schedule.report
            if report is not None and self._write_report is not None:
                self._scheduler.add_job(
                    self._report_due,
                    CronTrigger.from_crontab(report.cron, timezone=ZoneInfo(report.timezone)),
                    args=[report],
                    id=_REPORT_JOB,
                    replace_existing=True,
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=int(timedelta(minutes=30).total_seconds()),
                )

    def next_report(self) -> datetime | None:
        job = self._scheduler.get_job(_REPORT_JOB)
        if job is None:
            return None
        next_run: datetime | None = job.next_run_time
        return next_run

    def next_rebalance(self) -> datetime | None:
        job = self._scheduler.get_job(_REBALANCE_JOB)
        if job is None:
            return None
        next_run: datetime | None = job.next_run_time
        return next_run

    # Coroutine functions, so that AsyncIOScheduler runs them on the event loop rather than in
    # its thread pool: everything they touch belongs to the loop.
    async def _resync_due(self) -> None:
        self._request_pass("timer")

    async def _report_due(self, report: ReportSchedule) -> None:
        if self._write_report is not None:
            await self._write_report(report)

    async def _rebalance_due(self) -> None:
        log.info("rebalance time reached: allocation orders may go in the next pass")
        self.window.open(self._market_now())
        self._request_pass("rebalance")
