"""`tradectl halt`, `resume` and `status` without a running daemon: they use the journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli import main
from daemon.journal import Journal
from daemon.runtime.reconcile import HALT_KEY


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
