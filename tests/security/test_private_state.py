"""Private state whatever the umask: the state directory 0700, journal, WAL, SHM, locks and the
control socket 0600, records 0600 (0640 for a records group); a loose existing state directory
is refused with the chmod that fixes it."""

from __future__ import annotations

import grp
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.daemon.e2e_support import wait_until
from tradectl.journal import Journal
from tradectl.private_files import (
    ensure_state_dir,
    loose_state_dir_problem,
    make_control_socket_private,
    records_modes,
)
from tradectl.records.parquet import write_atomic

from .support import REPO, mode, start_tradectl, tradectl

pytestmark = pytest.mark.e2e

STATE_FILES = ("journal.sqlite3", "journal.sqlite3-wal", "journal.sqlite3-shm", "tradectl.lock")


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_the_daemon_keeps_its_state_private_under_any_umask(
    umask: int, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    state = tmp_path / "var" / "state"
    log = tmp_path / "tradectl.log"
    daemon = start_tradectl(
        "run",
        str(REPO / "rules"),
        "--sim",
        "--state-dir",
        str(state),
        cwd=tmp_path,
        log=log,
        umask=umask,
    )
    processes.append(daemon)
    wait_until(
        lambda: "pass complete" in log.read_text(errors="replace") or daemon.poll() is not None,
        90,
        "the daemon's first pass",
    )
    assert daemon.poll() is None, log.read_text()
    assert mode(state) == 0o700
    for name in STATE_FILES:
        assert mode(state / name) == 0o600, name
    assert mode(state / "control.sock") == 0o600
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0, log.read_text()
    # The journal's own lock is taken by apply, halt and resume: checked through halt, which
    # without a daemon records the halt in the journal and exits 3 (no daemon answered).
    assert tradectl("halt", "--state-dir", str(state), cwd=tmp_path, umask=umask).returncode == 3
    assert mode(state / "journal.lock") == 0o600


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_records_are_private_under_any_umask(umask: int, tmp_path: Path) -> None:
    previous = os.umask(umask)
    try:
        write_atomic(tmp_path / "records" / "fills" / "date=2026-11-30" / "a.parquet", b"x")
    finally:
        os.umask(previous)
    assert mode(tmp_path / "records") == 0o700
    assert mode(tmp_path / "records" / "fills" / "date=2026-11-30") == 0o700
    assert mode(tmp_path / "records" / "fills" / "date=2026-11-30" / "a.parquet") == 0o600


def test_a_records_group_may_read_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    group = grp.getgrgid(os.getegid()).gr_name
    monkeypatch.setenv("TRADECTL_RECORDS_GROUP", group)
    previous = os.umask(0o000)
    try:
        write_atomic(tmp_path / "records" / "a.parquet", b"x")
    finally:
        os.umask(previous)
    assert mode(tmp_path / "records") == 0o750
    assert mode(tmp_path / "records" / "a.parquet") == 0o640
    assert (tmp_path / "records" / "a.parquet").stat().st_gid == os.getegid()
    monkeypatch.setenv("TRADECTL_RECORDS_GROUP", "no-such-group-tctl")
    with pytest.raises(OSError, match="no such group"):
        records_modes()


def loose_state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o755)
    return state


def test_the_daemon_refuses_a_state_directory_others_can_read(tmp_path: Path) -> None:
    state = loose_state(tmp_path)
    result = tradectl(
        "run", str(REPO / "rules"), "--sim", "--state-dir", str(state), cwd=tmp_path, timeout=60
    )
    assert result.returncode == 1
    assert f"chmod 700 {state}" in result.stderr
    assert "mode 0755" in result.stderr
    assert list(state.iterdir()) == []


def test_apply_refuses_a_loose_state_directory_and_sends_nothing(tmp_path: Path) -> None:
    state = loose_state(tmp_path)
    result = tradectl(
        "apply", str(REPO / "rules"), "--sim", "--yes", "--state-dir", str(state), cwd=tmp_path
    )
    assert result.returncode == 1
    assert f"chmod 700 {state}" in result.stderr
    assert "sent" not in result.stdout
    assert list(state.iterdir()) == []


def test_a_state_directory_others_can_write_is_refused_even_when_reads_are_allowed(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    Journal.open(state).close()
    state.chmod(0o722)
    result = tradectl("halt", "--state-dir", str(state), cwd=tmp_path)
    assert result.returncode == 1
    assert "can change the journal" in result.stderr + result.stdout


def test_the_explicit_setting_accepts_a_loose_state_directory_with_a_warning(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    Journal.open(state).close()
    state.chmod(0o755)
    result = tradectl(
        "halt",
        "--state-dir",
        str(state),
        cwd=tmp_path,
        env={"TRADECTL_ALLOW_LOOSE_STATE_DIR": "1"},
    )
    assert result.returncode == 3, result.stderr  # recorded in the journal; no daemon answered
    assert "accepted because TRADECTL_ALLOW_LOOSE_STATE_DIR=1" in result.stderr
    assert mode(state / "journal.sqlite3") == 0o600


def test_the_operators_group_reaches_the_socket_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gid = os.getegid()
    monkeypatch.setenv("TRADECTL_OPERATORS_GROUP", grp.getgrgid(gid).gr_name)
    state = tmp_path / "state"
    ensure_state_dir(state)
    assert mode(state) == 0o710
    assert state.stat().st_gid == gid
    ensure_state_dir(state)  # accepted again at the next start
    sock = state / "control.sock"
    sock.touch(mode=0o644)
    make_control_socket_private(sock, gid)
    assert mode(sock) == 0o660
    elsewhere = tmp_path / "other"
    elsewhere.mkdir(mode=0o750)
    assert loose_state_dir_problem(elsewhere, operators_gid=gid) is not None


def test_plan_and_status_refuse_a_journal_others_could_have_replaced(tmp_path: Path) -> None:
    state = tmp_path / "state"
    Journal.open(state).close()
    state.chmod(0o775)
    planned = tradectl(
        "plan", str(REPO / "rules"), "--sim", "--state-dir", str(state), cwd=tmp_path
    )
    assert planned.returncode == 1
    assert f"chmod 700 {state}" in planned.stderr
    shown = tradectl("status", "--state-dir", str(state), cwd=tmp_path)
    assert shown.returncode == 1
    assert f"chmod 700 {state}" in shown.stderr
