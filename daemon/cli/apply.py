"""`tradectl apply [DIR] [--sim] [--yes]`: one reconcile pass that sends what the plan says."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon.cli.embedded_sim import embedded_gateway
from daemon.ib import AdapterError, Progress
from daemon.journal import Journal, JournalError, Transition, resolve_state_dir, utc_now
from daemon.pacer import DEFAULT_RATE, IB_MESSAGE_LIMIT
from daemon.plan_report import render_table
from daemon.planner.types import Plan
from daemon.runtime.reconcile import PassResult, reconcile_pass
from daemon.runtime.session import open_session, quiet_client_logging
from schemas.loader import halt_file, load_rule_set
from schemas.models import RuleSet

DEFAULT_RULES = "rules/"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "apply",
        description="Connect, match the journal with the broker, plan, show the plan, ask for "
        "confirmation, send through the pacer and wait for acknowledgements. Exit 0 when the "
        "account already matched or everything sent was acknowledged, 1 otherwise.",
    )
    parser.add_argument("path", nargs="?", default=DEFAULT_RULES, metavar="DIR")
    parser.add_argument(
        "--sim", action="store_true", help="start the simulated gateway in-process and use it"
    )
    parser.add_argument("--yes", action="store_true", help="send without asking")
    parser.add_argument(
        "--state-dir",
        metavar="D",
        help="journal directory (default: $TRADECTL_STATE_DIR or var/state)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="seconds to wait for acknowledgements (default 30)",
    )
    parser.add_argument(
        "--max-rate",
        type=_rate,
        default=DEFAULT_RATE,
        metavar="N",
        help=f"messages per second to the gateway, all kinds together (default {DEFAULT_RATE:g}; "
        "IB allows 50)",
    )
    parser.set_defaults(func=run)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= value <= IB_MESSAGE_LIMIT:
        raise argparse.ArgumentTypeError(
            f"must be between 1 and {IB_MESSAGE_LIMIT} (IB answers error 100 above its limit)"
        )
    return value


def load_rules(path: str) -> RuleSet | None:
    result = load_rule_set([path])
    if result.rule_set is None:
        for error in result.errors:
            print(error, file=sys.stderr)
        print(f"{len(result.errors)} error(s) in {path}: nothing done", file=sys.stderr)
    return result.rule_set


def run(args: argparse.Namespace) -> int:
    if not args.yes and not sys.stdin.isatty():
        print(
            "tradectl apply: stdin is not a terminal, so there is nobody to confirm the plan; "
            "pass --yes to send without asking (or run tradectl plan to only look)",
            file=sys.stderr,
        )
        return 1
    rules = load_rules(args.path)
    if rules is None:
        return 1
    quiet_client_logging()
    heading = f"tradectl apply: {args.path} against {rules.account.id}"

    def show(plan: Plan) -> str:
        return render_table(plan, heading)

    def show_and_go(plan: Plan) -> bool:
        print(show(plan), flush=True)
        return True

    def confirm(plan: Plan) -> bool:
        print(show(plan))
        answer = input(f"Send {len(plan.actionable)} order action(s)? Type yes to confirm: ")
        return answer.strip().lower() == "yes"

    state_dir = resolve_state_dir(args.state_dir)
    halt = halt_file(Path(args.path))
    halted = halt.is_file()
    if halted:
        print(
            f"tradectl apply: {halt} exists: trading is halted, nothing "
            "will be sent (the plan below shows what is held back); remove the file to resume",
            file=sys.stderr,
        )
    try:
        with (
            embedded_gateway(args.sim) as gateway,
            open_session(
                rules,
                state_dir=state_dir,
                gateway=gateway,
                readonly=False,
                progress=_show_progress,
                pacing_rate=args.max_rate,
            ) as session,
        ):
            result = reconcile_pass(
                rules,
                session.adapter,
                session.journal,
                clock=utc_now,
                confirm=show_and_go if args.yes else confirm,
                act=True,
                ack_timeout=args.timeout,
                trigger="apply",
                on_resync=lambda transitions: _show_resync(session.journal, transitions),
                halted=halted,
            )
    except (AdapterError, JournalError) as exc:
        print(f"tradectl apply: {exc}", file=sys.stderr)
        return 1
    except (ConnectionError, TimeoutError) as exc:
        print(
            f"tradectl apply: the gateway connection failed during the pass ({exc or 'timeout'}); "
            "run apply again: the journal makes that safe, nothing is sent twice",
            file=sys.stderr,
        )
        return 1
    _export_records(rules, state_dir)
    return _report(result, show)


def _export_records(rules: RuleSet, state_dir: Path) -> None:
    """Write this pass's fills to records.dir (and GCS) now; the journal already holds them,
    so a failure here loses nothing: the next apply or the daemon exports them."""
    # Imported here, after the orders are out: pyarrow and the Cloud Storage client take
    # ~0.13 s to import, which would otherwise delay the first order message.
    from daemon.records.service import RecordsService

    try:
        report = RecordsService(state_dir, rules.records, rules.account.id).flush_once()
    except (OSError, sqlite3.Error, ValueError) as exc:
        print(f"warning: records not exported ({exc}); they stay in the journal", file=sys.stderr)
        return
    for batch in report.batches:
        print(f"records: {batch.row_count} {batch.dataset} row(s) in {batch.relative_path}")
    pending = report.upload and report.upload.retrying + report.upload.failed
    if pending:
        print(
            f"warning: {pending} record batch(es) not uploaded yet; "
            "`tradectl records upload` retries them",
            file=sys.stderr,
        )


def _show_resync(journal: Journal | None, transitions: list[Transition]) -> None:
    for transition in transitions:
        key = journal.intent(transition.intent_id).key if journal is not None else "?"
        print(f"journal: {key}: {transition.state} ({transition.note})")


def _show_progress(progress: Progress) -> None:
    if sys.stderr.isatty():
        print(f"\r{progress.line()}", end="", file=sys.stderr, flush=True)


def _report(result: PassResult, show: Callable[[Plan], str]) -> int:
    for note in result.notes:
        print(f"note: {note}")
    if not result.plan.actionable:
        print(show(result.plan))
        blocked = len(result.plan.blocked)
        print("Nothing to send." if not blocked else f"Nothing to send ({blocked} blocked).")
        return 0
    if result.progress.sent == 0 and not result.problems:
        print("Not confirmed: nothing sent.")
        return 1
    if result.progress.sent == 0:
        for problem in result.problems:
            print(f"not sent: {problem}")
        return 1
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(result.progress.line())
    for error in result.progress.errors:
        print(f"error: {error}")
    for problem in result.problems:
        print(f"not sent: {problem}")
    if result.pacing_violations:
        print(
            f"warning: IB reported {result.pacing_violations} pacing violation(s) (error 100); "
            "another program may share this gateway's message budget: lower --max-rate"
        )
    ok = True
    if not result.acknowledged_in_time:
        print(
            "Some orders were not acknowledged in time; they stay in flight in the journal and "
            "the next apply adopts them (it never sends them twice)."
        )
        ok = False
    if result.progress.rejected or result.problems:
        ok = False
    print("Done." if ok else "Finished with problems (see above).")
    return 0 if ok else 1
