"""The shipped rule sets validate, and the loader reads files the way a trader expects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rules_fixture import BASE_FILES, NOT_RULE_SETS, write_rule_set

from tradectl.cli import main
from tradectl.schemas.loader import load_rule_set
from tradectl.schemas.models import RuleSet

ROOT = Path(__file__).resolve().parents[2]
# An example with more than rules (examples/signals: a strategy script) keeps them in rules/.
EXAMPLES = sorted(
    path / "rules" if (path / "rules").is_dir() else path
    for path in (ROOT / "examples").iterdir()
    if path.is_dir() and path.name not in NOT_RULE_SETS
)
RULE_SETS = [ROOT / "rules", *EXAMPLES]
DESIGN_EXAMPLE = Path(__file__).parent / "fixtures" / "design-example"


@pytest.mark.parametrize(
    "rule_set", RULE_SETS, ids=[str(path.relative_to(ROOT)) for path in RULE_SETS]
)
def test_shipped_rule_set_validates(rule_set: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", str(rule_set)])

    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("valid rule set: ")


def test_the_gallery_is_complete() -> None:
    assert {path.name for path in EXAMPLES} >= {
        "allocation-only",
        "brackets",
        "scales",
        "risk-heavy",
        "multi-file",
    }


def test_default_rules_validate_through_the_installed_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tradectl", "validate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "account      DU0000001 (paper)" in result.stdout
    assert "gateway      127.0.0.1:4002 client_id 17" in result.stdout
    assert "1 bracket: nvda-pullback" in result.stdout


def test_default_rules_match_the_simulated_account() -> None:
    rules = load_rule_set([ROOT / "rules"]).rule_set
    assert rules is not None
    assert rules.account.id == "DU0000001"
    assert rules.risk.max_order_value == 50000
    assert rules.risk.max_position_fraction == 0.25
    assert len(rules.allocations) == 1 and len(rules.brackets) == 1 and len(rules.scales) == 1
    (allocation,) = rules.allocations.values()
    assert allocation.capital.fraction_of_nav == 0.6
    assert max(allocation.targets.values()) <= 0.25
    (bracket,) = rules.brackets.values()
    assert bracket.symbol not in allocation.targets
    assert bracket.entry.limit is not None


def test_summary_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", "--format", "json", str(ROOT / "rules")])

    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["account"] == {"id": "DU0000001", "live": False}
    assert summary["brackets"] == ["nvda-pullback"]
    assert summary["reenter"]["nvda-pullback"] == "never"
    assert summary["schedule"]["reconcile_every_seconds"] == 30
    assert len(summary["generation"]) == 10


def test_errors_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = dict(BASE_FILES)
    files["core.yaml"] = files["core.yaml"].replace("MSFT: 0.2", "MSFT: 0.3")
    root = write_rule_set(tmp_path, files)

    code = main(["validate", "--format", "json", str(root)])

    assert code == 1
    assert json.loads(capsys.readouterr().out) == [
        {
            "file": str(root / "core.yaml"),
            "line": 9,
            "column": 7,
            "path": "allocations.core.targets.MSFT",
            "message": f"must be <= 0.25 (risk.max_position_fraction, {root}/account.yaml:7:3)",
        }
    ]


def test_design_example_violates_its_own_position_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["validate", str(DESIGN_EXAMPLE)])

    out = capsys.readouterr().out.splitlines()
    file = DESIGN_EXAMPLE / "rules.yaml"
    assert code == 1
    assert (
        f"{file}:23:39: allocations.core.targets.GOOGL: must be <= 0.35 "
        f"(risk.max_position_fraction, {file}:8:3)"
    ) in out


def test_error_names_both_sides_of_a_conflict_across_files(tmp_path: Path) -> None:
    files = dict(BASE_FILES)
    files["entries.yaml"] = files["entries.yaml"].replace("symbol: NVDA", "symbol: TLT")
    root = write_rule_set(tmp_path, files)

    (error,) = load_rule_set([root]).errors

    assert str(error) == (
        f"{root}/entries.yaml:4:5: brackets.nvda-dip.symbol: TLT is also a target of allocation "
        "'core': the allocation would treat the shares this rule trades as drift and trade them "
        "away; trade a symbol through an allocation or through brackets and scales, not both "
        f"(allocations.core.targets.TLT, {root}/core.yaml:8:7)"
    )


def test_all_errors_at_once_sorted_by_file_and_line(tmp_path: Path) -> None:
    files = dict(BASE_FILES)
    files["entries.yaml"] = files["entries.yaml"].replace("step: 2.5", "step: -1")
    files["core.yaml"] = files["core.yaml"].replace("targets:", "tragets:")
    files["account.yaml"] = files["account.yaml"].replace("30s", "30 s")
    root = write_rule_set(tmp_path, files)

    errors = load_rule_set([root]).errors

    assert [(Path(e.file).name, e.line, e.path) for e in errors] == [
        ("account.yaml", 12, "schedule.reconcile_every"),
        # One error for the misspelt key: with targets_from, a missing targets is no longer
        # the whole story, and the unknown key's "did you mean 'targets'?" says it.
        ("core.yaml", 6, "allocations.core.tragets"),
        ("entries.yaml", 17, "scales.amzn-ladder.step"),
    ]


def test_hidden_swap_backup_and_other_files_are_ignored(tmp_path: Path) -> None:
    junk = "this is not: [valid"
    files: dict[str, str | bytes] = {
        **BASE_FILES,
        ".hidden.yaml": junk,
        ".core.yaml.swp": b"\x00\xff binary swap",
        "core.yaml~": junk,
        "core.yaml.bak": junk,
        "#core.yaml#": junk,
        ".#core.yaml": junk,
        "HALT": "",
        "notes.txt": junk,
    }
    root = write_rule_set(tmp_path, files)
    (root / "subdir").mkdir()
    (root / "subdir" / "broken.yaml").write_text(junk)

    result = load_rule_set([root])

    assert result.errors == ()
    assert sorted(path.name for path in result.files) == sorted(BASE_FILES)


def test_a_broken_link_to_a_rule_file_is_an_error_not_a_silent_removal(tmp_path: Path) -> None:
    root = write_rule_set(tmp_path, dict(BASE_FILES))
    (root / "entries.yaml").unlink()
    (root / "entries.yaml").symlink_to(tmp_path / "moved-away.yaml")

    errors = load_rule_set([root]).errors

    assert [str(error) for error in errors] == [
        f"{root}/entries.yaml:1:1: not a readable regular file (a broken symbolic link?); "
        "fix or remove it"
    ]


def test_single_files_and_yml_suffix(tmp_path: Path) -> None:
    root = write_rule_set(tmp_path, dict(BASE_FILES))
    (root / "entries.yaml").rename(root / "entries.yml")

    result = load_rule_set([root / "account.yaml", root / "entries.yml", root / "account.yaml"])

    assert result.errors == ()
    assert result.rule_set is not None
    assert list(result.rule_set.brackets) == ["nvda-dip"]
    assert result.files == (root / "account.yaml", root / "entries.yml")
    assert result.origins["brackets.nvda-dip"] == root / "entries.yml"
    assert result.origins["risk"] == root / "account.yaml"


def test_missing_paths_and_empty_directories_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")

    errors = load_rule_set([tmp_path / "empty", tmp_path / "nope", tmp_path / "notes.txt"]).errors

    assert [str(error) for error in errors] == [
        f"{tmp_path}/empty:1:1: no rule files (*.yaml, *.yml) in this directory",
        f"{tmp_path}/nope:1:1: no such file or directory",
        f"{tmp_path}/notes.txt:1:1: not a rule file: the name must end in .yaml",
    ]


def test_yaml_1_2_scalars(tmp_path: Path) -> None:
    """ON, NO, Y are tickers, not booleans; 1e3 is a number; 1:30 is not sexagesimal 90."""
    files = dict(BASE_FILES)
    files["account.yaml"] = (
        files["account.yaml"]
        .replace("allowed_symbols: [", "allowed_symbols: [ON, NO, Y, ")
        .replace("max_order_value: 50000", "max_order_value: 5e4")
    )
    files["core.yaml"] = files["core.yaml"].replace(
        "      MSFT: 0.2\n", "      ON: 0.05\n      NO: 0.05\n      Y: 0.05\n"
    )
    root = write_rule_set(tmp_path, files)

    result = load_rule_set([root])

    assert result.errors == ()
    rules = result.rule_set
    assert isinstance(rules, RuleSet)
    assert list(rules.allocations["core"].targets) == ["SPY", "TLT", "ON", "NO", "Y"]
    assert rules.risk.max_order_value == 50000.0
    assert rules.risk.allowed_symbols is not None and rules.risk.allowed_symbols[:3] == [
        "ON",
        "NO",
        "Y",
    ]


def test_anchors_and_aliases_within_bounds_are_allowed(tmp_path: Path) -> None:
    files = dict(BASE_FILES)
    files["core.yaml"] = files["core.yaml"].replace(
        "order: {type: limit, offset_bps: 10}", "order: &patient {type: limit, offset_bps: 10}"
    ) + (
        "  satellite:\n    capital: {fraction_of_nav: 0.1}\n    order: *patient\n"
        "    targets: {GLD: 0.2}\n"
    )
    root = write_rule_set(tmp_path, files)

    result = load_rule_set([root])

    assert result.errors == ()
    assert result.rule_set is not None
    assert result.rule_set.allocations["satellite"].order.limit_offset_bps == 10


def test_summary_says_which_rules_reenter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rules.yaml").write_text(
        "version: 1\n"
        "account: {id: DU0000001}\n"
        "risk: {max_order_value: 50000, max_position_fraction: 0.35, "
        "max_risk_per_trade_fraction: 0.05, max_daily_loss_fraction: 0.05, "
        "max_orders_per_minute: 100}\n"
        "brackets:\n"
        "  intraday: {symbol: AAPL, side: BUY, quantity: 10, entry: {limit: 150}, tif: DAY,\n"
        "             stop_loss: {percent: 2}, take_profit: {percent: 4}, reenter: daily}\n"
        "  swing: {symbol: MSFT, side: BUY, quantity: 5, entry: {limit: 300},\n"
        "          stop_loss: {percent: 5}, take_profit: {percent: 10}}\n"
    )

    assert main(["validate", str(tmp_path)]) == 0

    out = capsys.readouterr().out
    assert "  reenter      never: 1; daily (once per trading day): intraday" in out
