"""`tradectl plan`: the table, JSON, exit codes and error messages a user sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradectl.cli import main

REPO = Path(__file__).resolve().parents[2]
RULES = """\
version: 1
account: {id: DU1234567}
risk:
  max_order_value: 25000
  max_position_fraction: 0.5
  max_risk_per_trade_fraction: 0.02
  max_daily_loss_fraction: 0.05
allocations:
  core:
    capital: {amount: 100000}
    targets: {AAPL: 0.30, MSFT: 0.30}
"""
SNAPSHOT = """\
as_of: 2026-11-25T15:30:00Z
account_id: DU1234567
net_liquidation: 100000
cash: 100000
positions: {MSFT: 75}
quotes: {AAPL: 125.0, MSFT: 400.0}
contracts:
  AAPL: {min_tick: 0.01}
  MSFT: {min_tick: 0.01}
"""


def write(tmp_path: Path, rules: str = RULES, snapshot: str = SNAPSHOT) -> tuple[Path, Path]:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "rules.yaml").write_text(rules)
    observed = tmp_path / "observed.yaml"
    observed.write_text(snapshot)
    return rules_dir, observed


def test_table_shows_each_intent_and_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_dir, observed = write(tmp_path)
    assert main(["plan", str(rules_dir), "--observed", str(observed)]) == 2
    out = capsys.readouterr().out
    # AAPL: 30,000 / 125 = 240 shares at 125.12 = 30,028.80 > 25,000 -> sliced to 199.
    assert "+ allocations.core  AAPL    0 → 240" in out
    assert "place BUY  199  125.12  24,898.88" in out
    assert "sliced: 199 of 240 shares, risk.max_order_value" in out
    assert "MSFT" not in out.split("Plan:")[0].split("REASON")[1]  # 75 x 400 = 0.30: in band
    assert out.rstrip().endswith("Plan: 1 to place, 0 to modify, 0 to cancel, 0 blocked.")


def test_json_carries_the_same_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules_dir, observed = write(tmp_path)
    assert main(["plan", str(rules_dir), "--observed", str(observed), "--json"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["summary"] == {"place": 1, "modify": 0, "cancel": 0, "blocked": 0}
    (intent,) = document["intents"]
    assert intent["order"]["quantity"] == 199
    assert intent["order"]["limit_price"] == 125.12
    assert intent["key"] == intent["order"]["order_ref"]
    assert intent["order"]["order_ref"].startswith("tctl:core:")
    assert document["as_of"] == "2026-11-25T15:30:00+00:00"


def test_nothing_to_do_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    in_sync = SNAPSHOT.replace("positions: {MSFT: 75}", "positions: {MSFT: 75, AAPL: 240}")
    rules_dir, observed = write(tmp_path, snapshot=in_sync)
    assert main(["plan", str(rules_dir), "--observed", str(observed)]) == 0
    assert "No changes" in capsys.readouterr().out


def test_blocked_intents_are_shown_and_still_count_as_pending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_dir, observed = write(tmp_path, snapshot=SNAPSHOT + "halted: true\n")
    assert main(["plan", str(rules_dir), "--observed", str(observed)]) == 2
    out = capsys.readouterr().out
    assert "x allocations.core" in out
    assert "Plan: 0 to place, 0 to modify, 0 to cancel, 1 blocked." in out


def test_without_an_account_source_it_says_what_to_pass(
    tmp_path: Path, reserved_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = f"gateway: {{host: 127.0.0.1, port: {reserved_port}}}\n"
    rules_dir, _ = write(tmp_path, rules=RULES + gateway)
    assert main(["plan", str(rules_dir)]) == 1
    assert "pass --observed FILE" in capsys.readouterr().err


def test_broken_snapshot_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_dir, observed = write(tmp_path, snapshot="account_id: [DU1\ncash: 1\n")
    assert main(["plan", str(rules_dir), "--observed", str(observed)]) == 1
    err = capsys.readouterr().err
    assert f"{observed}:2:5: YAML syntax error" in err

    wrong = SNAPSHOT.replace("cash: 100000", "cash: lots")
    observed.write_text(wrong + "contracts_typo: {}\n")
    assert main(["plan", str(rules_dir), "--observed", str(observed)]) == 1
    err = capsys.readouterr().err
    assert f"{observed}:4:7: cash: must be a valid number" in err
    assert f"{observed}:10:1: contracts_typo: unknown key 'contracts_typo'" in err
    assert "Traceback" not in err


def test_invalid_rules_are_reported_and_nothing_is_planned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_dir, observed = write(tmp_path, rules=RULES.replace("AAPL: 0.30", "AAPL: 0.60"))
    assert main(["plan", str(rules_dir), "--observed", str(observed)]) == 1
    err = capsys.readouterr().err
    assert "rules.yaml:" in err and "the rules are invalid" in err


def test_snapshot_of_another_account_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_dir, observed = write(tmp_path, snapshot=SNAPSHOT.replace("DU1234567", "DU7654321"))
    assert main(["plan", str(rules_dir), "--observed", str(observed)]) == 1
    assert "account DU7654321" in capsys.readouterr().err


def test_the_shipped_example_plans_against_the_default_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["plan", str(REPO / "rules"), "--observed", str(REPO / "examples/observed.yaml")])
    assert code == 2
    out = capsys.readouterr().out
    assert "~ allocations.core        JPM" in out
    assert "GLD: quote is stale" in out
    assert "order 57: SELL 50 AAPL" in out


def test_a_halt_file_in_the_rules_directory_blocks_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules_dir, observed = write(tmp_path)
    (rules_dir / "HALT").write_text("")
    assert main(["plan", str(rules_dir), "--observed", str(observed)]) == 2
    out = capsys.readouterr().out
    assert "HALTED" in out
    assert "Plan: 0 to place, 0 to modify, 0 to cancel, 1 blocked." in out


def test_a_modify_row_shows_the_order_before_and_after(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["plan", str(REPO / "rules"), "--observed", str(REPO / "examples/observed.yaml")])
    assert code == 2
    row = next(line for line in capsys.readouterr().out.splitlines() if " JPM " in line)
    assert "100 @ 290.00 → 140 @ 300.30" in row
    assert "modify BUY #41" in row


@pytest.mark.parametrize("columns", [60, 100, 140])
def test_the_table_fits_the_terminal_width_in_columns(
    columns: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    main(["plan", str(REPO / "rules"), "--observed", str(REPO / "examples/observed.yaml")])
    out = capsys.readouterr().out
    table = out.split("\n\n")[1].splitlines()
    for line in table:
        # A row longer than the terminal is its cells alone (they cannot be wrapped); its reason
        # then sits on indented lines of its own, which fit.
        assert len(line) <= columns or "weight" not in line, line
    flat = " ".join(out.split())
    assert "sliced: 217 of 260 shares, risk.max_order_value" in flat  # nothing lost to wrapping


def test_piped_output_keeps_one_line_per_intent(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    main(["plan", str(REPO / "rules"), "--observed", str(REPO / "examples/observed.yaml")])
    table = capsys.readouterr().out.split("\n\n")[1].splitlines()
    assert all(line[:1] in "+~-x " and not line.startswith("      ") for line in table)
