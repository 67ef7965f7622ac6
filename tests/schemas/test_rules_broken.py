"""Every broken rule set is rejected with exit 1 and exactly the errors a user needs:
file:line:col, field path and message, one per line, sorted by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from broken_cases import CASES, Case
from rules_fixture import BASE_FILES, write_rule_set

from tradectl.cli import main
from tradectl.schemas.loader import load_rule_set


def test_the_base_rule_set_is_valid(tmp_path: Path) -> None:
    result = load_rule_set([write_rule_set(tmp_path, dict(BASE_FILES))])
    assert result.errors == ()
    assert result.rule_set is not None


def test_there_are_at_least_forty_broken_rule_sets() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_broken_rule_set_is_rejected_with_located_errors(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_rule_set(tmp_path / "rules", case.files)

    code = main(["validate", str(root)])

    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    count = len(case.expected)
    assert lines[-1] == f"{count} error{'' if count == 1 else 's'}; the rule set is not valid"
    reported = lines[:-1]
    assert len(reported) == count, "\n".join(reported)
    for line, (file, row, column, path, fragment) in zip(reported, case.expected, strict=True):
        located = f"{root / file}:{row}:{column}: "
        assert line.startswith(located + (f"{path}: " if path else "")), line
        assert fragment in line
    errors = load_rule_set([root]).errors
    assert [(Path(e.file).name, e.line, e.column, e.path) for e in errors] == [
        expected[:4] for expected in case.expected
    ]
