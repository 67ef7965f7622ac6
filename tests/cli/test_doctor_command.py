"""`tradectl doctor` against the simulated gateway: every check passes, or the failing line is
named; and nothing is ever placed (whatIf orders only on the wire)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tradectl.cli import main
from tradectl.ib import preflight as ask
from tradectl.journal import Journal
from tradectl.runtime import preflight
from tradectl.sim import SimState, SimThread, start_sim_thread
from tradectl.sim.wirelog import read_wire_log

pytestmark = pytest.mark.e2e

RULES = """\
version: 1
account: {{id: {account}}}
gateway: {{host: 127.0.0.1, port: {port}, client_id: 17}}
risk:
  max_order_value: 50000
  max_position_fraction: 0.5
  max_risk_per_trade_fraction: 0.02
  max_daily_loss_fraction: 0.05
allocations:
  core:
    capital: {{amount: 60000}}
    targets: {{{first}: 0.4, MSFT: 0.4}}
brackets:
  nvda-pullback:
    symbol: NVDA
    side: BUY
    quantity: 10
    entry: {{limit: 95.00}}
    stop_loss: {{price: 90.00}}
    take_profit: {{price: 110.00}}
"""


def sim_state(**market_data: str) -> SimState:
    symbols: dict[str, Any] = {
        "AAPL": {"price": 100.0, "con_id": 265598, "name": "APPLE INC"},
        "MSFT": {"price": 200.0, "con_id": 272093},
        "NVDA": {"price": 100.0, "con_id": 4815747},
    }
    for symbol, permission in market_data.items():
        symbols[symbol]["market_data"] = permission
    return SimState.from_dict({"account": {"id": "DU0000001", "cash": 100_000}, "symbols": symbols})


@pytest.fixture
def wire_log(tmp_path: Path) -> Path:
    return tmp_path / "wire.jsonl"


@pytest.fixture
def start(wire_log: Path) -> Iterator[Any]:
    started: list[SimThread] = []

    def run(state: SimState) -> SimThread:
        started.append(start_sim_thread(state, wire_log=wire_log))
        return started[-1]

    yield run
    for sim in started:
        sim.stop()


def doctor(
    tmp_path: Path,
    sim: SimThread,
    *extra: str,
    account: str = "DU0000001",
    first: str = "AAPL",
) -> list[str]:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "rules.yaml").write_text(RULES.format(account=account, port=sim.port, first=first))
    return ["doctor", str(rules), "--state-dir", str(tmp_path / "state"), *extra]


def assert_nothing_placed(sim: SimThread, wire_log: Path) -> list[dict[str, Any]]:
    snapshot = sim.control.snapshot()
    assert snapshot.orders == [] and snapshot.executions == []
    messages = read_wire_log(wire_log)
    assert [r for r in messages if r.get("dropped")] == []  # paced: no error 100
    placed = [r for r in messages if r["msg"] == "placeOrder"]
    assert [r for r in placed if not r["fields"]["whatIf"]] == []
    assert not (Path(wire_log).parent / "state").exists()  # no journal created either
    return placed


def lines(out: str, status: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(status)]


def test_all_good_exits_zero_and_places_nothing(
    tmp_path: Path, start: Any, wire_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = start(sim_state())
    assert main(doctor(tmp_path, sim)) == 0
    out = capsys.readouterr().out

    assert lines(out, "FAIL") == [] and lines(out, "warn") == []
    names = [line.split()[1] for line in lines(out, "ok")]
    assert names[:2] == ["gateway", "account"]
    assert "server version 176" in out
    assert "DU0000001 among the managed accounts (DU0000001); paper (DU prefix)" in out
    assert "AccountType INDIVIDUAL, base currency USD" in out
    assert "ok    contract AAPL        conId 265598 on NASDAQ, USD (APPLE INC)" in out
    for symbol in ("AAPL", "MSFT", "NVDA"):
        assert f"ok    market data {symbol:<8} live" in out
        assert f"ok    hours {symbol}" in out
    # Allocation: 24,000 of AAPL (240 sh) and of MSFT (120 sh); the bracket's entry: 10 NVDA.
    # Cash account: 100% initial margin on 24,000 + 24,000 + 950 (NVDA at its 95 limit,
    # valued at 100: 1,000); commissions 1.20 + 1.00 + 1.00.
    [what_if] = [line for line in lines(out, "ok") if "what-if" in line]
    assert "3 order(s) of the plan" in what_if
    assert "2 protective child order(s) not estimated alone" in what_if
    assert "commission 3.20 USD" in what_if
    assert "ok    clock" in out
    assert out.rstrip().endswith("ready: nothing failed")

    placed = assert_nothing_placed(sim, wire_log)
    assert len(placed) == 3


def test_json_lists_every_check(
    tmp_path: Path, start: Any, wire_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = start(sim_state())
    assert main(doctor(tmp_path, sim, "--json")) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ready"] is True
    assert {check["status"] for check in document["checks"]} == {"ok"}
    assert document["checks"][0]["check"] == "gateway"
    assert document["checks"][-1]["check"] == "state directory"


def test_a_missing_market_data_permission_fails_its_line(
    tmp_path: Path, start: Any, wire_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = start(sim_state(MSFT="none", NVDA="delayed"))
    assert main(doctor(tmp_path, sim)) == 1
    out = capsys.readouterr().out
    [failed] = lines(out, "FAIL")
    assert failed.startswith("FAIL  market data MSFT     none (IB error 354: Requested market data")
    assert "subscribe to the exchange's market data" in failed
    # NVDA's bracket enters at a fixed limit: no live price is a warning, not a failure.
    [warned] = lines(out, "warn")
    assert warned.startswith(
        "warn  market data NVDA     delayed only (IB error 354: Requested market data is not "
        "subscribed. Delayed market data is available.; IB error 10167: Requested market data "
        "is not subscribed. Displaying delayed market data.)"
    )
    assert out.rstrip().endswith("not ready: 1 check(s) failed")
    assert_nothing_placed(sim, wire_log)


def test_an_unknown_symbol_fails_with_error_200(
    tmp_path: Path, start: Any, wire_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = start(sim_state())
    assert main(doctor(tmp_path, sim, first="NOPE")) == 1
    out = capsys.readouterr().out
    [failed] = lines(out, "FAIL")
    assert failed.startswith(
        "FAIL  contract NOPE        NOPE is unknown to IB as a US stock (IB error 200: "
        "No security definition has been found for the request)"
    )
    assert "market data NOPE" not in out
    assert_nothing_placed(sim, wire_log)


def test_a_wrong_account_fails_and_skips_the_what_if(
    tmp_path: Path, start: Any, wire_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = start(sim_state())
    assert main(doctor(tmp_path, sim, account="DU7654321")) == 1
    out = capsys.readouterr().out
    [failed] = lines(out, "FAIL")
    assert failed == (
        "FAIL  account              DU7654321 (account.id) is not among the managed accounts: "
        "DU0000001; fix account.id in the rules, or log the gateway into that account"
    )
    assert "skip  what-if              not asked: the account check failed" in out
    assert assert_nothing_placed(sim, wire_log) == []


def test_a_journal_of_another_account_fails_the_state_directory(
    tmp_path: Path, start: Any, wire_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Journal.open(tmp_path / "state") as journal:
        journal.bind_account("DU9999999")
    sim = start(sim_state())
    assert main(doctor(tmp_path, sim)) == 1
    [failed] = lines(capsys.readouterr().out, "FAIL")
    assert failed.startswith(
        f"FAIL  state directory      {tmp_path / 'state'}: its journal belongs to account "
        "DU9999999, the rules trade DU0000001"
    )
    snapshot = sim.control.snapshot()
    assert snapshot.orders == []


def test_an_unreachable_gateway_fails_the_first_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], start: Any
) -> None:
    sim = start(sim_state())
    sim.stop()
    assert main(doctor(tmp_path, sim)) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL  gateway              127.0.0.1:{sim.port} client id 17: ")


def test_a_halt_file_is_a_warning(
    tmp_path: Path, start: Any, wire_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = start(sim_state())
    arguments = doctor(tmp_path, sim)
    (tmp_path / "rules" / "HALT").touch()
    assert main(arguments) == 0
    [warned] = lines(capsys.readouterr().out, "warn")
    assert warned.startswith("warn  what-if              tradectl is halted")
    assert assert_nothing_placed(sim, wire_log) == []


def test_an_ambiguous_symbol_lists_every_candidate() -> None:
    lookup = ask.SymbolLookup(
        symbol="ABC",
        candidates=(
            ask.Candidate(con_id=1, exchange="NYSE", currency="USD", name="ABC CORP"),
            ask.Candidate(con_id=2, exchange="NASDAQ", currency="USD", name="ABC HOLDINGS"),
        ),
    )
    check = preflight._contract(lookup)
    assert check.status == "FAIL"
    assert check.detail == (
        "2 contracts match ABC: conId 1 NYSE USD ABC CORP; conId 2 NASDAQ USD ABC HOLDINGS"
    )


@pytest.mark.parametrize(
    ("offset", "status"), [(0.4, "ok"), (-2.0, "ok"), (2.5, "warn"), (-61.0, "FAIL")]
)
def test_clock_offset_thresholds(offset: float, status: str) -> None:
    assert preflight._clock(offset).status == status


def test_sim_checks_the_repository_rules_against_the_embedded_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = Path(__file__).resolve().parents[2] / "rules"
    assert main(["doctor", str(rules), "--sim", "--state-dir", str(tmp_path / "state")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "ok    gateway              the simulated gateway (--sim), server version"
    )
    assert "ok    what-if" in out
    assert not (tmp_path / "state").exists()
