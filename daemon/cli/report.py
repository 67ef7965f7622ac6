"""`tradectl report`: the day's fills, P&L and account from the journal (docs/report.md)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

from tradectl.cli.arguments import add_state_options
from tradectl.cli.target import state_dir_of
from tradectl.journal import Journal, JournalError, utc_now
from tradectl.timezones import trading_day

FORMATS = ("text", "json", "html")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        description="Report one trading day (default: today, New York time) or a range of "
        "days from the journal: per rule fills, bought and sold value, realized P&L (FIFO), "
        "commissions and the Order Efficiency Ratio; for the account NAV at open and close, "
        "daily P&L, the circuit breaker's headroom and the allocation weights against their "
        "targets at the close. --format html writes one self-contained file with charts.",
    )
    parser.add_argument("--date", type=date.fromisoformat, help="the day, YYYY-MM-DD")
    parser.add_argument("--from", dest="first", type=date.fromisoformat, help="first day")
    parser.add_argument("--to", dest="last", type=date.fromisoformat, help="last day")
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.add_argument("--out", type=Path, help="write to this file instead of stdout")
    add_state_options(parser)
    parser.set_defaults(func=run)


def days(args: argparse.Namespace) -> tuple[date, date] | str:
    if args.date is not None and (args.first is not None or args.last is not None):
        return "give either --date or --from/--to, not both"
    today = trading_day(utc_now())
    if args.date is not None:
        return args.date, args.date
    first = args.first or args.last or today
    last = args.last or (today if args.first is not None else first)
    if last < first:
        return f"--to {last} is before --from {first}"
    return first, last


def run(args: argparse.Namespace) -> int:
    period = days(args)
    if isinstance(period, str):
        print(f"tradectl report: {period}", file=sys.stderr)
        return 1
    state_dir = state_dir_of(args)
    if args.format == "html" and args.out is None:
        print("tradectl report: --format html needs --out FILE", file=sys.stderr)
        return 1
    try:
        text = render(state_dir, period[0], period[1], args.format)
    except (JournalError, ImportError) as exc:
        print(f"tradectl report: {exc}", file=sys.stderr)
        return 1
    if text is None:
        print(f"tradectl report: no journal in {state_dir}", file=sys.stderr)
        return 1
    if args.out is None:
        sys.stdout.write(text)
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_name(f".{args.out.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(args.out)
    print(f"wrote {args.out}")
    return 0


def render(state_dir: Path, first: date, last: date, output: str) -> str | None:
    from tradectl.report.build import build_report
    from tradectl.report.render import render_html, render_json, render_text

    journal = Journal.open_read_only(state_dir)
    if journal is None:
        return None
    try:
        report = build_report(journal, first, last, utc_now())
    finally:
        journal.close()
    if output == "json":
        return render_json(report) + "\n"
    if output == "html":
        return render_html(report)
    return render_text(report)
