"""``tradectl sim`` as a process: port announcement, control lines, wire log, clean exit."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradectl.sim.state import SimState, SimStateError
from tradectl.sim.wirelog import read_wire_log

from .helpers import RawClient

pytestmark = pytest.mark.e2e


@pytest.fixture
def sim_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    wire_log = tmp_path / "wire.jsonl"
    control = tmp_path / "control.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradectl",
            "sim",
            "--port",
            "0",
            "--symbols",
            "3",
            "--world",
            "--wire-log",
            str(wire_log),
            "--control-stdin",
            "--control-socket",
            str(control),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"tradectl sim listening on 127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        yield proc, int(match.group(1)), tmp_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sim_serves_until_sigterm(sim_process: tuple[subprocess.Popen[str], int, Path]) -> None:
    proc, port, tmp_path = sim_process
    assert proc.stdin is not None and proc.stdout is not None
    client = RawClient("127.0.0.1", port, client_id=3)
    try:
        client.send(
            9, 8, 1, 0, "SYM0003", "STK", "", "", "", "", "SMART", "", "USD", "", "", 0, "", ""
        )
        details = client.read_until(lambda msg: msg[0] == "10")
        assert details[2] == "SYM0003"
    finally:
        client.close()

    for listing in ("AAPL", "SHOP.TSX"):  # --world adds the TSX listing
        proc.stdin.write(json.dumps({"op": "set_price", "symbol": listing, "price": 250.5}) + "\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == {"ok": True}

    with socket.socket(socket.AF_UNIX) as control:
        control.connect(str(tmp_path / "control.sock"))
        control.sendall(b'{"op": "snapshot"}\n')
        reply = json.loads(control.makefile().readline())
    assert reply["ok"] and reply["snapshot"]["account"] == "DU0000001"
    assert reply["snapshot"]["cash_balances"] == {"USD": 1_000_000.0}

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    records = read_wire_log(tmp_path / "wire.jsonl")
    assert [r["msg"] for r in records] == ["startApi", "reqContractDetails"]
    assert records[1]["client_id"] == 3
    assert records[1]["fields"]["contract"]["symbol"] == "SYM0003"


def test_bad_state_file_exits_1(tmp_path: Path) -> None:
    state = tmp_path / "state.yaml"
    state.write_text("account: {cash: 1}\nbogus: true\n")
    result = subprocess.run(
        [sys.executable, "-m", "tradectl", "sim", "--port", "0", "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "bogus" in result.stderr


def test_example_state_file_is_valid() -> None:
    example = Path(__file__).parents[2] / "examples" / "sim-state.yaml"
    state = SimState.load(example)
    assert state.account.id.startswith("DU")


def test_persist_needs_a_state_file_and_the_clock_must_be_in_the_calendar(tmp_path: Path) -> None:
    def sim(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "tradectl", "sim", "--port", "0", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)

    no_state = sim("--persist")
    assert (no_state.returncode, no_state.stderr) == (
        2,
        "tradectl sim: --persist needs --state FILE\n",
    )
    state = tmp_path / "state.yaml"
    state.write_text("calendar: nyse\nclock: {start: '2031-01-02T10:00:00-05:00'}\n")
    out_of_range = sim("--state", str(state))
    assert out_of_range.returncode == 1
    assert "outside the NYSE calendar's range" in out_of_range.stderr


def test_a_bad_state_file_is_reported_like_validate_reports_rules(tmp_path: Path) -> None:
    state = tmp_path / "sim.yaml"
    state.write_text("account: {id: DU1, cash: lots}\nsymbolz: {}\n")
    with pytest.raises(SimStateError) as caught:
        SimState.load(state)
    assert str(caught.value).splitlines() == [
        f"{state}:1:26: account.cash: must be a valid number, unable to parse string as a number",
        f"{state}:2:1: symbolz: unknown key 'symbolz'; did you mean 'symbols'?",
    ]
    assert "http" not in str(caught.value)
