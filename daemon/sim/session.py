"""One client connection: handshake, pacing, wire log and request handling."""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tradectl.sim import history
from tradectl.sim import messages as m
from tradectl.sim.account import Account
from tradectl.sim.engine import NO_SECURITY_DEFINITION, OrderRejected
from tradectl.sim.hours import IB_TIME_ZONE_ID, Phase
from tradectl.sim.model import Event, Execution, Instrument, SimOrder
from tradectl.sim.protocol import (
    API_PREFIX,
    MIN_CLIENT_VERSION,
    REQUEST_NAMES,
    SERVER_VERSION,
    ContractFields,
    Field,
    FrameReader,
    OrderRequest,
    Out,
    decode_place_order,
    decode_request,
    encode_message,
    frame,
    parse_client_versions,
    split_fields,
)
from tradectl.sim.summary import account_value_rows, summary_rows

if TYPE_CHECKING:
    from tradectl.sim.server import SimGateway

log = logging.getLogger(__name__)

ORDER_MESSAGES = frozenset({"placeOrder", "cancelOrder", "reqGlobalCancel"})
# Delayed market data uses its own tick ids (bid, ask, last, close, last-trade time).
DELAYED_TICKS = {
    m.TICK_BID: 66,
    m.TICK_ASK: 67,
    m.TICK_LAST: 68,
    m.TICK_CLOSE: 75,
    m.TICK_LAST_TIMESTAMP: 88,
}
# IB re-sends changed account summary values every three minutes.
ACCOUNT_SUMMARY_REFRESH_SECONDS = 180.0
NOT_SUBSCRIBED = "Requested market data is not subscribed."
DELAYED_AVAILABLE = "Requested market data is not subscribed. Delayed market data is available."
DELAYED_SHOWN = "Requested market data is not subscribed. Displaying delayed market data."
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


@dataclass
class Subscriptions:
    market_data: dict[int, str] = field(default_factory=dict)  # reqId -> symbol
    market_data_type: int = 1
    account_updates: bool = False
    account_code: str = ""  # the account reqAccountUpdates follows
    positions: bool = False
    auto_bind: bool = False
    pnl: dict[int, str] = field(default_factory=dict)  # reqId -> account
    pnl_single: dict[int, tuple[str, str]] = field(default_factory=dict)  # -> account, symbol
    account_summary: dict[int, SummarySubscription] = field(default_factory=dict)


@dataclass
class SummarySubscription:
    tags: str
    sent: dict[tuple[str, str, str], str]  # (account, tag, currency) -> the value sent
    sent_at: float  # sim time of the last periodic refresh


class Session:
    def __init__(
        self, gateway: SimGateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.gateway = gateway
        self.engine = gateway.engine
        self.reader = reader
        self.writer = writer
        self.client_id: int | None = None
        self.subs = Subscriptions()
        self._accepted_times: deque[float] = deque()
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()

    # -- output -------------------------------------------------------------------

    def send(self, fields: list[Field]) -> None:
        if self.gateway.faults.swallows(fields[0]):
            log.info("client %s: message %s dropped (drop_next fault)", self.client_id, fields[0])
            return
        if not self.writer.is_closing():
            self.writer.write(encode_message(fields))

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are, malformed or not (SimControl.send_malformed)."""
        if not self.writer.is_closing():
            self.writer.write(data)

    def send_error(self, req_id: int, code: int, message: str) -> None:
        self.send(m.error(req_id, code, message))

    def close(self) -> None:
        self.writer.close()

    # -- connection lifecycle -----------------------------------------------------

    async def run(self) -> None:
        worker = asyncio.create_task(self._work())
        try:
            await self._handshake()
            await self._read_loop()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            log.debug("client %s: connection ended: %s", self.client_id, exc)
        finally:
            # Messages that reached the gateway are processed even though their
            # sender is gone, as at IB: an order sent just before a crash exists.
            self._queue.put_nowait(None)
            await worker
            self.gateway.unregister(self)
            self.writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self.writer.wait_closed()

    async def _handshake(self) -> None:
        prefix = await self.reader.readexactly(len(API_PREFIX))
        if prefix != API_PREFIX:
            raise ValueError(f"bad API prefix {prefix!r}")
        size = int.from_bytes(await self.reader.readexactly(4), "big")
        low, high = parse_client_versions(await self.reader.readexactly(size))
        if not low <= SERVER_VERSION <= high or high < MIN_CLIENT_VERSION:
            raise ValueError(f"client versions {low}..{high} exclude {SERVER_VERSION}")
        reply = f"{SERVER_VERSION}\0{m.ib_time(self.engine.clock())}\0".encode()
        self.writer.write(frame(reply))

    async def _read_loop(self) -> None:
        frames = FrameReader()
        while True:
            data = await self.reader.read(65536)
            if not data:
                return
            for payload in frames.feed(data):
                fields = split_fields(payload)
                if fields:
                    self._receive(fields)

    def _receive(self, fields: list[str]) -> None:
        try:
            name, decoded = decode_request(fields)
            if name == "placeOrder":
                decoded = {"order": decode_place_order(fields)}
        except (ValueError, IndexError) as exc:
            msg_id = int(fields[0])
            name = REQUEST_NAMES.get(msg_id, f"msg{msg_id}")
            self._log(name, {"error": str(exc), "raw": fields[1:]})
            if name == "placeOrder" and len(fields) > 1 and fields[1].isdigit():
                self.send_error(int(fields[1]), 201, f"Order rejected - reason:{exc}")
            else:
                self.send_error(-1, 320, f"Error reading request {name}: {exc}")
            return
        if name == "startApi":
            self._log(name, decoded, client_id=decoded["clientId"])
            self._start_api(decoded["clientId"])
            return
        if self.client_id is None:
            self._log(name, decoded)
            return
        if self.gateway.faults.paces_out(name) or not self._within_pacing():
            self._log(name, decoded, dropped=True)
            limit = self.engine.state.limits.max_messages_per_second
            text = f"Max rate of messages per second has been exceeded:max={limit} rec={limit + 1}"
            self.send_error(-1, 100, text)
            return
        self._log(name, decoded)
        self._queue.put_nowait((name, decoded))

    def _log(
        self,
        name: str,
        decoded: dict[str, Any],
        *,
        client_id: int | None = None,
        dropped: bool = False,
    ) -> None:
        wire_log = self.gateway.wire_log
        if wire_log is None:
            return
        fields = decoded
        if name == "placeOrder" and "order" in decoded:
            fields = decoded["order"].log_fields()
        cid = self.client_id if client_id is None else client_id
        now = self.engine.clock()
        wire_log.write(
            cid,
            name,
            fields,
            dropped=dropped,
            sim_time=now,
            market=self.engine.hours.phase(now).value,
        )

    def _within_pacing(self) -> bool:
        limit = self.engine.state.limits.max_messages_per_second
        if not limit:
            return True
        now = asyncio.get_running_loop().time()
        times = self._accepted_times
        while times and now - times[0] >= 1.0:
            times.popleft()
        if len(times) >= limit:
            return False
        times.append(now)
        return True

    def _start_api(self, client_id: int) -> None:
        if self.client_id is not None:
            return
        if not self.gateway.register(self, client_id):
            self.send_error(
                -1,
                326,
                "Unable to connect as the client id is already in use. "
                "Retry with a unique client id.",
            )
            self.close()
            return
        self.client_id = client_id
        self.send([Out.MANAGED_ACCTS, 1, self.managed_accounts()])
        self.send([Out.NEXT_VALID_ID, 1, self.engine.next_valid_id(client_id)])
        for code, text in FARM_NOTICES:
            self.send_error(-1, code, text)

    async def _work(self) -> None:
        while (item := await self._queue.get()) is not None:
            name, decoded = item
            delay = self.gateway.faults.ack_delay_ms
            if delay and name in ORDER_MESSAGES:
                await asyncio.sleep(delay / 1000)
            handler = getattr(self, f"_on_{name}", None)
            if handler is None:
                self._unsupported(name, decoded)
                continue
            try:
                handler(**decoded)
            except Exception:
                log.exception("client %s: %s failed", self.client_id, name)
                self.send_error(-1, 320, f"Error processing request {name}")
            with contextlib.suppress(ConnectionError):
                await self.writer.drain()

    def _unsupported(self, name: str, decoded: dict[str, Any]) -> None:
        req_id = decoded.get("reqId")
        if req_id is None:
            log.debug("client %s: ignoring %s", self.client_id, name)
            return
        # 322 ends the request in both ib_insync and ib_async; ib_async takes 321 for a
        # warning and would wait out its timeout.
        self.send_error(
            req_id,
            322,
            f"Error processing request:-'{name}' : cause - not supported by the simulator",
        )

    # -- helpers --------------------------------------------------------------------

    @property
    def cid(self) -> int:
        assert self.client_id is not None
        return self.client_id

    def _publish(self, events: list[Event]) -> None:
        self.gateway.publish(events)

    def _resolve_or_refuse(self, req_id: int, contract: ContractFields) -> Instrument | None:
        """The one listing the contract names, or None after error 200 (unknown or
        ambiguous)."""
        try:
            return self.engine.find_instrument(contract)
        except OrderRejected as exc:
            self.send_error(req_id, exc.code, exc.message)
            return None

    def send_order(self, order: SimOrder) -> None:
        self.send(m.open_order(order, self.engine.instruments[order.symbol]))
        self.send(m.order_status(order))

    def send_execution(self, req_id: int, ex: Execution) -> None:
        self.send(m.exec_details(req_id, ex, self.engine.instruments[ex.symbol]))

    def managed_accounts(self) -> str:
        return ",".join(self.engine.accounts)

    def send_commission(self, ex: Execution) -> None:
        self.send(m.commission_report(ex, self.engine.instruments[ex.symbol].currency))

    def send_quote(self, req_id: int, symbol: str, *, with_close: bool) -> None:
        inst = self.engine.instruments[symbol]
        delayed = self.subs.market_data_type in (3, 4)
        closed = (
            self.engine.hours.phase(self.engine.clock()) is Phase.CLOSED
            and self.engine.state.market.quotes_when_closed == "unset"
        )
        traded = self.engine.last_trade_time(symbol)
        ticks = m.quote_ticks(req_id, inst, traded, with_close=with_close, bid_ask=not closed)
        for tick in ticks:
            if delayed:
                tick[3] = DELAYED_TICKS[int(tick[3])]  # type: ignore[arg-type]
            self.send(tick)

    def send_halted(self, req_id: int, symbol: str) -> None:
        self.send(m.tick_generic(req_id, m.TICK_HALTED, self.engine.instruments[symbol].halted))

    @property
    def followed_account(self) -> Account:
        return self.engine.accounts.get(self.subs.account_code, self.engine.account)

    def send_account_values(self) -> None:
        account = self.followed_account
        acct, ccy = account.id, account.currency
        for key, value, currency in account_value_rows(account):
            self.send([Out.ACCT_VALUE, 2, key, value, currency, acct])
        self.send([Out.ACCT_VALUE, 2, "AccountCode", acct, "", acct])
        self.send([Out.ACCT_VALUE, 2, "AccountType", "INDIVIDUAL", "", acct])
        self.send([Out.ACCT_VALUE, 2, "Currency", ccy, ccy, acct])
        self.send(
            [Out.ACCT_UPDATE_TIME, 1, time.strftime("%H:%M", time.gmtime(self.engine.clock()))]
        )

    def send_pnl(self) -> None:
        for req_id, account_id in sorted(self.subs.pnl.items()):
            account = self.engine.accounts[account_id]
            unrealized = account.total_unrealized_pnl()
            realized = account.total_realized_pnl()
            self.send([Out.PNL, req_id, account.daily_pnl(), unrealized, realized])
        if self.subs.pnl_single:
            fills_today = self.engine.executions_today()
            for req_id, (account_id, symbol) in sorted(self.subs.pnl_single.items()):
                self.send_pnl_single(req_id, account_id, symbol, fills_today)

    def send_pnl_single(
        self, req_id: int, account_id: str, symbol: str, fills_today: list[Execution]
    ) -> None:
        account = self.engine.accounts[account_id]
        pos = account.positions.get(symbol)
        quantity = pos.quantity if pos else 0.0
        self.send(
            [
                Out.PNL_SINGLE,
                req_id,
                quantity,
                account.position_daily_pnl(symbol, fills_today),
                account.unrealized_pnl(symbol),
                pos.realized_pnl if pos else 0.0,
                account.market_value(symbol),
            ]
        )

    def send_account_summary(self, req_id: int, *, changed_only: bool) -> None:
        """The subscription's rows, account by account ("All" is every account of the
        login): all of them, or those whose value changed since sent."""
        sub = self.subs.account_summary[req_id]
        for account in self.engine.accounts.values():
            acct = account.id
            for tag, value, currency in summary_rows(account, sub.tags):
                if changed_only and sub.sent.get((acct, tag, currency)) == value:
                    continue
                sub.sent[(acct, tag, currency)] = value
                self.send([Out.ACCOUNT_SUMMARY, 1, req_id, acct, tag, value, currency])

    def refresh_account_summaries(self, *, periodic: bool) -> None:
        """Re-send changed summary values: at once after a control op, or when IB's three
        minute refresh is due on the sim clock (``periodic``)."""
        now = self.engine.clock()
        for req_id, sub in self.subs.account_summary.items():
            if periodic:
                if now - sub.sent_at < ACCOUNT_SUMMARY_REFRESH_SECONDS:
                    continue
                sub.sent_at = now
            self.send_account_summary(req_id, changed_only=True)

    def send_portfolio(self, symbol: str) -> None:
        account = self.followed_account
        pos = account.positions.get(symbol)
        if pos is None:
            return
        self.send(
            m.portfolio(
                self.engine.instruments[symbol],
                pos.quantity,
                pos.avg_cost,
                account.unrealized_pnl(symbol),
                pos.realized_pnl,
                account.id,
            )
        )

    def send_position(self, symbol: str) -> None:
        """The position of every account holding ``symbol`` (reqPositions covers them all)."""
        inst = self.engine.instruments[symbol]
        for account in self.engine.accounts.values():
            pos = account.positions.get(symbol)
            if pos is not None:
                self.send(m.position(account.id, inst, pos.quantity, pos.avg_cost))

    # -- request handlers (named _on_<message name>) -------------------------------

    def _on_reqIds(self, numIds: int) -> None:
        self.send([Out.NEXT_VALID_ID, 1, self.engine.next_valid_id(self.cid)])

    def _on_reqManagedAccts(self) -> None:
        self.send([Out.MANAGED_ACCTS, 1, self.managed_accounts()])

    def _on_reqCurrentTime(self) -> None:
        self.send([Out.CURRENT_TIME, 1, int(self.engine.clock())])

    def _on_reqMarketDataType(self, marketDataType: int) -> None:
        self.subs.market_data_type = marketDataType

    def _on_reqContractDetails(self, reqId: int, contract: ContractFields) -> None:
        """Every listing the contract describes, as IB answers an ambiguous request."""
        found = self.engine.find_instruments(contract)
        if not found:
            self.send_error(reqId, 200, NO_SECURITY_DEFINITION)
            return
        mode = self.engine.state.market.hours
        if mode == "always_open":
            hours = self.engine.hours.hours(self.engine.clock())
        else:
            hours = m.trading_hours(self.engine.clock(), mode)
        for inst in found:
            self.send(m.contract_details(reqId, inst, hours, IB_TIME_ZONE_ID))
        self.send([Out.CONTRACT_DATA_END, 1, reqId])

    def _on_reqMarketRule(self, marketRuleId: int) -> None:
        """The price bands of a market rule; IB answers nothing for an unknown id."""
        bands = self.engine.state.market_rules.get(marketRuleId)
        if bands is None:
            return
        fields: list[Field] = [Out.MARKET_RULE, marketRuleId, len(bands)]
        for band in bands:
            fields += [band.low_edge, band.increment]
        self.send(fields)

    def _on_reqMktData(
        self,
        reqId: int,
        contract: ContractFields,
        genericTickList: str,
        snapshot: bool,
        regulatorySnapshot: bool,
    ) -> None:
        inst = self._resolve_or_refuse(reqId, contract)
        if inst is None:
            return
        permission = self.engine.state.symbols[inst.symbol].market_data
        wants_delayed = self.subs.market_data_type in (3, 4)
        if permission == "none" or (permission == "delayed" and not wants_delayed):
            text = NOT_SUBSCRIBED if permission == "none" else DELAYED_AVAILABLE
            self.send_error(reqId, 354, text)
            return
        if not snapshot:
            limit = self.engine.state.limits.max_market_data_lines
            if limit and self.gateway.market_data_lines() >= limit:
                self.send_error(
                    reqId,
                    101,
                    f"Max number of tickers has been reached (max {limit} market data lines)",
                )
                return
            self.subs.market_data[reqId] = inst.symbol
        self.send([Out.TICK_REQ_PARAMS, reqId, inst.min_tick, "9c0001", 3])
        if permission == "delayed":
            self.send_error(reqId, 10167, DELAYED_SHOWN)
        self.send([Out.MARKET_DATA_TYPE, 1, reqId, self.subs.market_data_type])
        self.send_quote(reqId, inst.symbol, with_close=True)
        self.send_halted(reqId, inst.symbol)
        if snapshot:
            self.send([Out.TICK_SNAPSHOT_END, 1, reqId])

    def _on_cancelMktData(self, reqId: int) -> None:
        self.subs.market_data.pop(reqId, None)

    def _on_reqPositions(self) -> None:
        self.subs.positions = True
        for account in self.engine.accounts.values():
            for symbol, pos in account.positions.items():
                if pos.quantity:
                    inst = self.engine.instruments[symbol]
                    self.send(m.position(account.id, inst, pos.quantity, pos.avg_cost))
        self.send([Out.POSITION_END, 1])

    def _on_cancelPositions(self) -> None:
        self.subs.positions = False

    def _on_reqAccountUpdates(self, subscribe: bool, acctCode: str) -> None:
        self.subs.account_updates = subscribe
        if not subscribe:
            return
        # an unknown or empty code follows the first account
        self.subs.account_code = acctCode if acctCode in self.engine.accounts else ""
        self.send_account_values()
        account = self.followed_account
        for symbol, pos in account.positions.items():
            if pos.quantity:
                self.send_portfolio(symbol)
        self.send([Out.ACCT_DOWNLOAD_END, 1, account.id])

    def _on_reqAccountUpdatesMulti(self, reqId: int, account: str, modelCode: str) -> None:
        followed = self.engine.accounts.get(account, self.engine.account)
        for key, value, currency in account_value_rows(followed):
            self.send(
                [
                    Out.ACCOUNT_UPDATE_MULTI,
                    1,
                    reqId,
                    followed.id,
                    modelCode,
                    key,
                    value,
                    currency,
                ]
            )
        self.send([Out.ACCOUNT_UPDATE_MULTI_END, 1, reqId])

    def _on_cancelAccountUpdatesMulti(self, reqId: int) -> None:
        """Updates are not streamed after the first download, so nothing to stop."""

    def _on_reqAccountSummary(self, reqId: int, group: str, tags: str) -> None:
        """All rows, the end marker, then changed rows as a subscription until cancelled."""
        self.subs.account_summary[reqId] = SummarySubscription(tags, {}, self.engine.clock())
        self.send_account_summary(reqId, changed_only=False)
        self.send([Out.ACCOUNT_SUMMARY_END, 1, reqId])

    def _on_cancelAccountSummary(self, reqId: int) -> None:
        self.subs.account_summary.pop(reqId, None)

    def _on_reqPnL(self, reqId: int, account: str, modelCode: str) -> None:
        """Account P&L: sent at once and again whenever the account changes (IB sends it about
        once a second)."""
        if account not in self.engine.accounts:
            self.send_error(reqId, 321, f"Error validating request:-'reqPnL' : account {account}")
            return
        self.subs.pnl[reqId] = account
        self.send_pnl()

    def _on_cancelPnL(self, reqId: int) -> None:
        self.subs.pnl.pop(reqId, None)

    def _on_reqPnLSingle(self, reqId: int, account: str, modelCode: str, conId: int) -> None:
        """One position's P&L: sent at once and again whenever the account changes."""
        if account not in self.engine.accounts:
            self.send_error(
                reqId, 321, f"Error validating request:-'reqPnLSingle' : account {account}"
            )
            return
        inst = self._resolve_or_refuse(reqId, ContractFields(con_id=conId))
        if inst is None:
            return
        self.subs.pnl_single[reqId] = (account, inst.symbol)
        self.send_pnl_single(reqId, account, inst.symbol, self.engine.executions_today())

    def _on_cancelPnLSingle(self, reqId: int) -> None:
        self.subs.pnl_single.pop(reqId, None)

    def _on_reqHistoricalData(
        self,
        reqId: int,
        contract: ContractFields,
        endDateTime: str,
        barSizeSetting: str,
        durationStr: str,
        useRTH: bool,
        whatToShow: str,
        formatDate: int,
        keepUpToDate: bool,
    ) -> None:
        inst = self._resolve_or_refuse(reqId, contract)
        if inst is None:
            return
        now = self.engine.clock()
        try:
            if keepUpToDate:
                raise history.HistoryRefused(
                    f"{history.HMDS}keepUpToDate is not simulated: request without it"
                )
            request = history.BarRequest(
                symbol=inst.symbol,
                end=history.parse_end(endDateTime, now),
                duration=durationStr,
                bar_size=barSizeSetting,
                what_to_show=whatToShow.upper(),
                use_rth=useRTH,
                format_date=formatDate,
            )
            start, found = history.bars(
                request, self._price_path(inst, now), self.engine.hours, inst.min_tick
            )
        except history.HistoryRefused as exc:
            self.send_error(reqId, 162, str(exc))
            return
        fields: list[Field] = [
            Out.HISTORICAL_DATA,
            reqId,
            history.format_bar_time(start, 1),
            history.format_bar_time(request.end, 1),
            len(found),
        ]
        for bar in found:
            fields += [
                bar.date,
                bar.open,
                bar.high,
                bar.low,
                bar.close,
                bar.volume,
                bar.average,
                bar.bar_count,
            ]
        self.send(fields)

    def _on_cancelHistoricalData(self, reqId: int) -> None:
        """Bars are sent in one message; there is nothing left to stop."""

    def _on_reqHeadTimeStamp(
        self, reqId: int, contract: ContractFields, useRTH: bool, whatToShow: str, formatDate: int
    ) -> None:
        if self._resolve_or_refuse(reqId, contract) is None:
            return
        head = history.head_timestamp(self.engine.hours, use_rth=useRTH)
        self.send([Out.HEAD_TIMESTAMP, reqId, history.format_head_timestamp(head, formatDate)])

    def _on_cancelHeadTimeStamp(self, reqId: int) -> None:
        """The head timestamp is a single answer; there is nothing left to stop."""

    def _price_path(self, inst: Instrument, now: float) -> history.PricePath:
        seed = self.engine.state.market.seed
        return history.PricePath(seed, inst.symbol, inst.last, now, inst.min_tick)

    def _on_reqOpenOrders(self) -> None:
        for order in self.engine.orders_of(self.cid):
            if not order.done:
                self.send_order(order)
        self.send([Out.OPEN_ORDER_END, 1])

    def _on_reqAllOpenOrders(self) -> None:
        for order in self.engine.orders_of():
            if not order.done:
                self.send_order(order)
        self.send([Out.OPEN_ORDER_END, 1])

    def _on_reqAutoOpenOrders(self, autoBind: bool) -> None:
        if self.cid != 0:
            self.send_error(
                -1, 321, "Error validating request:-'bU' : cause - reqAutoOpenOrders needs client 0"
            )
            return
        self.subs.auto_bind = autoBind

    def _on_reqCompletedOrders(self, apiOnly: bool) -> None:
        done = sorted(self.engine.completed_today(), key=lambda o: o.completed_at)
        for order in done:
            parent = self.engine.orders.get((order.client_id, order.parent_id))
            parent_perm = parent.perm_id if parent else 0
            inst = self.engine.instruments[order.symbol]
            self.send(m.completed_order(order, inst, parent_perm))
        self.send([Out.COMPLETED_ORDERS_END])

    def _on_reqExecutions(
        self,
        reqId: int,
        clientId: int,
        acctCode: str,
        time: str,
        symbol: str,
        secType: str,
        exchange: str,
        side: str,
    ) -> None:
        since = _parse_filter_time(time)
        for ex in self.engine.executions_today():
            if clientId and ex.client_id != clientId:
                continue
            if acctCode and ex.account != acctCode:
                continue
            inst = self.engine.instruments[ex.symbol]
            if symbol and inst.ib_symbol != symbol:
                continue
            if secType and secType != inst.sec_type:
                continue
            if side and {"BUY": "BOT", "SELL": "SLD"}.get(side, side) != ex.side:
                continue
            if since is not None and ex.time < since:
                continue
            self.send_execution(reqId, ex)
            self.send_commission(ex)
        self.send([Out.EXECUTION_DATA_END, 1, reqId])

    def _on_placeOrder(self, order: Any) -> None:
        if order.what_if:
            self._what_if(order)
            return
        self._publish(self.engine.place(self.cid, order))

    def _what_if(self, request: OrderRequest) -> None:
        """IB answers a whatIf order with one openOrder carrying the estimate in its OrderState;
        no orderStatus, nothing placed (docs/sim.md#what-if-orders)."""
        try:
            order, estimate = self.engine.what_if(self.cid, request)
        except OrderRejected as exc:
            self.send_error(request.order_id, exc.code, exc.message)
            return
        self.send(m.open_order(order, self.engine.instruments[order.symbol], estimate))

    def _on_cancelOrder(self, orderId: int) -> None:
        self._publish(self.engine.cancel(self.cid, orderId))

    def _on_reqGlobalCancel(self) -> None:
        self._publish(self.engine.global_cancel())


def _parse_filter_time(text: str) -> float | None:
    """ExecutionFilter.time: 'yyyymmdd hh:mm:ss' (UTC unless a zone follows) or '-' form."""
    text = text.strip().replace("-", " ")
    if not text:
        return None
    parts = text.split()
    try:
        parsed = time.strptime(" ".join(parts[:2]), "%Y%m%d %H:%M:%S")
    except ValueError:
        return None
    return float(calendar.timegm(parsed))
