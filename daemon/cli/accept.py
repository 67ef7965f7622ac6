"""`tradectl accept RULE`: trade on the targets file held for confirmation (a jump above
max_turnover, docs/rules.md "Targets from a file")."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tradectl.cli.arguments import add_state_options
from tradectl.cli.target import NO_DAEMON, has_journal, not_running, state_dir_of
from tradectl.journal import Journal, JournalError, utc_now
from tradectl.runtime.targets_journal import NothingToAccept, accept_pending
from tradectl.service.control import ControlError, DaemonNotRunning, send_command


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "accept",
        description="Accept the targets file an allocation holds because it would turn over "
        "more than max_turnover at once. Exactly the version that was held is accepted (as "
        "`tradectl status` and `tradectl plan` show it); a file rewritten since is measured "
        "again. Works against a running daemon, or directly on the journal.",
    )
    parser.add_argument("rule", help="the allocation's name")
    add_state_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state_dir = state_dir_of(args)
    try:
        result = send_command(state_dir, "accept", timeout=30, rule=args.rule)
    except DaemonNotRunning:
        if not has_journal(state_dir):
            # Nothing to act on: never create a journal here and report success.
            print(
                f"tradectl accept: {not_running(args, state_dir)}, and no journal there",
                file=sys.stderr,
            )
            return NO_DAEMON
        try:
            with Journal.open(state_dir) as journal:
                acceptance = accept_pending(journal, args.rule, utc_now())
        except NothingToAccept as exc:
            print(f"tradectl accept: {exc}", file=sys.stderr)
            return 1
        except JournalError as exc:
            print(f"tradectl accept: {exc}", file=sys.stderr)
            return 1
        print(f"No daemon is running on {state_dir}: {acceptance.line()} in the journal.")
        return 0
    except (ControlError, OSError) as exc:
        print(f"tradectl accept: {exc}", file=sys.stderr)
        return 1
    print(f"{str(result.get('message', 'accepted')).capitalize()}; a pass follows.")
    return 0
