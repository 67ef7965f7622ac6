"""`tradectl validate [DIR|FILE]...`: load a rule set and print a summary or every error."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tradectl.cli.arguments import DEFAULT_RULES
from tradectl.runtime.targets_file import TargetsFiles
from tradectl.schemas.loader import LoadResult, load_rule_set
from tradectl.schemas.models import RuleSet


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "validate",
        description="Load and validate rule files; print a summary (exit 0) or every error as "
        "file:line:col: field.path: message (exit 1).",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="DIR|FILE",
        default=[DEFAULT_RULES],
        help=f"rule directories or files (default: {DEFAULT_RULES})",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    against = parser.add_mutually_exclusive_group()
    against.add_argument(
        "--sim",
        action="store_true",
        help="also plan against the simulated gateway and warn about rules that can never pass "
        "their own limits at its prices",
    )
    against.add_argument(
        "--online",
        action="store_true",
        help="the same against the gateway in the rules (read-only; nothing is sent)",
    )
    parser.set_defaults(func=run)


# The limits a rule cannot outgrow by waiting: at today's prices it breaks them on every pass.
# (The daily loss, the order rate, cash and the halt come and go.)
STANDING_LIMITS = (
    "risk.max_order_value",
    "risk.max_position_fraction",
    "risk.max_risk_per_trade_fraction",
    "risk.allowed_symbols",
)


def run(args: argparse.Namespace) -> int:
    result = load_rule_set(args.paths)
    check = result.rule_set is not None and (args.sim or args.online)
    if args.format == "text":
        print(_text(result), flush=True)
    warnings: list[str] = []
    unresolved: list[str] = []
    resolved: list[str] = []
    if check:
        assert result.rule_set is not None
        try:
            warnings, unresolved, resolved = never_passing(result.rule_set, sim=args.sim)
        except (CheckFailed, ConnectionError, TimeoutError, OSError) as exc:
            print(
                "tradectl validate: the rules are valid, but the check against the gateway "
                f"could not run: {exc}",
                file=sys.stderr,
            )
            return 1
    if args.format == "json":
        document = _json(result)
        if check:
            document["warnings"] = warnings
            document["instruments"] = resolved
            document["instrument_errors"] = unresolved
            document["valid"] = document["valid"] and not unresolved
        print(json.dumps(document, indent=2))
    if args.format == "text":
        for instrument in resolved:
            print(f"instrument   {instrument}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr if args.format == "json" else sys.stdout)
    for problem in unresolved:
        print(f"error: {problem}", file=sys.stderr if args.format == "json" else sys.stdout)
    return 0 if result.ok and not unresolved else 1


class CheckFailed(Exception):
    """The plan against the gateway could not be made; the message says why."""


def never_passing(rules: RuleSet, *, sim: bool) -> tuple[list[str], list[str], list[str]]:
    """One line per rule the gateway's current prices put beyond one of its own standing
    limits, one per instrument that names no contract or several (with IB's candidates), and
    one per instrument resolved (its conId, route and currency):
    planned against the account read-only, as `tradectl plan` does; the gateway is asked for
    contract details and prices only, nothing is placed."""
    from tradectl.cli.embedded_sim import embedded_gateway
    from tradectl.ib import AdapterError
    from tradectl.journal import JournalError, JournalVersionError, resolve_state_dir
    from tradectl.runtime.session import plan_against_gateway, quiet_client_logging

    quiet_client_logging()
    try:
        state_dir = resolve_state_dir(None, sim=sim)
        with embedded_gateway(sim, state_dir) as gateway:
            passed = plan_against_gateway(rules, state_dir=state_dir, gateway=gateway)
    except (AdapterError, JournalError, JournalVersionError) as exc:
        raise CheckFailed(str(exc)) from exc
    found: dict[tuple[str, str], str] = {}
    for intent in passed.plan.blocked:
        reason = intent.blocked_by or ""
        if intent.purpose == "opening" and reason.startswith(STANDING_LIMITS):
            label = f"{intent.kind}.{intent.rule}"
            limit = reason.split(":", 1)[0]
            found.setdefault(
                (label, limit),
                f"{label} ({intent.symbol}) can never pass its own limit at current prices: "
                f"{reason}",
            )
    return list(found.values()), list(passed.unresolved), list(passed.instruments)


def summary(result: LoadResult, rules: RuleSet) -> dict[str, Any]:
    rebalance = rules.schedule.rebalance
    return {
        "valid": True,
        "files": [str(path) for path in result.files],
        "account": {"id": rules.account.id, "live": rules.account.live},
        "gateway": {
            "host": rules.gateway.host,
            "port": rules.gateway.port,
            "client_id": rules.gateway.client_id,
        },
        "allocations": sorted(rules.allocations),
        "brackets": sorted(rules.brackets),
        "scales": sorted(rules.scales),
        "reenter": dict(sorted(_reentry(rules).items())),
        "symbols": rules.symbols(),
        "schedule": {
            "reconcile_every_seconds": rules.schedule.reconcile_every.total_seconds(),
            "rebalance": None
            if rebalance is None
            else {"cron": rebalance.cron, "timezone": rebalance.timezone},
        },
        "generation": rules.generation(),
        "targets_files": {
            rule: {"path": source.path, "problem": source.problem}
            for rule, source in TargetsFiles().sources(rules).items()
        },
    }


def _targets_lines(rules: RuleSet) -> list[str]:
    """Targets files are checked too, but they are the strategy's input, read on every pass:
    a missing or broken one holds its allocation at run time and does not make the rule set
    invalid."""
    lines = []
    for rule, source in TargetsFiles().sources(rules).items():
        if source.problem is None and source.targets is not None:
            targets = source.targets
            state = f"valid: {len(targets.targets)} row(s) of {targets.mode}"
        else:
            state = f"not usable now (the allocation holds): {source.problem}"
        lines.append(f"  targets      allocations.{rule}: {source.path} ({state})")
    return lines


def _json(result: LoadResult) -> Any:
    if result.rule_set is None:
        return [error.as_dict() for error in result.errors]
    return summary(result, result.rule_set)


def _count(items: dict[str, Any], noun: str) -> str:
    names = f": {', '.join(items)}" if items else ""
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}{names}"


def _reentry(rules: RuleSet) -> dict[str, str]:
    found: dict[str, str] = {name: rule.reenter for name, rule in rules.brackets.items()}
    found.update((name, rule.reenter) for name, rule in rules.scales.items())
    return found


def _reentry_lines(rules: RuleSet) -> list[str]:
    """Which brackets and scales enter again after an expired or a filled-and-closed entry."""
    standing = _reentry(rules)
    if not standing:
        return []
    daily = sorted(name for name, reenter in standing.items() if reenter == "daily")
    never = len(standing) - len(daily)
    line = f"  reenter      never: {never}"
    if daily:
        line += f"; daily (once per trading day): {', '.join(daily)}"
    return [line]


def _text(result: LoadResult) -> str:
    rules = result.rule_set
    if rules is None:
        lines = [str(error) for error in result.errors]
        count = len(result.errors)
        lines.append(f"{count} error{'' if count == 1 else 's'}; the rule set is not valid")
        return "\n".join(lines)
    kind = "LIVE" if rules.account.live else "paper"
    rebalance = rules.schedule.rebalance
    timing = (
        "allocations trade whenever drift exceeds the band"
        if rebalance is None
        else f"allocations rebalance at '{rebalance.cron}' ({rebalance.timezone})"
    )
    seconds = rules.schedule.reconcile_every.total_seconds()
    return "\n".join(
        [
            f"valid rule set: {len(result.files)} file{'' if len(result.files) == 1 else 's'} "
            f"({', '.join(str(path) for path in result.files)})",
            f"  account      {rules.account.id} ({kind})",
            f"  gateway      {rules.gateway.host}:{rules.gateway.port} "
            f"client_id {rules.gateway.client_id}",
            f"  rules        {_count(rules.allocations, 'allocation')}",
            f"               {_count(rules.brackets, 'bracket')}",
            f"               {_count(rules.scales, 'scale')}",
            *_reentry_lines(rules),
            f"  symbols      {', '.join(rules.symbols()) or '(none)'}",
            f"  schedule     reconcile every {seconds:g}s; {timing}",
            *_targets_lines(rules),
            f"  generation   {rules.generation()}",
        ]
    )
