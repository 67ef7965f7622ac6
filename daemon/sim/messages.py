"""Outgoing TWS API messages, laid out field by field as the clients decode them.

Each function returns the field list of one message at
:data:`~tradectl.sim.protocol.SERVER_VERSION`; empty strings stand for fields the
simulator leaves unset (the clients then keep their defaults).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tradectl.sim.hours import IB_TIME_ZONE_ID
from tradectl.sim.model import Execution, Instrument, SimOrder, WhatIfEstimate
from tradectl.sim.protocol import UNSET_DOUBLE, Field, Out
from tradectl.sim.state import MarketHoursMode

# IB's tick types (https://interactivebrokers.github.io/tws-api/tick_types.html).
TICK_BID_SIZE, TICK_BID, TICK_ASK, TICK_ASK_SIZE, TICK_LAST, TICK_LAST_SIZE = 0, 1, 2, 3, 4, 5
TICK_CLOSE = 9
TICK_LAST_TIMESTAMP = 45
TICK_HALTED = 49
QUOTE_SIZE = 100.0


def _contract(inst: Instrument, *, primary: bool) -> list[Field]:
    """conId .. tradingClass; ``primary`` puts primaryExchange where exchange goes."""
    return [
        inst.con_id,
        inst.ib_symbol,
        inst.sec_type,
        "",
        0.0,
        "",
        "",
        inst.exchange if primary else inst.venues[0],
        inst.currency,
        inst.local_symbol,
        _trading_class(inst),
    ]


def _trading_class(inst: Instrument) -> str:
    """US stocks trade in IB's class NMS; a pair's class is its local symbol, another
    listing's its symbol."""
    if inst.sec_type == "STK" and inst.currency == "USD":
        return "NMS"
    return inst.local_symbol


def _price(value: float | None) -> Field:
    return "" if value is None else value


def error(req_id: int, code: int, message: str) -> list[Field]:
    return [Out.ERROR, 2, req_id, code, message, ""]


def order_status(order: SimOrder) -> list[Field]:
    return [
        Out.ORDER_STATUS,
        order.order_id,
        order.status,
        order.filled,
        order.remaining if not order.done else 0.0,
        order.avg_fill_price,
        order.perm_id,
        order.parent_id,
        order.last_fill_price,
        order.client_id,
        "",
        0.0,
    ]


def _order_head(order: SimOrder) -> list[Field]:
    return [
        order.action,
        order.quantity,
        order.order_type,
        _price(order.lmt_price),
        _price(order.aux_price),
        order.tif,
        order.oca_group,
        order.account,
        "O",
        0,
        order.order_ref,
    ]


def _combo_scale_hedge() -> list[Field]:
    # no combo legs, order combo legs, smart combo params; unset scale fields; no hedge
    return [0, 0, 0, "", "", "", ""]


def _order_state(order: SimOrder, estimate: WhatIfEstimate | None) -> list[Field]:
    """whatIf, status, the nine margin fields, commission, min/max, currency, warningText."""
    if estimate is None:
        return [False, order.status, *([""] * 9), "", "", "", "", ""]
    e = estimate
    margins = [
        (e.init_margin_before, e.init_margin_after),
        (e.maint_margin_before, e.maint_margin_after),
        (e.equity_with_loan_before, e.equity_with_loan_after),
    ]
    # IB sends these nine as text: before, change and after, each for initial margin,
    # maintenance margin and equity with loan, grouped by before / change / after.
    before = [_money(b) for b, _ in margins]
    change = [_money(a - b) for b, a in margins]
    after = [_money(a) for _, a in margins]
    commission = round(e.commission, 2)
    return [
        True,
        order.status,
        *before,
        *change,
        *after,
        commission,
        commission,  # minCommission: fixed pricing leaves no range
        commission,  # maxCommission
        e.currency,
        e.warning,
    ]


def _money(value: float) -> str:
    return f"{value:.2f}"


def open_order(
    order: SimOrder, inst: Instrument, what_if: WhatIfEstimate | None = None
) -> list[Field]:
    fields: list[Field] = [Out.OPEN_ORDER, order.order_id, *_contract(inst, primary=False)]
    fields += _order_head(order)
    fields += [
        order.client_id,
        order.perm_id,
        order.outside_rth,
        False,  # hidden
        "",  # discretionaryAmt
        "",  # goodAfterTime
        "",  # sharesAllocation (deprecated)
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
        "",  # faProfile (v < 177)
        "",  # modelCode
        "",  # goodTillDate
        "",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        0,  # auctionStrategy
        "",  # startingPrice
        "",  # stockRefPrice
        "",  # delta
        "",  # stockRangeLower
        "",  # stockRangeUpper
        "",  # displaySize
        False,  # blockOrder
        False,  # sweepToFill
        False,  # allOrNone
        "",  # minQty
        order.oca_type,
        False,  # eTradeOnly
        False,  # firmQuoteOnly
        "",  # nbboPriceCap
        order.parent_id,
        0,  # triggerMethod
        "",  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType (none, so no further delta-neutral fields)
        "",  # deltaNeutralAuxPrice
        0,  # continuousUpdate
        0,  # referencePriceType
        _price(order.trail_stop_price),
        _price(order.trailing_percent),
        "",  # basisPoints
        "",  # basisPointsType
        "",  # comboLegsDescrip
    ]
    fields += _combo_scale_hedge()
    fields += [
        False,  # optOutSmartRouting
        "",  # clearingAccount
        "",  # clearingIntent
        False,  # notHeld
        0,  # no delta-neutral contract
        "",  # algoStrategy
        False,  # solicited
        *_order_state(order, what_if),
        False,  # randomizeSize
        False,  # randomizePrice
        0,  # no conditions
        "",  # adjustedOrderType
        "",  # triggerPrice
        _price(order.trail_stop_price),
        "",  # lmtPriceOffset
        "",  # adjustedStopPrice
        "",  # adjustedStopLimitPrice
        "",  # adjustedTrailingAmount
        0,  # adjustableTrailingUnit
        "",  # softDollarTier name
        "",  # softDollarTier value
        "",  # softDollarTier displayName
        "",  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        False,  # discretionaryUpToLimitPrice
        False,  # usePriceMgmtAlgo
        "",  # duration (v159+)
        "",  # postToAts (v160+)
        False,  # autoCancelParent (v162+)
        "",  # minTradeQty (v170+)
        "",  # minCompeteSize
        "",  # competeAgainstBestOffset
        "",  # midOffsetAtWhole
        "",  # midOffsetAtHalf
    ]
    return fields


def completed_order(order: SimOrder, inst: Instrument, parent_perm_id: int) -> list[Field]:
    fields: list[Field] = [Out.COMPLETED_ORDER, *_contract(inst, primary=False)]
    fields += _order_head(order)
    fields += [
        order.perm_id,
        order.outside_rth,
        False,  # hidden
        "",  # discretionaryAmt
        "",  # goodAfterTime
        "",  # faGroup
        "",  # faMethod
        "",  # faPercentage
        "",  # faProfile (v < 177)
        "",  # modelCode
        "",  # goodTillDate
        "",  # rule80A
        "",  # percentOffset
        "",  # settlingFirm
        0,  # shortSaleSlot
        "",  # designatedLocation
        -1,  # exemptCode
        "",  # startingPrice
        "",  # stockRefPrice
        "",  # delta
        "",  # stockRangeLower
        "",  # stockRangeUpper
        "",  # displaySize
        False,  # sweepToFill
        False,  # allOrNone
        "",  # minQty
        order.oca_type,
        0,  # triggerMethod
        "",  # volatility
        0,  # volatilityType
        "",  # deltaNeutralOrderType
        "",  # deltaNeutralAuxPrice
        0,  # continuousUpdate
        0,  # referencePriceType
        _price(order.trail_stop_price),
        _price(order.trailing_percent),
        "",  # comboLegsDescrip
    ]
    fields += _combo_scale_hedge()
    fields += [
        "",  # clearingAccount
        "",  # clearingIntent
        False,  # notHeld
        0,  # no delta-neutral contract
        "",  # algoStrategy
        False,  # solicited
        order.status,
        False,  # randomizeSize
        False,  # randomizePrice
        0,  # no conditions
        _price(order.trail_stop_price),
        "",  # lmtPriceOffset
        "",  # cashQty
        False,  # dontUseAutoPriceForHedge
        False,  # isOmsContainer
        "",  # autoCancelDate
        order.filled,
        0,  # refFuturesConId
        False,  # autoCancelParent
        "",  # shareholder
        False,  # imbalanceOnly
        False,  # routeMarketableToBbo
        parent_perm_id,
        order.completed_time,
        order.completed_status,
        "",  # minTradeQty (v170+)
        "",  # minCompeteSize
        "",  # competeAgainstBestOffset
        "",  # midOffsetAtWhole
        "",  # midOffsetAtHalf
    ]
    return fields


def exec_details(req_id: int, ex: Execution, inst: Instrument) -> list[Field]:
    return [
        Out.EXECUTION_DATA,
        req_id,
        ex.order_id,
        *_contract(inst, primary=True),
        ex.exec_id,
        ib_time(ex.time),
        ex.account,
        inst.exchange,
        ex.side,
        ex.shares,
        ex.price,
        ex.perm_id,
        ex.client_id,
        0,  # liquidation
        ex.cum_qty,
        ex.avg_price,
        ex.order_ref,
        "",  # evRule
        "",  # evMultiplier
        "",  # modelCode
        2,  # lastLiquidity: removed liquidity, as a marketable fill does
    ]


def commission_report(ex: Execution, currency: str) -> list[Field]:
    realized = UNSET_DOUBLE if ex.realized_pnl is None else ex.realized_pnl
    return [Out.COMMISSION_REPORT, 1, ex.exec_id, ex.commission, currency, realized, "", ""]


def contract_details(
    req_id: int, inst: Instrument, hours: tuple[str, str], time_zone_id: str
) -> list[Field]:
    """``hours``: tradingHours and liquidHours in IB's format (see daemon.sim.hours)."""
    return [
        Out.CONTRACT_DATA,
        req_id,
        inst.ib_symbol,
        inst.sec_type,
        "",  # lastTradeDateOrContractMonth
        0.0,  # strike
        "",  # right
        inst.venues[0],
        inst.currency,
        inst.local_symbol,
        _trading_class(inst),  # marketName
        _trading_class(inst),
        inst.con_id,
        inst.min_tick,
        "",  # multiplier
        "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,DAY,GTC,IOC,LIT,LMT,MKT,MIT,"
        "STP,STPLMT,TRAIL,WHATIF",
        ",".join(inst.venues),
        inst.price_magnifier,
        0,  # underConId
        inst.name,
        "" if inst.sec_type == "CASH" else inst.exchange,  # primaryExchange
        "",  # contractMonth
        "",  # industry
        "",  # category
        "",  # subcategory
        time_zone_id,
        hours[0],
        hours[1],
        "",  # evRule
        "",  # evMultiplier
        0,  # no secIds
        1,  # aggGroup
        "",  # underSymbol
        "",  # underSecType
        ",".join(str(inst.market_rule) for _ in inst.venues),  # one per validExchanges entry
        "",  # realExpirationDate
        "COMMON" if inst.sec_type == "STK" else "",  # stockType
        float(inst.lot_size),  # minSize
        float(inst.lot_size),  # sizeIncrement
        float(inst.lot_size),  # suggestedSizeIncrement
    ]


def trading_hours(now: float, mode: MarketHoursMode) -> tuple[str, str]:
    """Extended and regular hours in IB's format, in the ``IB_TIME_ZONE_ID`` time zone."""
    if mode == "us_equities":
        days = [time.strftime("%Y%m%d", time.gmtime(now + 86_400 * i)) for i in range(2)]
        trading = ";".join(f"{d}:0400-{d}:2000" for d in days)
        liquid = ";".join(f"{d}:0930-{d}:1600" for d in days)
        return trading, liquid
    # Yesterday to two days ahead: the joined session covers any host hour with margin.
    today = datetime.fromtimestamp(now, ZoneInfo(IB_TIME_ZONE_ID)).date()
    entries = []
    for offset in range(-1, 3):
        day = (today + timedelta(days=offset)).strftime("%Y%m%d")
        closed = mode == "closed_today" and offset <= 0
        entries.append(f"{day}:CLOSED" if closed else f"{day}:0000-{day}:2359")
    hours = ";".join(entries)
    return hours, hours


def ib_time(ts: float) -> str:
    return time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime(ts))


def position(account: str, inst: Instrument, quantity: float, avg_cost: float) -> list[Field]:
    return [
        Out.POSITION_DATA,
        3,
        account,
        *_contract(inst, primary=True),
        quantity,
        avg_cost,
    ]


def portfolio(
    inst: Instrument,
    quantity: float,
    avg_cost: float,
    unrealized: float,
    realized: float,
    account: str,
) -> list[Field]:
    return [
        Out.PORTFOLIO_VALUE,
        8,
        *_contract(inst, primary=True),  # here the slot is primaryExchange
        quantity,
        inst.last,
        quantity * inst.last,
        avg_cost,
        unrealized,
        realized,
        account,
    ]


def tick_price(req_id: int, tick_type: int, price: float, size: float) -> list[Field]:
    return [Out.TICK_PRICE, 6, req_id, tick_type, price, size, 0]


def tick_size(req_id: int, tick_type: int, size: float) -> list[Field]:
    return [Out.TICK_SIZE, 6, req_id, tick_type, size]


def tick_string(req_id: int, tick_type: int, value: str) -> list[Field]:
    return [Out.TICK_STRING, 6, req_id, tick_type, value]


def tick_generic(req_id: int, tick_type: int, value: float) -> list[Field]:
    return [Out.TICK_GENERIC, 6, req_id, tick_type, value]


def quote_ticks(
    req_id: int,
    inst: Instrument,
    last_trade_time: float,
    *,
    with_close: bool,
    bid_ask: bool = True,
) -> list[list[Field]]:
    """Bid, ask, last, last-trade time (Unix seconds) and optionally the previous close.

    ``bid_ask`` False sends bid and ask as -1, as IB does while the market is closed.
    """
    bid, ask, size = (inst.bid, inst.ask, QUOTE_SIZE) if bid_ask else (-1.0, -1.0, 0.0)
    ticks = [
        tick_price(req_id, TICK_BID, bid, size),
        tick_price(req_id, TICK_ASK, ask, size),
        tick_price(req_id, TICK_LAST, inst.last, QUOTE_SIZE),
        tick_string(req_id, TICK_LAST_TIMESTAMP, str(int(last_trade_time))),
    ]
    if with_close:
        ticks.append(tick_price(req_id, TICK_CLOSE, inst.close, 0.0))
    return ticks
