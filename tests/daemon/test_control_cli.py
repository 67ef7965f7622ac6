"""`tradectl halt`, `resume` and `status` without a running daemon: they use the journal."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tradectl.cli import main
from tradectl.cli.status import render_ledger_lines
from tradectl.journal import Journal, LedgerRow
from tradectl.journal.keys import HALT_KEY
from tradectl.ledger_view import ledger_json, rule_ledgers
from tradectl.planner.domain import Intent, OrderSpec
from tradectl.records.store import connect, journal_file


def test_halt_and_resume_without_a_daemon_fail_loudly_and_still_write_an_existing_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Journal.open(tmp_path).close()
    state = str(tmp_path)
    assert main(["halt", "--state-dir", state, "--reason", "going on holiday"]) == 3
    err = capsys.readouterr().err
    assert f"no tradectl daemon is running on {tmp_path}" in err
    assert str(tmp_path / "control.sock") in err
    assert "a daemon started on it starts halted" in err
    with Journal.open(tmp_path) as journal:
        assert journal.get_state(HALT_KEY) is not None

    assert main(["status", "--state-dir", state]) == 3
    shown = capsys.readouterr().out
    assert "No tradectl daemon is running" in shown
    assert "going on holiday" in shown

    assert main(["resume", "--state-dir", state]) == 3
    assert "cleared in the journal" in capsys.readouterr().err
    with Journal.open(tmp_path) as journal:
        assert journal.get_state(HALT_KEY) is None


def test_halt_cancel_without_a_daemon_says_nothing_was_cancelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Journal.open(tmp_path).close()
    assert main(["halt", "--cancel", "--state-dir", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "NOT cancelled" in err
    assert "start the daemon" not in err


@pytest.mark.parametrize("command", [["halt"], ["halt", "--cancel"], ["resume"], ["status"]])
def test_steering_commands_without_a_daemon_or_journal_create_nothing_and_exit_3(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    private_state_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(command) == 3
    captured = capsys.readouterr()
    expected = private_state_home / "tradectl"
    assert f"no tradectl daemon is running on {expected}" in (captured.out + captured.err).lower()
    assert not expected.exists()
    assert list(tmp_path.iterdir()) == []


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


def test_status_of_a_running_daemon_lists_ledgers_and_orphaned_protections() -> None:
    rows = [
        LedgerRow("kept", "g1", "brackets", "AAPL", "BUY", 100, 10_000, 0, 0),
        LedgerRow("gone", "g2", "brackets", "MSFT", "SELL", 0, 0, 10, 50),
    ]
    working = [
        {"order_ref": "tctl:kept:g1:stop", "quantity": 100, "filled": 0, "status": "Submitted"},
        {"order_ref": "tctl:kept:g1:target", "quantity": 100, "filled": 0, "status": "Submitted"},
        {"order_ref": "tctl:gone:g2:stop", "quantity": 40, "filled": 0, "status": "PreSubmitted"},
        {"order_ref": "tctl:gone:g2:target", "quantity": 40, "filled": 0, "status": "Cancelled"},
    ]
    ledger = {
        "available": True,
        "error": None,
        "rules": ledger_json(rule_ledgers(rows, [], ["kept"], working)),
    }

    lines = render_ledger_lines(ledger)

    gone = next(line for line in lines if line.strip().startswith("gone "))
    assert gone.split()[:8] == ["gone", "MSFT", "SELL", "50", "10", "40", "40", "0"]
    assert "ORPHANED PROTECTION" in gone and "tradectl release gone" in gone
    kept = next(line for line in lines if line.strip().startswith("kept "))
    assert kept.split() == ["kept", "AAPL", "BUY", "100", "0", "100", "100", "100"]
