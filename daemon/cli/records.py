"""``tradectl records``: ad-hoc exports from the journal and the GCS outbox (docs/records.md)."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

from tradectl.cli.arguments import add_state_options
from tradectl.cli.target import state_dir_of
from tradectl.records.gcs import Uploader, retry_failed
from tradectl.records.journal_source import JournalFillSource, JournalOrderSource
from tradectl.records.model import trade_day_bounds
from tradectl.records.parquet import (
    FILLS_DATASET,
    ORDERS_DATASET,
    csv_bytes,
    fills_table,
    orders_table,
    parquet_bytes,
    write_atomic,
)
from tradectl.records.store import Backlog, connect, has_records_tables, journal_file, read_backlog


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("records")
    commands = parser.add_subparsers(dest="records_command", metavar="ACTION", required=True)

    export = commands.add_parser(
        "export", help="write the fills (or final orders) of a date range to one file"
    )
    export.add_argument("--since", type=_date, required=True, help="first trade date, YYYY-MM-DD")
    export.add_argument("--until", type=_date, help="last trade date, YYYY-MM-DD (default: since)")
    export.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    export.add_argument(
        "--dataset",
        choices=(FILLS_DATASET, ORDERS_DATASET),
        default=FILLS_DATASET,
        help="one row per execution (fills, default) or per order at its final status (orders)",
    )
    export.add_argument(
        "--out", help="output file (default DATASET-SINCE-UNTIL.FORMAT; '-' writes CSV to stdout)"
    )
    export.add_argument("--account", help="account id to record in each row (from your rules)")
    _state_dir_option(export)
    export.set_defaults(func=_export)

    status = commands.add_parser("status", help="show the GCS outbox backlog")
    status.add_argument("--json", action="store_true", help="print the backlog as JSON")
    _state_dir_option(status)
    status.set_defaults(func=_status)

    upload = commands.add_parser(
        "upload", help="upload every pending batch now (credentials from the environment)"
    )
    _state_dir_option(upload)
    upload.set_defaults(func=_upload)

    retry = commands.add_parser(
        "retry", help="queue failed uploads again, after resolving what `status` reported"
    )
    _state_dir_option(retry)
    retry.set_defaults(func=_retry)


def _state_dir_option(parser: argparse.ArgumentParser) -> None:
    add_state_options(parser)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def _open(args: argparse.Namespace) -> sqlite3.Connection | None:
    state_dir = state_dir_of(args)
    path = journal_file(state_dir)
    if not path.exists():
        print(
            f"tradectl records: no journal at {path}; pass --state-dir (or set "
            "TRADECTL_STATE_DIR) to the daemon's state directory, or --sim for --sim runs",
            file=sys.stderr,
        )
        return None
    conn = connect(path)
    if not has_records_tables(conn):
        conn.close()
        print(
            f"tradectl records: the journal at {path} predates records; run `tradectl apply` "
            "or `tradectl run` once to upgrade it",
            file=sys.stderr,
        )
        return None
    return conn


def _export(args: argparse.Namespace) -> int:
    since: date = args.since
    until: date = args.until or since
    if until < since:
        print(
            f"tradectl records export: --until {until} is before --since {since}", file=sys.stderr
        )
        return 1
    if args.out == "-" and args.format != "csv":
        print("tradectl records export: --out - (stdout) needs --format csv", file=sys.stderr)
        return 1
    conn = _open(args)
    if conn is None:
        return 1
    try:
        start, end = trade_day_bounds(since, until)
        if args.dataset == ORDERS_DATASET:
            orders = JournalOrderSource(conn, account=args.account).orders_between(start, end)
            table = orders_table(orders)
        else:
            fills = JournalFillSource(conn, account=args.account).fills_between(start, end)
            table = fills_table(fills)
    finally:
        conn.close()
    data = csv_bytes(table) if args.format == "csv" else parquet_bytes(table)
    if args.out == "-":
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
        return 0
    out = Path(args.out or f"{args.dataset}-{since}-{until}.{args.format}")
    write_atomic(out, data)
    print(
        f"{table.num_rows} {args.dataset} from {since} to {until} written to {out}",
        file=sys.stderr,
    )
    return 0


def _status(args: argparse.Namespace) -> int:
    state_dir = state_dir_of(args)
    if state_dir.exists() and not state_dir.is_dir():
        print(f"tradectl records: {state_dir} is not a directory", file=sys.stderr)
        return 1
    found = read_backlog(state_dir, time.time())
    if found is None:
        print(f"tradectl records: no records outbox in {journal_file(state_dir)} yet")
        return 0
    if args.json:
        print(json.dumps(asdict(found), sort_keys=True))
    else:
        print(_describe_backlog(found))
    return 0 if found.healthy else 1


def _describe_backlog(backlog: Backlog) -> str:
    lines = [
        f"pending uploads: {backlog.pending}"
        + (
            ""
            if backlog.oldest_pending_age_seconds is None
            else f" (oldest waiting {_age(backlog.oldest_pending_age_seconds)})"
        ),
        f"failed uploads:  {backlog.failed}"
        + ("  <- ALARM: see the error below" if backlog.failed else ""),
        f"uploaded:        {backlog.done}",
    ]
    if backlog.last_error:
        lines.append(f"last error: {backlog.last_error}")
    return "\n".join(lines)


def _age(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def _upload(args: argparse.Namespace) -> int:
    conn = _open(args)
    if conn is None:
        return 1
    try:
        report = Uploader(conn).upload_due(everything=True)
        remaining = read_backlog(state_dir_of(args), time.time())
    finally:
        conn.close()
    print(
        f"uploaded {report.uploaded}, already in the bucket {report.already_present}, "
        f"failed {report.failed}, to retry {report.retrying}"
    )
    if remaining is not None and remaining.last_error and (report.failed or report.retrying):
        print(f"last error: {remaining.last_error}", file=sys.stderr)
    return 0 if report.failed == report.retrying == 0 else 1


def _retry(args: argparse.Namespace) -> int:
    conn = _open(args)
    if conn is None:
        return 1
    try:
        count = retry_failed(conn, time.time())
    finally:
        conn.close()
    print(f"{count} failed uploads queued again")
    return 0
