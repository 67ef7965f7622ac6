"""`tradectl plan [DIR] [--json] [--observed FILE | --sim]`: what tradectl would do; sends nothing.

Without ``--observed`` the account is read from the gateway in the rules (or, with ``--sim``, from
the simulated gateway started in-process) over a read-only connection, with the journal read
beside it, exactly as ``apply`` would see it.

Exit 0 when the account matches the rules, 2 when the plan has intents (blocked ones
included: the account still differs from the rules), 1 on any error.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tradectl import saved_plan
from tradectl.cli.arguments import add_rules_dir, add_state_options
from tradectl.cli.embedded_sim import embedded_gateway
from tradectl.ib import AdapterError, GatewayUnreachable
from tradectl.journal import JournalError, resolve_state_dir
from tradectl.observed_file import ObservedFileError, Snapshot, read_snapshot
from tradectl.plan_report import plan_dict, render_table, terminal_width
from tradectl.planner import plan
from tradectl.planner.domain import Plan
from tradectl.planner.gate import HALT
from tradectl.runtime.session import plan_against_gateway, quiet_client_logging
from tradectl.runtime.targets_file import TargetsFiles
from tradectl.schemas.loader import halt_present, load_rule_set
from tradectl.schemas.models import RuleSet

EXIT_IN_SYNC = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


class ObserveError(Exception):
    """The account cannot be observed; the message says why and what to do."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        description="Diff the rules against the account and print the plan. Exit 0 when "
        "nothing is to be done, 2 when changes are pending, 1 on error.",
    )
    add_rules_dir(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        help="also save the plan, for `tradectl apply FILE` to send exactly it (or nothing)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--observed",
        metavar="FILE",
        type=Path,
        help="plan against an account snapshot (YAML or JSON, see docs/planning.md)",
    )
    source.add_argument(
        "--sim",
        action="store_true",
        help="plan against the simulated gateway, started in-process with its default state",
    )
    add_state_options(parser, sim_flag=False)
    parser.set_defaults(func=run)


def observe(args: argparse.Namespace, rules: RuleSet, now: datetime) -> Snapshot:
    """The account to plan against, from a snapshot file. Raises ``ObserveError`` when it
    cannot be read."""
    del rules
    assert args.observed is not None
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
    if args.observed is None:
        return _plan_against_gateway(args, rules)
    if args.out is not None:
        print(
            "tradectl plan: --out saves a plan made against the gateway (or --sim), not against "
            "a snapshot: apply compares it with the live account",
            file=sys.stderr,
        )
        return EXIT_ERROR
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

    # The targets files are read as the daemon reads them; the snapshot has no journal, so a
    # targets file is measured against nothing accepted (a first file).
    observed = replace(snapshot.observed, targets_sources=TargetsFiles().sources(rules))
    if halt_present(Path(args.rules_dir)):
        observed = replace(observed, halted=True)
    result = plan(rules, observed, snapshot.as_of)
    return _print(args, rules, result, snapshot.as_of, f"snapshot {args.observed}", observed.halted)


def _plan_against_gateway(args: argparse.Namespace, rules: RuleSet) -> int:
    quiet_client_logging()
    as_of = datetime.now(UTC)
    halted = halt_present(Path(args.rules_dir))
    try:
        state_dir = resolve_state_dir(args.state_dir, sim=args.sim)
        with embedded_gateway(args.sim, state_dir) as gateway:
            passed = plan_against_gateway(
                rules,
                state_dir=state_dir,
                gateway=gateway,
                halted=halted,
            )
    except GatewayUnreachable as exc:
        print(
            f"tradectl plan: {exc}; or pass --observed FILE to plan against an account snapshot "
            "(docs/planning.md), or --sim to plan against the simulated gateway",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except (AdapterError, JournalError) as exc:
        print(f"tradectl plan: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (ConnectionError, TimeoutError) as exc:
        print(
            f"tradectl plan: the gateway connection failed ({exc or 'timeout'}); try again",
            file=sys.stderr,
        )
        return EXIT_ERROR
    for note in passed.notes:
        print(f"note: {note}", file=sys.stderr)
    source = "the simulated gateway" if args.sim else "the gateway, read-only"
    halted = halted or any(intent.blocked_by == HALT for intent in passed.plan.intents)
    code = _print(args, rules, passed.plan, as_of, source, halted, passed.unresolved)
    if args.out is not None:
        try:
            saved_plan.save(
                args.out,
                rules=str(args.rules_dir),
                account=rules.account.id,
                sim=args.sim,
                rules_generation=rules.generation(),
                observed=passed.observed,
                plan=passed.plan,
                as_of=as_of.isoformat(),
            )
        except saved_plan.SavedPlanError as exc:
            print(f"tradectl plan: {exc}", file=sys.stderr)
            return EXIT_ERROR
        print(
            f"Saved the plan to {args.out}: `tradectl apply {args.out}` sends exactly it.",
            file=sys.stderr if args.json else sys.stdout,
        )
    return code


def _print(
    args: argparse.Namespace,
    rules: RuleSet,
    result: Plan,
    as_of: datetime,
    source: str,
    halted: bool,
    instrument_errors: tuple[str, ...] = (),
) -> int:
    """``instrument_errors``: the rules' instruments that name no contract or several (also
    among the notes): nothing is planned for them."""
    if args.json:
        document = {
            "rules": str(args.rules_dir),
            "account": rules.account.id,
            "as_of": as_of.isoformat(),
            "halted": halted,
            **plan_dict(result),
            "instrument_errors": list(instrument_errors),
        }
        print(json.dumps(document, indent=2))
    else:
        heading = (
            f"tradectl plan: {args.rules_dir} against {rules.account.id} "
            f"({source}, as of {as_of:%Y-%m-%d %H:%M:%S} UTC)"
        )
        if halted:
            heading += (
                "\nHALTED: every intent is blocked (tradectl resume, or remove the HALT file)"
            )
        print(render_table(result, heading, terminal_width()))
    return EXIT_CHANGES if result.intents else EXIT_IN_SYNC
