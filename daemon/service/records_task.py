"""The records sink (``tradectl.records.service``) as a background task of the daemon.

It runs for the daemon's lifetime with the ``records`` section and account of the rule set the
daemon started with. Records never hold up trading: a failure is logged, the fills stay in the
journal (the source of truth) and the next start exports them. A hot reload that changes
``records`` or ``account.id`` is logged and takes effect at the next start: restarting the
task mid-run would have to wait for an export or upload in flight, which may block.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from tradectl.schemas.models import Records, RuleSet

log = logging.getLogger("tradectl.daemon")


class RecordsRunner(Protocol):
    async def run(self, stop: asyncio.Event) -> None: ...

    def poke(self) -> None: ...


RecordsFactory = Callable[[RuleSet], RecordsRunner]


def records_settings(rule_set: RuleSet) -> tuple[Records, str]:
    return rule_set.records, rule_set.account.id


class RecordsTask:
    def __init__(self, factory: RecordsFactory) -> None:
        self._factory = factory
        self._stop = asyncio.Event()
        self._runner: RecordsRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._settings: tuple[Records, str] | None = None
        self._pending_settings: tuple[Records, str] | None = None

    def start(self, rule_set: RuleSet) -> None:
        self._settings = records_settings(rule_set)
        try:
            runner = self._factory(rule_set)
        except Exception:
            log.exception(
                "records: cannot start the export to %s; trading goes on and the fills stay "
                "in the journal: fix the records section and restart the daemon",
                rule_set.records.dir,
            )
            return
        self._runner = runner
        self._task = asyncio.get_running_loop().create_task(self._run(runner), name="records")
        log.info("records: exporting to %s", rule_set.records.dir)

    async def _run(self, runner: RecordsRunner) -> None:
        try:
            await runner.run(self._stop)
        except Exception:
            log.exception(
                "records: the export task stopped; trading goes on and the fills stay in the "
                "journal: restart the daemon to export them"
            )

    def poke(self) -> None:
        """New executions may be in the journal: look at them now."""
        if self._runner is None or self._stop.is_set():
            return
        try:
            self._runner.poke()
        except Exception:
            log.exception("records: could not wake the export task")

    def rules_changed(self, rule_set: RuleSet) -> None:
        wanted = records_settings(rule_set)
        if self._settings is None or wanted in (self._settings, self._pending_settings):
            return
        self._pending_settings = wanted
        log.warning(
            "records settings or account changed: records keep going to %s for account %s "
            "until the daemon restarts (systemctl restart tradectl)",
            self._settings[0].dir,
            self._settings[1],
        )

    async def stop(self, timeout: float) -> None:
        """Ask the task to write what is settled and stop; give up after ``timeout`` seconds
        (an upload stuck in the network, say): the journal keeps every fill and the outbox every
        upload, so the next start completes them."""
        self._stop.set()
        task = self._task
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            log.warning(
                "records: export or upload still busy after %.0fs; not waiting for it, the next "
                "start exports and uploads what is left",
                timeout,
            )
            task.cancel()
