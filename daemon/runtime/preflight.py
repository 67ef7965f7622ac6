"""`tradectl doctor`: every check a real run depends on, read-only, one verdict per check.

The checks and their thresholds are documented in docs/ib-gateway.md#tradectl-doctor. A check
that cannot run because an earlier one failed is reported as skipped and named after its cause.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tradectl.ib import AdapterError, IbAdapter
from tradectl.ib import preflight as ask
from tradectl.journal import Journal, JournalError, JournalVersionError, utc_now
from tradectl.planner.domain import OrderSpec
from tradectl.planner.gate import HALT
from tradectl.runtime.reconcile import reconcile_pass
from tradectl.runtime.session import open_session
from tradectl.runtime.targets_file import TargetsFiles, allocation_symbols
from tradectl.schemas.models import RuleSet

Status = Literal["ok", "warn", "FAIL", "skip"]

# reqCurrentTime has whole seconds: up to ~1 s apart is a synchronised clock.
CLOCK_WARN_SECONDS = 2.0
# Beyond this, cron schedules and the trading-day boundary run on the wrong minute.
CLOCK_FAIL_SECONDS = 60.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:<4}  {self.name:<20} {self.detail}"
        return f"{text}; {self.fix}" if self.fix else text

    def as_dict(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def passed(checks: Sequence[Check]) -> bool:
    return all(check.status != "FAIL" for check in checks)


def run_checks(
    rules: RuleSet, *, state_dir: Path, gateway: tuple[str, int] | None, halted: bool
) -> list[Check]:
    """All checks, in the order they are printed, against the rules' gateway or ``gateway``
    (the command line's embedded simulator). Nothing is placed; nothing is written."""
    state_check, journal_usable = _state_directory(state_dir, rules.account.id)
    checks: list[Check] = []
    configured = rules.gateway
    where = f"{configured.host}:{configured.port} client id {configured.client_id}"
    if gateway is not None:
        where = "the simulated gateway (--sim)"
    try:
        with open_session(
            rules,
            state_dir=state_dir if journal_usable else None,
            gateway=gateway,
            readonly=True,
            verify_account=False,
        ) as session:
            adapter = session.adapter
            checks.append(
                Check("gateway", "ok", f"{where}, server version {ask.server_version(adapter)}")
            )
            account_checks = _accounts(rules, ask.account_facts(adapter))
            checks += account_checks
            account_ok = passed(account_checks)
            lookups = ask.look_up(
                adapter, sorted({*rules.symbols(), *_symbols_needing_prices(rules)})
            )
            checks += [_contract(lookup) for lookup in lookups]
            resolved = {lk.symbol: lk.contract for lk in lookups if lk.contract is not None}
            priced = _symbols_needing_prices(rules)
            checks += [
                _market_data(answer, answer.symbol in priced)
                for answer in ask.market_data(adapter, resolved)
            ]
            offset = ask.clock_offset(adapter)
            # "Now" is the gateway's clock: sessions are judged by it, not by this host's.
            now = utc_now() + timedelta(seconds=offset)
            checks += [_hours(lookup, now) for lookup in lookups if lookup.contract is not None]
            if not account_ok:
                checks.append(Check("what-if", "skip", "not asked: the account check failed"))
            else:
                checks.append(_what_if(rules, adapter, session.journal, halted))
            checks.append(_clock(offset))
    except (AdapterError, JournalError, ConnectionError, TimeoutError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        if checks:
            checks.append(
                Check("gateway", "FAIL", f"the connection failed during the checks: {reason}")
            )
        else:
            checks.append(
                Check(
                    "gateway",
                    "FAIL",
                    f"{where}: {reason}",
                    "start IB Gateway or TWS with the API enabled on that port "
                    "(docs/ib-gateway.md)",
                )
            )
    checks.append(state_check)
    return checks


def _accounts(rules: RuleSet, facts: ask.AccountFacts) -> list[Check]:
    account = rules.account.id
    managed = ", ".join(facts.managed) or "none"
    if account not in facts.managed:
        return [
            Check(
                "account",
                "FAIL",
                f"{account} (account.id) is not among the managed accounts: {managed}",
                "fix account.id in the rules, or log the gateway into that account",
            )
        ]
    paper = account.startswith("DU")
    kind = "paper (DU prefix)" if paper else "live (no DU prefix)"
    detail = (
        f"{account} among the managed accounts ({managed}); {kind}, "
        f"AccountType {facts.account_type or 'not reported'}, "
        f"base currency {facts.base_currency or 'not reported'}"
    )
    if not paper and not rules.account.live:
        return [
            Check(
                "account",
                "FAIL",
                detail,
                "a live account needs account.live: true in the rules; tradectl refuses it "
                "otherwise",
            )
        ]
    if paper and rules.account.live:
        return [Check("account", "warn", detail, "account.live: true is set for a paper account")]
    if facts.base_currency not in (None, "USD"):
        return [
            Check(
                "account",
                "warn",
                detail,
                "risk limits are read in the base currency, while the stocks trade in USD",
            )
        ]
    return [Check("account", "ok", detail)]


def _contract(lookup: ask.SymbolLookup) -> Check:
    name = f"contract {lookup.symbol}"
    if len(lookup.candidates) == 1:
        found = lookup.candidates[0]
        label = f" ({found.name})" if found.name else ""
        return Check(
            name, "ok", f"conId {found.con_id} on {found.exchange}, {found.currency}{label}"
        )
    if not lookup.candidates:
        why = str(lookup.error) if lookup.error else "IB returned no contract"
        return Check(
            name,
            "FAIL",
            f"{lookup.symbol} is unknown to IB as a US stock ({why})",
            "check the symbol's spelling and IB's symbol for it (e.g. 'BRK B')",
        )
    listed = "; ".join(
        f"conId {c.con_id} {c.exchange} {c.currency}" + (f" {c.name}" if c.name else "")
        for c in lookup.candidates
    )
    return Check(
        name,
        "FAIL",
        f"{len(lookup.candidates)} contracts match {lookup.symbol}: {listed}",
        "tradectl trades none of them: name one in the full form (primary_exchange, currency "
        "or con_id; docs/rules.md, Instruments)",
    )


def _symbols_needing_prices(rules: RuleSet) -> set[str]:
    """Symbols the planner prices from a quote: allocation targets (inline or in their targets
    files) and market entries."""
    needed = allocation_symbols(rules, TargetsFiles().sources(rules))
    needed |= {b.symbol for b in rules.brackets.values() if b.entry.kind == "market"}
    return needed


def _market_data(answer: ask.MarketData, needs_price: bool) -> Check:
    name = f"market data {answer.symbol}"
    said = "; ".join(str(error) for error in answer.errors)
    said = f" ({said})" if said else ""
    if answer.kind == "live":
        return Check(name, "ok", "live")
    effect = (
        "tradectl asks for live data, gets no price and does not trade it "
        "(allocations skip it, market entries wait)"
        if needs_price
        else "tradectl gets no live price for it; its rules here use fixed prices"
    )
    fix = f"{effect}: subscribe to the exchange's market data in IB's Client Portal"
    status: Status = "FAIL" if needs_price else "warn"
    if answer.kind == "delayed":
        return Check(name, status, f"delayed only{said}", fix)
    return Check(name, status, f"none{said}", fix)


def _hours(lookup: ask.SymbolLookup, now: datetime) -> Check:
    name = f"hours {lookup.symbol}"
    try:
        zone = ZoneInfo(lookup.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = None

    def shown(moment: datetime) -> str:
        local = moment.astimezone(zone) if zone is not None else moment
        return f"{local:%a %Y-%m-%d %H:%M}"

    where = f" {lookup.time_zone}" if lookup.time_zone else " UTC"
    for session in lookup.regular_hours:
        if session.start <= now < session.end:
            return Check(name, "ok", f"open now until {shown(session.end)}{where}")
        if now < session.start:
            return Check(
                name,
                "ok",
                f"closed; next session {shown(session.start)} to {shown(session.end)}{where}",
            )
    return Check(
        name,
        "warn",
        "IB's contract details list no coming regular session",
        "orders would be held until the market opens",
    )


def _what_if(rules: RuleSet, adapter: IbAdapter, journal: Journal | None, halted: bool) -> Check:
    name = "what-if"
    try:
        result = reconcile_pass(
            rules,
            adapter,
            journal,
            clock=utc_now,
            confirm=None,
            act=False,
            ack_timeout=0.0,
            trigger="doctor",
            halted=halted,
        )
    except AdapterError as exc:
        return Check(name, "FAIL", f"the plan could not be made: {exc}", "run tradectl plan")
    if any(intent.blocked_by == HALT for intent in result.plan.intents):
        return Check(
            name,
            "warn",
            "tradectl is halted (a HALT file or tradectl halt): the plan places nothing",
            "tradectl resume, or remove the HALT file, when trading should start",
        )
    places = [i for i in result.plan.actionable if i.action == "place" and i.order is not None]
    entries: list[OrderSpec] = [
        i.order for i in places if i.order is not None and i.order.parent_ref is None
    ]
    children = len(places) - len(entries)
    if not entries:
        return Check(name, "ok", "the plan places no new orders now; nothing to estimate")
    contracts = adapter.contracts(sorted({spec.symbol for spec in entries}), [])
    estimable = [spec for spec in entries if spec.symbol in contracts]
    answers = ask.what_if(adapter, estimable, contracts)
    failed = [a for a in answers if a.errors or a.init_margin_change is None]
    warned = [a for a in answers if a.warning]
    margin = sum(a.init_margin_change or 0.0 for a in answers)
    commission = sum(a.commission or 0.0 for a in answers)
    currency = next((a.currency for a in answers if a.currency), "")
    detail = (
        f"{len(answers)} order(s) of the plan: initial margin {margin:+,.2f} {currency}, "
        f"commission {commission:,.2f} {currency}"
    )
    if children:
        detail += f"; {children} protective child order(s) not estimated alone"
    if failed:
        reasons = "; ".join(
            f"{a.order_ref}: " + ("; ".join(str(e) for e in a.errors) or "no estimate")
            for a in failed
        )
        return Check(
            name, "FAIL", f"{detail}; IB refused {len(failed)}: {reasons}", "see tradectl plan"
        )
    if warned:
        warnings = "; ".join(f"{a.order_ref}: {a.warning}" for a in warned)
        return Check(name, "warn", f"{detail}; IB warns: {warnings}")
    return Check(name, "ok", detail)


def _clock(offset: float) -> Check:
    detail = f"gateway clock {offset:+.1f} s from this host's"
    fix = "synchronise this host's clock (chrony or systemd-timesyncd)"
    if abs(offset) > CLOCK_FAIL_SECONDS:
        return Check("clock", "FAIL", detail, fix)
    if abs(offset) > CLOCK_WARN_SECONDS:
        return Check("clock", "warn", detail, fix)
    return Check("clock", "ok", detail)


def _state_directory(state_dir: Path, account: str) -> tuple[Check, bool]:
    """The state directory's check, and whether its journal may be read for the plan."""
    name = "state directory"
    existing = state_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        return (
            Check(
                name,
                "FAIL",
                f"{state_dir} is not writable (checked {existing})",
                "pass --state-dir or set TRADECTL_STATE_DIR to a writable directory",
            ),
            False,
        )
    if not state_dir.exists():
        return Check(name, "ok", f"{state_dir} will be created on the first run"), False
    try:
        journal = Journal.open_read_only(state_dir)
    except (JournalError, JournalVersionError) as exc:
        return Check(name, "FAIL", f"{state_dir}: {exc}"), False
    if journal is None:
        return Check(name, "ok", f"{state_dir} writable; no journal yet"), False
    try:
        bound = journal.bound_account()
    finally:
        journal.close()
    if bound is None:
        return Check(name, "ok", f"{state_dir} writable; journal not bound to an account yet"), True
    if bound != account:
        return (
            Check(
                name,
                "FAIL",
                f"{state_dir}: its journal belongs to account {bound}, the rules trade {account}",
                "give each account its own state directory (--state-dir or TRADECTL_STATE_DIR)",
            ),
            False,
        )
    return Check(name, "ok", f"{state_dir} writable; journal bound to {account}"), True
