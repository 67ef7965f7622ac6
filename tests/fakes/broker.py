"""An in-memory ``Broker`` (tradectl.runtime.broker) for tests of the pass logic.

It lives with the tests, not in the product: nothing in tradectl needs it, and the simulator
(tradectl.sim) stays the proof that the IB adapter speaks the real protocol. Like httpx's
MockTransport it is injected where the real one would be (``reconcile_pass``'s broker, or
``IbBrokerSession(open_broker=...)``) and is deterministic: a message is "written" the moment
it is submitted, orders rest until the test fills them, and no time passes unless a test says
so. It only translates, as a broker must: it never writes the journal.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta

from tradectl.broker_types import (
    BrokerState,
    BrokerUpdate,
    Disconnected,
    ExecutionUpdate,
    OrderStatusUpdate,
    Priority,
    UpdateListener,
)
from tradectl.journal import BrokerRecord, CachedContract, JournaledIntent, RecordedExecution
from tradectl.market_clock import NO_REUSE, MarketClock
from tradectl.planner.domain import ContractFacts, Intent, Position, Quote, WorkingOrder
from tradectl.planner.market_time import MarketHours, market_hours
from tradectl.timezones import TRADING_TIME_ZONE

ACCOUNT = "DU0000001"


@dataclass
class FakeMarket:
    """The broker's side, shared by every connection a test opens: the account, orders,
    executions and prices, and every order message that reached it (``wire``)."""

    prices: dict[str, float]
    cash: float = 100_000.0
    positions: dict[str, float] = field(default_factory=dict)
    orders: dict[int, WorkingOrder] = field(default_factory=dict)
    executions: list[RecordedExecution] = field(default_factory=list)
    daily_pnl: float | None = 0.0
    wire: list[tuple[str, int, str | None]] = field(default_factory=list)
    # Today at 15:00 UTC: within New York's regular session, far from any default blackout.
    clock: Callable[[], datetime] = lambda: datetime.combine(
        datetime.now(UTC).date(), time(15), tzinfo=UTC
    )

    @property
    def net_liquidation(self) -> float:
        held = sum(quantity * self.prices[symbol] for symbol, quantity in self.positions.items())
        return self.cash + held

    def messages(self, action: str) -> list[tuple[str, int, str | None]]:
        return [message for message in self.wire if message[0] == action]

    def working(self, order_ref_part: str) -> WorkingOrder:
        (order,) = [o for o in self.orders.values() if order_ref_part in (o.order_ref or "")]
        return order


class FakeBroker:
    """One connection to a ``FakeMarket`` (see the module docstring)."""

    _sessions = itertools.count(1)
    _exec_ids = itertools.count(1)

    def __init__(self, market: FakeMarket, *, client_id: int = 1) -> None:
        self.market = market
        self.client_id = client_id
        self.session = f"fake-{next(self._sessions)}"
        self.readonly = False
        self.connected = True
        self.link_up = True
        self.pacing_violations = 0
        self.messages_sent = 0
        self.pacer_waiting = 0
        self.market_clock = MarketClock()
        # Every answer is read afresh from the market: nothing is streamed, nothing in doubt.
        self.last_records_fresh = True
        self.dropped_before: datetime | None = None
        self.full_reads = 0
        self.state_mismatches = 0
        self.suspicions: list[str] = []
        self._listeners: list[UpdateListener] = []
        self._next_id = 1

    @property
    def can_send(self) -> bool:
        return self.connected and self.link_up

    def sync_clock(self) -> None:
        """The fake market's clock is the host's: nothing to measure."""

    def market_now(self, host_now: datetime, *, reuse_within: timedelta = NO_REUSE) -> datetime:
        return host_now

    def listen(self, listener: UpdateListener) -> None:
        self._listeners.append(listener)

    def run_for(self, seconds: float) -> None:
        """Nothing waits in this broker: every message is written when submitted."""

    def disconnect(self) -> None:
        if self.connected:
            self.connected = False
            self._emit(Disconnected())

    def _emit(self, update: BrokerUpdate) -> None:
        for listener in self._listeners:
            listener(update)

    def _require_connection(self) -> None:
        if not self.connected:
            raise ConnectionError("the fake broker is disconnected")

    # --- observe -----------------------------------------------------------------------------

    def broker_records(self, day_start: datetime) -> list[BrokerRecord]:
        self._require_connection()
        records = [
            BrokerRecord(
                source="open",
                order_ref=order.order_ref,
                order_id=order.order_id,
                client_id=order.client_id,
                perm_id=order.perm_id,
                status=order.status,
                filled=order.filled,
                quantity=order.total_quantity,
            )
            for order in self.market.orders.values()
        ]
        records += [
            BrokerRecord(
                source="execution",
                order_ref=ex.order_ref,
                order_id=ex.order_id,
                client_id=ex.client_id,
                perm_id=ex.perm_id,
                filled=ex.shares,
            )
            for ex in self.market.executions
        ]
        return records

    def suspect(self, reason: str) -> None:
        self.suspicions.append(reason)

    def working_orders(self) -> tuple[WorkingOrder, ...]:
        self._require_connection()
        return tuple(self.market.orders.values())

    def observe(self, symbols: Sequence[str], day_start: datetime) -> BrokerState:
        self._require_connection()
        market = self.market
        wanted = sorted({*symbols, *market.positions})
        contracts = {symbol: _contract(symbol) for symbol in wanted}
        now = market.clock()
        return BrokerState(
            account_id=ACCOUNT,
            net_liquidation=market.net_liquidation,
            cash=market.cash,
            buying_power=market.cash,
            positions={
                symbol: Position(symbol, quantity)
                for symbol, quantity in market.positions.items()
                if quantity
            },
            working_orders=tuple(market.orders.values()),
            executions=tuple(ex for ex in market.executions if ex.time >= day_start),
            quotes={symbol: Quote(symbol, market.prices[symbol], now) for symbol in wanted},
            contracts={
                symbol: ContractFacts(symbol, cached.con_id) for symbol, cached in contracts.items()
            },
            qualified=contracts,
            daily_pnl=market.daily_pnl,
            market_hours={symbol: _always_open(now) for symbol in wanted},
        )

    # --- act ---------------------------------------------------------------------------------

    def check_group(
        self,
        group: Sequence[Intent],
        contracts: Mapping[str, CachedContract],
        working: Mapping[int, WorkingOrder],
        parent_ids: Mapping[str, int],
    ) -> str | None:
        for intent in group:
            if intent.action != "place" and (intent.order_id or 0) not in working:
                return f"{intent.key}: order {intent.order_id} is not working any more"
        return None

    def next_order_id(self) -> int:
        return self._next_id

    def reserve_order_ids(self, next_id: int) -> None:
        self._next_id = max(self._next_id, next_id)

    def submit(
        self,
        journaled: Sequence[JournaledIntent],
        group: Sequence[Intent],
        contracts: Mapping[str, CachedContract],
        working: Mapping[int, WorkingOrder],
        parent_ids: Mapping[str, int],
        priority: Priority,
        *,
        before_write: Callable[[int], None],
        after_write: Callable[[int], None],
    ) -> None:
        self._require_connection()
        ids = dict(parent_ids)
        ids.update(
            (entry.order_ref, entry.order_id)
            for entry in journaled
            if entry.order_ref and entry.order_id and entry.action == "place"
        )
        for entry, intent in zip(journaled, group, strict=True):
            assert entry.order_id is not None
            before_write(entry.id)
            self.market.wire.append((intent.action, entry.order_id, entry.order_ref))
            if intent.action == "cancel":
                self.market.orders.pop(entry.order_id, None)
            else:
                assert intent.order is not None
                spec = intent.order
                existing = self.market.orders.get(entry.order_id)
                self.market.orders[entry.order_id] = WorkingOrder(
                    order_id=entry.order_id,
                    symbol=spec.symbol,
                    action=spec.action,
                    order_type=spec.order_type,
                    total_quantity=float(spec.quantity),
                    filled=existing.filled if existing is not None else 0.0,
                    limit_price=spec.limit_price,
                    aux_price=spec.aux_price,
                    trailing_percent=spec.trailing_percent,
                    tif=spec.tif,
                    order_ref=spec.order_ref,
                    perm_id=entry.order_id + 1000,
                    client_id=self.client_id,
                    parent_id=(
                        existing.parent_id
                        if existing is not None
                        else ids.get(spec.parent_ref or "", 0)
                    ),
                    oca_group=spec.oca_group or "",
                    status="Submitted" if not spec.parent_ref else "PreSubmitted",
                )
            self.messages_sent += 1
            after_write(entry.id)

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """No time passes here: the answers a test makes (``fill``) are already in."""
        return self.connected and done()

    # --- what a test makes happen at the broker ---------------------------------------------------

    def fill(self, order_id: int, shares: float) -> RecordedExecution:
        """Fill ``shares`` of a working order at its limit (or the price), as the broker would
        report it: the position and cash move, an execution and an order status stream out."""
        market = self.market
        order = market.orders[order_id]
        price = order.limit_price or market.prices[order.symbol]
        signed = shares if order.action == "BUY" else -shares
        market.positions[order.symbol] = market.positions.get(order.symbol, 0.0) + signed
        market.cash -= signed * price
        filled = order.filled + shares
        done = filled >= order.total_quantity
        status = "Filled" if done else "Submitted"
        market.orders[order_id] = replace(order, filled=filled, status=status)
        # The children of a filled parent become active.
        for child_id, child in list(market.orders.items()):
            if child.parent_id == order_id and child.status == "PreSubmitted":
                market.orders[child_id] = replace(child, status="Submitted")
        if done:
            del market.orders[order_id]
        execution = RecordedExecution(
            exec_id=f"fake-exec-{next(self._exec_ids)}",
            order_id=order_id,
            client_id=order.client_id,
            perm_id=order.perm_id,
            order_ref=order.order_ref,
            symbol=order.symbol,
            side=order.action,
            shares=shares,
            price=price,
            time=market.clock(),
        )
        market.executions.append(execution)
        self._emit(ExecutionUpdate(execution))
        self._emit(
            OrderStatusUpdate(
                order_id,
                order.client_id,
                order.perm_id,
                status,
                filled,
                order.total_quantity - filled,
            )
        )
        return execution


def _always_open(now: datetime) -> MarketHours:
    """Regular and extended sessions all day, from yesterday to tomorrow (New York)."""
    today = now.astimezone(TRADING_TIME_ZONE).date()
    days = [f"{today + timedelta(days=offset):%Y%m%d}" for offset in (-1, 0, 1)]
    hours = ";".join(f"{day}:0000-{day}:2359" for day in days)
    return market_hours(str(TRADING_TIME_ZONE), hours, hours)


def _contract(symbol: str) -> CachedContract:
    return CachedContract(
        symbol=symbol,
        con_id=sum(map(ord, symbol)),
        exchange="SMART",
        primary_exchange="NASDAQ",
        currency="USD",
        min_tick=0.01,
        lot_size=1,
    )
