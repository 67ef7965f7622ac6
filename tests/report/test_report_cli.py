"""`tradectl report` arguments, and a report of a journal with no trading."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import pytest

from tradectl.cli import main
from tradectl.cli.report import days
from tradectl.journal import Journal


def period(**given: date | None) -> tuple[date, date] | str:
    values = {"date": None, "first": None, "last": None, **given}
    return days(argparse.Namespace(**values))


def test_days_from_the_options() -> None:
    d1, d2 = date(2026, 11, 2), date(2026, 11, 6)
    assert period(date=d1) == (d1, d1)
    assert period(first=d1, last=d2) == (d1, d2)
    assert period(last=d2) == (d2, d2)
    assert period(first=d2, last=d1) == "--to 2026-11-02 is before --from 2026-11-06"
    assert period(date=d1, first=d1) == "give either --date or --from/--to, not both"


def test_a_quiet_day_reports_nothing_traded_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Journal.open(tmp_path).close()

    assert (
        main(["report", "--state-dir", str(tmp_path), "--date", "2026-11-30", "--format", "json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)

    assert (data["rules"], data["orders"], data["days"]) == ([], [], [])
    assert "no account samples" in data["notes"][0]


def test_html_needs_an_output_file_and_a_missing_journal_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--state-dir", str(tmp_path), "--format", "html"]) == 1
    assert "--format html needs --out FILE" in capsys.readouterr().err
    assert main(["report", "--state-dir", str(tmp_path / "none")]) == 1
    assert "no journal in" in capsys.readouterr().err
