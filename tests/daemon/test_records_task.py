"""The records task in the daemon, against a fake session and fake records services: it runs
for the daemon's lifetime, is woken after passes, and never holds up trading or the stop."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.daemon.fakes import (
    FakeSession,
    RecordingNotifier,
    eventually,
    load_single_file,
    rules_text,
)
from tests.records.helpers import journal_fills
from tradectl.journal import Journal
from tradectl.records.gcs import Backoff
from tradectl.records.service import RecordsService
from tradectl.records.store import read_backlog
from tradectl.schemas.models import Records, RuleSet
from tradectl.service import supervisor
from tradectl.service.records_task import RecordsRunner, RecordsTask
from tradectl.service.supervisor import Daemon, DaemonSettings

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


class FakeRecords:
    def __init__(self, *, fail: bool = False, ignore_stop: bool = False) -> None:
        self.fail = fail
        self.ignore_stop = ignore_stop
        self.pokes = 0
        self.started = asyncio.Event()
        self.finished = False

    async def run(self, stop: asyncio.Event) -> None:
        self.started.set()
        if self.fail:
            raise RuntimeError("disk full")
        await (asyncio.Event() if self.ignore_stop else stop).wait()
        self.finished = True

    def poke(self) -> None:
        self.pokes += 1


def make_daemon(tmp_path: Path, records: FakeRecords, built: list[RuleSet]) -> Daemon:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "rules.yaml").write_text(rules_text())
    settings = DaemonSettings(
        rules_dir=rules_dir,
        state_dir=tmp_path / "state",
        debounce=0.05,
        reconnect_initial=0.01,
        reconnect_max=0.05,
        stop_grace=1.0,
    )

    def factory(rule_set: RuleSet) -> RecordsRunner:
        built.append(rule_set)
        return records

    return Daemon(settings, FakeSession(), load_single_file, RecordingNotifier(), records=factory)


async def start(daemon: Daemon) -> asyncio.Task[int]:
    task = asyncio.create_task(daemon.run())
    async with asyncio.timeout(5):
        await daemon.started.wait()
    return task


def test_records_run_for_the_daemons_lifetime_and_are_woken_after_each_pass(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        records, built = FakeRecords(), []
        daemon = make_daemon(tmp_path, records, built)
        task = await start(daemon)
        await eventually(lambda: records.started.is_set() and records.pokes >= 1)
        assert built[0].account.id == "DU0000001"
        daemon.request_stop()
        assert await asyncio.wait_for(task, 10) == 0
        assert records.finished

    asyncio.run(scenario())


def test_a_failing_records_task_is_logged_and_trading_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        records, built = FakeRecords(fail=True), []
        daemon = make_daemon(tmp_path, records, built)
        task = await start(daemon)
        await eventually(lambda: "the export task stopped" in caplog.text)
        passes = len(daemon.passes)
        daemon._serializer.request("timer")
        await eventually(lambda: len(daemon.passes) > passes and daemon.passes[-1].outcome == "ok")
        daemon.request_stop()
        assert await asyncio.wait_for(task, 10) == 0

    asyncio.run(scenario())


def test_a_stuck_records_task_does_not_hold_up_the_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(supervisor, "RECORDS_STOP_TIMEOUT_SECONDS", 0.2)

    async def scenario() -> None:
        records, built = FakeRecords(ignore_stop=True), []
        daemon = make_daemon(tmp_path, records, built)
        task = await start(daemon)
        await eventually(records.started.is_set)
        began = time.monotonic()
        daemon.request_stop()
        assert await asyncio.wait_for(task, 10) == 0
        assert time.monotonic() - began < 2
        assert "not waiting for it" in caplog.text

    asyncio.run(scenario())


def test_a_reload_that_changes_records_says_a_restart_applies_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        records, built = FakeRecords(), []
        daemon = make_daemon(tmp_path, records, built)
        task = await start(daemon)
        first = daemon.rules.generation
        rule_file = daemon.settings.rules_dir / "rules.yaml"
        rule_file.write_text(rules_text() + f"records: {{dir: {tmp_path / 'elsewhere'}}}\n")
        await eventually(lambda: daemon.rules.generation != first)
        await eventually(lambda: "until the daemon restarts" in caplog.text)
        assert len(built) == 1
        daemon.request_stop()
        assert await asyncio.wait_for(task, 10) == 0

    asyncio.run(scenario())


class HangingClient:
    """A storage client whose uploads hang until released: a network black hole."""

    def __init__(self) -> None:
        self.uploading = threading.Event()
        self.release = threading.Event()

    def bucket(self, name: str) -> HangingClient:
        return self

    def blob(self, name: str) -> HangingClient:
        return self

    def upload_from_string(self, *args: object, **kwargs: object) -> None:
        self.uploading.set()
        self.release.wait(30)
        raise ConnectionError("released")


def test_an_upload_stuck_in_the_network_does_not_hold_up_the_stop(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    with Journal.open(state_dir, clock=lambda: START) as journal:
        journal_fills(journal, 1, start=START)
    client = HangingClient()
    records = Records(dir=str(tmp_path / "records"), gcs="gs://tradectl-test/desk")
    sink = RecordsService(
        state_dir,
        records,
        "DU0000001",
        flush_after=timedelta(0),
        backoff=Backoff(initial=0.0, cap=0.0),
        client_factory=lambda: client,
    )

    stopping: list[float] = []

    async def scenario() -> None:
        task = RecordsTask(lambda rule_set: sink)
        task.start(RuleSet.model_validate(yaml.safe_load(rules_text())))
        await asyncio.to_thread(client.uploading.wait, 10)
        stopping.append(time.monotonic())
        await task.stop(0.2)

    try:
        # Until the event loop is gone: leaving must not wait for the upload either.
        asyncio.run(scenario())
        assert time.monotonic() - stopping[0] < 1.0
    finally:
        client.release.set()
    backlog = read_backlog(state_dir, time.time())
    assert backlog is not None and backlog.pending == 2
