"""A tiny test-only broker: applies a plan's unblocked intents to an ``Observed``.

Allocation orders, placed or modified, fill at once at their limit (or the last price for
market orders), moving position and cash; bracket and scale orders go to the book as working
orders and stay there (the market does not move in these tests). Modifies and cancels act on
the book by order id.
"""

from __future__ import annotations

from dataclasses import replace

from tradectl.planner.domain import Observed, Plan, Position, WorkingOrder


def apply(plan: Plan, observed: Observed) -> Observed:
    positions = {symbol: held.quantity for symbol, held in observed.positions.items()}
    cash = observed.cash
    book = {order.order_id: order for order in observed.working_orders}
    next_id = max(book, default=0) + 1
    refs_to_ids: dict[str, int] = {}
    for intent in plan.actionable:
        if intent.action == "cancel":
            assert intent.order_id in book, "cancel of an order that is not working"
            del book[intent.order_id]
            continue
        order = intent.order
        assert order is not None
        if intent.action == "modify":
            assert intent.order_id in book, "modify of an order that is not working"
            before = book[intent.order_id]
            if intent.kind == "allocations":
                del book[intent.order_id]
                remaining = order.quantity - before.filled
                price = order.limit_price or observed.quotes[order.symbol].last
                signed = remaining if order.action == "BUY" else -remaining
                positions[order.symbol] = positions.get(order.symbol, 0.0) + signed
                cash -= signed * price
                continue
            book[intent.order_id] = replace(
                before,
                total_quantity=order.quantity,
                limit_price=order.limit_price,
                aux_price=order.aux_price,
                trailing_percent=order.trailing_percent,
                tif=order.tif,
                order_ref=order.order_ref,
            )
            continue
        if intent.kind == "allocations":
            price = order.limit_price or observed.quotes[order.symbol].last
            signed = order.quantity if order.action == "BUY" else -order.quantity
            positions[order.symbol] = positions.get(order.symbol, 0.0) + signed
            cash -= signed * price
            continue
        parent_id = 0 if order.parent_ref is None else refs_to_ids.get(order.parent_ref, 0)
        book[next_id] = WorkingOrder(
            order_id=next_id,
            symbol=order.symbol,
            action=order.action,
            order_type=order.order_type,
            total_quantity=order.quantity,
            limit_price=order.limit_price,
            aux_price=order.aux_price,
            trailing_percent=order.trailing_percent,
            tif=order.tif,
            order_ref=order.order_ref,
            parent_id=parent_id,
            oca_group=order.oca_group or "",
        )
        refs_to_ids[order.order_ref] = next_id
        next_id += 1
    nav = cash + sum(
        quantity * observed.quotes[symbol].last for symbol, quantity in positions.items()
    )
    return replace(
        observed,
        cash=cash,
        net_liquidation=nav,
        positions={symbol: Position(symbol, quantity) for symbol, quantity in positions.items()},
        working_orders=tuple(book.values()),
        orders_sent_last_minute=0,
    )
