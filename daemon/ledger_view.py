"""The ledger as `tradectl status`, `plan` and `release` show it (docs/planning.md, "The ledger").

Per bracket rule: shares entered, exited and released, what it still holds, and how much its
working stop and target protect. A rule no longer in the rule set that still holds shares is an
*orphaned protection*.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tradectl.journal import LedgerRelease, LedgerRow, entered_total
from tradectl.planner.legs import STOP_LEG, TARGET_LEG, is_protective_leg, parse_order_ref

ENDED = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


@dataclass(frozen=True)
class RuleLedger:
    rule: str
    symbol: str
    side: str
    entered: float
    exited: float
    released: float
    removed: bool
    stop: float | None = None
    target: float | None = None

    @property
    def held(self) -> float:
        return max(0.0, self.entered - self.exited - self.released)

    @property
    def orphaned(self) -> bool:
        return self.removed and self.held > 0


def rule_ledgers(
    rows: Iterable[LedgerRow],
    releases: Iterable[LedgerRelease],
    rules: Collection[str] | None,
    working: Iterable[Mapping[str, Any]] | None = None,
) -> list[RuleLedger]:
    """One line per bracket rule of the ledger. ``rules`` are the bracket names in the rule set
    (None when unknown: nothing is called removed); ``working`` the owned working orders as
    status shows them (``order_ref``, ``quantity``, ``filled``, ``status``), None when unknown."""
    by_rule: dict[str, list[LedgerRow]] = {}
    for row in rows:
        if row.kind == "brackets":
            by_rule.setdefault(row.rule, []).append(row)
    totals: dict[str, dict[str, Any]] = {
        name: {
            "symbol": found[0].symbol,
            "side": found[0].side,
            "entered": entered_total(found),
            "exited": sum(row.exited for row in found),
            "rel": 0.0,
        }
        for name, found in by_rule.items()
    }
    for release in releases:
        if release.rule in totals:
            totals[release.rule]["rel"] += release.held
    protected: dict[tuple[str, str], float] | None = None
    if working is not None:
        protected = {}
        for order in working:
            parsed = parse_order_ref(order.get("order_ref"))
            if order.get("status") in ENDED or parsed is None or not is_protective_leg(parsed.leg):
                continue
            key = (parsed.rule, parsed.leg)
            remaining = float(order["quantity"]) - float(order.get("filled") or 0.0)
            protected[key] = protected.get(key, 0.0) + remaining
    return [
        RuleLedger(
            rule=name,
            symbol=found["symbol"],
            side=found["side"],
            entered=found["entered"],
            exited=found["exited"],
            released=found["rel"],
            removed=rules is not None and name not in rules,
            stop=None if protected is None else protected.get((name, STOP_LEG), 0.0),
            target=None if protected is None else protected.get((name, TARGET_LEG), 0.0),
        )
        for name, found in sorted(totals.items())
    ]


def ledger_json(ledgers: Iterable[RuleLedger]) -> list[dict[str, Any]]:
    return [{**asdict(line), "held": line.held, "orphaned": line.orphaned} for line in ledgers]


def render_ledger(ledgers: list[RuleLedger]) -> list[str]:
    if not ledgers:
        return ["ledger:      no bracket has entered"]
    lines = ["ledger:      rule                 symbol side  entered exited  held  stop  target"]
    for line in ledgers:
        stop = "?" if line.stop is None else f"{line.stop:g}"
        target = "?" if line.target is None else f"{line.target:g}"
        flag = ""
        if line.orphaned:
            flag = f"  ORPHANED PROTECTION (rule removed; `tradectl release {line.rule}` ends it)"
        elif line.released:
            flag = f"  released {line.released:g}"
        lines.append(
            f"  {line.rule:<30} {line.symbol:<6} {line.side:<4} {line.entered:>7g} "
            f"{line.exited:>6g} {line.held:>5g} {stop:>5} {target:>7}{flag}"
        )
    return lines


def release_result(release: LedgerRelease) -> dict[str, Any]:
    return {
        "rule": release.rule,
        "symbol": release.symbol,
        "side": release.side,
        "held": release.held,
        "reason": release.reason,
        "released_at": release.released_at.isoformat(),
    }
