"""The plan as a table for people (shared by ``apply``; ``plan`` may print the same)."""

from __future__ import annotations

from daemon.planner.types import Intent, Plan

_HEADERS = ("ACTION", "RULE", "SYMBOL", "SIDE", "QTY", "TYPE", "PRICE", "VALUE", "STATUS", "WHY")


def render_plan(plan: Plan) -> str:
    if plan.is_empty:
        lines = ["No changes: the account matches the rules."]
    else:
        rows = [_row(intent) for intent in plan.intents]
        widths = [max(len(row[i]) for row in [_HEADERS, *rows]) for i in range(len(_HEADERS) - 1)]
        lines = [_line(_HEADERS, widths)] + [_line(row, widths) for row in rows]
        blocked = len(plan.blocked)
        lines.append(
            f"{len(plan.actionable)} to send, {blocked} blocked"
            + ("" if not blocked else " (see STATUS)")
        )
    lines += [f"note: {note}" for note in plan.notes]
    return "\n".join(lines)


def _line(row: tuple[str, ...], widths: list[int]) -> str:
    cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
    return "  ".join([*cells, row[-1]]).rstrip()


def _row(intent: Intent) -> tuple[str, ...]:
    order = intent.order
    price = "" if order is None or order.price_for_value is None else f"{order.price_for_value:g}"
    if order is not None and order.order_type == "TRAIL" and order.trailing_percent is not None:
        price = f"{order.trailing_percent:g}%"
    action = intent.action if intent.order_id is None else f"{intent.action} #{intent.order_id}"
    return (
        action,
        f"{intent.kind}.{intent.rule}:{intent.leg}",
        intent.symbol,
        "" if order is None else order.action,
        "" if order is None else str(order.quantity),
        "" if order is None else order.order_type,
        price,
        f"{intent.value:,.0f}" if intent.value else "",
        "ok" if intent.blocked_by is None else f"blocked: {intent.blocked_by}",
        intent.reason,
    )
