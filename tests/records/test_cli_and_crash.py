"""``tradectl records`` end to end, and an uploader process killed in the middle of an upload."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from tests.records.conftest import BUCKET, Emulator
from tests.records.helpers import journal_fills
from tradectl.cli import main
from tradectl.journal import Journal
from tradectl.records.datasets import fills_dataset
from tradectl.records.exporter import Exporter, GcsTarget
from tradectl.records.gcs import client_from_environment
from tradectl.records.journal_source import JournalFillSource
from tradectl.records.store import connect, journal_file

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def tradectl(*args: str) -> Result:
    """``tradectl ARGS`` in this process (fast); the crash test below uses real processes."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def tradectl_process(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradectl", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env=env,
        timeout=60,
    )


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    with Journal.open(state, clock=lambda: START) as journal:
        journal_fills(journal, 5, start=START)
    return state


def test_export_writes_the_requested_days_as_parquet(state_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pull.parquet"
    result = tradectl(
        "records", "export", "--since", "2026-11-24", "--out", str(out),
        "--state-dir", str(state_dir), "--account", "DU1234567",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "10 fills from 2026-11-24 to 2026-11-24" in result.stderr
    table = pq.read_table(out)
    assert table.num_rows == 10
    assert set(table["account"].to_pylist()) == {"DU1234567"}


def test_export_of_final_orders(state_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "orders.parquet"
    result = tradectl(
        "records", "export", "--since", "2026-11-24", "--dataset", "orders", "--out", str(out),
        "--state-dir", str(state_dir),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "5 orders from 2026-11-24 to 2026-11-24" in result.stderr
    assert set(pq.read_table(out)["status"].to_pylist()) == {"Filled"}


def test_export_csv_to_stdout_and_empty_ranges(state_dir: Path) -> None:
    result = tradectl(
        "records", "export", "--since", "2026-11-24", "--until", "2026-11-25",
        "--format", "csv", "--out", "-", "--state-dir", str(state_dir),
    )  # fmt: skip
    empty = tradectl(
        "records", "export", "--since", "2026-11-25", "--format", "csv", "--out", "-",
        "--state-dir", str(state_dir),
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    table = pa_csv.read_csv(io.BytesIO(result.stdout.encode()))
    assert table.num_rows == 10
    assert empty.returncode == 0 and empty.stdout.count("\n") == 1  # the header only


def test_bad_input_is_explained_without_a_traceback(state_dir: Path, tmp_path: Path) -> None:
    bad_date = tradectl("records", "export", "--since", "2026-13-01")
    backwards = tradectl(
        "records", "export", "--since", "2026-11-24", "--until", "2026-11-01",
        "--state-dir", str(state_dir),
    )  # fmt: skip
    no_journal = tradectl("records", "status", "--state-dir", str(tmp_path / "nowhere"))
    export_no_journal = tradectl(
        "records", "export", "--since", "2026-11-24", "--state-dir", str(tmp_path / "nowhere")
    )

    assert bad_date.returncode == 64 and "'2026-13-01' is not a date; use YYYY-MM-DD" in (
        bad_date.stderr
    )
    assert backwards.returncode == 1 and "is before --since" in backwards.stderr
    assert no_journal.returncode == 0 and "no records outbox" in no_journal.stdout
    assert export_no_journal.returncode == 1 and "no journal at" in export_no_journal.stderr
    for result in (bad_date, backwards, no_journal, export_no_journal):
        assert "Traceback" not in result.stderr


def export_to_outbox(state_dir: Path, records_dir: Path) -> int:
    conn = connect(journal_file(state_dir))
    try:
        exporter = Exporter(
            conn,
            fills_dataset(JournalFillSource(conn)),
            records_dir,
            GcsTarget.parse(f"gs://{BUCKET}/desk-a"),
            max_rows=4,
        )
        return sum(len(exporter.export(force=True)) for _ in range(3))
    finally:
        conn.close()


def test_uploader_killed_mid_upload_loses_nothing_and_duplicates_nothing(
    emulator: Emulator, state_dir: Path, tmp_path: Path
) -> None:
    assert export_to_outbox(state_dir, tmp_path / "records") == 3  # 10 fills, 4 per batch
    emulator.hooks.pause_after_store(2)
    env = {**os.environ, "STORAGE_EMULATOR_HOST": emulator.host}
    command = [sys.executable, "-m", "tradectl", "records", "upload", "--state-dir", str(state_dir)]

    doomed = subprocess.Popen(command, cwd=REPO, env=env)
    try:
        assert emulator.hooks.landed.wait(timeout=30), "second upload never reached the bucket"
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=30)
    finally:
        emulator.hooks.release.set()
    assert doomed.returncode == -signal.SIGKILL

    status = json.loads(
        tradectl("records", "status", "--json", "--state-dir", str(state_dir)).stdout
    )
    assert (status["done"], status["pending"]) == (1, 2)  # the landed one is not known as done

    restarted = tradectl_process("records", "upload", "--state-dir", str(state_dir), env=env)

    assert restarted.returncode == 0, restarted.stderr
    assert "uploaded 1, already in the bucket 1, failed 0" in restarted.stdout
    assert len(emulator.hooks.stored) == 3
    assert all(count == 1 for count in emulator.hooks.stored.values())
    assert sorted(emulator.exec_ids(tmp_path)) == sorted(
        f"0000e0d5.{0x6700 + i:08x}.01.0{p}" for i in range(5) for p in (1, 2)
    )
    final = tradectl("records", "status", "--state-dir", str(state_dir))
    assert final.returncode == 0
    assert "pending uploads: 0" in final.stdout and "uploaded:        3" in final.stdout


def test_status_reports_an_alarm_with_a_failing_exit_code(
    emulator: Emulator, state_dir: Path, tmp_path: Path
) -> None:
    export_to_outbox(state_dir, tmp_path / "records")
    conn = connect(journal_file(state_dir))
    (name,) = conn.execute("SELECT object_name FROM records_outbox ORDER BY id LIMIT 1").fetchone()
    conn.close()
    client_from_environment().bucket(BUCKET).blob(name).upload_from_string(b"not ours")
    upload = tradectl("records", "upload", "--state-dir", str(state_dir))
    status = tradectl("records", "status", "--state-dir", str(state_dir))

    assert upload.returncode == 1 and "failed 1" in upload.stdout
    assert status.returncode == 1
    assert "failed uploads:  1  <- ALARM" in status.stdout
    assert "already exists with different content" in status.stdout
