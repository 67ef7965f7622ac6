"""One sample of the account per pass, journaled for the daily report (docs/report.md): NAV,
cash, positions, last prices, and each allocation's targets as the pass planned them."""

from __future__ import annotations

from typing import Any

from tradectl.journal import Journal
from tradectl.planner.allocations import capital_of
from tradectl.planner.domain import Observed, Plan
from tradectl.schemas.models import RuleSet


def sample_detail(rules: RuleSet, observed: Observed, plan: Plan) -> dict[str, Any]:
    decisions = {decision.rule: decision for decision in plan.targets}
    allocations: dict[str, Any] = {}
    for name, allocation in rules.allocations.items():
        decision = decisions.get(name)
        mode = "weight"
        targets: dict[str, float] = allocation.inline_targets
        status = "inline"
        if allocation.targets_from is not None:
            # No decision: allocations were not planned this pass (outside schedule.rebalance).
            status = "not planned" if decision is None else decision.status
            file = None if decision is None else decision.targets
            targets = {} if file is None else dict(file.targets)
            mode = "weight" if file is None else file.mode
        allocations[name] = {
            "capital": capital_of(allocation, observed.net_liquidation),
            # Shares targets are exact: no band.
            "drift": allocation.drift.absolute if mode == "weight" else 0.0,
            "mode": mode,
            "targets": targets,
            "status": status,
        }
    return {
        "positions": {symbol: held.quantity for symbol, held in observed.positions.items()},
        "prices": {symbol: quote.last for symbol, quote in observed.quotes.items()},
        "max_daily_loss_fraction": rules.risk.max_daily_loss_fraction,
        "allocations": allocations,
    }


def record_account_sample(journal: Journal, rules: RuleSet, observed: Observed, plan: Plan) -> None:
    journal.record_account_sample(
        observed.net_liquidation,
        observed.cash,
        observed.day_start_nav,
        sample_detail(rules, observed, plan),
    )
