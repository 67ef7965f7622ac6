"""`tradectl doctor [DIR] [--sim] [--json]`: a read-only preflight against the gateway in the rules.

One line per check (ok, warn, FAIL with what to do, skip when an earlier failure makes a check
meaningless); exit 0 only when nothing failed. Nothing is placed: the plan's orders go out as
whatIf orders only. The checks are described in docs/ib-gateway.md#tradectl-doctor.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tradectl.cli.arguments import add_rules_dir, add_state_options
from tradectl.cli.embedded_sim import embedded_gateway
from tradectl.journal import resolve_state_dir
from tradectl.runtime.preflight import passed, run_checks
from tradectl.runtime.session import quiet_client_logging
from tradectl.schemas.loader import halt_present, load_rule_set

EXIT_READY = 0
EXIT_NOT_READY = 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        description="Preflight against the gateway in the rules: connection, account, contracts, "
        "market data, trading hours, what-if margin of the plan, clock, state directory. "
        "Places nothing. Exit 0 when ready, 1 when a check failed.",
    )
    add_rules_dir(parser)
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument(
        "--sim",
        action="store_true",
        help="check against the simulated gateway, started in-process with its default state",
    )
    add_state_options(parser, sim_flag=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_rule_set([args.rules_dir])
    if loaded.rule_set is None:
        for error in loaded.errors:
            print(error, file=sys.stderr)
        print(f"tradectl doctor: {args.rules_dir}: the rules are invalid", file=sys.stderr)
        return EXIT_NOT_READY
    quiet_client_logging()
    state_dir = resolve_state_dir(args.state_dir, sim=args.sim)
    with embedded_gateway(args.sim, state_dir) as gateway:
        checks = run_checks(
            loaded.rule_set,
            state_dir=state_dir,
            gateway=gateway,
            halted=halt_present(Path(args.rules_dir)),
        )
    ready = passed(checks)
    if args.json:
        document = {
            "rules": str(args.rules_dir),
            "account": loaded.rule_set.account.id,
            "ready": ready,
            "checks": [check.as_dict() for check in checks],
        }
        print(json.dumps(document, indent=2))
    else:
        for check in checks:
            print(check.line())
        failed = sum(check.status == "FAIL" for check in checks)
        print("ready: nothing failed" if ready else f"not ready: {failed} check(s) failed")
    return EXIT_READY if ready else EXIT_NOT_READY
