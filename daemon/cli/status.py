"""`tradectl status [--json]`: what the running daemon is doing."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tradectl import tradectl_version
from tradectl.cli.arguments import add_state_options
from tradectl.cli.target import NO_DAEMON, not_running, state_dir_of
from tradectl.journal import Journal, JournalError, utc_now
from tradectl.ledger_view import RuleLedger, ledger_json, render_ledger, rule_ledgers
from tradectl.records.store import read_backlog
from tradectl.runtime.targets_journal import pending_targets
from tradectl.service.broker import read_safety
from tradectl.service.control import ControlError, DaemonNotRunning, send_command
from tradectl.service.safety import SafetyState
from tradectl.timezones import trading_day_start


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
    )
    add_state_options(parser)
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state_dir = state_dir_of(args)
    try:
        status = send_command(state_dir, "status", timeout=10)
    except DaemonNotRunning:
        return _not_running(args, state_dir)
    except (ControlError, OSError) as exc:
        print(f"tradectl status: {exc}", file=sys.stderr)
        return 1
    status["records"] = records_backlog(state_dir)
    status["order_efficiency"] = order_efficiency_today(state_dir)
    account = status.get("account") or {}
    status["ledger"] = ledger_lines(
        state_dir, status["rules"].get("brackets"), account.get("working_owned_orders")
    )
    if args.json:
        print(json.dumps(status, indent=2, default=str))
    else:
        print(render_status(status))
    return 0


def _not_running(args: argparse.Namespace, state_dir: Path) -> int:
    as_json: bool = args.json
    try:
        journal = Journal.open_read_only(state_dir)
    except (JournalError, OSError) as exc:
        print(f"tradectl status: {exc}", file=sys.stderr)
        return 1
    safety = SafetyState()
    held: dict[str, dict[str, Any]] = {}
    if journal is not None:
        safety = read_safety(journal)
        held = pending_targets(journal)
        journal.close()
    records = records_backlog(state_dir)
    efficiency = order_efficiency_today(state_dir)
    ledger = ledger_lines(state_dir, None, None)
    if as_json:
        breaker_day = None if safety.breaker_day is None else safety.breaker_day.isoformat()
        shown = {
            "running": False,
            "state_dir": str(state_dir),
            "version": tradectl_version(),
            "halted": safety.halted,
            "breaker_day": breaker_day,
            "records": records,
            "order_efficiency": efficiency,
            "targets_held": held,
            "ledger": ledger,
        }
        print(json.dumps(shown))
        return NO_DAEMON
    message = not_running(args, state_dir)
    print(message[0].upper() + message[1:] + ".")
    if safety.halted:
        print(f"Halted since {safety.halted_at} ({safety.halt_reason}); it will start halted.")
    if safety.breaker_day is not None:
        print(f"Circuit breaker tripped on {safety.breaker_day}: {safety.breaker_reason}")
    for rule, entry in held.items():
        print(
            f"Targets file held for allocations.{rule}: {entry['reason']} "
            f"(`tradectl accept {rule}` accepts {entry['content_hash']})"
        )
    print(render_records(records))
    print(render_order_efficiency(efficiency))
    print("\n".join(render_ledger_lines(ledger)))
    return NO_DAEMON


def ledger_lines(
    state_dir: Path, brackets: list[str] | None, working: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """Each bracket rule's ledger from the journal (read-only: the daemon may hold it), with
    the protection its working orders give when the daemon reports them."""
    try:
        journal = Journal.open_read_only(state_dir)
        if journal is None:
            return {"available": False, "error": None, "rules": []}
        try:
            rows, releases = journal.ledger(), journal.releases()
        finally:
            journal.close()
    except (JournalError, sqlite3.Error, OSError) as exc:
        return {"available": False, "error": str(exc), "rules": []}
    return {
        "available": True,
        "error": None,
        "rules": ledger_json(rule_ledgers(rows, releases, brackets, working)),
    }


def render_ledger_lines(ledger: dict[str, Any]) -> list[str]:
    if not ledger["available"]:
        return [f"ledger:      unknown ({ledger['error'] or 'no journal yet'})"]
    return render_ledger([RuleLedger(**_fields(line)) for line in ledger["rules"]])


def _fields(line: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in line.items() if key not in ("held", "orphaned")}


def records_backlog(state_dir: Path) -> dict[str, Any]:
    """The records outbox at a glance, read from the journal (the daemon need not run)."""
    try:
        backlog = read_backlog(state_dir, time.time())
    except (sqlite3.Error, OSError) as exc:
        return {"available": False, "error": str(exc)}
    if backlog is None:
        return {"available": False, "error": None}
    return {"available": True, **asdict(backlog)}


def order_efficiency_today(state_dir: Path) -> dict[str, Any]:
    """IB's Order Efficiency Ratio of tradectl's orders since the trading day's start."""
    try:
        journal = Journal.open_read_only(state_dir)
        if journal is None:
            return {"available": False, "error": None}
        try:
            found = journal.order_efficiency(trading_day_start(utc_now()))
        finally:
            journal.close()
    except (JournalError, sqlite3.Error, OSError) as exc:
        return {"available": False, "error": str(exc)}
    return {
        "available": True,
        **asdict(found),
        "ratio": found.ratio,
        "too_high": found.too_high,
        "line": found.line(),
    }


def render_order_efficiency(efficiency: dict[str, Any]) -> str:
    if not efficiency["available"]:
        return f"orders:      efficiency unknown ({efficiency['error'] or 'no journal yet'})"
    alarm = " <- too high: IB may restrict the account" if efficiency["too_high"] else ""
    return f"orders:      {efficiency['line']}{alarm}"


def render_records(records: dict[str, Any]) -> str:
    if not records["available"]:
        reason = records["error"] or "no records outbox in the journal yet"
        return f"records:     unknown ({reason})"
    line = f"records:     {records['pending']} batch(es) pending upload"
    age = records["oldest_pending_age_seconds"]
    if age is not None:
        line += f" (oldest waiting {_age(age)})"
    line += f", {records['failed']} failed"
    if records["failed"]:
        line += " <- ALARM: see `tradectl records status`"
    return line


def _age(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def _money(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, int | float) else "-"


def render_status(status: dict[str, Any]) -> str:
    rules = status["rules"]
    connection = status["connection"]
    halt = status["halt"]
    breaker = status["breaker"]
    account = status.get("account") or {}
    lines = [
        f"tradectl {status.get('version', 'unknown')} daemon, pid {status.get('pid')}, running "
        f"since {status['started_at']}"
    ]
    health = "ok" if rules["health"] == "ok" else f"DEGRADED ({len(rules['errors'])} errors)"
    lines.append(f"rules:       {rules['dir']} generation {rules['generation']} {health}")
    lines += [f"               {error}" for error in rules["errors"]]
    state = connection["state"]
    detail = f" ({connection['error']})" if connection["error"] else ""
    lines.append(f"connection:  {state} {connection['gateway']}{detail}")
    if halt["halted"]:
        why = []
        if halt["by_command"]:
            why.append(f"since {halt['since']} ({halt['reason']})")
        if halt["halt_file"]:
            why.append("HALT file present in the rules directory")
        lines.append("halt:        HALTED " + "; ".join(why))
    else:
        lines.append("halt:        no")
    if breaker["tripped"]:
        lines.append(f"breaker:     TRIPPED {breaker['day']}: {breaker['reason']}")
    else:
        lines.append("breaker:     ok")
    if account.get("clock_warning"):
        lines.append(f"clock:       WARNING {account['clock_warning']}")
    if "records" in status:
        lines.append(render_records(status["records"]))
    if "order_efficiency" in status:
        lines.append(render_order_efficiency(status["order_efficiency"]))
    schedule = status["schedule"]
    if schedule["next_rebalance"]:
        due = "due now" if schedule["allocations_due"] else "not due"
        if schedule.get("rebalance_window_until"):
            due += f" (window open until {schedule['rebalance_window_until']})"
        lines.append(f"rebalance:   {due}; next {schedule['next_rebalance']}")
    if account:
        nav = _money(account.get("net_liquidation"))
        day_start = _money(account.get("day_start_nav"))
        cash = _money(account.get("cash"))
        pnl = account.get("daily_pnl")
        today = "" if pnl is None else f", today's P&L {_money(pnl)}"
        lines.append(
            f"account:     {account.get('account')} NAV {nav} (day start {day_start}{today}), "
            f"cash {cash}"
        )
    for decision in account.get("targets_files", []):
        lines.append(
            f"targets:     allocations.{decision['rule']} {decision['status'].upper()}: "
            f"{decision['reason']}"
        )
    if "ledger" in status:
        lines += render_ledger_lines(status["ledger"])
    lines.append("last passes:")
    for record in status["passes"][-5:]:
        summary = record.get("summary") or {}
        counts = (
            f"planned {summary.get('planned', 0)} sent {summary.get('sent', 0)} "
            f"blocked {summary.get('blocked', 0)}"
            if summary
            else ""
        )
        lines.append(
            f"  {record['started']}  {','.join(record['reasons']):<20} "
            f"{record['outcome'] or 'running'}  {counts}".rstrip()
        )
    orders = account.get("working_owned_orders", [])
    lines.append(f"working owned orders: {len(orders)}")
    for order in orders:
        price = order.get("limit") or order.get("aux") or ""
        lines.append(
            f"  {order['order_id']:>6} {order['action']:<4} {order['quantity']:>8g} "
            f"{order['symbol']:<6} {order['type']:<7} {price!s:>9} {order['status']:<13} "
            f"{order['order_ref']}"
        )
    fills = account.get("fills_today", [])
    lines.append(f"fills today: {len(fills)}")
    for fill in fills:
        lines.append(
            f"  {fill['time']} {fill['side']:<4} {fill['shares']:>8g} {fill['symbol']:<6} "
            f"@ {fill['price']:<10} {fill['order_ref']}"
        )
    return "\n".join(lines)
