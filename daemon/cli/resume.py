"""`tradectl resume`: clear a halt and the circuit breaker."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from daemon.journal import Journal, JournalError, resolve_state_dir
from daemon.service.broker import read_safety, write_safety
from daemon.service.control import ControlError, DaemonNotRunning, send_command


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "resume",
        description="Clear a halt and a tripped circuit breaker. The breaker then measures the "
        "daily loss from the current NAV. A HALT file in the rules directory keeps the daemon "
        "halted until it is removed.",
    )
    parser.add_argument("--state-dir", help="the daemon's state directory")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    try:
        result = send_command(state_dir, "resume", timeout=30)
    except DaemonNotRunning:
        try:
            with Journal.open(state_dir) as journal:
                write_safety(journal, read_safety(journal).resumed())
        except JournalError as exc:
            print(f"tradectl resume: {exc}", file=sys.stderr)
            return 1
        print(f"No daemon is running on {state_dir}: halt and breaker cleared in the journal.")
        return 0
    except (ControlError, OSError) as exc:
        print(f"tradectl resume: {exc}", file=sys.stderr)
        return 1
    print("Resumed: halt and circuit breaker cleared.")
    if result.get("message"):
        print(result["message"])
        return 1
    return 0
