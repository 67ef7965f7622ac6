"""`tradectl halt [--cancel]`: stop all new orders now; optionally cancel every owned order."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from daemon.journal import Journal, JournalError, resolve_state_dir, utc_now
from daemon.service.broker import read_safety, write_safety
from daemon.service.control import ControlError, DaemonNotRunning, send_command


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "halt",
        description="Halt the daemon: no new orders until `tradectl resume`. With --cancel, "
        "also cancel every working order tradectl owns (orderRef tctl:...) and nothing else. "
        "Without a running daemon the halt is recorded in the journal and the daemon starts "
        "halted.",
    )
    parser.add_argument(
        "--cancel", action="store_true", help="also cancel every owned working order"
    )
    parser.add_argument("--reason", default="tradectl halt", help="recorded with the halt")
    parser.add_argument("--state-dir", help="the daemon's state directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    try:
        result = send_command(state_dir, "halt", timeout=60, cancel=args.cancel, reason=args.reason)
    except DaemonNotRunning:
        return _halt_offline(state_dir, args)
    except (ControlError, OSError) as exc:
        print(f"tradectl halt: {exc}", file=sys.stderr)
        return 1
    print("Halted: no new orders until `tradectl resume`.")
    if args.cancel:
        cancelled = result.get("cancelled", [])
        print(f"Cancelled {len(cancelled)} owned order(s):")
        for order in cancelled:
            print(f"  {order['order_id']:>6} {order['symbol']:<6} {order['order_ref']}")
        if result.get("cancel_pending"):
            print(result.get("message", "cancelling is pending"))
            return 1
    return 0


def _halt_offline(state_dir: Path, args: argparse.Namespace) -> int:
    try:
        with Journal.open(state_dir) as journal:
            state = read_safety(journal)
            if not state.halted:
                write_safety(journal, state.halt(args.reason, utc_now()))
    except JournalError as exc:
        print(f"tradectl halt: {exc}", file=sys.stderr)
        return 1
    print(f"No daemon is running on {state_dir}: halt recorded; the daemon will start halted.")
    if args.cancel:
        print(
            "Owned orders were NOT cancelled (that needs the gateway connection): start the "
            "daemon (it starts halted) and run `tradectl halt --cancel` again.",
            file=sys.stderr,
        )
        return 1
    return 0
