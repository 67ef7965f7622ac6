"""`tradectl halt [--cancel]`: stop all new orders now; optionally cancel every owned order."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tradectl.cli.arguments import add_state_options
from tradectl.cli.target import NO_DAEMON, has_journal, not_running, state_dir_of
from tradectl.journal import Journal, JournalError, utc_now
from tradectl.service.broker import read_safety, write_safety
from tradectl.service.control import ControlError, DaemonNotRunning, send_command


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "halt",
        description="Halt the daemon: no new orders until `tradectl resume`. With --cancel, "
        "also cancel every working order tradectl owns (orderRef tctl:...) and nothing else. "
        "Without a running daemon it exits 3 and says where it looked; when a journal is "
        "there, the halt is recorded in it and a daemon started on it starts halted.",
    )
    parser.add_argument(
        "--cancel", action="store_true", help="also cancel every owned working order"
    )
    parser.add_argument("--reason", default="tradectl halt", help="recorded with the halt")
    add_state_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state_dir = state_dir_of(args)
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
    """No daemon answers: say so loudly. A journal found there still gets the halt, so a daemon
    started on it starts halted; no journal is ever created here."""
    print(f"tradectl halt: {not_running(args, state_dir)}", file=sys.stderr)
    if not has_journal(state_dir):
        print(
            f"tradectl halt: no journal in {state_dir} either: nothing was halted", file=sys.stderr
        )
        return NO_DAEMON
    try:
        with Journal.open(state_dir) as journal:
            state = read_safety(journal)
            if not state.halted:
                write_safety(journal, state.halt(args.reason, utc_now()))
    except JournalError as exc:
        print(f"tradectl halt: {exc}", file=sys.stderr)
        return 1
    print(
        f"tradectl halt: the halt is recorded in the journal in {state_dir}: a daemon started on "
        "it starts halted",
        file=sys.stderr,
    )
    if args.cancel:
        print(
            "tradectl halt: owned orders were NOT cancelled: only a running daemon can cancel them",
            file=sys.stderr,
        )
    return NO_DAEMON
