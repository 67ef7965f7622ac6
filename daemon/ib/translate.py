"""Translation between tradectl's types and ib_insync's, in both directions.

Outbound: an ``OrderSpec`` becomes an ib_insync ``Order`` with the account, the orderRef and the
ids set. Inbound: open orders, completed orders and executions become the planner's
``WorkingOrder`` and ``Execution`` and the journal's ``BrokerRecord`` and ``RecordedExecution``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import cast

from ib_insync import Contract, ContractDetails, Order
from ib_insync import Execution as IbExecution
from ib_insync.util import UNSET_DOUBLE

from tradectl.journal import BrokerRecord, CachedContract, RecordedExecution
from tradectl.journal.resync import BrokerSource
from tradectl.planner.domain import OrderSpec, OrderType, TimeInForce, WorkingOrder
from tradectl.planner.instruments import STOCK_SEC_TYPE, ContractCandidate
from tradectl.schemas.models import Instrument, Side, parse_instrument

# Stop and target of one position: a partial fill of one reduces the other by the same quantity
# (IB's OCA type 2, "reduce with block"). Type 1 would cancel the whole stop when the target fills
# partly, leaving the rest of the position unprotected.
OCA_REDUCE_WITH_BLOCK = 2


def stock_contract(cached: CachedContract) -> Contract:
    """The contract orders and quotes for a resolved instrument go to: its conId, routed to the
    exchange the rule chose. ``cached.symbol`` is the instrument key; IB gets the ticker."""
    try:
        ticker = parse_instrument(cached.symbol).symbol or ""
    except ValueError:
        ticker = ""
    return Contract(
        secType=STOCK_SEC_TYPE,
        symbol=ticker,
        exchange=cached.exchange,
        currency=cached.currency,
        conId=cached.con_id,
        primaryExchange=cached.primary_exchange,
    )


def query_contract(instrument: Instrument) -> Contract:
    """What a contract-details request for ``instrument`` asks IB."""
    if instrument.con_id is not None:
        return Contract(conId=instrument.con_id)
    return Contract(
        secType=STOCK_SEC_TYPE,
        symbol=instrument.symbol or "",
        exchange=instrument.exchange,
        primaryExchange=instrument.primary_exchange or "",
        currency=instrument.currency,
    )


def listings_query(instrument: Instrument) -> Contract:
    """Every stock listing of the instrument's symbol, in any currency (to name candidates)."""
    return Contract(secType=STOCK_SEC_TYPE, symbol=instrument.symbol or "")


def candidate(details: ContractDetails) -> ContractCandidate:
    contract = details.contract if details.contract is not None else Contract()
    increment = details.sizeIncrement if details.sizeIncrement not in (0, UNSET_DOUBLE) else 1
    exchanges = tuple(name for name in (details.validExchanges or "").split(",") if name)
    rules = tuple(
        int(rule) for rule in (details.marketRuleIds or "").split(",") if rule.strip().isdigit()
    )
    return ContractCandidate(
        con_id=contract.conId,
        symbol=contract.symbol,
        sec_type=contract.secType,
        exchange=contract.exchange,
        primary_exchange=contract.primaryExchange,
        currency=contract.currency,
        description=details.longName,
        min_tick=details.minTick or 0.01,
        lot_size=max(1, int(increment)),
        valid_exchanges=exchanges,
        market_rule_ids=rules,
    )


def to_ib_order(
    spec: OrderSpec,
    *,
    order_id: int,
    account: str,
    parent_ids: Mapping[str, int],
    parent_id: int = 0,
) -> Order:
    """The ib_insync order for ``spec``. ``parent_ids`` maps the orderRef of each bracket parent in
    the same group to its order id; ``parent_id`` keeps the parent of an order being modified."""
    if spec.parent_ref is not None:
        if spec.parent_ref not in parent_ids:
            raise ValueError(
                f"{spec.order_ref}: parent {spec.parent_ref} has no order id in this group"
            )
        parent_id = parent_ids[spec.parent_ref]
    order = Order(
        orderId=order_id,
        action=spec.action,
        totalQuantity=float(spec.quantity),
        orderType=spec.order_type,
        tif=spec.tif,
        account=account,
        orderRef=spec.order_ref,
        transmit=spec.transmit,
        parentId=parent_id,
        outsideRth=spec.outside_rth,
    )
    if spec.order_type in ("LMT", "STP LMT"):
        order.lmtPrice = _required(spec.limit_price, spec, "limit price")
    if spec.order_type in ("STP", "STP LMT"):
        order.auxPrice = _required(spec.aux_price, spec, "stop price")
    if spec.order_type == "TRAIL":
        if spec.trailing_percent is not None:
            order.trailingPercent = spec.trailing_percent
        else:
            order.auxPrice = _required(spec.aux_price, spec, "trailing amount")
    if spec.oca_group:
        order.ocaGroup = spec.oca_group
        order.ocaType = OCA_REDUCE_WITH_BLOCK
    return order


def _required(value: float | None, spec: OrderSpec, what: str) -> float:
    if value is None:
        raise ValueError(f"{spec.order_ref}: a {spec.order_type} order needs a {what}")
    return value


def _price(value: float) -> float | None:
    return None if value in (UNSET_DOUBLE, 0.0) else float(value)


def working_order(key: str, order: Order, status: str, filled: float) -> WorkingOrder:
    """``key``: the instrument key of the order's contract (matched by conId)."""
    # Manual orders may use types and TIFs tradectl never sends (MOC, OPG, ...): they are kept
    # as IB names them, for reporting; the planner never acts on an order it does not own.
    return WorkingOrder(
        order_id=order.orderId,
        symbol=key,
        action=cast(Side, order.action),
        order_type=cast(OrderType, order.orderType),
        total_quantity=float(order.totalQuantity),
        filled=filled,
        limit_price=_price(order.lmtPrice),
        aux_price=_price(order.auxPrice),
        trailing_percent=_price(order.trailingPercent),
        tif=cast(TimeInForce, order.tif or "DAY"),
        order_ref=order.orderRef or None,
        perm_id=order.permId,
        client_id=order.clientId,
        parent_id=order.parentId,
        oca_group=order.ocaGroup,
        status=status,
    )


def broker_record(source: BrokerSource, order: Order, status: str, filled: float) -> BrokerRecord:
    return BrokerRecord(
        source=source,
        order_ref=order.orderRef or None,
        order_id=order.orderId,
        client_id=order.clientId,
        perm_id=order.permId,
        status=status,
        filled=filled,
        quantity=float(order.totalQuantity),
    )


def execution_side(side: str) -> Side:
    # IB reports executions as BOT/SLD.
    return "BUY" if side in ("BOT", "BUY") else "SELL"


def execution_time(execution: IbExecution) -> datetime:
    moment = execution.time
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.now(UTC)


def recorded_execution(contract: Contract, execution: IbExecution, key: str) -> RecordedExecution:
    """``key``: the instrument key of the contract (matched by conId)."""
    return RecordedExecution(
        exec_id=execution.execId,
        order_id=execution.orderId,
        client_id=execution.clientId,
        perm_id=execution.permId,
        order_ref=execution.orderRef or None,
        symbol=key,
        con_id=contract.conId,
        side=execution_side(execution.side),
        shares=float(execution.shares),
        price=float(execution.price),
        time=execution_time(execution),
    )


def execution_record(recorded: RecordedExecution) -> BrokerRecord:
    return BrokerRecord(
        source="execution",
        order_ref=recorded.order_ref,
        order_id=recorded.order_id,
        client_id=recorded.client_id,
        perm_id=recorded.perm_id,
        filled=recorded.shares,
    )
