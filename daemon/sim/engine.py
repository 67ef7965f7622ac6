"""The simulated account and order matching: pure logic, no sockets, no clock of its own.

Every mutating call returns the list of :class:`Event` objects it caused, in
the order a gateway would report them; the server turns them into wire
messages. Prices move only through :meth:`Engine.set_price` (tests, random
walk); each move re-runs matching for that symbol.

Matching model, per order type (``last`` is the symbol's price, ``bid``/``ask``
are ``last`` minus/plus the half spread):

* MKT fills at the touch: ask for buys, bid for sells.
* LMT fills at the touch once marketable (ask <= limit for buys, bid >= limit for sells).
* STP triggers when last crosses auxPrice (>= for buys, <= for sells), then acts as MKT.
* STP LMT triggers like STP, then acts as LMT at lmtPrice.
* TRAIL keeps a stop that follows last at auxPrice (amount) or trailingPercent and
  only ratchets in the order's favour; it triggers like STP.

Children (``parentId``) stay PreSubmitted until their parent fills; what a
partial parent fill does to them, and what cancelling the rest of a partly
filled parent does, are options of the state file (``brackets``; docs/sim.md).
Siblings of one parent reduce each other like an OCA group, so a take profit
fill shrinks or cancels the stop. An order sent with ``transmit=False``
is held (invisible to clients) until an order of the same parent chain is sent
with ``transmit=True``. With ``fill_chunk`` > 0 each matching pass fills at most
that many shares of an order, which is how partial fills are produced.

Market hours (``hours``, see :mod:`tradectl.sim.hours`): an order trades only
while its session is on (regular hours, or pre-market and after hours with
``outsideRth``) and its symbol is not halted. An order placed outside its
session is held PreSubmitted (warning 399 without ``outsideRth``) and released
by :meth:`Engine.on_boundary` at the next open; the same call expires DAY
orders at the close and rolls the execution day at midnight New York.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from tradectl.sim.account import Account, ExchangeRates
from tradectl.sim.hours import NEW_YORK, Boundary, MarketHours, Phase, market_hours
from tradectl.sim.model import (
    AccountChanged,
    AccountSnapshot,
    ErrorNotice,
    Event,
    Execution,
    HaltChanged,
    Instrument,
    OrderChanged,
    OrderFilled,
    Position,
    QuoteChanged,
    SimOrder,
    WhatIfEstimate,
    round_to_tick,
)
from tradectl.sim.protocol import ContractFields, OrderRequest
from tradectl.sim.state import (
    ClockSpec,
    IdsSpec,
    PositionSpec,
    SimState,
    SymbolSpec,
)

NO_SECURITY_DEFINITION = "No security definition has been found for the request"
NO_ALLOCATION = "You must specify an allocation (either a single account, group, or profile)."
OFF_TICK = "The price does not conform to the minimum price variation for this contract."
# Venues a US stock may be named on besides its primary exchange.
US_VENUES = frozenset({"ISLAND", "NASDAQ", "NYSE", "ARCA", "AMEX", "BATS", "IEX"})
ORDER_TYPES = frozenset({"MKT", "LMT", "STP", "STP LMT", "TRAIL"})
TIFS = frozenset({"", "DAY", "GTC", "IOC"})
PERM_ID_BASE = 1_000_000_000


class OrderRejected(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _reject(reason: str) -> OrderRejected:
    return OrderRejected(201, f"Order rejected - reason:{reason}")


class Engine:
    def __init__(
        self,
        state: SimState,
        clock: Callable[[], float] = time.time,
        hours: MarketHours | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        self.hours = hours if hours is not None else market_hours(state.calendar)
        self.instruments: dict[str, Instrument] = {
            symbol: self._instrument(symbol, spec) for symbol, spec in state.symbols.items()
        }
        self._by_con_id = {i.con_id: i for i in self.instruments.values()}
        self.rates = ExchangeRates(self.instruments)
        specs = [state.account, *state.linked_accounts]
        held: dict[str, dict[str, Position]] = {spec.id: {} for spec in specs}
        for p in state.positions:
            owner = held[p.account or state.account.id]
            owner[p.symbol] = Position(p.quantity, p.avg_cost, p.realized_pnl)
        # The accounts this login manages (managedAccounts), the first one first.
        self.accounts: dict[str, Account] = {
            spec.id: Account(spec, state.matching, self.instruments, self.rates, held[spec.id])
            for spec in specs
        }
        self.account = self.accounts[state.account.id]
        # A persisted state brings back the gateway's working orders and the day's executions.
        self.orders: dict[tuple[int, int], SimOrder] = {}
        for restored in map(_copy, state.orders):
            self.orders[(restored.client_id, restored.order_id)] = restored
        self.executions = [dataclasses.replace(e) for e in state.executions]
        # permIds (and the execIds built from them) must not repeat across gateway
        # restarts, or a journal keyed on them would mistake new orders for old ones.
        seeded = PERM_ID_BASE + int(clock()) % 100_000 * 10_000 + 1
        self._next_perm_id = max(seeded, state.ids.next_perm_id or 0)
        self._exec_seq = state.ids.next_exec_seq
        self._next_ids: dict[int, int] = (
            {} if state.gateway.reuse_order_ids else dict(state.ids.next_order_id)
        )
        for order in self.orders.values():
            self._next_ids[order.client_id] = max(
                self.next_valid_id(order.client_id), order.order_id + 1
            )
        self.reject_next = 0

    def _instrument(self, symbol: str, spec: SymbolSpec) -> Instrument:
        assert spec.con_id is not None  # assigned by SimState validation
        assert spec.market_rule is not None  # assigned by SimState validation
        matching = self.state.matching
        bands = self.state.market_rules[spec.market_rule]
        # the spread is counted in the price step at the listing's price
        step = next(b.increment for b in reversed(bands) if spec.price + 1e-12 >= b.low_edge)
        half = max(
            matching.half_spread_ticks * step,
            round_to_tick(spec.price * matching.half_spread_bps / 10_000, step),
        )
        return Instrument(
            symbol=symbol,
            con_id=spec.con_id,
            exchange=spec.exchange,
            name=spec.name or spec.symbol,
            min_tick=spec.min_tick,
            lot_size=spec.lot_size,
            last=spec.price,
            close=spec.close if spec.close is not None else spec.price,
            half_spread=half,
            ib_symbol=spec.symbol,
            sec_type=spec.sec_type,
            currency=spec.currency,
            price_magnifier=spec.price_magnifier,
            market_rule=spec.market_rule,
            bands=tuple((band.low_edge, band.increment) for band in bands),
        )

    # -- lookups ------------------------------------------------------------------

    def find_instruments(self, contract: ContractFields) -> list[Instrument]:
        """Every listing the contract describes, as reqContractDetails answers it: a symbol on
        SMART without currency or primary exchange matches each of its listings."""
        if contract.con_id:
            found = self._by_con_id.get(contract.con_id)
            candidates = [] if found is None else [found]
        else:
            wanted = contract.symbol or contract.local_symbol
            candidates = [
                i for i in self.instruments.values() if wanted in (i.ib_symbol, i.local_symbol)
            ]
        return [i for i in candidates if _describes(contract, i)]

    def find_instrument(self, contract: ContractFields) -> Instrument:
        """The one listing an order or a quote request names; error 200 otherwise."""
        found = self.find_instruments(contract)
        if not found:
            raise OrderRejected(200, NO_SECURITY_DEFINITION)
        if len(found) > 1:
            raise OrderRejected(
                200, f"The contract description specified for {contract.symbol} is ambiguous."
            )
        return found[0]

    def instrument(self, symbol: str) -> Instrument:
        try:
            return self.instruments[symbol]
        except KeyError:
            raise KeyError(f"unknown symbol {symbol!r}") from None

    def next_valid_id(self, client_id: int) -> int:
        return self._next_ids.get(client_id, 1)

    def executions_today(self) -> list[Execution]:
        """Executions since midnight New York, as IB Gateway reports them (nyse calendar)."""
        start = self.hours.day_start(self.clock())
        return [e for e in self.executions if e.time >= start]

    def completed_today(self) -> list[SimOrder]:
        start = self.hours.day_start(self.clock())
        return [o for o in self.orders_of() if o.done and o.completed_at >= start]

    def orders_of(self, client_id: int | None = None) -> list[SimOrder]:
        return [
            o
            for o in self.orders.values()
            if o.transmitted and (client_id is None or o.client_id == client_id)
        ]

    def snapshot(self, account_id: str = "") -> AccountSnapshot:
        """A point-in-time copy of one account (by default the first) for assertions: its
        positions, orders and executions."""
        if account_id and account_id not in self.accounts:
            raise KeyError(f"unknown account {account_id!r}")
        account = self.accounts[account_id] if account_id else self.account
        mine = [o for o in self.orders.values() if o.account == account.id]
        return AccountSnapshot(
            account=account.id,
            cash=account.cash,
            net_liquidation=account.net_liquidation(),
            buying_power=account.buying_power(),
            positions={
                s: dataclasses.replace(p) for s, p in account.positions.items() if p.quantity
            },
            prices={s: i.last for s, i in self.instruments.items()},
            open_orders=[_copy(o) for o in mine if not o.done],
            orders=[_copy(o) for o in mine],
            executions=[dataclasses.replace(e) for e in self.executions if e.account == account.id],
            previous_day_equity=account.previous_day_equity,
            daily_pnl=account.daily_pnl(),
            currency=account.currency,
            cash_balances=dict(account.balances),
            accounts=list(self.accounts),
        )

    # -- orders -----------------------------------------------------------------

    def place(self, client_id: int, req: OrderRequest) -> list[Event]:
        """Handle a placeOrder: a new order, or a modify if the id is already in use."""
        self._next_ids[client_id] = max(self.next_valid_id(client_id), req.order_id + 1)
        existing = self.orders.get((client_id, req.order_id))
        try:
            if existing is not None:
                return self._modify(existing, req)
            order = self._new_order(client_id, req)
        except OrderRejected as exc:
            events: list[Event] = [ErrorNotice(client_id, req.order_id, exc.code, exc.message)]
            rejected = self.orders.get((client_id, req.order_id))
            if existing is None and rejected is not None:
                events.append(OrderChanged(_copy(rejected), cancelled=True))
            return events
        self.orders[(client_id, order.order_id)] = order
        if not req.transmit:
            return []
        return self._transmit_chain(order)

    def what_if(self, client_id: int, req: OrderRequest) -> tuple[SimOrder, WhatIfEstimate]:
        """A whatIf placeOrder: the order as IB would echo it and its margin and commission
        estimate. Nothing is stored, matched or reserved; an order that placing would reject
        raises ``OrderRejected`` the same way. Margin model: docs/sim.md#what-if-orders."""
        order = self._order_from(client_id, req, perm_id=0)
        inst = self.instruments[order.symbol]
        order.status = "PreSubmitted"
        self._validate(order, inst)
        account = self.accounts[order.account]
        price = self._reference_price(order, inst)
        signed = order.sign * order.quantity
        held = account.positions.get(order.symbol, Position()).quantity
        gross_before = account.gross_position_value()
        if inst.sec_type == "CASH":
            gross_after = gross_before  # a conversion holds no position
        else:
            change = abs(inst.value(held + signed)) - abs(inst.value(held))
            gross_after = gross_before + account.in_base(change, inst.currency)
        commission = account.commission(order, order.quantity, price)
        equity_before = account.net_liquidation()
        # Cash pays the order's price; the position is valued at the last price.
        equity_after = equity_before + account.in_base(
            inst.value(signed, inst.last - price) - commission, inst.currency
        )
        init_after = gross_after * account.initial_margin_rate
        warning = ""
        if init_after > equity_after:
            warning = (
                f"the initial margin after this order ({init_after:.2f}) would exceed the "
                f"equity with loan value ({equity_after:.2f})"
            )
        estimate = WhatIfEstimate(
            init_margin_before=gross_before * account.initial_margin_rate,
            maint_margin_before=gross_before * account.maintenance_margin_rate,
            equity_with_loan_before=equity_before,
            init_margin_after=init_after,
            maint_margin_after=gross_after * account.maintenance_margin_rate,
            equity_with_loan_after=equity_after,
            commission=commission,
            currency=inst.currency,
            warning=warning,
        )
        return order, estimate

    def _order_from(self, client_id: int, req: OrderRequest, *, perm_id: int) -> SimOrder:
        inst = self.find_instrument(req.contract)
        account = req.account
        if not account:
            if len(self.accounts) > 1 and self.state.gateway.order_without_account == "reject":
                raise OrderRejected(436, NO_ALLOCATION)
            account = self.account.id
        return SimOrder(
            order_id=req.order_id,
            client_id=client_id,
            perm_id=perm_id,
            account=account,
            symbol=inst.symbol,
            action=req.action,
            quantity=req.total_quantity,
            order_type=req.order_type,
            lmt_price=req.lmt_price,
            aux_price=req.aux_price,
            trailing_percent=req.trailing_percent,
            trail_stop_price=req.trail_stop_price,
            tif=req.tif or "DAY",
            oca_group=req.oca_group,
            oca_type=req.oca_type,
            order_ref=req.order_ref,
            parent_id=req.parent_id,
            outside_rth=req.outside_rth,
        )

    def _new_order(self, client_id: int, req: OrderRequest) -> SimOrder:
        order = self._order_from(client_id, req, perm_id=self._new_perm_id())
        inst = self.instruments[order.symbol]
        try:
            if self.reject_next > 0:
                self.reject_next -= 1
                raise _reject("rejected by the simulator's fault injection")
            self._validate(order, inst)
            self._check_side_limit(order)
            self._check_buying_power(order)
            self._check_currency_cash(order)
        except OrderRejected:
            # A rejected order is kept as done so it shows up among completed
            # orders. Cancelled rather than Inactive: ib_insync does not count
            # Inactive as done and would wait on it forever.
            self._finish(order, "Cancelled")
            order.transmitted = True
            self.orders[(client_id, order.order_id)] = order
            raise
        return order

    def _validate(self, order: SimOrder, inst: Instrument, *, modifying: bool = False) -> None:
        if order.action not in ("BUY", "SELL"):
            raise _reject(f"invalid action {order.action!r}")
        if order.quantity <= 0 or not order.quantity.is_integer():
            raise _reject(f"invalid total quantity {order.quantity:g}")
        if order.quantity % inst.lot_size:
            raise _reject(f"quantity {order.quantity:g} is not a multiple of {inst.lot_size}")
        if order.order_type not in ORDER_TYPES:
            raise _reject(f"order type {order.order_type!r} is not supported")
        if order.tif not in TIFS:
            raise _reject(f"time in force {order.tif!r} is not supported")
        if order.account not in self.accounts:
            raise _reject(f"unknown account {order.account!r}")
        if order.order_type in ("LMT", "STP LMT"):
            self._check_price("limit price", order.lmt_price, inst)
        if order.order_type in ("STP", "STP LMT"):
            self._check_price("stop price", order.aux_price, inst)
        if order.order_type == "TRAIL":
            if order.aux_price is None and order.trailing_percent is None:
                raise _reject("a trailing stop needs auxPrice or trailingPercent")
            if order.aux_price is not None and order.aux_price <= 0:
                raise _reject("trailing amount must be positive")
            if order.trailing_percent is not None and not 0 < order.trailing_percent < 100:
                raise _reject("trailing percent must be between 0 and 100")
        if order.parent_id:
            parent = self.orders.get((order.client_id, order.parent_id))
            # A working child stays modifiable after its parent filled (that is when its
            # quantity is resized to the position); only a new child needs a working parent.
            settled = modifying and parent is not None and parent.filled > 0
            if parent is None or (parent.done and not settled):
                raise _reject(f"parent order {order.parent_id} is not working")
            if parent.symbol != order.symbol:
                raise _reject("a child order must trade its parent's contract")

    @staticmethod
    def _check_price(what: str, price: float | None, inst: Instrument) -> None:
        if price is None or price <= 0:
            raise _reject(f"missing or invalid {what}")
        if not inst.conforms(price):
            # IB's error 110 names neither the price nor the increment.
            raise OrderRejected(110, OFF_TICK)

    def _check_side_limit(self, order: SimOrder) -> None:
        limit = self.state.limits.max_orders_per_side
        if not limit:
            return
        working = sum(
            1
            for o in self.orders.values()
            if o.account == order.account
            and o.symbol == order.symbol
            and o.action == order.action
            and not o.done
        )
        if working >= limit:
            raise _reject(
                f"Maximum number of {limit} active orders per contract and side "
                f"exceeded for {order.symbol} {order.action}"
            )

    def _reference_price(self, order: SimOrder, inst: Instrument) -> float:
        if order.order_type in ("LMT", "STP LMT") and order.lmt_price is not None:
            return order.lmt_price
        if order.order_type == "STP" and order.aux_price is not None:
            return order.aux_price
        return inst.ask if order.action == "BUY" else inst.bid

    def _commitment(self, order: SimOrder, replaces: SimOrder | None = None) -> float:
        """Cash a working order may still consume: the part of a buy or sell that opens or
        adds to a position. The part that closes one (a sell of shares held, a buy that
        covers a short) is not new exposure.

        ``replaces`` is the working order a modify would replace; it is left out.
        """
        inst = self.instruments[order.symbol]
        if order.parent_id or inst.sec_type == "CASH":
            # protective legs close what their parent opens; a conversion adds no exposure
            return 0.0
        account = self.accounts[order.account]
        held = account.positions.get(order.symbol, Position()).quantity
        closable = held if order.action == "SELL" else -held
        pending_same_side = sum(
            o.remaining
            for o in self.orders.values()
            if not o.done
            and o is not order
            and o is not replaces
            and o.account == order.account
            and o.symbol == order.symbol
            and o.action == order.action
        )
        opening = max(0.0, order.remaining - max(0.0, closable - pending_same_side))
        value = inst.value(opening, self._reference_price(order, inst))
        return account.in_base(value, inst.currency)

    def _check_buying_power(self, order: SimOrder, replaces: SimOrder | None = None) -> None:
        required = self._commitment(order, replaces)
        if not required:
            return
        committed = sum(
            self._commitment(o)
            for o in self.orders.values()
            if not o.done and o.transmitted and o is not replaces and o.account == order.account
        )
        account = self.accounts[order.account]
        available = account.buying_power()
        if required + committed > available + 1e-9:
            raise _reject(
                f"insufficient buying power: order needs {required:.2f} {account.currency}, "
                f"{available - committed:.2f} available"
            )

    def _payment(self, order: SimOrder) -> tuple[str, float]:
        """The currency an order pays with and how much of it, at its reference price."""
        inst = self.instruments[order.symbol]
        price = self._reference_price(order, inst)
        if inst.sec_type == "CASH" and order.action == "SELL":
            return inst.ib_symbol, order.remaining
        if order.action == "SELL":
            return inst.currency, 0.0
        return inst.currency, inst.value(order.remaining, price)

    def _check_currency_cash(self, order: SimOrder) -> None:
        """A cash account cannot go short of a currency (``account.currency_shortfall``):
        a buy in another currency than the base one, or a conversion, must find the cash
        it pays with. The base currency is the buying power check's."""
        account = self.accounts[order.account]
        inst = self.instruments[order.symbol]
        currency, needed = self._payment(order)
        if account.borrows or not needed:
            return
        if currency == account.currency and inst.sec_type != "CASH":
            return
        pending = sum(
            amount
            for o in self.orders.values()
            if o is not order and o.transmitted and not o.done and o.account == order.account
            for ccy, amount in [self._payment(o)]
            if ccy == currency
        )
        held = account.balances.get(currency, 0.0)
        if needed + pending > held + 1e-9:
            raise _reject(
                f"insufficient {currency} cash: order needs {needed:.2f} {currency}, "
                f"{held - pending:.2f} {currency} held (a cash account does not borrow)"
            )

    def _modify(self, order: SimOrder, req: OrderRequest) -> list[Event]:
        if order.done:
            if order.status == "Filled":
                raise OrderRejected(104, "Can't modify a filled order.")
            raise OrderRejected(103, "Duplicate order id")
        inst = self.instruments[order.symbol]
        same_listing = _describes(req.contract, inst) and req.contract.con_id in (0, inst.con_id)
        if req.action != order.action or not same_listing:
            raise _reject("the contract or side of a working order cannot be modified")
        if req.total_quantity < order.filled:
            raise _reject("the new quantity is below the quantity already filled")
        if req.order_type != order.order_type:
            raise _reject("the order type of a working order cannot be modified")
        candidate = dataclasses.replace(
            order,
            quantity=req.total_quantity,
            lmt_price=req.lmt_price,
            aux_price=req.aux_price,
            trailing_percent=req.trailing_percent,
            trail_stop_price=req.trail_stop_price
            if req.trail_stop_price is not None
            else order.trail_stop_price,
            tif=req.tif or order.tif,
            order_ref=req.order_ref,
            oca_group=req.oca_group,
            oca_type=req.oca_type,
            outside_rth=req.outside_rth,
        )
        self._validate(candidate, self.instruments[order.symbol], modifying=True)
        if order.transmitted:
            self._check_buying_power(candidate, replaces=order)
        for name in (
            "quantity",
            "lmt_price",
            "aux_price",
            "trailing_percent",
            "trail_stop_price",
            "tif",
            "order_ref",
            "oca_group",
            "oca_type",
            "outside_rth",
        ):
            setattr(order, name, getattr(candidate, name))
        if order.order_type == "TRAIL" and req.trail_stop_price is None:
            order.trail_stop_price = None  # re-anchor the trail on the new amount
        if not order.transmitted:
            return self._transmit_chain(order) if req.transmit else []
        if order.held and self._session_allows(order):
            # e.g. outsideRth set on an order held for the open, in after hours
            order.held = False
            if not self._waiting_for_parent(order):
                order.status = "Submitted"
        events: list[Event] = [OrderChanged(_copy(order))]
        if order.remaining <= 0:
            self._finish(order, "Filled")
            events.append(OrderChanged(_copy(order)))
            return events
        events += self._match({order.symbol})
        return events

    def _transmit_chain(self, order: SimOrder) -> list[Event]:
        root = order.parent_id or order.order_id
        chain = sorted(
            (
                o
                for o in self.orders.values()
                if o.client_id == order.client_id
                and not o.transmitted
                and not o.done
                and (o.order_id == root or o.parent_id == root or o is order)
            ),
            key=lambda o: o.order_id,
        )
        events: list[Event] = []
        for o in chain:
            o.transmitted = True
            o.held = not self._session_allows(o)
            o.status = "PreSubmitted" if o.held or self._waiting_for_parent(o) else "Submitted"
            events.append(OrderChanged(_copy(o)))
            if o.held and not o.outside_rth:
                events.append(ErrorNotice(o.client_id, o.order_id, 399, self._held_message(o)))
        events += self._match({order.symbol})
        return events

    def _session_allows(self, order: SimOrder) -> bool:
        phase = self.hours.phase(self.clock())
        return phase is Phase.REGULAR or (order.outside_rth and phase is not Phase.CLOSED)

    def _tradable(self, order: SimOrder) -> bool:
        return not self.instruments[order.symbol].halted and self._session_allows(order)

    def _held_message(self, order: SimOrder) -> str:
        opens = datetime.fromtimestamp(self.hours.next_open(self.clock()), NEW_YORK)
        inst = self.instruments[order.symbol]
        return (
            f"Order Message:\n{order.action} {order.quantity:g} {inst.ib_symbol} {inst.exchange}\n"
            f"Warning: your order will not be placed at the exchange until "
            f"{opens:%Y-%m-%d %H:%M:%S} US/Eastern"
        )

    def _waiting_for_parent(self, order: SimOrder) -> bool:
        if not order.parent_id:
            return False
        parent = self.orders.get((order.client_id, order.parent_id))
        return parent is not None and not self._activates_children(parent)

    def _activates_children(self, parent: SimOrder) -> bool:
        if parent.status == "Filled":
            return True
        partly = parent.filled > 0
        return partly and self.state.brackets.children_on_partial_fill != "hold_until_complete"

    def forget_day(self) -> None:
        """Executions and finished orders are reported for the current day only (ib-behaviour.md,
        "Order life across days"); a child whose parent filled keeps working without it."""
        self.executions.clear()
        self.orders = {key: order for key, order in self.orders.items() if not order.done}

    def cancel(self, client_id: int, order_id: int) -> list[Event]:
        order = self.orders.get((client_id, order_id))
        if order is None:
            return [
                ErrorNotice(
                    client_id,
                    order_id,
                    10147,
                    f"OrderId {order_id} that needs to be cancelled is not found.",
                )
            ]
        if order.done:
            return [
                ErrorNotice(
                    client_id,
                    order_id,
                    10148,
                    f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                    f"state: {order.status}.",
                )
            ]
        return self._cancel(order)

    def _cancel(self, order: SimOrder, reason: str = "") -> list[Event]:
        self._finish(order, "Cancelled")
        events: list[Event] = [
            OrderChanged(_copy(order), cancelled=True),
            ErrorNotice(order.client_id, order.order_id, 202, f"Order Canceled - reason:{reason}"),
        ]
        children = [child for child in self._children(order) if not child.done]
        keep = order.filled > 0 and (
            self.state.brackets.children_on_partial_parent_cancel == "keep_filled"
        )
        if keep and children:
            events += self._cover_parent_fills(order, children)
            events += self._activate(children)
            events += self._match({order.symbol})
            return events
        for child in children:
            events += self._cancel(child, "parent order cancelled")
        return events

    def global_cancel(self) -> list[Event]:
        events: list[Event] = []
        for order in sorted(self.orders.values(), key=lambda o: o.perm_id):
            if not order.done:
                events += self._cancel(order)
        return events

    def _children(self, order: SimOrder) -> list[SimOrder]:
        return [
            o
            for o in self.orders.values()
            if o.client_id == order.client_id and o.parent_id == order.order_id
        ]

    def _finish(self, order: SimOrder, status: str) -> None:
        now = self.clock()
        order.status = status
        order.completed_time = time.strftime("%Y%m%d %H:%M:%S UTC", time.gmtime(now))
        order.completed_status = status
        order.completed_at = now

    def _new_perm_id(self) -> int:
        self._next_perm_id += 1
        return self._next_perm_id - 1

    # -- market time -----------------------------------------------------------

    def on_boundary(self, boundary: Boundary) -> list[Event]:
        """What happens when the clock crosses a session boundary (nyse calendar)."""
        events: list[Event] = []
        if boundary is Boundary.DAY_ROLL:
            for inst in self.instruments.values():
                inst.close = inst.last  # tick 9 is the previous day's close
            return events
        if boundary is Boundary.CLOSE:
            events += self._expire_day_orders(outside_rth=False)
        elif boundary is Boundary.AFTER_HOURS_CLOSE:
            events += self._expire_day_orders(outside_rth=True)
        events += self.release_held()
        # bid and ask change meaning when a session starts or ends
        events += [QuoteChanged(s) for s in sorted(self.instruments)]
        return events

    def _expire_day_orders(self, *, outside_rth: bool) -> list[Event]:
        events: list[Event] = []
        for order in sorted(self.orders.values(), key=lambda o: o.perm_id):
            if (
                order.transmitted
                and not order.done
                and order.tif == "DAY"
                and order.outside_rth == outside_rth
            ):
                events += self._cancel(order, "DAY order expired at the close")
        return events

    def release_held(self) -> list[Event]:
        """Release the held orders whose session is on now, then match them."""
        events: list[Event] = []
        for order in sorted(self.orders.values(), key=lambda o: o.perm_id):
            if order.held and not order.done and self._session_allows(order):
                order.held = False
                if order.status == "PreSubmitted" and not self._waiting_for_parent(order):
                    order.status = "Submitted"
                    events.append(OrderChanged(_copy(order)))
        events += self._match(set(self.instruments))
        return events

    def halt(self, symbol: str, reason: int = 1) -> list[Event]:
        if reason not in (1, 2):
            raise ValueError("a halt reason is 1 (regulatory) or 2 (volatility)")
        inst = self.instrument(symbol)
        if not inst.halted:
            inst.halted_since = self.clock()
        inst.halted = reason
        return [HaltChanged(symbol)]

    def resume(self, symbol: str) -> list[Event]:
        self.instrument(symbol).halted = 0
        return [HaltChanged(symbol), *self._match({symbol})]

    def export_state(self) -> SimState:
        """The account as a state file: what a restarted gateway starts from (``--persist``)."""
        now = self.clock()
        state = self.state.model_copy(deep=True)
        for spec in [state.account, *state.linked_accounts]:
            balances = dict(self.accounts[spec.id].balances)
            spec.cash = balances.pop(spec.currency)
            spec.cash_balances = balances
        state.positions = [
            PositionSpec(
                symbol=s,
                account="" if account.id == self.account.id else account.id,
                quantity=p.quantity,
                avg_cost=p.avg_cost,
                realized_pnl=p.realized_pnl,
            )
            for account in self.accounts.values()
            for s, p in sorted(account.positions.items())
            if p.quantity
        ]
        for symbol, inst in self.instruments.items():
            state.symbols[symbol].price = inst.last
            state.symbols[symbol].close = inst.close
        working = sorted(
            (o for o in self.orders.values() if o.transmitted and not o.done),
            key=lambda o: o.perm_id,
        )
        state.orders = [_copy(o) for o in working]
        state.executions = [dataclasses.replace(e) for e in self.executions_today()]
        state.ids = IdsSpec(
            next_order_id=dict(self._next_ids),
            next_perm_id=self._next_perm_id,
            next_exec_seq=self._exec_seq,
        )
        state.clock = ClockSpec(start=datetime.fromtimestamp(now, UTC), frozen=state.clock.frozen)
        return state

    # -- prices and matching ---------------------------------------------------

    def last_trade_time(self, symbol: str) -> float:
        """A liquid stock trades all the time while a session is on and it is not halted."""
        last = self.hours.last_traded(self.clock())
        inst = self.instruments[symbol]
        return min(last, inst.halted_since) if inst.halted else last

    def set_price(self, symbol: str, price: float) -> list[Event]:
        inst = self.instrument(symbol)
        if price <= 0:
            raise ValueError("price must be positive")
        inst.last = round_to_tick(price, inst.increment(price))
        events: list[Event] = [QuoteChanged(symbol)]
        events += self._match({symbol})
        events += self._valuation_changed({symbol})
        return events

    def _valuation_changed(self, moved: set[str]) -> list[Event]:
        """An account update for the positions whose price moved; a rate's move changes the
        value of every account holding more than one currency."""
        held = {s for s in moved for a in self.accounts.values() if s in a.positions}
        if held or any(self.rates.moves(self.instruments[s]) for s in moved):
            return [AccountChanged(frozenset(held))]
        return []

    def random_walk(self, rng: random.Random, volatility_bps: float) -> list[Event]:
        """Move every price one seeded log-normal step, then match once over the movers."""
        moved: set[str] = set()
        if self.hours.phase(self.clock()) is Phase.CLOSED:
            return []
        for symbol, inst in self.instruments.items():
            move = math.exp(rng.gauss(0.0, volatility_bps / 10_000))
            if inst.halted:
                continue
            moved_to = inst.last * move
            price = max(inst.min_tick, round_to_tick(moved_to, inst.increment(moved_to)))
            if price != inst.last:
                inst.last = price
                moved.add(symbol)
        events: list[Event] = [QuoteChanged(s) for s in sorted(moved)]
        events += self._match(moved)
        events += self._valuation_changed(moved)
        return events

    def step(self) -> list[Event]:
        """Run one matching pass over every symbol (advances chunked partial fills)."""
        return self._match(set(self.instruments))

    def _match(self, symbols: Iterable[str]) -> list[Event]:
        events: list[Event] = []
        touched: set[str] = set()
        wanted = set(symbols)
        queue = sorted(
            (
                o
                for o in self.orders.values()
                if o.symbol in wanted and o.status == "Submitted" and self._tradable(o)
            ),
            key=lambda o: o.perm_id,
        )
        seen: set[int] = set()
        while queue:
            order = queue.pop(0)
            if order.perm_id in seen or order.status != "Submitted" or not self._tradable(order):
                continue
            seen.add(order.perm_id)
            price = self._fill_price(order)
            if price is None:
                if order.tif == "IOC":
                    events += self._cancel(order, "IOC order not marketable")
                continue
            events += self._fill(order, price)
            touched.add(order.symbol)
            queue.extend(self._release_children(order, events))
            if order.status != "Filled" and order.tif == "IOC":
                events += self._cancel(order, "IOC remainder")
        if touched:
            events.append(AccountChanged(frozenset(touched)))
        return events

    def _fill_price(self, order: SimOrder) -> float | None:
        inst = self.instruments[order.symbol]
        touch = inst.ask if order.action == "BUY" else inst.bid
        kind = order.order_type
        if kind in ("STP", "STP LMT", "TRAIL") and not order.triggered:
            stop = self._stop_price(order, inst)
            crossed = inst.last >= stop if order.action == "BUY" else inst.last <= stop
            if not crossed:
                return None
            order.triggered = True
        if kind in ("MKT", "STP", "TRAIL"):
            return touch
        limit = order.lmt_price
        assert limit is not None  # validated on placement
        marketable = touch <= limit if order.action == "BUY" else touch >= limit
        return touch if marketable else None

    def _stop_price(self, order: SimOrder, inst: Instrument) -> float:
        if order.order_type != "TRAIL":
            assert order.aux_price is not None
            return order.aux_price
        if order.trailing_percent is not None:
            amount = inst.last * order.trailing_percent / 100
        else:
            assert order.aux_price is not None
            amount = order.aux_price
        raw = inst.last + order.sign * amount
        candidate = round_to_tick(raw, inst.increment(raw))
        current = order.trail_stop_price
        if current is None:
            order.trail_stop_price = candidate
        elif order.action == "SELL":
            order.trail_stop_price = max(current, candidate)
        else:
            order.trail_stop_price = min(current, candidate)
        return order.trail_stop_price

    def _fill(self, order: SimOrder, price: float) -> list[Event]:
        inst = self.instruments[order.symbol]
        chunk = self.state.matching.fill_chunk
        qty = order.remaining
        if chunk:
            qty = min(qty, max(inst.lot_size, chunk - chunk % inst.lot_size))
        account = self.accounts[order.account]
        commission = account.commission(order, qty, price)
        realized = account.book_fill(order, qty, price, commission)
        order.filled_value += qty * price
        order.filled += qty
        order.avg_fill_price = round(order.filled_value / order.filled, 8)
        order.last_fill_price = price
        order.commission += commission
        self._exec_seq += 1
        execution = Execution(
            exec_id=f"{order.perm_id:08x}.{self._exec_seq:08x}.01.01",
            order_id=order.order_id,
            client_id=order.client_id,
            perm_id=order.perm_id,
            account=order.account,
            symbol=order.symbol,
            side="BOT" if order.action == "BUY" else "SLD",
            shares=qty,
            price=price,
            time=self.clock(),
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            order_ref=order.order_ref,
            commission=commission,
            realized_pnl=realized,
        )
        self.executions.append(execution)
        if order.remaining <= 0:
            self._finish(order, "Filled")
        events: list[Event] = [OrderFilled(_copy(order), execution)]
        events += self._reduce_oca(order, qty)
        return events

    def _reduce_oca(self, filled: SimOrder, qty: float) -> list[Event]:
        events: list[Event] = []
        for other in self.orders.values():
            if other is filled or other.done or other.client_id != filled.client_id:
                continue
            explicit = bool(filled.oca_group) and other.oca_group == filled.oca_group
            siblings = bool(filled.parent_id) and other.parent_id == filled.parent_id
            if not (explicit or siblings):
                continue
            if explicit and filled.oca_type == 1:
                events += self._cancel(other, f"OCA group {filled.oca_group} filled")
                continue
            other.quantity = max(other.filled, other.quantity - qty)
            if other.remaining <= 0:
                events += self._cancel(other, "OCA sibling filled")
            elif other.transmitted:
                events.append(OrderChanged(_copy(other)))
        return events

    def _release_children(self, parent: SimOrder, events: list[Event]) -> list[SimOrder]:
        """After a fill of ``parent``: resize and activate its children as
        ``brackets.children_on_partial_fill`` says; returns those newly active."""
        if not self._activates_children(parent):
            return []
        children = sorted(
            (c for c in self._children(parent) if c.transmitted and not c.done),
            key=lambda o: o.order_id,
        )
        if self.state.brackets.children_on_partial_fill == "activate_filled":
            events += self._cover_parent_fills(parent, children)
        released = [child for child in children if child.status == "PreSubmitted"]
        events += self._activate(released)
        return released

    def _cover_parent_fills(self, parent: SimOrder, children: list[SimOrder]) -> list[Event]:
        """Size each live child to what the parent filled and no sibling has closed yet (the
        NautilusTrader report in docs/sim.md: openOrder totalQuantity follows the fills)."""
        exited = sum(child.filled for child in self._children(parent))
        open_quantity = parent.filled - exited
        events: list[Event] = []
        if open_quantity <= 0:
            return events
        for child in children:
            wanted = child.filled + open_quantity
            if child.quantity != wanted:
                child.quantity = wanted
                if child.status != "PreSubmitted":
                    events.append(OrderChanged(_copy(child)))
        return events

    @staticmethod
    def _activate(children: list[SimOrder]) -> list[Event]:
        events: list[Event] = []
        for child in children:
            if child.status == "PreSubmitted":
                child.status = "Submitted"
                events.append(OrderChanged(_copy(child)))
        return events


def _describes(contract: ContractFields, inst: Instrument) -> bool:
    """Whether the fields the client set (secType, exchange, primary exchange, currency,
    symbol) agree with the listing; unset fields match anything."""
    exchange = contract.exchange
    if exchange and exchange not in inst.venues:
        us_stock = inst.sec_type == "STK" and inst.currency == "USD"
        if not (us_stock and exchange in US_VENUES):
            return False
    return (
        contract.sec_type in ("", inst.sec_type)
        and contract.currency in ("", inst.currency)
        and contract.primary_exchange in ("", inst.exchange)
        and contract.symbol in ("", inst.ib_symbol)
    )


def _copy(order: SimOrder) -> SimOrder:
    return dataclasses.replace(order)
