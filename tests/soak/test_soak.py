"""The simulated week of issue #13 and its one-day variant (docs/reliability.md, "Simulated week").

The week runs with ``make soak`` (marker ``soak``, deselected by default); the day runs in
``make test``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .harness import REPO, Soak, report
from .scenarios import DAY_START, WEEK_START, one_day, week

pytestmark = pytest.mark.e2e
SEED = int(os.environ.get("TRADECTL_SOAK_SEED", "13"))
FIGURES = Path(os.environ.get("TRADECTL_SOAK_DIR", REPO / "var" / "soak"))


def run(scenario: str, tmp_path: Path) -> None:
    script, start = {"day": (one_day, DAY_START), "week": (week, WEEK_START)}[scenario]
    soak = Soak(tmp_path, scenario, SEED, start)
    try:
        script(soak)
        figures = soak.finish()
    except BaseException:
        soak.abort()
        raise
    data = report(figures, FIGURES)
    assert figures.violations.total() == 0, (data["violations"], figures.details)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_one_session_day_with_a_restart_and_a_halt(tmp_path: Path) -> None:
    run("day", tmp_path)


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_simulated_week(tmp_path: Path) -> None:
    run("week", tmp_path)
