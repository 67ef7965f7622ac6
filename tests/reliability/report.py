"""Figures of the last run of each reliability test, for docs/reliability.md.

Each test writes its figures to ``var/reliability/<name>.json`` (untracked);
``python -m tests.reliability.report`` turns the latest ones into the results section of
docs/reliability.md (``make chaos`` does it after the long tier)."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIGURES_DIR = Path(os.environ.get("TRADECTL_RELIABILITY_DIR", REPO / "var" / "reliability"))
DOC = REPO / "docs" / "reliability.md"
BEGIN = "<!-- results:begin -->"
END = "<!-- results:end -->"


def record_figures(name: str, figures: dict[str, Any]) -> None:
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    entry = {"test": name, "finished": datetime.now(UTC).isoformat(timespec="seconds")}
    (FIGURES_DIR / f"{name}.json").write_text(json.dumps({**entry, **figures}, indent=2) + "\n")


SUMMARY = (
    ("intents sent twice", "intents_sent_twice"),
    ("orders not owed", "orders_not_owed"),
    ("risk violations", "risk_violations"),
    ("manual orders touched", "manual_orders_touched"),
    ("off target", "off_target_symbols"),
    ("journal", "journal_integrity"),
    ("executions lost/doubled", "executions_missing_or_duplicated"),
    ("converged after last restart (s)", "converged after the last restart (s)"),
    ("converged after last fault (s)", "converged after the last fault (s)"),
    ("exceptions or acceptances", "exceptions or acceptances"),
    ("orders caused", "orders caused (place/cancel on the wire)"),
    ("not logged with file:line", "rule sets not logged with the broken file:line"),
)


def _summary(runs: list[dict[str, Any]]) -> list[str]:
    columns = [(title, key) for title, key in SUMMARY if any(key in run for run in runs)]
    lines = [
        "| test | " + " | ".join(title for title, _ in columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for run in runs:
        cells = [str(run.get(key, "")) for _, key in columns]
        lines.append(f"| {run['test']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def render(directory: Path) -> str:
    runs = [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]
    lines = [BEGIN, "", *_summary(runs)]
    for path in sorted(directory.glob("*.json")):
        figures = json.loads(path.read_text())
        lines.append(f"### {figures.pop('test')} (finished {figures.pop('finished')})")
        lines.append("")
        lines.append("| figure | value |")
        lines.append("| --- | --- |")
        for key, value in figures.items():
            shown = json.dumps(value) if isinstance(value, dict | list) else str(value)
            lines.append(f"| {key} | {shown} |")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def update_doc(directory: Path = FIGURES_DIR, doc: Path = DOC) -> None:
    text = doc.read_text()
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    doc.write_text(text[:start] + render(directory) + text[stop:])


if __name__ == "__main__":
    update_doc(Path(sys.argv[1]) if len(sys.argv) > 1 else FIGURES_DIR)
