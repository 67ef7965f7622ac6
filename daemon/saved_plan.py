"""A plan saved by ``tradectl plan --out FILE`` and applied by ``tradectl apply FILE``.

As with Terraform's saved plans, ``apply FILE`` sends exactly the saved plan or nothing: it plans
again against the account as it is now and refuses when the result differs from the saved one
(docs/apply.md "A saved plan"). The file also carries fingerprints of what the plan was made
from (the rules, the account's positions and cash, its working orders), so a refusal can say
what changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tradectl.plan_report import plan_dict
from tradectl.planner.domain import Intent, Observed, Plan

FORMAT = "tradectl-plan/1"

# What identifies an intent on the wire. Reasons, estimated prices and values are left out: they
# move with every quote without changing a single order.
_ORDER_FIELDS = (
    "symbol",
    "action",
    "quantity",
    "order_type",
    "order_ref",
    "tif",
    "limit_price",
    "aux_price",
    "trailing_percent",
    "parent_ref",
    "oca_group",
    "transmit",
)


class SavedPlanError(Exception):
    """The file is not a usable saved plan; the message says why."""


@dataclass(frozen=True)
class SavedPlan:
    rules: str
    account: str
    sim: bool
    rules_generation: str
    fingerprints: dict[str, str]
    plan_hash: str
    document: dict[str, Any]


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _intent_identity(intent: Intent) -> dict[str, Any]:
    order = intent.order
    return {
        "key": intent.key,
        "action": intent.action,
        "order_id": intent.order_id,
        "blocked_by": intent.blocked_by,
        "order": None if order is None else {name: getattr(order, name) for name in _ORDER_FIELDS},
    }


def plan_hash(plan: Plan) -> str:
    """Equal for two plans that would put exactly the same messages on the wire."""
    return _digest([_intent_identity(intent) for intent in plan.intents])


def fingerprints(observed: Observed, rules_generation: str) -> dict[str, str]:
    """One hash per thing a plan depends on, so that a refusal names what changed."""
    orders = sorted(
        (
            order.client_id,
            order.order_id,
            order.order_ref or "",
            order.symbol,
            order.action,
            order.order_type,
            order.total_quantity,
            order.filled,
            order.limit_price,
            order.aux_price,
            order.trailing_percent,
        )
        for order in observed.working_orders
    )
    positions = sorted(
        (symbol, position.quantity)
        for symbol, position in observed.positions.items()
        if position.quantity
    )
    return {
        "rules": rules_generation,
        "account": _digest(observed.account_id),
        "positions and cash": _digest([positions, observed.cash]),
        "working orders": _digest(orders),
    }


def save(
    path: Path,
    *,
    rules: str,
    account: str,
    sim: bool,
    rules_generation: str,
    observed: Observed,
    plan: Plan,
    as_of: str,
) -> None:
    document = {
        "format": FORMAT,
        "rules": str(Path(rules).absolute()),
        "account": account,
        "sim": sim,
        "as_of": as_of,
        "rules_generation": rules_generation,
        "fingerprints": fingerprints(observed, rules_generation),
        "plan_hash": plan_hash(plan),
        **plan_dict(plan),
    }
    try:
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise SavedPlanError(f"cannot write {path}: {exc.strerror}") from exc


def looks_saved(path: Path) -> bool:
    """True for a file that claims to be a saved plan (JSON with our format tag)."""
    if not path.is_file():
        return False
    try:
        with path.open("rb") as stream:
            head = stream.read(4096)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and FORMAT.encode() in head


def load(path: Path) -> SavedPlan:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SavedPlanError(f"{path}: not a readable saved plan ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SavedPlanError(f"{path}: not a saved plan of this tradectl ({FORMAT})")
    try:
        return SavedPlan(
            rules=str(document["rules"]),
            account=str(document["account"]),
            sim=bool(document["sim"]),
            rules_generation=str(document["rules_generation"]),
            fingerprints={str(k): str(v) for k, v in document["fingerprints"].items()},
            plan_hash=str(document["plan_hash"]),
            document=document,
        )
    except (KeyError, AttributeError, TypeError) as exc:
        raise SavedPlanError(f"{path}: the saved plan is incomplete ({exc})") from exc


def differences(saved: SavedPlan, observed: Observed, rules_generation: str) -> list[str]:
    """What differs between the state a plan was saved from and ``observed``."""
    now = fingerprints(observed, rules_generation)
    return [name for name, value in saved.fingerprints.items() if now.get(name) != value]
