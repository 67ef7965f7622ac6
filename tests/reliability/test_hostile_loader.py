"""All 1,000 hostile rule sets against the loader, in this process: never an exception, never a
rule set, always an error located (file:line:col) in the file that was broken."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tradectl.schemas.loader import load_rule_set

from .hostile import HostileCase, hostile_cases
from .report import record_figures

HOSTILE_SETS = 1_000
SLOWEST_ACCEPTABLE_LOAD_S = 3.0


def _verdict(case: HostileCase, root: Path) -> str | None:
    """What is wrong with the loader's answer to ``case``, or None when it is right."""
    for name, content in case.files.items():
        (root / name).write_bytes(content)
    try:
        result = load_rule_set([root])
    except Exception as exc:  # the finding is the exception itself
        return f"raised {type(exc).__name__}: {exc}"
    if result.ok:
        return "accepted as a valid rule set"
    located = [error for error in result.errors if Path(error.file).name == case.bad_file]
    if not located:
        return f"no error in {case.bad_file}: {[str(error) for error in result.errors][:3]}"
    if case.bad_line is not None and all(error.line != case.bad_line for error in located):
        return f"no error on line {case.bad_line}: {[str(error) for error in located][:3]}"
    for error in result.errors:
        if (
            error.line < 1
            or error.column < 1
            or not str(error).startswith(f"{error.file}:{error.line}:{error.column}: ")
        ):
            return f"badly located error: {error}"
    return None


@pytest.mark.slow
def test_every_hostile_rule_set_is_rejected_with_a_located_error(tmp_path: Path) -> None:
    findings: dict[str, str] = {}
    categories: Counter[str] = Counter()
    slowest = (0.0, "")
    started = time.monotonic()
    for case in hostile_cases(HOSTILE_SETS):
        categories[case.category] += 1
        root = tmp_path / case.name
        root.mkdir()
        before = time.monotonic()
        verdict = _verdict(case, root)
        elapsed = time.monotonic() - before
        slowest = max(slowest, (elapsed, case.name))
        if verdict is not None:
            findings[case.name] = verdict
        for path in root.iterdir():
            path.unlink()
        root.rmdir()
    total = time.monotonic() - started
    record_figures(
        "hostile-loader",
        {
            "rule sets": HOSTILE_SETS,
            "rejected with a located error": HOSTILE_SETS - len(findings),
            "exceptions or acceptances": len(findings),
            "slowest load (s)": round(slowest[0], 3),
            "total (s)": round(total, 1),
            "by category": dict(sorted(categories.items())),
        },
    )
    assert findings == {}
    assert slowest[0] < SLOWEST_ACCEPTABLE_LOAD_S, f"{slowest[1]} took {slowest[0]:.2f} s"


@pytest.mark.parametrize("seed", [1, 2])
def test_the_generator_is_deterministic(seed: int) -> None:
    first = [(case.name, case.files) for case in hostile_cases(40, seed=seed)]
    again = [(case.name, case.files) for case in hostile_cases(40, seed=seed)]
    assert first == again
