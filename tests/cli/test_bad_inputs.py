"""Every subcommand, given bad arguments or bad files, answers with a clean message and a
documented exit code: never a Python traceback, and never argparse's 2 (which means "changes
pending" for `tradectl plan`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.helpers import tradectl

EXIT_USAGE = 64


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad-inputs")
    binary = root / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    rules = root / "rules"
    rules.mkdir()
    (rules / "rules.yaml").write_text("version: 1\naccount: {id: DU0000001}\n")
    not_a_dir = root / "file"
    not_a_dir.write_text("x")
    return {
        "BINARY": str(binary),
        "RULES": str(rules),
        "FILE": str(not_a_dir),
        "MISSING": str(root / "missing"),
    }


CASES: list[tuple[str, int]] = [
    ("schema --out /nonexistent/dir/s.json", 1),
    ("plan RULES --observed BINARY", 1),
    ("plan RULES --observed MISSING", 1),
    ("plan MISSING --observed BINARY", 1),
    ("sim --port 99999", EXIT_USAGE),
    ("sim --port http", EXIT_USAGE),
    ("sim --state BINARY --port 0", 1),
    ("sim --state MISSING --port 0", 1),
    ("sim --symbols -3 --port 0", EXIT_USAGE),
    ("apply RULES --timeout -1 --yes --sim", EXIT_USAGE),
    ("apply RULES --max-rate 500 --yes --sim", EXIT_USAGE),
    ("apply MISSING --yes --sim", 1),
    ("apply BINARY --yes --sim", 1),
    ("run --debounce -1", EXIT_USAGE),
    ("run --reconnect-max 0", EXIT_USAGE),
    ("run MISSING --state-dir MISSING", 1),
    ("validate BINARY", 1),
    ("validate MISSING", 1),
    ("validate --format yaml", EXIT_USAGE),
    ("status --state-dir FILE", 1),
    ("halt --state-dir FILE", 1),
    ("resume --state-dir FILE", 1),
    ("records status --state-dir FILE", 1),
    ("records export --since yesterday", EXIT_USAGE),
    ("records export --since 2026-01-01 --state-dir FILE", 1),
    ("records upload --state-dir MISSING", 1),
    ("records", EXIT_USAGE),
    ("bogus", EXIT_USAGE),
    ("", EXIT_USAGE),
    ("plan --no-such-flag", EXIT_USAGE),
]


@pytest.mark.parametrize(("command", "expected"), CASES, ids=[case[0] for case in CASES])
def test_bad_input_gets_a_clean_message_and_its_exit_code(
    command: str, expected: int, files: dict[str, str], tmp_path: Path
) -> None:
    arguments = [files.get(word, word) for word in command.split()]
    result = tradectl(tmp_path, *arguments)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == expected, output
    assert output.strip(), "a failure must say why"


def test_version_is_shown(tmp_path: Path) -> None:
    result = tradectl(tmp_path, "--version")
    assert result.returncode == 0
    assert re.fullmatch(r"tradectl \d+\.\d+\.\d+\S*\n", result.stdout), result.stdout
