"""What the journal knows about targets files: the targets each allocation last traded on
(the turnover baseline), and a file held for confirmation (what `tradectl accept` accepts).

Both live in the journal's key-value state, written before anything is sent:

* ``targets_accepted:RULE``: content hash, mode, targets, when and how they were accepted;
* ``targets_pending:RULE``: the held file as the planner saw it (hash, targets, turnover,
  reason), until it is accepted or replaced by a file within the limit.

Every acceptance is also kept under ``targets_accept_log:RULE:TIME`` (the audit trail).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tradectl.journal import Journal
from tradectl.journal.keys import (
    TARGETS_ACCEPT_LOG_PREFIX,
    TARGETS_ACCEPTED_PREFIX,
    TARGETS_PENDING_PREFIX,
)
from tradectl.plan_report import decision_view
from tradectl.planner.domain import AcceptedTargets, Plan, TargetsDecision


class NothingToAccept(LookupError):
    pass


@dataclass(frozen=True)
class Acceptance:
    rule: str
    content_hash: str
    turnover: float | None
    path: str

    def line(self) -> str:
        turnover = "" if self.turnover is None else f", turnover {self.turnover:.0%}"
        return f"accepted {self.path} for allocations.{self.rule} ({self.content_hash}{turnover})"


def accepted_targets(journal: Journal | None, rules: list[str]) -> dict[str, AcceptedTargets]:
    found: dict[str, AcceptedTargets] = {}
    if journal is None:
        return found
    for rule in rules:
        stored = journal.get_state(TARGETS_ACCEPTED_PREFIX + rule)
        if stored is None:
            continue
        data = json.loads(stored)
        found[rule] = AcceptedTargets(
            content_hash=data["content_hash"], mode=data["mode"], targets=data["targets"]
        )
    return found


def record_decisions(journal: Journal, plan: Plan, now: datetime, *, accept: bool = True) -> None:
    """After planning, before sending: a held file is recorded for `tradectl accept`; with
    ``accept``, a file traded within max_turnover becomes the new baseline."""
    for decision in plan.targets:
        targets = decision.targets
        if targets is None:
            continue
        if decision.status == "trading" and accept:
            current = journal.get_state(TARGETS_ACCEPTED_PREFIX + decision.rule)
            if current is None or json.loads(current)["content_hash"] != targets.content_hash:
                _accept(journal, _entry(decision), now, "within max_turnover")
            journal.delete_state(TARGETS_PENDING_PREFIX + decision.rule)
        elif decision.status == "held":
            entry = _entry(decision)
            stored = journal.get_state(TARGETS_PENDING_PREFIX + decision.rule)
            if stored is None or json.loads(stored) != entry:
                journal.set_state(TARGETS_PENDING_PREFIX + decision.rule, json.dumps(entry))


def pending_targets(journal: Journal) -> dict[str, dict[str, Any]]:
    return {
        key[len(TARGETS_PENDING_PREFIX) :]: json.loads(value)
        for key, value in journal.state_with_prefix(TARGETS_PENDING_PREFIX).items()
    }


def accept_pending(journal: Journal, rule: str, now: datetime) -> Acceptance:
    """`tradectl accept RULE`: the held file becomes the allocation's baseline, so the next
    pass trades on it. Exactly the version that was held: a file rewritten since is measured
    again against it."""
    stored = journal.get_state(TARGETS_PENDING_PREFIX + rule)
    if stored is None:
        raise NothingToAccept(
            f"allocations.{rule} has no targets file held for confirmation (`tradectl status` "
            "shows held files)"
        )
    entry = json.loads(stored)
    _accept(journal, entry, now, "tradectl accept")
    journal.delete_state(TARGETS_PENDING_PREFIX + rule)
    return Acceptance(rule, entry["content_hash"], entry.get("turnover"), entry["path"])


def _entry(decision: TargetsDecision) -> dict[str, Any]:
    targets = decision.targets
    assert targets is not None
    return {
        "rule": decision.rule,
        "path": targets.path,
        "content_hash": targets.content_hash,
        "mode": targets.mode,
        "targets": dict(targets.targets),
        "as_of": targets.as_of.isoformat(),
        "turnover": decision.turnover,
        "reason": decision.reason,
    }


def _accept(journal: Journal, entry: dict[str, Any], now: datetime, how: str) -> None:
    accepted = {**entry, "accepted_at": now.isoformat(), "accepted_by": how}
    text = json.dumps(accepted)
    journal.set_state(TARGETS_ACCEPTED_PREFIX + entry["rule"], text)
    journal.set_state(f"{TARGETS_ACCEPT_LOG_PREFIX}{entry['rule']}:{now.isoformat()}", text)


def decision_views(plan: Plan) -> list[dict[str, Any]]:
    """The plan's targets decisions as `tradectl status` shows them."""
    return [decision_view(decision) for decision in plan.targets]
