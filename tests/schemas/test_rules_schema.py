"""The committed JSON Schema is fresh and accepts every shipped rule file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rules_fixture import NOT_RULE_SETS

from tradectl.cli import main
from tradectl.cli.schema import schema_text

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / "rules.schema.json"
RULE_FILES = sorted(
    path
    for path in [
        *ROOT.glob("rules/*.yaml"),
        *ROOT.glob("examples/*/*.yaml"),
        *ROOT.glob("examples/*/*.yml"),
    ]
    if path.parent.name not in NOT_RULE_SETS
)
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def test_committed_schema_is_fresh() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == schema_text(), (
        "schemas/rules.schema.json is stale: run `make schema` and commit the result"
    )


def test_schema_command_prints_and_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    out = tmp_path / "rules.schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == printed
    assert printed["properties"]["version"]["const"] == 1


def test_every_rule_file_points_editors_at_the_schema() -> None:
    assert len(RULE_FILES) >= 10
    for path in RULE_FILES:
        first_line = path.read_text(encoding="utf-8").splitlines()[0]
        relative = os.path.relpath(SCHEMA, path.parent)
        assert first_line == f"# yaml-language-server: $schema={relative}", path


def _check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--schemafile", str(SCHEMA), *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_check_jsonschema_accepts_every_rule_file() -> None:
    result = _check_jsonschema(*RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_jsonschema_rejects_typos_and_bad_values(tmp_path: Path) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("version: 1\nrisk: {max_order_value: 1, max_position_fracton: 0.1}\n")
    ticker = tmp_path / "ticker.yaml"
    ticker.write_text("version: 1\nallocations: {a: {capital: {amount: 1}, targets: {spy: 1}}}\n")
    duration = tmp_path / "duration.yaml"
    duration.write_text("version: 1\nschedule: {reconcile_every: 30 sec}\n")
    for broken in (typo, ticker, duration):
        assert _check_jsonschema(broken).returncode == 1, broken.read_text()
