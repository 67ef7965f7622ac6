"""`tradectl alert-test [DIR]`: send one test alert to every target the rules' `alerts:` names."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from tradectl.cli.arguments import DEFAULT_RULES
from tradectl.schemas.loader import load_rule_set


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "alert-test",
        description="Read the alerts section of the rules in DIR, take the alert URLs from the "
        "environment variable or file it names, and send one test alert to each target. Exit 0 "
        "when every target took it, 1 otherwise. URLs are never printed (they hold secrets).",
    )
    parser.add_argument("path", nargs="?", default=DEFAULT_RULES, metavar="DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = load_rule_set([args.path])
    if result.rule_set is None:
        for error in result.errors:
            print(error, file=sys.stderr)
        print(f"tradectl alert-test: the rules in {args.path} are invalid", file=sys.stderr)
        return 1
    settings = result.rule_set.alerts
    if settings is None:
        print(
            f"tradectl alert-test: the rules in {args.path} have no alerts section "
            "(docs/observability.md shows one)",
            file=sys.stderr,
        )
        return 1
    from tradectl.service.alerts import (
        Alert,
        AlertConfigError,
        AppriseTargets,
        alert_urls,
        deliver,
        url_sources,
    )

    try:
        urls = alert_urls(settings)
        if not urls:
            raise AlertConfigError(f"no alert URL found in {url_sources(settings)}")
        targets = AppriseTargets(urls)
    except AlertConfigError as exc:
        print(f"tradectl alert-test: {exc}", file=sys.stderr)
        return 1
    alert = Alert(
        "test",
        "tradectl test alert",
        "tradectl alert-test: if you read this, alerts reach you here",
        "info",
    )

    def wait(seconds: float) -> bool:
        time.sleep(seconds)
        return False

    delivered = deliver(targets, alert, settings.retries, wait, retry_delay=1.0)
    for label, ok in zip(targets.labels, delivered, strict=True):
        print(f"{label}: {'delivered' if ok else 'FAILED (see the log lines above)'}")
    return 0 if all(delivered) else 1
