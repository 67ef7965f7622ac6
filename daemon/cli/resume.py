"""`tradectl resume`: clear a halt and the circuit breaker."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tradectl.cli.arguments import add_state_options
from tradectl.cli.target import NO_DAEMON, has_journal, not_running, state_dir_of
from tradectl.journal import Journal, JournalError
from tradectl.service.broker import read_safety, write_safety
from tradectl.service.control import ControlError, DaemonNotRunning, send_command


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "resume",
        description="Clear a halt and a tripped circuit breaker. The breaker then measures the "
        "daily loss from the current NAV. A HALT file in the rules directory keeps the daemon "
        "halted until it is removed.",
    )
    add_state_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state_dir = state_dir_of(args)
    try:
        result = send_command(state_dir, "resume", timeout=30)
    except DaemonNotRunning:
        print(f"tradectl resume: {not_running(args, state_dir)}", file=sys.stderr)
        if not has_journal(state_dir):
            print(
                f"tradectl resume: no journal in {state_dir} either: nothing to resume",
                file=sys.stderr,
            )
            return NO_DAEMON
        try:
            with Journal.open(state_dir) as journal:
                write_safety(journal, read_safety(journal).resumed())
        except JournalError as exc:
            print(f"tradectl resume: {exc}", file=sys.stderr)
            return 1
        print(
            f"tradectl resume: halt and breaker cleared in the journal in {state_dir}",
            file=sys.stderr,
        )
        return NO_DAEMON
    except (ControlError, OSError) as exc:
        print(f"tradectl resume: {exc}", file=sys.stderr)
        return 1
    print("Resumed: halt and circuit breaker cleared.")
    if result.get("message"):
        print(result["message"])
        return 1
    return 0
