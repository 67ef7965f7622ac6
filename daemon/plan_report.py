"""Render a ``Plan`` for people (a Terraform-like table) and for machines (JSON-ready dicts).

Shared by ``tradectl plan`` and whatever else shows a plan before acting on it.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from typing import Any

from tradectl.planner.domain import Intent, Plan, TargetsDecision, WorkingOrder

MIN_REASON_WIDTH = 24
"""Narrower than this beside the other columns, a reason goes on lines of its own below its row."""

_MARKS = {"place": "+", "modify": "~", "cancel": "-"}
_COLUMNS = (
    "RULE",
    "SYMBOL",
    "CURRENT → TARGET",
    "ACTION",
    "QTY",
    "PRICE",
    "VALUE",
    "BLOCKED BY",
    "REASON",
)


def counts(plan: Plan) -> dict[str, int]:
    actionable = plan.actionable
    return {
        "place": sum(intent.action == "place" for intent in actionable),
        "modify": sum(intent.action == "modify" for intent in actionable),
        "cancel": sum(intent.action == "cancel" for intent in actionable),
        "blocked": len(plan.blocked),
    }


def summary_line(plan: Plan) -> str:
    found = counts(plan)
    return (
        f"Plan: {found['place']} to place, {found['modify']} to modify, "
        f"{found['cancel']} to cancel, {found['blocked']} blocked."
    )


def _number(value: float) -> str:
    return f"{int(value):,}" if value == int(value) else f"{value:,.4f}".rstrip("0")


def _price(intent: Intent) -> str:
    order = intent.order
    if order is None:
        return "-"
    if order.order_type == "TRAIL" and order.trailing_percent is not None:
        return f"trail {order.trailing_percent:g}%"
    parts = []
    if order.aux_price is not None:
        parts.append(f"stop {order.aux_price:,.2f}")
    if order.limit_price is not None:
        parts.append(f"{order.limit_price:,.2f}")
    return " ".join(parts) if parts else "MKT"


def _order_price(limit: float | None, aux: float | None, trailing: float | None) -> str:
    if trailing is not None:
        return f"trail {trailing:g}%"
    if limit is not None:
        return f"{limit:,.2f}"
    if aux is not None:
        return f"stop {aux:,.2f}"
    return "MKT"


def _change(intent: Intent) -> str:
    """CURRENT → TARGET: the position for a place or cancel; for a modify, the working order's
    quantity and price before and after."""
    before, after = intent.replaces, intent.order
    if intent.action == "modify" and before is not None and after is not None:
        old = _order_price(before.limit_price, before.aux_price, before.trailing_percent)
        new = _order_price(after.limit_price, after.aux_price, after.trailing_percent)
        return f"{_number(before.total_quantity)} @ {old} → {_number(after.quantity)} @ {new}"
    return f"{_number(intent.current_quantity)} → {_number(intent.target_quantity)}"


def _row(intent: Intent) -> tuple[str, ...]:
    order = intent.order
    action = intent.action if order is None else f"{intent.action} {order.action}"
    if order is not None and order.order_type not in ("LMT", "MKT"):
        action += f" {order.order_type}"
    if intent.order_id is not None:
        action += f" #{intent.order_id}"
    mark = "x" if intent.blocked else _MARKS[intent.action]
    return (
        f"{mark} {intent.kind}.{intent.rule}",
        intent.symbol,
        _change(intent),
        action,
        "-" if order is None else f"{order.quantity:,}",
        _price(intent),
        "-" if intent.value == 0 else f"{intent.value:,.2f}",
        intent.blocked_by or "-",
        intent.reason,
    )


def _manual(order: WorkingOrder) -> str:
    price = "" if order.limit_price is None else f" @ {order.limit_price:g}"
    ref = order.order_ref or "none"
    return (
        f"order {order.order_id}: {order.action} {_number(order.remaining)} {order.symbol} "
        f"{order.order_type}{price} (orderRef {ref})"
    )


def terminal_width() -> int | None:
    """``$COLUMNS`` when set, else the terminal's width; None (no limit) when the output is not a
    terminal, so that a file or a pipe gets one line per intent."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _with_reason(cells: str, reason: str, width: int | None) -> list[str]:
    """The row, its reason wrapped to ``width``: beside the other cells while a reason column
    of MIN_REASON_WIDTH fits, else on indented lines of its own below them."""
    if width is None or len(cells) + 2 + len(reason) <= width:
        return [f"{cells}  {reason}".rstrip()]
    room = width - len(cells) - 2
    if room >= MIN_REASON_WIDTH:
        wrapped = textwrap.wrap(reason, room, break_on_hyphens=False)
        pad = " " * (len(cells) + 2)
        return [f"{cells}  {wrapped[0]}", *(pad + line for line in wrapped[1:])]
    indent = "      "
    wrapped = textwrap.wrap(reason, max(MIN_REASON_WIDTH, width - len(indent)))
    return [cells.rstrip(), *(indent + line for line in wrapped)]


def render_table(plan: Plan, heading: str, width: int | None = None) -> str:
    """The plan as a table; with ``width``, reasons wrap so that no line is longer (unless the
    other columns alone are)."""
    lines = [heading, ""]
    if plan.intents:
        rows = [("  " + _COLUMNS[0], *_COLUMNS[1:])] + [_row(intent) for intent in plan.intents]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
            lines += _with_reason("  ".join(cells), row[-1], width)
    else:
        lines.append("No changes: the account matches the rules.")
    if plan.targets:
        lines += ["", "Targets files:"] + [f"  - {_targets_line(d)}" for d in plan.targets]
    if plan.notes:
        lines += ["", "Notes:"] + [f"  - {note}" for note in plan.notes]
    if plan.manual_orders:
        lines += ["", "Manual orders (observed, never touched):"]
        lines += [f"  - {_manual(order)}" for order in plan.manual_orders]
    lines += ["", summary_line(plan)]
    return "\n".join(lines)


def intent_dict(intent: Intent) -> dict[str, Any]:
    order = intent.order
    return {
        "key": intent.key,
        "action": intent.action,
        "kind": intent.kind,
        "rule": intent.rule,
        "leg": intent.leg,
        "symbol": intent.symbol,
        "purpose": intent.purpose,
        "order_id": intent.order_id,
        "order": None
        if order is None
        else {
            "action": order.action,
            "quantity": order.quantity,
            "order_type": order.order_type,
            "order_ref": order.order_ref,
            "tif": order.tif,
            "limit_price": order.limit_price,
            "aux_price": order.aux_price,
            "trailing_percent": order.trailing_percent,
            "parent_ref": order.parent_ref,
            "oca_group": order.oca_group,
            "transmit": order.transmit,
        },
        "estimated_price": intent.estimated_price,
        "value": intent.value,
        "current_quantity": intent.current_quantity,
        "target_quantity": intent.target_quantity,
        "reason": intent.reason,
        "blocked_by": intent.blocked_by,
        "replaces": None
        if intent.replaces is None
        else {
            "order_id": intent.replaces.order_id,
            "quantity": intent.replaces.total_quantity,
            "limit_price": intent.replaces.limit_price,
            "aux_price": intent.replaces.aux_price,
            "trailing_percent": intent.replaces.trailing_percent,
        },
    }


def plan_dict(plan: Plan) -> dict[str, Any]:
    return {
        "intents": [intent_dict(intent) for intent in plan.intents],
        "notes": list(plan.notes),
        "manual_orders": [
            {
                "order_id": order.order_id,
                "symbol": order.symbol,
                "action": order.action,
                "order_type": order.order_type,
                "remaining": order.remaining,
                "limit_price": order.limit_price,
                "order_ref": order.order_ref,
            }
            for order in plan.manual_orders
        ],
        "summary": counts(plan),
        "targets_files": [decision_view(decision) for decision in plan.targets],
    }


def _targets_line(decision: TargetsDecision) -> str:
    targets = decision.targets
    where = "no valid file" if targets is None else f"{targets.path} [{targets.content_hash}]"
    turnover = "" if decision.turnover is None else f", turnover {decision.turnover:.0%}"
    hint = f"; accept with `tradectl accept {decision.rule}`" if decision.needs_acceptance else ""
    return f"allocations.{decision.rule}: {decision.status.upper()} {where}{turnover}{hint}"


def decision_view(decision: TargetsDecision) -> dict[str, Any]:
    """A decision as status and plan --json show it."""
    targets = decision.targets
    return {
        "rule": decision.rule,
        "status": decision.status,
        "reason": decision.reason,
        "turnover": decision.turnover,
        "path": None if targets is None else targets.path,
        "mode": None if targets is None else targets.mode,
        "content_hash": None if targets is None else targets.content_hash,
        "as_of": None if targets is None else targets.as_of.isoformat(),
        "targets": None if targets is None else dict(targets.targets),
    }
