"""The records sink as the daemon runs it: export fills and final orders from the journal to
``records.dir`` every little while, and upload the batches to ``records.gcs`` in the background.

The runtime starts ``RecordsService.run`` as a task and calls ``poke`` after a pass journaled
executions; ``tradectl apply`` (one pass, no daemon) calls ``flush_once`` at its end.
Records never hold up trading: a failed export is logged and tried again on the next round.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from tradectl.records.datasets import fills_dataset, orders_dataset
from tradectl.records.exporter import Batch, Exporter, GcsTarget
from tradectl.records.gcs import (
    DEFAULT_BACKOFF,
    Backoff,
    PassReport,
    Uploader,
    client_from_environment,
    first_of,
)
from tradectl.records.journal_source import JournalFillSource, JournalOrderSource
from tradectl.records.store import connect, journal_file
from tradectl.records.worker import AbandonableWorker
from tradectl.schemas.models import Records

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlushReport:
    batches: tuple[Batch, ...]
    upload: PassReport | None


def records_dir(state_dir: Path, records: Records) -> Path:
    """``records.dir``; a relative one is under the state directory (docs/records.md), never
    under whatever directory the command was started from."""
    return state_dir / records.dir


class RecordsService:
    def __init__(
        self,
        state_dir: Path,
        records: Records,
        account: str | None,
        *,
        export_every: float = 30.0,
        flush_after: timedelta = timedelta(minutes=5),
        settle: timedelta = timedelta(seconds=60),
        backoff: Backoff = DEFAULT_BACKOFF,
        upload_idle: float = 60.0,
        client_factory: Callable[[], Any] = client_from_environment,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = journal_file(state_dir)
        self._gcs = None if records.gcs is None else GcsTarget.parse(records.gcs)
        self._dir = records_dir(state_dir, records)
        self._account = account
        self._export_every = export_every
        self._flush_after = flush_after
        self._settle = settle
        self._backoff = backoff
        self._upload_idle = upload_idle
        self._client_factory = client_factory
        self._clock = clock
        self._poked: asyncio.Event | None = None

    def poke(self) -> None:
        """New executions are in the journal: look at them now rather than at the next round."""
        if self._poked is not None:
            self._poked.set()

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        self._poked = asyncio.Event()
        queued = asyncio.Event()
        stop_uploading = asyncio.Event()
        exporters = self._exporters()
        upload_task: asyncio.Task[None] | None = None
        try:
            with AbandonableWorker("records-export") as worker:
                # Repair files before the uploader reads them.
                await loop.run_in_executor(worker, self._recover, exporters)
                if self._gcs is not None:
                    upload_task = asyncio.create_task(
                        self._uploader().run(stop_uploading, queued, idle=self._upload_idle)
                    )
                while not stop.is_set():
                    self._poked.clear()
                    if await loop.run_in_executor(worker, self._export, exporters, False):
                        queued.set()
                    await first_of(stop, self._poked, self._export_every)
                # Shutting down: write what is settled; the outbox uploads it on the next start
                # if there is no time now.
                await loop.run_in_executor(worker, self._export, exporters, True)
        finally:
            stop_uploading.set()
            if upload_task is not None:
                await upload_task
            for _, conn in exporters:
                conn.close()

    def flush_once(self) -> FlushReport:
        """Blocking: export everything settled and try each pending upload once."""
        exporters = self._exporters()
        try:
            self._recover(exporters)
            batches = tuple(
                batch for exporter, _ in exporters for batch in exporter.export(force=True)
            )
        finally:
            for _, conn in exporters:
                conn.close()
        report = None
        if self._gcs is not None:
            uploader = self._uploader()
            report = uploader.upload_due(everything=True)
        return FlushReport(batches=batches, upload=report)

    def _exporters(self) -> list[tuple[Exporter, sqlite3.Connection]]:
        fills_conn = connect(self._path)
        orders_conn = connect(self._path)
        datasets = (
            (fills_dataset(JournalFillSource(fills_conn, self._account)), fills_conn),
            (orders_dataset(JournalOrderSource(orders_conn, self._account)), orders_conn),
        )
        return [
            (
                Exporter(
                    conn,
                    dataset,
                    self._dir,
                    self._gcs,
                    clock=self._clock,
                    flush_after=self._flush_after,
                    settle=self._settle,
                ),
                conn,
            )
            for dataset, conn in datasets
        ]

    def _uploader(self) -> Uploader:
        return Uploader(
            connect(self._path),
            client_factory=self._client_factory,
            backoff=self._backoff,
            clock=self._clock,
        )

    @staticmethod
    def _recover(exporters: list[tuple[Exporter, sqlite3.Connection]]) -> None:
        for exporter, _ in exporters:
            try:
                exporter.recover()
            except Exception:
                log.exception("records: recovering export batches failed; will retry")

    @staticmethod
    def _export(exporters: list[tuple[Exporter, sqlite3.Connection]], force: bool) -> bool:
        wrote = False
        for exporter, _ in exporters:
            # A batch that cannot be rewritten must not hold up the batches after it.
            try:
                exporter.recover(verify_files=False)
            except Exception:
                log.exception("records: rewriting an unwritten batch failed; will retry")
            try:
                wrote = bool(exporter.export(force=force)) or wrote
            except Exception:
                log.exception("records: export failed; the journal keeps the rows, will retry")
        return wrote
