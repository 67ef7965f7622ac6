"""`tradectl status [--json]`: what the running daemon is doing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from daemon.journal import Journal, JournalError, resolve_state_dir
from daemon.service.broker import read_safety
from daemon.service.control import ControlError, DaemonNotRunning, send_command
from daemon.service.safety import SafetyState

NOT_RUNNING = 3


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show the running daemon: rules, connection, passes, orders, fills, halt, breaker",
    )
    parser.add_argument("--state-dir", help="the daemon's state directory")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    try:
        status = send_command(state_dir, "status", timeout=10)
    except DaemonNotRunning:
        return _not_running(state_dir, args.json)
    except (ControlError, OSError) as exc:
        print(f"tradectl status: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, indent=2, default=str))
    else:
        print(render_status(status))
    return 0


def _not_running(state_dir: Path, as_json: bool) -> int:
    try:
        journal = Journal.open_read_only(state_dir)
    except (JournalError, OSError) as exc:
        print(f"tradectl status: {exc}", file=sys.stderr)
        return 1
    safety = SafetyState()
    if journal is not None:
        safety = read_safety(journal)
        journal.close()
    if as_json:
        breaker_day = None if safety.breaker_day is None else safety.breaker_day.isoformat()
        print(json.dumps({"running": False, "halted": safety.halted, "breaker_day": breaker_day}))
        return NOT_RUNNING
    print(f"No tradectl daemon is running on {state_dir}.")
    if safety.halted:
        print(f"Halted since {safety.halted_at} ({safety.halt_reason}); it will start halted.")
    if safety.breaker_day is not None:
        print(f"Circuit breaker tripped on {safety.breaker_day}: {safety.breaker_reason}")
    return NOT_RUNNING


def _money(value: Any) -> str:
    return f"{value:,.2f}" if isinstance(value, int | float) else "-"


def render_status(status: dict[str, Any]) -> str:
    rules = status["rules"]
    connection = status["connection"]
    halt = status["halt"]
    breaker = status["breaker"]
    account = status.get("account") or {}
    lines = [f"tradectl daemon, pid {status.get('pid')}, running since {status['started_at']}"]
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
    schedule = status["schedule"]
    if schedule["next_rebalance"]:
        due = "due now" if schedule["allocations_due"] else "not due"
        lines.append(f"rebalance:   {due}; next {schedule['next_rebalance']}")
    if account:
        nav = _money(account.get("net_liquidation"))
        day_start = _money(account.get("day_start_nav"))
        cash = _money(account.get("cash"))
        lines.append(
            f"account:     {account.get('account')} NAV {nav} (day start {day_start}), cash {cash}"
        )
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
