"""Small builders for planner tests: a rule set from plain dicts and an observed account."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from tradectl.planner.domain import (
    ContractFacts,
    Execution,
    Intent,
    Observed,
    Position,
    Quote,
    WorkingOrder,
    stored_reason,
)
from tradectl.schemas.models import RuleSet

NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)

LOOSE_RISK: dict[str, Any] = {
    "max_order_value": 1_000_000,
    "max_position_fraction": 1.0,
    "max_risk_per_trade_fraction": 1.0,
    "max_daily_loss_fraction": 0.5,
    "max_orders_per_minute": 3000,
}


def rule_set(
    *,
    allocations: Mapping[str, Any] | None = None,
    brackets: Mapping[str, Any] | None = None,
    scales: Mapping[str, Any] | None = None,
    risk: Mapping[str, Any] | None = None,
    schedule: Mapping[str, Any] | None = None,
) -> RuleSet:
    document: dict[str, Any] = {
        "account": {"id": "DU1234567"},
        "risk": {**LOOSE_RISK, **(risk or {})},
        "allocations": dict(allocations or {}),
        "brackets": dict(brackets or {}),
        "scales": dict(scales or {}),
    }
    if schedule is not None:
        document["schedule"] = dict(schedule)
    return RuleSet.model_validate(document)


def observed(
    *,
    nav: float = 100_000.0,
    cash: float | None = None,
    buying_power: float | None = None,
    day_start_nav: float | None = None,
    prices: Mapping[str, float] | None = None,
    positions: Mapping[str, float] | None = None,
    orders: Iterable[WorkingOrder] = (),
    executions: Iterable[Execution] = (),
    entry_fills: Mapping[tuple[str, str], float] | None = None,
    quote_age: timedelta = timedelta(seconds=5),
    contracts: Mapping[str, ContractFacts] | None = None,
    **flags: Any,
) -> Observed:
    prices = dict(prices or {})
    facts = (
        dict(contracts)
        if contracts is not None
        else {symbol: ContractFacts(symbol, con_id=1000 + i) for i, symbol in enumerate(prices)}
    )
    return Observed(
        account_id="DU1234567",
        net_liquidation=nav,
        cash=nav if cash is None else cash,
        buying_power=buying_power if buying_power is not None else nav if cash is None else cash,
        day_start_nav=nav if day_start_nav is None else day_start_nav,
        positions={
            symbol: Position(symbol, quantity) for symbol, quantity in (positions or {}).items()
        },
        working_orders=tuple(orders),
        executions=tuple(executions),
        quotes={
            symbol: Quote(symbol, last=price, time=NOW - quote_age)
            for symbol, price in prices.items()
        },
        contracts=facts,
        entry_fills=dict(entry_fills or {}),
        **flags,
    )


def working(
    order_id: int,
    symbol: str,
    action: str,
    quantity: float,
    *,
    ref: str | None,
    order_type: str = "LMT",
    limit: float | None = None,
    aux: float | None = None,
    trailing: float | None = None,
    filled: float = 0.0,
    tif: str = "DAY",
    status: str = "Submitted",
    oca: str = "",
) -> WorkingOrder:
    return WorkingOrder(
        order_id=order_id,
        symbol=symbol,
        action=action,  # type: ignore[arg-type]
        order_type=order_type,  # type: ignore[arg-type]
        total_quantity=quantity,
        filled=filled,
        limit_price=limit,
        aux_price=aux,
        trailing_percent=trailing,
        tif=tif,  # type: ignore[arg-type]
        order_ref=ref,
        oca_group=oca,
        status=status,
    )


def summary(plan_intents: Iterable[Any]) -> list[tuple[Any, ...]]:
    """(action, symbol, side, quantity, limit, blocked_by) per intent: what goes on the wire."""
    rows = []
    for intent in plan_intents:
        order = intent.order
        rows.append(
            (
                intent.action,
                intent.symbol,
                None if order is None else order.action,
                None if order is None else order.quantity,
                None if order is None else order.limit_price,
                intent.blocked_by,
            )
        )
    return rows


def stored_fields(instance: Any) -> tuple[type, list[object]]:
    """A dataclass instance's type and fields as it holds them: an intent's reason as stored
    (a deferred reason stays unwritten), what ``vars`` showed before intents had slots."""
    return type(instance), [
        stored_reason(instance) if item.name == "reason" and type(instance) is Intent else
        getattr(instance, item.name)
        for item in fields(instance)
    ]  # fmt: skip
