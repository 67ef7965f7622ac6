"""`tradectl release RULE`: end a bracket rule's protection on purpose (an orphaned protection).

Journaled; the next pass cancels the rule's working stop and target and leaves the position
alone. Through the running daemon's control socket, or directly on the journal when no daemon
runs (the next `apply` or `run` then cancels them).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tradectl.cli.arguments import add_state_options
from tradectl.cli.target import NO_DAEMON, has_journal, not_running, state_dir_of
from tradectl.journal import Journal, JournalError, NothingToRelease
from tradectl.ledger_view import release_result
from tradectl.service.control import ControlError, DaemonNotRunning, send_command


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "release",
        description="Release a bracket rule's protection (typically an orphaned protection: a "
        "removed rule that still holds shares). The release is journaled; the next pass cancels "
        "the rule's working stop and target and leaves the position alone. Nothing else ever "
        "releases a protection.",
    )
    parser.add_argument("rule", help="the bracket rule's name")
    parser.add_argument("--reason", default="tradectl release", help="recorded with the release")
    add_state_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state_dir = state_dir_of(args)
    running = True
    try:
        result = send_command(state_dir, "release", timeout=60, rule=args.rule, reason=args.reason)
    except DaemonNotRunning:
        if not has_journal(state_dir):
            # Nothing to act on: never create a journal here and report success.
            print(
                f"tradectl release: {not_running(args, state_dir)}, and no journal there",
                file=sys.stderr,
            )
            return NO_DAEMON
        running = False
        try:
            with Journal.open(state_dir) as journal:
                result = release_result(journal.release(args.rule, args.reason))
        except NothingToRelease as exc:
            print(f"tradectl release: {exc}", file=sys.stderr)
            return 1
        except JournalError as exc:
            print(f"tradectl release: {exc}", file=sys.stderr)
            return 1
    except (ControlError, OSError) as exc:
        print(f"tradectl release: {exc}", file=sys.stderr)
        return 1
    print(
        f"Released brackets.{result['rule']}: {result['held']:g} {result['symbol']} shares are no "
        "longer protected by tradectl. Its stop and target are cancelled "
        + ("by the daemon's next pass" if running else "by the next `tradectl apply` or `run`")
        + "; the position itself is left alone (close it yourself if you want it closed)."
    )
    return 0
