"""`tradectl apply` waits for the records export only as long as --records-wait allows."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from tests.planner.builders import rule_set
from tradectl.cli.apply import _export_records
from tradectl.records.service import FlushReport, RecordsService

RULES = rule_set()


def test_a_stuck_export_does_not_hold_the_command_and_says_what_finishes_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = threading.Event()

    def stuck_upload(self: RecordsService) -> FlushReport:
        release.wait(60)
        return FlushReport(batches=(), upload=None)

    monkeypatch.setattr(RecordsService, "flush_once", stuck_upload)
    started = time.monotonic()
    try:
        _export_records(RULES, tmp_path, sys.stdout, wait=0.3)
        waited = time.monotonic() - started
    finally:
        release.set()
    assert waited < 10
    err = capsys.readouterr().err
    assert "records export not finished after 0.3 s" in err
    assert "`tradectl records upload`" in err


def test_an_export_that_finishes_in_time_is_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def quick(self: RecordsService) -> FlushReport:
        return FlushReport(batches=(), upload=None)

    monkeypatch.setattr(RecordsService, "flush_once", quick)
    _export_records(RULES, tmp_path, sys.stdout, wait=30)
    assert "not finished" not in capsys.readouterr().err


def test_the_export_runs_after_the_libraries_loaded_during_the_pass_on_the_same_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tradectl.records.worker import AbandonableWorker

    order: list[str] = []

    def quick(self: RecordsService) -> FlushReport:
        order.append("flush")
        return FlushReport(batches=(), upload=None)

    monkeypatch.setattr(RecordsService, "flush_once", quick)
    worker = AbandonableWorker("records-export")
    worker.submit(lambda: order.append("libraries"))
    _export_records(RULES, tmp_path, sys.stdout, wait=30, worker=worker)
    assert order == ["libraries", "flush"]
    assert "not finished" not in capsys.readouterr().err
