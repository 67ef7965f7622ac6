"""One state directory, resolved the same way by every command from any directory: a daemon
started with `run --sim` and no --state-dir is found by `status --sim`, `halt --sim` and
`resume --sim` from elsewhere, and a command that misses it fails loudly and says where it is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import tradectl
from tests.daemon.e2e_support import DaemonProcess, wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim_daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    started_in = tmp_path / "started-here"
    started_in.mkdir()
    daemon = DaemonProcess(
        REPO / "rules", None, tmp_path / "tradectl.log", extra=("--sim",), cwd=started_in
    )
    daemon.start()
    yield daemon
    daemon.kill()


def test_a_sim_daemon_is_found_from_any_directory_and_a_miss_fails_loudly(
    tmp_path: Path, sim_daemon: DaemonProcess, private_state_home: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sim_daemon.wait_message("pass complete", timeout=60)
    expected = private_state_home / "tradectl" / "sim"

    status = tradectl(elsewhere, "status", "--sim", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["version"]

    missed = tradectl(elsewhere, "halt", "--cancel")
    assert missed.returncode == 3, missed.stdout + missed.stderr
    assert f"a daemon started with --sim runs on {expected}" in missed.stderr
    assert "start the daemon" not in missed.stdout + missed.stderr
    assert not (private_state_home / "tradectl" / "journal.sqlite3").exists()
    assert list(elsewhere.iterdir()) == []

    halted = tradectl(elsewhere, "halt", "--sim")
    assert halted.returncode == 0, halted.stdout + halted.stderr
    assert "Halted" in halted.stdout

    def shows_halted() -> bool:
        shown = tradectl(elsewhere, "status", "--sim", "--json")
        return bool(json.loads(shown.stdout)["halt"]["halted"])

    wait_until(shows_halted, 30, "status --sim to show the halt")
    resumed = tradectl(elsewhere, "resume", "--sim")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert sim_daemon.stop(30)[0] == 0
    assert (expected / "journal.sqlite3").is_file()
    # records.dir is relative (rules/account.yaml): under the state directory, not the cwd.
    assert (expected / "records" / "fills").is_dir()
    assert list(elsewhere.iterdir()) == []
    assert not (tmp_path / "started-here" / "var").exists()


def test_the_simulated_account_is_kept_with_its_journal_from_one_run_to_the_next(
    tmp_path: Path, private_state_home: Path
) -> None:
    """A second `--sim` run meets the account the first one left (its GTC orders working, its
    positions held), as a real gateway would: the journal and the account never disagree, so
    nothing is entered twice and no rule is left unplaced."""
    state = private_state_home / "tradectl" / "sim"
    first = tradectl(tmp_path, "apply", str(REPO / "rules"), "--sim", "--yes", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    account = (state / "sim-account.yaml").read_text()
    assert "NVDA" in account and "AMZN" in account  # the bracket's and the ladder's GTC orders

    second = tradectl(tmp_path, "apply", str(REPO / "rules"), "--sim", "--yes", "--json")
    assert second.returncode == 0, second.stdout + second.stderr
    sent = json.loads(second.stdout)
    assert sent["sent"] == 0, sent

    planned = tradectl(tmp_path, "plan", str(REPO / "rules"), "--sim")
    assert planned.returncode == 0, planned.stdout + planned.stderr
