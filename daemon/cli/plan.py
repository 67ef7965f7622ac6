"""`tradectl plan [DIR] [--json] [--observed FILE]`: what tradectl would do, sending nothing.

Exit 0 when the account matches the rules, 2 when the plan has intents (blocked ones
included: the account still differs from the rules), 1 on any error.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.observed_file import ObservedFileError, Snapshot, read_snapshot
from daemon.plan_report import plan_dict, render_table
from daemon.planner import plan
from schemas.loader import load_rule_set
from schemas.models import RuleSet

DEFAULT_RULES = "rules/"
EXIT_IN_SYNC = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


class ObserveError(Exception):
    """The account cannot be observed; the message says why and what to do."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="show the orders tradectl would place, modify and cancel (sends nothing)",
        description="Diff the rules against the account and print the plan. Exit 0 when "
        "nothing is to be done, 2 when changes are pending, 1 on error.",
    )
    parser.add_argument(
        "rules_dir",
        nargs="?",
        default=DEFAULT_RULES,
        metavar="DIR",
        help=f"rule directory or file (default: {DEFAULT_RULES})",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--observed",
        metavar="FILE",
        type=Path,
        help="plan against an account snapshot (YAML or JSON, see docs/planning.md)",
    )
    parser.set_defaults(func=run)


def observe(args: argparse.Namespace, rules: RuleSet, now: datetime) -> Snapshot:
    """The account to plan against. The seam for other sources (``--sim``, the live gateway):
    each returns a ``Snapshot`` and raises ``ObserveError`` when it cannot."""
    del rules  # the live gateway will need the account and gateway settings from the rules
    if args.observed is None:
        raise ObserveError(
            "no account to plan against: pass --observed FILE with an account snapshot "
            "(format in docs/planning.md, example in examples/observed.yaml)"
        )
    try:
        return read_snapshot(args.observed, now)
    except ObservedFileError as exc:
        raise ObserveError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    loaded = load_rule_set([args.rules_dir])
    if loaded.rule_set is None:
        for error in loaded.errors:
            print(error, file=sys.stderr)
        print(f"tradectl plan: {args.rules_dir}: the rules are invalid", file=sys.stderr)
        return EXIT_ERROR
    rules = loaded.rule_set
    try:
        snapshot = observe(args, rules, datetime.now(UTC))
    except ObserveError as exc:
        print(f"tradectl plan: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if snapshot.observed.account_id != rules.account.id:
        print(
            f"tradectl plan: the snapshot is of account {snapshot.observed.account_id}, but the "
            f"rules are for {rules.account.id} (account.id)",
            file=sys.stderr,
        )
        return EXIT_ERROR

    result = plan(rules, snapshot.observed, snapshot.as_of)
    if args.json:
        document = {
            "rules": str(args.rules_dir),
            "account": rules.account.id,
            "as_of": snapshot.as_of.isoformat(),
            **plan_dict(result),
        }
        print(json.dumps(document, indent=2))
    else:
        source = f"snapshot {args.observed}" if args.observed else "the account"
        heading = (
            f"tradectl plan: {args.rules_dir} against {rules.account.id} "
            f"({source}, as of {snapshot.as_of:%Y-%m-%d %H:%M:%S} UTC)"
        )
        print(render_table(result, heading))
    return EXIT_CHANGES if result.intents else EXIT_IN_SYNC
