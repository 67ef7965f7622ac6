"""`tradectl apply [DIR | PLAN] [--sim] [--yes] [--json]`: reconcile passes until the account
matches the rules or nothing more can be done now; or exactly one saved plan (docs/apply.md)."""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from tradectl import saved_plan
from tradectl.cli.apply_arguments import add_apply_arguments
from tradectl.cli.embedded_sim import embedded_gateway
from tradectl.ib import AdapterError, Progress
from tradectl.journal import Journal, JournalError, Transition, resolve_state_dir, utc_now
from tradectl.plan_report import plan_dict, render_table, terminal_width
from tradectl.planner.domain import Plan
from tradectl.planner.legs import parse_order_ref
from tradectl.records.worker import AbandonableWorker
from tradectl.runtime.acting import NotSent
from tradectl.runtime.reconcile import PassResult, reconcile_pass
from tradectl.runtime.session import open_session, quiet_client_logging
from tradectl.schemas.loader import halt_file, halt_present, load_rule_set
from tradectl.schemas.models import RuleSet

EXIT_USAGE = 64
MAX_PASSES = 20
"""A bound on the passes of one apply: each needs the previous one's orders acknowledged, so
this many means the account keeps moving; what is left is reported, and the next apply goes on."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "apply",
        description="Connect, match the journal with the broker, plan, show the plan, ask for "
        "confirmation, send through the pacer and wait for acknowledgements; then plan again "
        "(the next slices of an allocation, say) until the account matches the rules or "
        "nothing more can be done now, and say what remains. Given a plan saved by `tradectl "
        "plan --out FILE`, send exactly that plan, or nothing when the account, its orders or "
        "the rules changed in a way that changes it. Exit 0 when the account matched or "
        "everything sent was acknowledged, 1 otherwise.",
    )
    add_apply_arguments(parser)
    # One pass and out: nothing is left to do once run() returns (journal closed, records
    # written, result printed), so the process ends without tearing its modules down.
    parser.set_defaults(func=run, exit_without_teardown=True)


def load_rules(path: str) -> RuleSet | None:
    result = load_rule_set([path])
    if result.rule_set is None:
        for error in result.errors:
            print(error, file=sys.stderr)
    return result.rule_set


class _Failed(Exception):
    """apply stops before or during a pass; the message says why (printed once, by ``run``)."""


def run(args: argparse.Namespace) -> int:
    try:
        return _apply(args)
    except _Failed as exc:
        print(f"tradectl apply: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"exit_code": 1, "error": str(exc)}, indent=2))
        return 1


def _apply(args: argparse.Namespace) -> int:
    saved = None
    rules_path, sim = args.path, args.sim
    if saved_plan.looks_saved(Path(args.path)):
        # A saved plan was reviewed when it was made: applying it asks nothing (as Terraform).
        try:
            saved = saved_plan.load(Path(args.path))
        except saved_plan.SavedPlanError as exc:
            raise _Failed(str(exc)) from exc
        rules_path, sim = saved.rules, saved.sim or args.sim
    elif args.json and not args.yes:
        print("tradectl apply: --json needs --yes (nobody can confirm a plan)", file=sys.stderr)
        return EXIT_USAGE
    elif not args.yes and not sys.stdin.isatty():
        print(
            "tradectl apply: stdin is not a terminal, so there is nobody to confirm the plan; "
            "pass --yes to send without asking (or run tradectl plan to only look)",
            file=sys.stderr,
        )
        return 1
    rules = load_rules(rules_path)
    if rules is None:
        raise _Failed(f"{rules_path}: the rules are invalid (errors above): nothing done")
    if saved is not None and saved.account != rules.account.id:
        raise _Failed(
            f"{args.path} is a plan for account {saved.account}, the rules in {rules_path} are "
            f"for {rules.account.id}: nothing sent"
        )
    quiet_client_logging()
    out = sys.stderr if args.json else sys.stdout
    heading = f"tradectl apply: {rules_path} against {rules.account.id}"
    width = terminal_width()
    run_state = _Run(out=out, saved=saved)

    def show(plan: Plan) -> str:
        return render_table(plan, heading, width)

    def decide(plan: Plan) -> bool:
        """Saved plan: send only the very same plan. Otherwise --yes, or ask (every pass: a
        later pass can hold orders the first table did not show)."""
        run_state.end_progress()
        if saved is not None:
            print(show(plan), file=out, flush=True)
            if saved_plan.plan_hash(plan) != saved.plan_hash:
                run_state.plan_changed = True
                return False
            return True
        print(show(plan), file=out, flush=True)
        if args.yes:
            return True
        answer = input(f"Send {len(plan.actionable)} order action(s)? Type yes to confirm: ")
        return answer.strip().lower() == "yes"

    state_dir = resolve_state_dir(args.state_dir, sim=sim)
    halt = halt_file(Path(rules_path))
    halted = halt_present(Path(rules_path))
    if halted:
        print(
            f"tradectl apply: {halt} exists: trading is halted, nothing "
            "will be sent (the plan below shows what is held back); remove the file to resume",
            file=sys.stderr,
        )
    records_worker = AbandonableWorker("records-export")
    try:
        with (
            embedded_gateway(sim, state_dir, keep_account=True) as gateway,
            open_session(
                rules,
                state_dir=state_dir,
                gateway=gateway,
                readonly=False,
                progress=run_state.show_progress,
                pacing_rate=args.max_rate,
            ) as session,
        ):
            # Connected: from here the pass mostly waits for the pacer and the gateway, time in
            # which the export's libraries load instead of after the last acknowledgement.
            records_worker.submit(_load_export_libraries)
            run_state.connected_early = session.adapter.connected_early
            for number in range(1, (1 if saved else MAX_PASSES) + 1):
                result = reconcile_pass(
                    rules,
                    session.adapter,
                    session.journal,
                    clock=utc_now,
                    confirm=decide,
                    act=True,
                    ack_timeout=args.timeout,
                    trigger="apply",
                    on_resync=lambda transitions: _show_resync(session.journal, transitions, out),
                    halted=halted,
                )
                run_state.pass_done(number, result)
                if not _another_pass(result):
                    break
    except (AdapterError, NotSent, JournalError) as exc:
        run_state.end_progress()
        raise _Failed(str(exc)) from exc
    except (ConnectionError, TimeoutError) as exc:
        run_state.end_progress()
        raise _Failed(
            f"the gateway connection failed during the pass ({exc or 'timeout'}); run apply "
            "again: the journal makes that safe, nothing is sent twice"
        ) from exc
    code = run_state.report(show, args.path, rules.generation())
    records = _export_records(rules, state_dir, out, args.records_wait, records_worker)
    if args.json:
        print(json.dumps(run_state.as_json(rules, rules_path, code, records), indent=2))
    return code


def _clean(result: PassResult) -> bool:
    """Every order of the pass went out and was acknowledged, nothing rejected."""
    return (
        result.acknowledged_in_time
        and not result.problems
        and not result.progress.rejected
        and not result.progress.errors
    )


def _more_after_fills(plan: Plan) -> bool:
    """The plan holds part of what the rules want back until its orders fill: an allocation
    sliced at max_order_value, or buys limited by the cash that the plan's sells will free."""
    held = any(
        "sliced:" in intent.reason
        or "cash-limited:" in intent.reason
        or (intent.blocked_by or "").startswith("cash")
        for intent in plan.intents
    )
    return held or any("limited by cash" in note for note in plan.notes)


def _another_pass(result: PassResult) -> bool:
    """Plan again only after a clean pass that held something back for its fills (the next
    slice, say). A pass whose plan was sent whole leaves nothing to plan; anything that went
    wrong is reported, not retried in a loop."""
    return result.sent > 0 and _clean(result) and _more_after_fills(result.plan)


class _Run:
    """The passes of one apply, shown as they happen and summed up at the end."""

    def __init__(self, out: TextIO, saved: saved_plan.SavedPlan | None) -> None:
        self.out = out
        self.saved = saved
        self.passes: list[PassResult] = []
        self.plan_changed = False
        # The connection was made while apply loaded (docs/apply.md, "Start and exit").
        self.connected_early = False
        self.remaining: list[str] = []
        self._progress_on_screen = False

    def show_progress(self, progress: Progress) -> None:
        if sys.stderr.isatty():
            print(f"\r{progress.line()}", end="", file=sys.stderr, flush=True)
            self._progress_on_screen = True

    def end_progress(self) -> None:
        """Finish the live progress line, so the next output starts on a line of its own."""
        if self._progress_on_screen:
            print(file=sys.stderr, flush=True)
            self._progress_on_screen = False

    def pass_done(self, number: int, result: PassResult) -> None:
        self.end_progress()
        self.passes.append(result)
        for note in result.notes:
            print(f"note: {note}", file=self.out)
        if result.sent:
            print(f"pass {number}: {result.progress.line()}", file=self.out, flush=True)

    def report(self, show: Callable[[Plan], str], path: str, generation: str) -> int:
        last = self.passes[-1]
        out = self.out
        sent = sum(result.sent for result in self.passes)
        if self.saved is not None and sent == 0:
            # Also when nothing is left to send: a saved plan is applied as it is, or not at all.
            self.plan_changed = saved_plan.plan_hash(last.plan) != self.saved.plan_hash
        if self.plan_changed and self.saved is not None:
            changed = saved_plan.differences(self.saved, last.observed, generation)
            what = ", ".join(changed) if changed else "prices"
            print(
                f"tradectl apply: the plan in {path} no longer matches the account ({what} "
                "changed since it was saved): nothing sent; run `tradectl plan --out` again",
                file=sys.stderr,
            )
            return 1
        if not last.plan.actionable and sent == 0:
            print(show(last.plan), file=out)
            blocked = len(last.plan.blocked)
            print(
                "Nothing to send." if not blocked else f"Nothing to send ({blocked} blocked).",
                file=out,
            )
            self.remaining = _remaining(self.passes)
            for line in self.remaining:
                print(f"remains: {line}", file=out)
            return 0
        for result in self.passes:
            for error in result.progress.errors:
                print(f"error: {error}", file=out)
            for problem in result.problems:
                print(f"not sent: {problem}", file=out)
            if result.pacing_violations:
                print(
                    f"warning: IB reported {result.pacing_violations} pacing violation(s) "
                    "(error 100); another program may share this gateway's message budget: "
                    "lower --max-rate",
                    file=out,
                )
        declined = last.sent == 0 and not last.problems and bool(last.plan.actionable)
        if declined and sent == 0:
            print("Not confirmed: nothing sent.", file=out)
            return 1
        if declined:
            print(f"Not confirmed: pass {len(self.passes)} not sent.", file=out)
        ok = True
        if not last.acknowledged_in_time:
            print(
                "Some orders were not acknowledged in time; they stay in flight in the journal "
                "and the next apply adopts them (it never sends them twice).",
                file=out,
            )
            ok = False
        if any(r.progress.rejected or r.problems or r.progress.errors for r in self.passes):
            ok = False
        self.remaining = _remaining(self.passes)
        count = len(self.passes)
        total = f"{count} pass{'es' if count > 1 else ''}, {sent} order action(s) sent"
        if not ok:
            print(f"Finished with problems after {total} (see above).", file=out)
        elif self.converged:
            print(
                f"Converged after {total}: every order the rules ask for is working or filled.",
                file=out,
            )
        elif self.saved is not None:
            print(f"Sent the saved plan ({total}).", file=out)
        else:
            print(f"Sent what can be sent now ({total}).", file=out)
        for line in self.remaining:
            print(f"remains: {line}", file=out)
        return 0 if ok else 1

    @property
    def converged(self) -> bool:
        """Nothing left to plan: the last pass planned nothing, or sent its whole plan (nothing
        blocked, nothing held back for fills) and every order of it was acknowledged. Working
        orders count toward the position, as the planner counts them."""
        last = self.passes[-1]
        if self.remaining or last.plan.blocked:
            return False
        if not last.plan.intents:
            return True
        return _clean(last) and last.sent > 0 and not _more_after_fills(last.plan)

    def as_json(
        self, rules: RuleSet, rules_path: str, code: int, records: list[str]
    ) -> dict[str, Any]:
        last = self.passes[-1]
        return {
            "rules": rules_path,
            "account": rules.account.id,
            "exit_code": code,
            "connected_early": self.connected_early,
            "converged": self.converged,
            "saved_plan_refused": self.plan_changed,
            "sent": sum(result.sent for result in self.passes),
            "passes": [
                {
                    "pass": number,
                    "planned": len(result.plan.intents),
                    "blocked": len(result.plan.blocked),
                    "sent": result.progress.sent,
                    "acknowledged": result.progress.acknowledged,
                    "filled": result.progress.filled,
                    "rejected": result.progress.rejected,
                    "errors": list(result.progress.errors),
                    "problems": list(result.problems),
                    "acknowledged_in_time": result.acknowledged_in_time,
                }
                for number, result in enumerate(self.passes, start=1)
            ],
            "remaining": self.remaining,
            "records": records,
            "plan": plan_dict(last.plan),
        }


def _remaining(passes: list[PassResult]) -> list[str]:
    """What this apply leaves undone, in words: the last plan's blocked intents, and allocation
    slices that wait for the fills of slices already working."""
    last = passes[-1]
    lines = []
    blocked: dict[tuple[str, str], list[str]] = {}
    for intent in last.plan.blocked:
        label = f"{intent.kind}.{intent.rule}"
        blocked.setdefault((label, intent.blocked_by or ""), []).append(intent.symbol)
    for (label, reason), held in blocked.items():
        lines.append(f"{label} ({', '.join(sorted(set(held)))}): blocked: {reason}")
    sliced: dict[str, set[str]] = {}
    for result in passes:
        for intent in result.plan.actionable:
            if "sliced:" in intent.reason:
                sliced.setdefault(intent.rule, set()).add(intent.symbol)
    for rule, symbols in sliced.items():
        waiting = sorted(
            {
                order.symbol
                for order in last.observed.owned_orders
                if order.symbol in symbols
                and (parsed := parse_order_ref(order.order_ref)) is not None
                and parsed.rule == rule
                and order.remaining > 0
            }
        )
        if waiting:
            lines.append(
                f"{len(waiting)} slice(s) of allocations.{rule} remain ({', '.join(waiting)}): "
                "run again after fills"
            )
    return lines


def _load_export_libraries() -> None:
    """Import what the records export needs: pyarrow, and pandas, which pyarrow imports when
    it builds its first table (about 0.5 s together), and its Parquet writer, warmed by writing
    an empty table in memory. Not at start-up, where it would delay the first order message."""
    from tradectl.records.parquet import fills_table, parquet_bytes

    parquet_bytes(fills_table([]))


def _export_records(
    rules: RuleSet,
    state_dir: Path,
    out: TextIO,
    wait: float,
    worker: AbandonableWorker | None = None,
) -> list[str]:
    """Write this run's fills to records.dir (and GCS) now, waiting at most ``wait`` seconds;
    the journal already holds them, so a failure or an export cut short loses nothing: the
    next apply, the daemon or `tradectl records export`/`upload` finish it. ``worker`` may have
    started on the export's imports already (``_load_export_libraries``)."""
    from tradectl.records.service import FlushReport, RecordsService

    # An upload can hang in the network for its whole timeout; the user should not. The worker
    # is abandoned at exit: batch files are written under a temp name and renamed, and the
    # journal commits each change in one transaction, so whatever is cut short is redone later.
    def flush() -> FlushReport:
        return RecordsService(state_dir, rules.records, rules.account.id).flush_once()

    if worker is None:
        worker = AbandonableWorker("records-export")
    flushed = worker.submit(flush)
    worker.shutdown(wait=False)
    try:
        report = flushed.result(timeout=wait)
    except concurrent.futures.TimeoutError:
        print(
            f"warning: records export not finished after {wait:g} s; the journal keeps every "
            "row: the daemon or `tradectl records export` and `tradectl records upload` "
            "finish it",
            file=sys.stderr,
        )
        return []
    except (OSError, sqlite3.Error, ValueError) as exc:
        print(f"warning: records not exported ({exc}); they stay in the journal", file=sys.stderr)
        return []
    written = []
    for batch in report.batches:
        print(
            f"records: {batch.row_count} {batch.dataset} row(s) in {batch.relative_path}", file=out
        )
        written.append(str(batch.relative_path))
    pending = report.upload and report.upload.retrying + report.upload.failed
    if pending:
        print(
            f"warning: {pending} record batch(es) not uploaded yet; "
            "`tradectl records upload` retries them",
            file=sys.stderr,
        )
    return written


def _show_resync(journal: Journal | None, transitions: list[Transition], out: TextIO) -> None:
    for transition in transitions:
        key = journal.intent(transition.intent_id).key if journal is not None else "?"
        print(f"journal: {key}: {transition.state} ({transition.note})", file=out)
