"""`tradectl halt`, `resume` and `status` without a running daemon: they use the journal."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.journal import Journal
from daemon.journal.keys import HALT_KEY
from daemon.planner.types import Intent, OrderSpec
from daemon.records.store import connect, journal_file


def test_halt_and_resume_without_a_daemon_write_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(tmp_path)
    assert main(["halt", "--state-dir", state, "--reason", "going on holiday"]) == 0
    assert "the daemon will start halted" in capsys.readouterr().out
    with Journal.open(tmp_path) as journal:
        assert journal.get_state(HALT_KEY) is not None

    assert main(["status", "--state-dir", state]) == 3
    shown = capsys.readouterr().out
    assert "No tradectl daemon is running" in shown
    assert "going on holiday" in shown

    assert main(["resume", "--state-dir", state]) == 0
    assert "cleared" in capsys.readouterr().out
    with Journal.open(tmp_path) as journal:
        assert journal.get_state(HALT_KEY) is None


def test_halt_cancel_without_a_daemon_says_nothing_was_cancelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["halt", "--cancel", "--state-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "halt recorded" in captured.out
    assert "NOT cancelled" in captured.err


def test_run_refuses_a_path_that_is_not_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    assert main(["run", str(missing), "--state-dir", str(tmp_path / "state")]) == 1
    assert "is not a directory" in capsys.readouterr().err


def test_status_shows_the_records_backlog_and_a_failed_upload_as_an_alarm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--state-dir", str(tmp_path)]) == 3
    assert "records:     unknown (no records outbox in the journal yet)" in capsys.readouterr().out

    with Journal.open(tmp_path):
        pass
    conn = connect(journal_file(tmp_path))
    for state, created_at in (("pending", time.time() - 125), ("failed", time.time())):
        conn.execute(
            "INSERT INTO records_outbox (dataset, trade_date, batch_id, bucket, object_name, "
            "local_file, md5, crc32c, state, created_at, next_attempt_at, last_error) "
            "VALUES ('fills', '2026-11-24', 'x', 'b', ?, 'f', 'm', 'c', ?, ?, 0, 'conflict')",
            (f"o-{state}", state, created_at),
        )
    conn.close()

    assert main(["status", "--state-dir", str(tmp_path)]) == 3
    line = next(line for line in capsys.readouterr().out.splitlines() if "records:" in line)
    assert re.fullmatch(
        r"records: +1 batch\(es\) pending upload \(oldest waiting 2m 0[5-9]s\), 1 failed "
        r"<- ALARM: see `tradectl records status`",
        line,
    ), line
    assert main(["status", "--json", "--state-dir", str(tmp_path)]) == 3
    records = json.loads(capsys.readouterr().out)["records"]
    assert (records["pending"], records["failed"], records["last_error"]) == (1, 1, "conflict")


def test_status_reports_the_order_efficiency_ratio_and_warns_when_it_is_too_high(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Journal.open(tmp_path) as journal:
        intents = [
            Intent(
                key=f"tctl:core:g:AAPL.{n}",
                action="place",
                kind="allocations",
                rule="core",
                leg=f"AAPL.{n}",
                symbol="AAPL",
                purpose="opening",
                reason="test",
                order=OrderSpec(
                    symbol="AAPL",
                    action="BUY",
                    quantity=1,
                    order_type="LMT",
                    order_ref=f"tctl:core:g:AAPL.{n}",
                    limit_price=100.0,
                ),
            )
            for n in range(21)
        ]
        for journaled in journal.journal_intents(
            intents, client_id=17, session="s", next_valid_order_id=1
        ):
            journal.mark_sent(journaled.id)

    assert main(["status", "--state-dir", str(tmp_path)]) == 3
    line = next(line for line in capsys.readouterr().out.splitlines() if "efficiency" in line)
    assert "order efficiency ratio 21.0 (21 submitted, 0 modified, 0 cancelled" in line
    assert line.endswith("<- too high: IB may restrict the account")
    assert main(["status", "--json", "--state-dir", str(tmp_path)]) == 3
    shown = json.loads(capsys.readouterr().out)["order_efficiency"]
    assert (shown["submissions"], shown["executions"], shown["too_high"]) == (21, 0, True)
