"""`tradectl apply` around the wire (docs/apply.md, "Start and exit"): a broken rule file sends
the gateway no more than IB's read-only handshake, and the process ends as soon as the command
is done, without the interpreter's tear-down of every module, losing nothing by it: its output,
records and journal are complete."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tradectl.journal import Journal

from .conftest import CLIENT_ID, HANDSHAKE, Gateway, allocation_rules, wait_until

pytestmark = pytest.mark.e2e

TARGETS = {"AAPL": 0.1, "MSFT": 0.1, "SPY": 0.1}
# Output to a pipe is block-buffered, as a user's `tradectl apply --json | jq` is, unless
# PYTHONUNBUFFERED is set: then an exit that skipped its flush would lose nothing here.
BUFFERED = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}


def tradectl_apply(rules: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`tradectl apply` as a user runs it, its output read through pipes."""
    return subprocess.run(
        [sys.executable, "-m", "tradectl", "apply", str(rules), *options],
        env=BUFFERED,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_broken_rule_file_is_reported_with_its_line_and_sends_no_more_than_the_handshake(
    gateway: Gateway, tmp_path: Path
) -> None:
    # 0.6 is above risk.max_position_fraction (0.35).
    rules = allocation_rules(tmp_path / "rules", gateway, {"AAPL": 0.6})
    finished = tradectl_apply(rules, "--yes", "--state-dir", str(tmp_path / "state"))
    assert finished.returncode == 1
    assert re.search(r"rules\.yaml:\d+:\d+: allocations\.core\.targets\.AAPL: ", finished.stderr)
    assert "the rules are invalid (errors above): nothing done" in finished.stderr
    # apply connected while it loaded and checked the rules (docs/apply.md, "Start and exit"):
    # the gateway heard IB's read-only handshake and nothing else, and the connection is closed.
    assert {message["msg"] for message in gateway.messages()} <= HANDSHAKE
    wait_until(lambda: not gateway.client_connected(CLIENT_ID), 20)


def test_apply_through_a_pipe_prints_its_whole_result_and_leaves_records_and_journal_complete(
    gateway: Gateway, tmp_path: Path
) -> None:
    rules = allocation_rules(tmp_path / "rules", gateway, TARGETS)
    state_dir = tmp_path / "state"
    finished = tradectl_apply(rules, "--yes", "--json", "--state-dir", str(state_dir))
    assert finished.returncode == 0, finished.stdout + finished.stderr
    result = json.loads(finished.stdout)
    assert result["exit_code"] == 0 and result["sent"] == len(TARGETS)
    assert len(gateway.messages("placeOrder")) == len(TARGETS)
    assert result["records"], finished.stderr
    for written in result["records"]:
        assert (tmp_path / "records" / written).stat().st_size > 0
    # The journal was closed and its lock released: it opens for writing, and holds every order
    # the gateway received, as sent.
    with Journal.open(state_dir) as journal:
        intents = [journal.intent(number) for number in range(1, len(TARGETS) + 1)]
    assert {intent.order_ref for intent in intents} == set(gateway.placed_refs())
    assert all(intent.sent_at is not None for intent in intents)


def run_script(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script],
        env=BUFFERED,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_quick_exit_runs_the_atexit_handlers_and_flushes_buffered_output() -> None:
    script = (
        "import atexit, logging, sys\n"
        "from tradectl.cli.quick_exit import exit_without_teardown\n"
        "logging.basicConfig(stream=sys.stderr, format='%(message)s')\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        "print('result')\n"
        "logging.getLogger('apply').warning('a warning')\n"
        "exit_without_teardown(3)\n"
    )
    finished = run_script(script)
    assert finished.returncode == 3
    assert finished.stdout.split("\n") == ["result", "atexit ran", ""]
    assert finished.stderr == "a warning\n"


def test_the_quick_exit_waits_for_a_thread_still_working_as_the_normal_exit_does(
    tmp_path: Path,
) -> None:
    done = tmp_path / "done"
    # The worker thread finishes only when this test answers on stdin, which it does after the
    # main thread has announced that it is calling the quick exit.
    script = (
        "import sys, threading\n"
        "from pathlib import Path\n"
        "from tradectl.cli.quick_exit import exit_without_teardown\n"
        "def work():\n"
        "    sys.stdin.readline()\n"
        f"    Path({str(done)!r}).write_text('written')\n"
        "threading.Thread(target=work).start()\n"
        "print('exiting', flush=True)\n"
        "exit_without_teardown(4)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline() == "exiting\n"
    process.stdin.write("go\n")
    process.stdin.flush()
    assert process.wait(60) == 4
    assert done.read_text() == "written"
