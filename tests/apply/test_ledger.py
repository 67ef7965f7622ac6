"""The per-rule ledger in the journal (issue #12): written with each new execution, once; kept
after the rule is removed; released only by `tradectl release`."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tradectl.cli import main
from tradectl.journal import Journal, NothingToRelease, RecordedExecution, entered_total
from tradectl.journal.store import JOURNAL_FILE

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def execution(exec_id: str, ref: str | None, side: str, shares: float, price: float = 100.0):
    return RecordedExecution(
        exec_id=exec_id,
        order_id=1,
        client_id=17,
        perm_id=0,
        order_ref=ref,
        symbol="AAPL",
        side=side,
        shares=shares,
        price=price,
        time=NOW,
    )


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal.open(tmp_path, clock=lambda: NOW)


def test_entry_and_exit_legs_post_to_their_rule_once_per_exec_id(journal: Journal) -> None:
    journal.record_execution(execution("e1", "tctl:dip:g1:entry", "BUY", 60, 100.0))
    journal.record_execution(execution("e2", "tctl:dip:g1:entry", "BUY", 40, 101.0))
    journal.record_execution(execution("e2", "tctl:dip:g1:entry", "BUY", 40, 101.0))
    journal.record_execution(execution("e3", "tctl:dip:g2:stop", "SELL", 25, 95.0))
    journal.record_execution(execution("e4", "tctl:ladder:g9:L2", "BUY", 10, 90.0))
    journal.record_execution(execution("e5", "tctl:core:g3:AAPL.abcd", "BUY", 5))
    journal.record_execution(execution("e6", None, "BUY", 5))

    rows = {(row.rule, row.generation): row for row in journal.ledger()}

    assert set(rows) == {("dip", "g1"), ("dip", "g2"), ("ladder", "g9")}
    entry = rows[("dip", "g1")]
    assert (entry.kind, entry.side, entry.entered, entry.exited) == ("brackets", "BUY", 100, 0)
    assert entry.entered_value == pytest.approx(60 * 100.0 + 40 * 101.0)
    exit_row = rows[("dip", "g2")]
    assert (exit_row.side, exit_row.entered, exit_row.exited) == ("BUY", 0, 25)
    assert rows[("ladder", "g9")].kind == "scales"


def test_a_journal_from_before_the_ledger_is_posted_when_opened(tmp_path: Path) -> None:
    with Journal.open(tmp_path, clock=lambda: NOW) as journal:
        journal.record_execution(execution("e1", "tctl:dip:g1:entry", "BUY", 100))
    db = sqlite3.connect(tmp_path / JOURNAL_FILE)
    with db:
        db.execute("DELETE FROM ledger")
        db.execute("DELETE FROM ledger_fills")
    db.close()

    with Journal.open(tmp_path, clock=lambda: NOW) as journal:
        [row] = journal.ledger()
    assert (row.rule, row.entered) == ("dip", 100)


def test_a_reconstruction_is_a_floor_under_the_journaled_fills(journal: Journal) -> None:
    journal.record_execution(execution("e1", "tctl:dip:g1:entry", "BUY", 30))
    journal.record_reconstruction("dip", "AAPL", "BUY", 100)
    journal.record_reconstruction("dip", "AAPL", "BUY", 70)
    rows = journal.ledger()
    assert [(row.generation, row.entered, row.reconstructed) for row in rows] == [
        ("", 0, 100),
        ("g1", 30, 0),
    ]
    assert entered_total(rows) == 100
    assert journal.release("dip", "by hand").held == 100


def test_release_books_what_the_rule_holds_and_refuses_when_it_holds_nothing(
    journal: Journal,
) -> None:
    with pytest.raises(NothingToRelease):
        journal.release("dip", "nothing yet")
    journal.record_execution(execution("e1", "tctl:dip:g1:entry", "BUY", 100))
    journal.record_execution(execution("e2", "tctl:dip:g1:target", "SELL", 30))

    released = journal.release("dip", "closing by hand")

    assert (released.rule, released.symbol, released.side, released.held) == (
        "dip",
        "AAPL",
        "BUY",
        70,
    )
    assert [r.reason for r in journal.releases()] == ["closing by hand"]
    with pytest.raises(NothingToRelease, match="released 70"):
        journal.release("dip", "twice")


def test_release_command_without_a_daemon_writes_the_journal_and_says_what_happens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Journal.open(tmp_path) as journal:
        journal.record_execution(execution("e1", "tctl:dip:g1:entry", "BUY", 100))

    assert main(["release", "dip", "--state-dir", str(tmp_path), "--reason", "by hand"]) == 0

    out = capsys.readouterr().out
    assert "Released brackets.dip: 100 AAPL shares are no longer protected" in out
    assert "position itself is left alone" in out
    with Journal.open(tmp_path) as journal:
        assert [(r.rule, r.held, r.reason) for r in journal.releases()] == [("dip", 100, "by hand")]
    assert main(["release", "dip", "--state-dir", str(tmp_path)]) == 1
    assert "nothing to release" in capsys.readouterr().err


def test_status_without_a_daemon_shows_each_bracket_rules_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Journal.open(tmp_path) as journal:
        journal.record_execution(execution("e1", "tctl:dip:g1:entry", "BUY", 100))
        journal.record_execution(execution("e2", "tctl:dip:g1:stop", "SELL", 40))
        journal.record_execution(execution("e3", "tctl:gone:g2:entry", "BUY", 10))
        journal.release("gone", "done with it")

    assert main(["status", "--state-dir", str(tmp_path)]) == 3

    lines = capsys.readouterr().out.splitlines()
    dip = next(line for line in lines if line.strip().startswith("dip "))
    assert dip.split()[:7] == ["dip", "AAPL", "BUY", "100", "40", "60", "?"]
    gone = next(line for line in lines if line.strip().startswith("gone "))
    assert gone.split()[3:6] == ["10", "0", "0"] and "released 10" in gone
