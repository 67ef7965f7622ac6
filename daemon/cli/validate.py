"""`tradectl validate [DIR|FILE]...`: load a rule set and print a summary or every error."""

from __future__ import annotations

import argparse
import json
from typing import Any

from daemon.runtime.targets_file import TargetsFiles
from schemas.loader import LoadResult, load_rule_set
from schemas.models import RuleSet

DEFAULT_RULES = "rules/"


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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = load_rule_set(args.paths)
    if args.format == "json":
        print(json.dumps(_json(result), indent=2))
    else:
        print(_text(result))
    return 0 if result.ok else 1


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
            f"  symbols      {', '.join(rules.symbols()) or '(none)'}",
            f"  schedule     reconcile every {seconds:g}s; {timing}",
            *_targets_lines(rules),
            f"  generation   {rules.generation()}",
        ]
    )
