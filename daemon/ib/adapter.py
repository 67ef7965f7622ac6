"""The IB adapter: the runtime's ``Broker`` (``tradectl.runtime.broker``) over ib_insync. It
connects, paces, observes, sends, and streams IB's events out as domain updates
(``tradectl.broker_types``); it decides nothing about orders and writes no order state.

This package is the only product code that imports ib_insync. Design choices worth knowing:

* **Every message is paced.** ``Client.sendMsg`` (the one place ib_insync writes a message,
  including its own start-up requests) is replaced by a queue drained through ``tradectl.ib.pacer``;
  ib_insync's own burst throttle is switched off. Cancels and protective orders go first.
* **Orders bypass ib_insync's Trade bookkeeping.** ib_insync marks an order Cancelled on any error
  code it does not know as a warning (10349, for one), which would end a live order. The adapter
  sends through ``Client.placeOrder``/``cancelOrder`` and reads the raw ``openOrder``,
  ``orderStatus``, ``execDetails``, ``commissionReport``, ``completedOrder`` and ``error``
  callbacks and emits each as a domain update. The runtime's tracker
  (``tradectl.runtime.tracking``) turns updates into ``tradectl.journal.lifecycle`` events and
  journals the transitions: what an event means for an intent is decided there, for live
  events and for the resync alike (docs/apply.md, "One order lifecycle").
* **The journal is a cache here, never order state.** Resolved contracts and trading hours are
  kept in the journal's cache so a restart asks IB again only for what changed, and the journal
  is bound to the account on connect (a journal never serves two accounts).
* **Open orders come from reqAllOpenOrders**, not from this client id's reqOpenOrders: owned orders
  placed under another client id in an earlier session (the gateway.client_id was changed, say)
  must still be seen, or the planner would place them again. IB lets only the placing client
  modify or cancel an order, so such orders are reported and left alone (``client_id`` differs).
* **Order ids** are the larger of the connection's next valid id and the journal's high-water
  mark plus one; the runtime reserves them in the same transaction that journals the intent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from ib_insync import Contract, ContractDetails, ExecutionFilter, Order, Ticker
from ib_insync import Execution as IbExecution
from ib_insync.objects import CommissionReport
from ib_insync.order import OrderState
from ib_insync.util import UNSET_DOUBLE

from tradectl.broker_types import (
    AccountCurrencies,
    BrokerState,
    BrokerUpdate,
    CommissionUpdate,
    Disconnected,
    ErrorUpdate,
    ExecutionUpdate,
    LinkUpdate,
    OrderSnapshot,
    OrderStatusUpdate,
    OrderUpdate,
    Priority,
    UpdateListener,
)
from tradectl.errors import PermanentError, TemporaryError
from tradectl.ib import translate
from tradectl.ib.link import REQUEST_TIMEOUT, ClientLink
from tradectl.ib.market_data import QuoteLines
from tradectl.ib.money import (
    MarketRules,
    account_currencies,
    market_rule_id,
    rule_key,
    stored_contract_money,
)
from tradectl.ib.pacer import DEFAULT_BURST, DEFAULT_RATE, SLOW_DOWN_SECONDS
from tradectl.ib_codes import (
    CANCEL_CONFIRMATIONS,
    CANCEL_REFUSALS,
    LINK_LOST,
    LINK_RESTORED_CODES,
    LINK_RESTORED_DATA_LOST,
    PACING_VIOLATION,
    is_informational,
)
from tradectl.journal import (
    BrokerRecord,
    CachedContract,
    Journal,
    JournaledIntent,
    RecordedExecution,
)
from tradectl.journal.lifecycle import (
    order_ended,
)
from tradectl.market_clock import NO_REUSE, MarketClock
from tradectl.planner.domain import ContractFacts, Intent, Position, Quote, WorkingOrder
from tradectl.planner.fx import Pair, pair_named, pair_of, rate_from_pair
from tradectl.planner.instruments import (
    ResolvedInstrument,
    UnresolvedInstrument,
    resolve,
)
from tradectl.planner.market_time import HoursFormatError, MarketHours, market_hours
from tradectl.schemas.models import (
    SHORTHAND_CURRENCY,
    interned_key,
    parse_instrument,
    unlisted_key,
)

log = logging.getLogger(__name__)

# IB's "last timestamp" string tick: seconds since the epoch of the last trade.
LAST_TIMESTAMP_TICK = 45


class AdapterError(RuntimeError):
    """Something the user must fix or retry; the message says what and how."""


class AccountRefused(AdapterError, PermanentError):
    """The gateway does not manage the account, or it is live and the rules do not say so."""


class GatewayUnreachable(AdapterError, TemporaryError):
    """No gateway answered, or it closed the connection during the handshake."""


@dataclass(frozen=True)
class ConnectionSettings:
    host: str
    port: int
    client_id: int
    account: str
    live_allowed: bool
    timeout: float = 10.0
    readonly: bool = False
    pacing_rate: float = DEFAULT_RATE
    pacing_burst: float = DEFAULT_BURST
    market_data_lines: int = 90
    # Streaming quotes (the daemon) or snapshots only (one-shot commands): tradectl.ib.market_data.
    stream_quotes: bool = False
    # A request the gateway never answers (it holds everything between 1100 and 1102) fails
    # the pass after this long instead of blocking the broker thread; the next trigger retries.
    request_timeout: float = REQUEST_TIMEOUT
    # Live state (the daemon): orders, executions and positions are kept from IB's streams and
    # read afresh only on the first pass of a connection, every ``full_refresh_seconds``, on a
    # new trading day and whenever something is in doubt (docs/daemon.md, "Live state").
    # One-shot commands read everything afresh on every pass.
    live_state: bool = False
    full_refresh_seconds: float = 60.0


@dataclass
class _OrderRecord:
    contract: Contract
    order: Order
    status: str
    filled: float
    rejected: bool = False


@dataclass(frozen=True)
class _ResyncedView:
    open_keys: frozenset[tuple[int, int]]
    day_start: datetime
    at: float


@dataclass(frozen=True)
class _FullRead:
    """When the live state was last read afresh in full, and for which trading day."""

    day_start: datetime
    at: float


# observe() right after a resync reuses the open orders and executions the resync just read.
RESYNC_REUSE_SECONDS = 1.0
# The daily-loss breaker's baseline (daemon/planner/breaker.py).
PREVIOUS_DAY_EQUITY = "PreviousDayEquityWithLoanValue"
FIRST_PNL_WAIT_SECONDS = 3.0
# IB reports BuyingPower = AvailableFunds for a cash account and a multiple of it (2x Reg T
# overnight, 4x intraday) for a margin account; a margin account shows clearly more.
MARGIN_BUYING_POWER_RATIO = 1.05


def check_account(account: str, live_allowed: bool, managed: Sequence[str]) -> None:
    """Refuse an account the gateway does not manage, and a live account not marked live."""
    if account not in managed:
        shown = ", ".join(managed) or "none"
        raise AccountRefused(
            f"account {account} is not among the gateway's managed accounts ({shown}): "
            "fix account.id in the rules or log the gateway into that account"
        )
    if not account.startswith("DU") and not live_allowed:
        raise AccountRefused(
            f"account {account} is a live account (paper account ids start with DU): refusing to "
            "trade it; set account.live: true in the rules if you really mean to"
        )


def _order_key(client_id: int, order_id: int, perm_id: int) -> tuple[int, int]:
    # Manual TWS orders may carry order id 0: their permId is the only identity they have.
    return (client_id, order_id) if order_id else (-1, perm_id)


def _finite(value: float | None) -> float | None:
    if value is None or math.isnan(value) or value <= 0 or value == UNSET_DOUBLE:
        return None
    return float(value)


class IbAdapter:
    def __init__(
        self,
        settings: ConnectionSettings,
        journal: Journal | None,
        link: ClientLink | None = None,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.session = uuid.uuid4().hex[:12]
        # Who hears the broker's updates (``listen``).
        self._listeners: list[UpdateListener] = []
        # The connection, paced and tapped: one an early start connected (``tradectl.ib.early``)
        # or a new one, connected by ``connect``.
        self.link = link or ClientLink(
            pacing_rate=settings.pacing_rate,
            pacing_burst=settings.pacing_burst,
            request_timeout=settings.request_timeout,
        )
        self.ib = self.link.ib
        # An early start's link is connected already: the first ``connect`` takes it over.
        self.connected_early = link is not None and link.ib.isConnected()
        self._adopt_connection = self.connected_early
        self._orders: dict[tuple[int, int], _OrderRecord] = {}
        self._collecting_open: set[tuple[int, int]] | None = None
        self._completed: list[_OrderRecord] = []
        self._executions: dict[str, RecordedExecution] = {}
        # The latest time the gateway stamped on an execution this connection heard of: a
        # pass after a fill never plans on an earlier "now" (``market_now``).
        self._latest_execution_time: datetime | None = None
        # The last order action this connection sent for each order: IB's error about an
        # order answers it, and only a refused placement makes the order itself rejected.
        self._last_action: dict[tuple[int, int], str] = {}
        self._resynced: _ResyncedView | None = None
        # Live state (``settings.live_state``): the orders IB reported open at the last full
        # read or since, the last full read, and what has cast doubt on the state since.
        self._open_keys: set[tuple[int, int]] = set()
        self._full_read: _FullRead | None = None
        self._doubts: list[str] = []
        self._foreign_orders: set[tuple[int, int]] = set()
        # Per order: its filled quantity and its executions' shares at the last full read.
        # Fills since then must show in both streams alike, else one of them lost a message.
        self._fill_baseline: dict[tuple[int, int], tuple[float, float]] = {}
        self.full_reads = 0
        self.state_mismatches = 0
        self.last_records_fresh = True
        self.pacing_violations = 0
        # IB's error 100 names no message: when the last one came (on the journal's clock), and
        # the last one a complete read of the broker's records began after (``dropped_before``;
        # the streams keep what that read showed current, so it stays settled).
        self._dropped_at: datetime | None = None
        self.dropped_before: datetime | None = None
        # Trading hours per symbol, with the (host) day they were read: read once a day.
        self._hours: dict[str, tuple[date, MarketHours]] = {}
        # Tick type 45 (last-trade time) by conId; ib_insync does not keep it on the Ticker.
        self._last_trade_times: dict[int, datetime] = {}
        # conId is the identity (docs/planning.md, "Instruments and conId"): the instrument key
        # each contract a rule resolved to has, so positions, orders and executions are matched
        # by conId, never by their symbol.
        self._keys_by_con_id: dict[int, str] = {
            con_id: interned_key(key)
            for con_id, key in (
                journal.contract_keys_by_con_id() if journal is not None else {}
            ).items()
        }
        # The rules' instruments that name no contract or several, by key (plan, validate).
        self.unresolved: dict[str, UnresolvedInstrument] = {}
        self.market_clock = MarketClock()
        self._quote_lines = QuoteLines(
            self.ib, settings.market_data_lines, stream=settings.stream_quotes
        )
        # Price increments (docs/planning.md): each symbol's market rule id and price
        # magnifier, from its contract details; the bands once per rule id.
        self._contract_money: dict[str, tuple[int | None, int]] = {}
        # IDEALPRO pairs by name (EUR.USD), for rates the account values do not carry.
        self._pairs: dict[str, Contract] = {}
        self.market_rules = MarketRules(
            self._fetch_market_rule, self._load_state, self._cache_state
        )
        self.ib.disconnectedEvent += self._on_disconnected
        if link is None:
            # A new link has heard nothing yet: observe from the start.
            self.link.attach(self._observers())

    # --- connection --------------------------------------------------------------------------

    def connect(self, *, verify_account: bool = True) -> None:
        """Connect; unless ``verify_account`` is False (``tradectl doctor``, which reports rather
        than refuses), refuse an account the rules may not trade and bind the journal to it."""
        settings = self.settings
        # A new connection is a new session: what the last one sent and never saw acknowledged
        # is settled by the next resync instead of waiting out the timeout.
        self.session = uuid.uuid4().hex[:12]
        self._dropped_at = self.dropped_before = None
        where = f"{settings.host}:{settings.port} (client id {settings.client_id})"
        if not self.link.attached:
            # The calls heard during an early handshake reach the observers (and the tracker,
            # which listens by now) before anything else.
            self.link.attach(self._observers())
        adopted, self._adopt_connection = self._adopt_connection, False
        try:
            if not adopted:
                self.link.open(
                    settings.host,
                    settings.port,
                    settings.client_id,
                    settings.account,
                    settings.timeout,
                    settings.readonly,
                )
        except (OSError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise GatewayUnreachable(
                f"cannot connect to the IB gateway at {where}: {reason}; check that IB Gateway or "
                "TWS runs with the API enabled on that port and that no other program uses this "
                "client id"
            ) from exc
        if not self.ib.isConnected():
            raise GatewayUnreachable(
                f"the IB gateway at {where} closed the connection during the handshake; "
                "is the client id already in use?"
            )
        self.link.link_up = True
        if not verify_account:
            return
        check_account(settings.account, settings.live_allowed, self.ib.managedAccounts())
        if self.journal is not None:
            self.journal.bind_account(settings.account)
        self.sync_clock()

    def sync_clock(self) -> None:
        """Measure the gateway's clock against the host's (on connect and at the start of every
        pass); a skewed host clock is logged and shown by ``status``."""
        sent_at = datetime.now(UTC)
        gateway_time = self.ib.reqCurrentTime()
        self.market_clock.record(gateway_time.astimezone(UTC), sent_at, datetime.now(UTC))
        if self.market_clock.report_due():
            log.warning("%s", self.market_clock.describe())

    def market_now(self, host_now: datetime, *, reuse_within: timedelta = NO_REUSE) -> datetime:
        """ "Now" for market-time decisions (docs/daemon.md, "Clock"): the gateway's clock,
        measured again for every pass. With ``reuse_within``, the round trip (and the pacer
        token it costs) is skipped when the anchored clock can be trusted: measured at most
        that long ago on the same trading day, and not earlier than the latest execution time
        the gateway stamped (``MarketClock.anchored_now``)."""
        if not self.connected:
            return self.market_clock.now(host_now)
        if reuse_within > NO_REUSE:
            anchored = self.market_clock.anchored_now(reuse_within, self._latest_execution_time)
            if anchored is not None:
                return anchored
        self.sync_clock()
        return self.market_clock.now(host_now)

    def disconnect(self) -> None:
        self.ib.disconnect()

    @property
    def connected(self) -> bool:
        return self.ib.isConnected()

    @property
    def client_id(self) -> int:
        return self.settings.client_id

    def run_for(self, seconds: float) -> None:
        """Let the connection read and write for ``seconds`` (the pacer drains meanwhile)."""
        self.ib.sleep(seconds)

    @property
    def pacer_waiting(self) -> int:
        """Messages held back by the pacer right now."""
        return self.link.pacer.waiting

    @property
    def can_send(self) -> bool:
        """Nothing goes out while disconnected or between IB's 1100 and 1101/1102."""
        return self.connected and self.link.link_up

    def _observers(self) -> dict[str, Callable[..., None]]:
        return {
            "openOrder": self._on_open_order,
            "orderStatus": self._on_order_status,
            "completedOrder": self._on_completed_order,
            "execDetails": self._on_exec_details,
            "commissionReport": self._on_commission,
            "error": self._on_error,
            "tickString": self._on_tick_string,
        }

    @property
    def messages_sent(self) -> int:
        """Every message written to the socket, for the metrics' messages per second."""
        return self.link.messages_sent

    def _on_disconnected(self) -> None:
        dropped = self.link.pacer.clear()
        if dropped:
            log.warning("connection lost with %d messages not yet sent", len(dropped))
        self._emit(Disconnected())

    # --- updates out -------------------------------------------------------------------------

    def listen(self, listener: UpdateListener) -> None:
        """Hand every later update to ``listener``, on the connection's thread, after the
        adapter has handled it."""
        self._listeners.append(listener)

    def _emit(self, update: BrokerUpdate) -> None:
        for listener in self._listeners:
            listener(update)

    # --- broker events -----------------------------------------------------------------------

    def _on_open_order(
        self, order_id: int, contract: Contract, order: Order, state: OrderState
    ) -> None:
        key = _order_key(order.clientId, order_id, order.permId)
        if order.whatIf or not self._this_account(order.account):
            # Its statuses follow without an account: they are not this account's either.
            self._foreign_orders.add(key)
            return
        record = self._orders.get(key)
        filled = record.filled if record is not None else 0.0
        rejected = record.rejected if record is not None else False
        self._orders[key] = _OrderRecord(contract, order, state.status, filled, rejected)
        self._open_keys.add(key)
        if self._collecting_open is not None:
            self._collecting_open.add(key)
        self._emit(OrderUpdate(self._snapshot(key)))

    def _on_order_status(
        self,
        order_id: int,
        status: str,
        filled: float,
        remaining: float,
        avg_fill_price: float,
        perm_id: int,
        parent_id: int,
        last_fill_price: float,
        client_id: int,
        why_held: str,
        mkt_cap_price: float = 0.0,
    ) -> None:
        key = _order_key(client_id, order_id, perm_id)
        record = self._orders.get(key)
        order_ref: str | None = None
        snapshot: OrderSnapshot | None = None
        if record is not None:
            record.status, record.filled = status, filled
            order_ref = record.order.orderRef or None
            snapshot = self._snapshot(key)
        elif key not in self._foreign_orders:
            self.suspect(f"a status ({status}) of order {order_id} that was never reported")
        self._emit(
            OrderStatusUpdate(
                order_id, client_id, perm_id, status, filled, remaining, order_ref, snapshot
            )
        )

    def _on_completed_order(self, contract: Contract, order: Order, state: OrderState) -> None:
        if not self._this_account(order.account):
            return
        self._completed.append(_OrderRecord(contract, order, state.status, order.filledQuantity))

    def _on_exec_details(self, req_id: int, contract: Contract, execution: IbExecution) -> None:
        if not self._this_account(execution.acctNumber):
            return
        recorded = translate.recorded_execution(contract, execution, self.instrument_key(contract))
        self._executions[recorded.exec_id] = recorded
        latest = self._latest_execution_time
        if latest is None or recorded.time > latest:
            self._latest_execution_time = recorded.time
        streamed = req_id == -1
        if streamed and _order_key(recorded.client_id, recorded.order_id, recorded.perm_id) not in (
            self._orders
        ):
            self.suspect(f"execution {recorded.exec_id} of an order never reported")
        executed = sum(
            other.shares
            for other in self._executions.values()
            if other.client_id == recorded.client_id and other.order_id == recorded.order_id
        )
        order = self._orders.get(
            _order_key(recorded.client_id, recorded.order_id, recorded.perm_id)
        )
        quantity = float(order.order.totalQuantity) if order is not None else 0.0
        self._emit(ExecutionUpdate(recorded, executed, quantity))

    def _on_commission(self, report: CommissionReport) -> None:
        pnl = None if report.realizedPNL == UNSET_DOUBLE else report.realizedPNL
        self._emit(CommissionUpdate(report.execId, report.commission, report.currency, pnl))

    def _on_tick_string(self, req_id: int, tick_type: int, value: str) -> None:
        if tick_type != LAST_TIMESTAMP_TICK:
            return
        ticker = self.ib.wrapper.reqId2Ticker.get(req_id)
        try:
            seconds = int(value)
        except ValueError:
            return
        if ticker is not None and ticker.contract is not None:
            self._last_trade_times[ticker.contract.conId] = datetime.fromtimestamp(seconds, UTC)

    def _on_error(self, req_id: int, code: int, text: str, advanced: str = "") -> None:
        informational = is_informational(code)
        # IB's link going down or coming back stops or resumes the pacer's writes in the link
        # (``ClientLink``), before this runs.
        if code == PACING_VIOLATION:
            self._on_message_dropped(text)
        # 10147/10148 answer a cancel of an order that has already ended (a bracket child IB
        # cancelled with its parent): expected, and no rejection of any order.
        already_ended = code in CANCEL_REFUSALS
        rejection = (
            req_id > 0
            and not informational
            and code not in CANCEL_CONFIRMATIONS
            and not already_ended
        )
        client_id = self.settings.client_id
        order = self._orders.get((client_id, req_id)) if req_id > 0 else None
        answers_placement = self._last_action.get((client_id, req_id), "place") == "place"
        if order is not None and rejection and answers_placement:
            # IB follows a rejected order with Inactive: from then on that status ends it. A
            # refused modify or cancel leaves the order as it was.
            order.rejected = True
        if code == LINK_LOST or code in LINK_RESTORED_CODES:
            # Whatever happened while IB's link was down may never have been streamed.
            self.suspect(f"IB's link went down or came back (IB {code})")
            self._emit(LinkUpdate(up=code != LINK_LOST, data_lost=code == LINK_RESTORED_DATA_LOST))
        self._emit(
            ErrorUpdate(req_id, code, text, client_id, informational, rejection, already_ended)
        )

    def _on_message_dropped(self, text: str) -> None:
        """IB dropped one of this connection's messages unprocessed and does not say which:
        every order sent and not yet answered is in doubt. Slow down, and have the next read be
        a full one, which settles them (``dropped_before``) instead of the ack timeout."""
        self.pacing_violations += 1
        self.link.pacer.slow_down()
        self._dropped_at = self.journal.now if self.journal is not None else datetime.now(UTC)
        log.warning(
            "IB dropped a message for pacing (error 100: %s): sending at half the rate for %g s; "
            "orders sent and not yet acknowledged are settled by a full read",
            text,
            SLOW_DOWN_SECONDS,
        )
        self.suspect("IB dropped a message for pacing (error 100)")

    def _this_account(self, account: str) -> bool:
        """Whether an order or execution belongs to this daemon's account. A login may manage
        several accounts (an advisor's, linked ones), and each account's daemon may use the
        same rule names: another account's tctl: orders are never this one's. IB names the
        account on every order and execution; one it leaves unnamed is this login's only one."""
        return not account or account == self.settings.account

    def instrument_key(self, contract: Contract) -> str:
        """The planner's key for an IB contract, by its conId: the key of the rule instrument
        that resolved to it; else, for a US stock no known key claims, its ticker (how journals
        from before conIds name it); else ``SYMBOL~conId``, which no rule can name."""
        known = self._keys_by_con_id.get(contract.conId)
        if known is not None:
            return known
        claimed = contract.symbol in self._keys_by_con_id.values()
        if contract.currency == SHORTHAND_CURRENCY and contract.secType == "STK" and not claimed:
            return interned_key(str(contract.symbol))
        return unlisted_key(contract.symbol, contract.conId)

    def _snapshot(self, key: tuple[int, int]) -> OrderSnapshot:
        record = self._orders[key]
        order = record.order
        return OrderSnapshot(
            client_id=order.clientId,
            order_id=order.orderId,
            perm_id=order.permId,
            order_ref=order.orderRef or None,
            symbol=self.instrument_key(record.contract),
            con_id=record.contract.conId,
            action=order.action,
            order_type=order.orderType,
            quantity=float(order.totalQuantity),
            limit_price=_finite(order.lmtPrice),
            aux_price=_finite(order.auxPrice),
            status=record.status,
            filled=record.filled,
        )

    # --- observing ---------------------------------------------------------------------------

    def suspect(self, reason: str) -> None:
        """Something may be missing from the live state: the next observation reads it afresh."""
        if self.settings.live_state and reason not in self._doubts:
            log.info("live state in doubt: %s", reason)
            self._doubts.append(reason)

    def broker_records(self, day_start: datetime) -> list[BrokerRecord]:
        """Every open and completed order and the day's executions: from the live state when
        it is vouched for (``settings.live_state``), else read afresh."""
        if not self.settings.live_state:
            return self._read_records(day_start)
        reason = self._full_read_reason(day_start)
        if reason is not None:
            return self._refresh(day_start, reason)
        self.last_records_fresh = False
        records = [
            translate.broker_record("open", record.order, record.status, record.filled)
            for key in sorted(self._open_keys)
            for record in (self._orders[key],)
        ]
        records += [
            translate.broker_record("completed", done.order, done.status, done.filled)
            for done in self._completed
        ]
        records += [translate.execution_record(ex) for ex in self._executions.values()]
        return records

    def _full_read_reason(self, day_start: datetime) -> str | None:
        """Why the live state must be read afresh now; None when it is vouched for."""
        full_read = self._full_read
        if full_read is None:
            return "the first read of this connection"
        if full_read.day_start != day_start:
            return "a new trading day"
        if time.monotonic() - full_read.at >= self.settings.full_refresh_seconds:
            return "the periodic full refresh"
        if self._doubts:
            return "; ".join(self._doubts)
        return self._unmatched_fills()

    def _unmatched_fills(self) -> str | None:
        """An order whose fills since the last full read differ between its status and its
        executions: one of the two streams lost a message."""
        executed = self._executed_by_order()
        for key in sorted(self._open_keys):
            filled_then, executed_then = self._fill_baseline.get(key, (0.0, 0.0))
            filled_since = self._orders[key].filled - filled_then
            executed_since = executed.get(key, 0.0) - executed_then
            if not math.isclose(filled_since, executed_since, abs_tol=1e-9):
                return (
                    f"order {key[1]} (client {key[0]}) filled {filled_since:g} more by its "
                    f"status but {executed_since:g} more by its executions"
                )
        return None

    def _executed_by_order(self) -> dict[tuple[int, int], float]:
        executed: dict[tuple[int, int], float] = {}
        for ex in self._executions.values():
            key = _order_key(ex.client_id, ex.order_id, ex.perm_id)
            executed[key] = executed.get(key, 0.0) + ex.shares
        return executed

    def _refresh(self, day_start: datetime, reason: str) -> list[BrokerRecord]:
        """Read orders, executions and positions afresh; compare them with the streamed
        state (a difference is logged and counted) and let the fresh read win."""
        streamed = self._live_view(day_start) if self._full_read is not None else None
        # A doubt raised while reading (IB's link went down meanwhile, say) outlives this read.
        settled = len(self._doubts)
        records = self._read_records(day_start)
        assert self._resynced is not None
        self._open_keys = set(self._resynced.open_keys)
        self.ib.reqPositions()
        self.full_reads += 1
        self._full_read = _FullRead(day_start, time.monotonic())
        self._doubts = self._doubts[settled:]
        executed = self._executed_by_order()
        self._fill_baseline = {
            key: (record.filled, executed.get(key, 0.0)) for key, record in self._orders.items()
        }
        self.last_records_fresh = True
        if streamed is not None:
            fresh = self._live_view(day_start)
            differences = [
                f"{item}: streamed {streamed.get(item, 'none')}, fresh {fresh.get(item, 'none')}"
                for item in sorted(streamed.keys() | fresh.keys())
                if streamed.get(item) != fresh.get(item)
            ]
            if differences:
                self.state_mismatches += 1
                log.warning(
                    "the streamed state differed from a fresh read (%s), which is used from now "
                    "on: %s",
                    reason,
                    "; ".join(differences),
                )
        log.debug("live state read afresh: %s", reason)
        return records

    def _live_view(self, day_start: datetime) -> dict[str, str]:
        """The live state in comparable lines: working orders, the day's completed orders'
        fills (by permId), executions and positions."""
        view: dict[str, str] = {}
        for order in self._live_working():
            view[f"order {order.order_id} (client {order.client_id})"] = (
                f"{order.status} {order.action} {order.total_quantity:g} filled {order.filled:g} "
                f"limit {order.limit_price} aux {order.aux_price}"
            )
        for order in self._live_completed():
            if order.perm_id and order.filled:
                view[f"completed order perm {order.perm_id}"] = f"filled {order.filled:g}"
        for ex in self._executions.values():
            if ex.time >= day_start:
                view[f"execution {ex.exec_id}"] = f"{ex.side} {ex.shares:g} {ex.symbol}"
        for item in self.ib.positions(self.settings.account):
            if item.contract.secType == "STK" and item.position:
                view[f"position {self.instrument_key(item.contract)}"] = f"{item.position:g}"
        return view

    def _live_working(self) -> tuple[WorkingOrder, ...]:
        return self.working_orders(frozenset(self._open_keys))

    def _live_completed(self) -> tuple[WorkingOrder, ...]:
        """The completed orders of the last full read and the orders seen ending since."""
        completed = {
            done.order.permId or id(done): translate.working_order(
                self.instrument_key(done.contract), done.order, done.status, done.filled
            )
            for done in self._completed
        }
        for key in sorted(self._open_keys):
            record = self._orders[key]
            if order_ended(record.status, rejected=record.rejected):
                completed[record.order.permId or id(record)] = translate.working_order(
                    self.instrument_key(record.contract), record.order, record.status, record.filled
                )
        return tuple(completed.values())

    def _read_records(self, day_start: datetime) -> list[BrokerRecord]:
        """Re-read all open orders, completed orders and the day's executions."""
        # Messages reach the gateway in the order they were written: an order written before
        # this read that IB took shows in it; one that does not show was dropped.
        dropped_at = self._dropped_at
        open_keys = self._refresh_open_orders()
        self._completed = []
        self.ib.reqCompletedOrders(apiOnly=True)
        self.ib.reqExecutions(ExecutionFilter(time=_utc_filter_time(day_start)))
        self._resynced = _ResyncedView(frozenset(open_keys), day_start, time.monotonic())
        records = [
            translate.broker_record(
                "open", self._orders[key].order, self._orders[key].status, self._orders[key].filled
            )
            for key in open_keys
        ]
        records += [
            translate.broker_record("completed", done.order, done.status, done.filled)
            for done in self._completed
        ]
        records += [translate.execution_record(ex) for ex in self._executions.values()]
        self.dropped_before = dropped_at
        return records

    def _refresh_open_orders(self) -> set[tuple[int, int]]:
        self._collecting_open = set()
        try:
            self.ib.reqAllOpenOrders()
            return self._collecting_open
        finally:
            self._collecting_open = None

    def working_orders(
        self, open_keys: frozenset[tuple[int, int]] | None = None
    ) -> tuple[WorkingOrder, ...]:
        """Working orders among ``open_keys`` (default: the live state when it is vouched for,
        else ask the gateway for all open orders); their statuses are kept current by the
        order events that stream in."""
        if open_keys is None and self.settings.live_state and self._full_read is not None:
            self._ensure_vouched(self._full_read.day_start)
            open_keys = frozenset(self._open_keys)
        if open_keys is None:
            open_keys = frozenset(self._refresh_open_orders())
        working = []
        for key in sorted(open_keys):
            record = self._orders[key]
            if order_ended(record.status, rejected=record.rejected):
                continue
            working.append(
                translate.working_order(
                    self.instrument_key(record.contract),
                    record.order,
                    record.status,
                    record.filled,
                )
            )
        return tuple(working)

    def _ensure_vouched(self, day_start: datetime) -> None:
        reason = self._full_read_reason(day_start)
        if reason is not None:
            self._refresh(day_start, reason)

    def observe(self, symbols: Sequence[str], day_start: datetime) -> BrokerState:
        # Right after a resync (every pass starts with one) its reads of open orders and
        # executions are current: asking again would cost two paced messages (~45 ms) before a
        # rule edit reaches the wire. Orders and fills since then arrive as events. With live
        # state, the streamed orders and executions are used while they are vouched for.
        live = self.settings.live_state
        if live:
            self._ensure_vouched(day_start)
        resynced, self._resynced = self._resynced, None
        if resynced is not None and (
            resynced.day_start != day_start or time.monotonic() - resynced.at > RESYNC_REUSE_SECONDS
        ):
            resynced = None
        account = self.settings.account
        notes: list[str] = []
        values = self._account_values()
        daily_pnl = self._daily_pnl()
        # The rules' instruments first: their conIds decide which key each holding gets.
        contracts = self.contracts(sorted(set(symbols)), notes)
        held = [
            item
            for item in self.ib.positions(account)
            if item.contract.secType == "STK" and item.position
        ]
        positions = {
            key: Position(key, item.position, item.avgCost)
            for item in held
            for key in (self.instrument_key(item.contract),)
        }
        contracts.update(self.contracts(sorted(set(positions) - set(contracts)), notes))
        quotes = self.quotes(contracts, notes, preferred=frozenset(symbols))
        if resynced is None and not live:
            self.ib.reqExecutions(ExecutionFilter(time=_utc_filter_time(day_start)))
        # Executions read before this pass resolved the rules (a fresh journal's first resync)
        # take their instrument's key now, by conId.
        executions = tuple(
            sorted(
                (
                    replace(ex, symbol=self._keys_by_con_id.get(ex.con_id, ex.symbol))
                    for ex in self._executions.values()
                    if ex.time >= day_start
                ),
                key=lambda ex: (ex.time, ex.exec_id),
            )
        )
        return BrokerState(
            account_id=account,
            net_liquidation=values["NetLiquidation"],
            cash=values["TotalCashValue"],
            buying_power=values["BuyingPower"],
            margin_account=_is_margin_account(values),
            previous_day_equity=values.get(PREVIOUS_DAY_EQUITY),
            daily_pnl=daily_pnl,
            positions=positions,
            working_orders=(
                self._live_working()
                if live
                else self.working_orders(None if resynced is None else resynced.open_keys)
            ),
            executions=executions,
            quotes=quotes,
            contracts={symbol: self._facts(cached) for symbol, cached in contracts.items()},
            qualified=contracts,
            notes=tuple(notes),
            completed_orders=(
                self._live_completed()
                if live
                else tuple(
                    translate.working_order(
                        self.instrument_key(done.contract), done.order, done.status, done.filled
                    )
                    for done in self._completed
                )
            ),
            market_hours={
                symbol: self._hours[symbol][1] for symbol in contracts if symbol in self._hours
            },
            currencies=self._currencies(contracts, notes),
            unresolved=dict(self.unresolved),
        )

    def _currencies(
        self, contracts: Mapping[str, CachedContract], notes: list[str]
    ) -> AccountCurrencies:
        """The account's currencies; IB reports an ExchangeRate only for currencies the account
        holds, so the rate of any other currency a contract is priced in comes from its
        IDEALPRO pair's quote (docs/planning.md, "Currencies")."""
        account = self.settings.account
        currencies = account_currencies(
            value
            for value in self.ib.accountValues(account)
            if not value.account or value.account == account
        )
        base = currencies.base_currency
        for currency in sorted({contract.currency for contract in contracts.values()}):
            if currency == base or currency in currencies.exchange_rates:
                continue
            pair = pair_of(base, currency)
            price = self._pair_price(pair, notes)
            if price is not None:
                currencies.exchange_rates[currency] = rate_from_pair(pair, price, base)
        return currencies

    def pair_contract(self, pair: Pair) -> Contract | None:
        """The IDEALPRO contract of ``pair``, qualified once per connection."""
        known = self._pairs.get(pair.name)
        if known is not None:
            return known
        wanted = Contract(secType="CASH", symbol=pair.first, currency=pair.second)
        wanted.exchange = "IDEALPRO"
        try:
            details: list[ContractDetails] = self.ib.run(
                asyncio.wait_for(
                    self.ib.reqContractDetailsAsync(wanted), self.settings.request_timeout
                )
            )
        except TimeoutError:
            return None
        found = details[0].contract if len(details) == 1 else None
        if found is None:
            return None
        self._pairs[pair.name] = found
        return found

    def _pair_price(self, pair: Pair, notes: list[str]) -> float | None:
        contract = self.pair_contract(pair)
        if contract is None:
            notes.append(f"{pair.name}: IB has no IDEALPRO pair, so no exchange rate")
            return None
        [ticker] = self.ib.reqTickers(contract)
        quote = _quote(pair.name, ticker, self.ib.wrapper.lastTime)
        if quote is None:
            notes.append(f"{pair.name}: no price from the gateway, so no exchange rate")
            return None
        return quote.last

    def _daily_pnl(self) -> float | None:
        """IB's P&L for the account today (reqPnL), None while the gateway sends none. The
        subscription starts on the first call of a connection, which waits briefly for IB's
        first report (IB sends one about every second)."""
        account = self.settings.account
        subscribed = [pnl for pnl in self.ib.pnl(account) if not pnl.modelCode]
        if subscribed:
            pnl = subscribed[0]
        else:
            pnl = self.ib.reqPnL(account)
            deadline = time.monotonic() + FIRST_PNL_WAIT_SECONDS
            while not _reported(pnl.dailyPnL) and (remaining := deadline - time.monotonic()) > 0:
                self.ib.waitOnUpdate(timeout=min(remaining, 0.25))
        return pnl.dailyPnL if _reported(pnl.dailyPnL) else None

    def _account_values(self) -> dict[str, float]:
        required = ("NetLiquidation", "TotalCashValue", "BuyingPower")
        wanted = (*required, "AvailableFunds", PREVIOUS_DAY_EQUITY)
        found: dict[str, float] = {}
        for value in self.ib.accountValues(self.settings.account):
            if value.tag not in wanted or value.modelCode:
                continue
            try:
                number = float(value.value)
            except ValueError:
                continue
            # Prefer the base-currency figure; otherwise the first one reported.
            if value.currency == "BASE" or value.tag not in found:
                found[value.tag] = number
        missing = [tag for tag in required if tag not in found]
        if missing:
            raise AdapterError(
                f"the gateway sent no {', '.join(missing)} for account {self.settings.account}; "
                "retry, and check that the account is logged in"
            )
        return found

    def contracts(self, symbols: Sequence[str], notes: list[str]) -> dict[str, CachedContract]:
        """Qualified contracts, from the journal's cache when possible (a restart does not
        qualify again), otherwise from contract details (cached afterwards)."""
        cached = self.journal.cached_contracts(symbols) if self.journal is not None else {}
        today = self.market_clock.now(datetime.now(UTC)).date()
        if self.journal is not None:
            for symbol in symbols:
                if self._hours.get(symbol, (None,))[0] == today:
                    continue
                stored = _stored_hours(self.journal.get_state(_hours_key(symbol)), today)
                if stored is not None:
                    self._hours[symbol] = (today, stored)
        missing = [
            symbol
            for symbol in symbols
            if symbol not in cached or self._hours.get(symbol, (None,))[0] != today
        ]
        fresh: list[CachedContract] = []
        read_hours: dict[str, str] = {}
        for start in range(0, len(missing), 50):
            batch = missing[start : start + 50]
            results = self._contract_details([_query_contract(key) for key in batch])
            for key, details in zip(batch, results, strict=True):
                if key in cached:
                    # Resolved before (the journal's cache): only its hours are read again.
                    con_id = cached[key].con_id
                else:
                    resolution = self._resolve(key, details)
                    if isinstance(resolution, UnresolvedInstrument):
                        notes.append(f"{resolution.describe()}; it is not traded")
                        continue
                    con_id = resolution.con_id
                    fresh.append(cached_contract(resolution))
                chosen = [d for d in details if _con_id(d) == con_id]
                contract = cached[key] if key in cached else fresh[-1]
                self._read_contract_money(key, contract, chosen, read_hours)
                hours = _market_hours(key, chosen, notes, today)
                if hours is not None:
                    self._hours[key] = (today, hours[0])
                    read_hours[_hours_key(key)] = hours[1]
        if fresh and self.journal is not None and self.journal.writable:
            self.journal.store_contracts(fresh)
        if read_hours and self.journal is not None and self.journal.writable:
            self.journal.set_cached_states(read_hours)
        cached.update({contract.symbol: contract for contract in fresh})
        for key, contract in cached.items():
            self._keys_by_con_id[contract.con_id] = key
            self.unresolved.pop(key, None)
        return cached

    def _read_contract_money(
        self,
        symbol: str,
        contract: CachedContract,
        details: Sequence[ContractDetails],
        read: dict[str, str],
    ) -> None:
        """Keep the market rule and price magnifier of the listing ``contract`` is."""
        for detail in details:
            if detail.contract is not None and detail.contract.conId == contract.con_id:
                rule = market_rule_id(detail, contract.exchange)
                magnifier = max(1, detail.priceMagnifier or 1)
                self._contract_money[symbol] = (rule, magnifier)
                read[rule_key(symbol)] = json.dumps([rule, magnifier])
                return

    def _facts(self, cached: CachedContract) -> ContractFacts:
        money = self._contract_money.get(cached.symbol)
        if money is None:
            money = stored_contract_money(self._load_state(rule_key(cached.symbol)))
            self._contract_money[cached.symbol] = money
        rule, magnifier = money
        return ContractFacts(
            symbol=cached.symbol,
            con_id=cached.con_id,
            min_tick=cached.min_tick,
            lot_size=cached.lot_size,
            price_bands=self.market_rules.bands(rule),
            currency=cached.currency,
            price_magnifier=magnifier,
        )

    def _order_contract(
        self, symbol: str, contracts: Mapping[str, CachedContract]
    ) -> Contract | None:
        """The contract an order for ``symbol`` goes to: a rule's contract, else the IDEALPRO
        pair a conversion (account.fx: convert) names."""
        cached = contracts.get(symbol)
        if cached is not None:
            return translate.stock_contract(cached)
        pair = pair_named(symbol)
        return None if pair is None else self.pair_contract(pair)

    def _fetch_market_rule(self, rule_id: int) -> list[tuple[float, float]] | None:
        future = self.ib.wrapper.startReq(f"marketRule-{rule_id}")
        self.ib.client.reqMarketRule(rule_id)
        try:
            answer = self.ib.run(asyncio.wait_for(future, self.settings.request_timeout))
        except TimeoutError:
            return None
        return None if not answer else [(item.lowEdge, item.increment) for item in answer]

    def _load_state(self, key: str) -> str | None:
        return None if self.journal is None else self.journal.get_state(key)

    def _cache_state(self, key: str, value: str) -> None:
        if self.journal is not None and self.journal.writable:
            self.journal.set_cached_states({key: value})

    def _contract_details(self, queries: Sequence[Contract]) -> list[list[ContractDetails]]:
        results: list[list[ContractDetails]] = self.ib.run(
            asyncio.wait_for(
                asyncio.gather(*(self.ib.reqContractDetailsAsync(query) for query in queries)),
                self.settings.request_timeout,
            )
        )
        return results

    def _resolve(
        self, key: str, details: list[ContractDetails]
    ) -> ResolvedInstrument | UnresolvedInstrument:
        """The one contract ``key`` names (docs/rules.md, "Instruments"). When IB knows no such
        listing, every listing of the symbol is asked for, to name them as candidates."""
        try:
            instrument = parse_instrument(key)
        except ValueError as exc:
            resolution: ResolvedInstrument | UnresolvedInstrument = UnresolvedInstrument(
                key, str(exc), ()
            )
        else:
            resolution = resolve(instrument, [translate.candidate(d) for d in details])
            if (
                isinstance(resolution, UnresolvedInstrument)
                and not resolution.candidates
                and instrument.con_id is None
            ):
                wider = self._contract_details([translate.listings_query(instrument)])[0]
                resolution = resolve(instrument, [translate.candidate(d) for d in wider])
        if isinstance(resolution, UnresolvedInstrument):
            self.unresolved[key] = resolution
        return resolution

    def quotes(
        self,
        contracts: Mapping[str, CachedContract],
        notes: list[str],
        preferred: Collection[str] = (),
    ) -> dict[str, Quote]:
        """Prices from streaming subscriptions (``settings.stream_quotes``), ``preferred``
        symbols (the rules') first, within the market-data line limit; snapshots beyond it, and
        for every symbol without streaming (tradectl.ib.market_data)."""
        quotes: dict[str, Quote] = {}
        tickers = self._quote_lines.read(
            {symbol: translate.stock_contract(cached) for symbol, cached in contracts.items()},
            preferred,
        )
        for symbol in sorted(contracts):
            ticker = tickers.get(symbol)
            last_trade = self._last_trade_times.get(contracts[symbol].con_id)
            quote = (
                None
                if ticker is None
                else _quote(symbol, ticker, last_trade or ticker.time or self.ib.wrapper.lastTime)
            )
            if quote is None:
                notes.append(f"{symbol}: no price from the gateway")
            else:
                quotes[symbol] = quote
        return quotes

    # --- acting ------------------------------------------------------------------------------

    @property
    def readonly(self) -> bool:
        return self.settings.readonly

    def next_order_id(self) -> int:
        return int(self.ib.client._reqIdSeq)

    def reserve_order_ids(self, next_id: int) -> None:
        self.ib.client.updateReqId(next_id)

    def check_group(
        self,
        group: Sequence[Intent],
        contracts: Mapping[str, CachedContract],
        working: Mapping[int, WorkingOrder],
        parent_ids: Mapping[str, int],
    ) -> str | None:
        """Why this group cannot be sent, found before anything is journaled."""
        group_refs = {intent.order.order_ref: 0 for intent in group if intent.order is not None}
        for intent in group:
            if intent.action != "place":
                target = working.get(intent.order_id or 0)
                if target is None:
                    return f"{intent.key}: order {intent.order_id} is not working any more"
                if target.client_id != self.settings.client_id:
                    return (
                        f"{intent.key}: order {intent.order_id} was placed by client id "
                        f"{target.client_id}; IB lets only that client change it"
                    )
            if intent.action != "cancel":
                if intent.order is None:
                    return f"{intent.key}: {intent.action} without order fields"
                if self._order_contract(intent.symbol, contracts) is None:
                    return f"{intent.key}: no contract for {intent.symbol}; nothing sent"
                try:
                    translate.to_ib_order(
                        intent.order,
                        order_id=0,
                        account=self.settings.account,
                        parent_ids={**parent_ids, **group_refs},
                    )
                except ValueError as exc:
                    return f"{intent.key}: {exc}; nothing sent"
        return None

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
        """Hand one message per journaled intent to the pacer (see ``Broker.submit``)."""
        parent_ids = dict(parent_ids)
        parent_ids.update(
            (entry.order_ref, entry.order_id)
            for entry in journaled
            if entry.order_ref is not None
            and entry.order_id is not None
            and entry.action == "place"
        )
        for entry, intent in zip(journaled, group, strict=True):
            assert entry.order_id is not None
            self._last_action[(self.settings.client_id, entry.order_id)] = intent.action
            before, after = self._write_hooks(entry.id, before_write, after_write)
            if intent.action == "cancel":
                with self.link.sending(priority, before, after):
                    self.ib.client.cancelOrder(entry.order_id, "")
                continue
            assert intent.order is not None
            existing = working.get(entry.order_id)
            order = translate.to_ib_order(
                intent.order,
                order_id=entry.order_id,
                account=self.settings.account,
                parent_ids=parent_ids,
                parent_id=existing.parent_id if existing is not None else 0,
            )
            order.clientId = self.settings.client_id
            contract = self._order_contract(intent.symbol, contracts)
            assert contract is not None  # _check_group found it before journaling
            with self.link.sending(priority, before, after):
                self.ib.client.placeOrder(entry.order_id, contract, order)

    def _write_hooks(
        self,
        intent_id: int,
        before_write: Callable[[int], None],
        after_write: Callable[[int], None],
    ) -> tuple[Callable[[], None], Callable[[], None]]:
        def before() -> None:
            before_write(intent_id)

        def after() -> None:
            after_write(intent_id)

        return before, after

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Run the connection until ``done()`` holds and nothing waits in the pacer, or
        ``timeout`` seconds pass, or the connection drops. True when both held."""
        loop = asyncio.get_event_loop_policy().get_event_loop()
        deadline = loop.time() + timeout
        while not done() or self.link.pacer.waiting:
            remaining = deadline - loop.time()
            if remaining <= 0 or not self.connected:
                break
            try:
                self.ib.waitOnUpdate(timeout=min(remaining, 0.5))
            except ConnectionError:
                # What was sent and not seen stays in flight in the journal; the next resync
                # settles it.
                log.warning("connection lost while waiting for acknowledgements")
                break
        return done() and not self.link.pacer.waiting


def _reported(value: float) -> bool:
    """ib_insync's PnL fields start as NaN; IB sends UNSET_DOUBLE for a figure it lacks."""
    return math.isfinite(value) and value != UNSET_DOUBLE


def _is_margin_account(values: Mapping[str, float]) -> bool:
    available = values.get("AvailableFunds")
    if available is None or available <= 0:
        return False
    return values["BuyingPower"] > available * MARGIN_BUYING_POWER_RATIO


def _utc_filter_time(moment: datetime) -> str:
    # IB reads "yyyymmdd-hh:mm:ss" as UTC.
    return moment.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")


def _query_contract(key: str) -> Contract:
    try:
        return translate.query_contract(parse_instrument(key))
    except ValueError:
        # Not an instrument key: asked as a bare symbol, which resolves to nothing useful and
        # is reported as unresolved.
        return Contract(symbol=key, secType="STK")


def _con_id(details: ContractDetails) -> int:
    return details.contract.conId if details.contract is not None else 0


def cached_contract(resolved: ResolvedInstrument) -> CachedContract:
    """What the journal caches for a resolved instrument, under its key."""
    return CachedContract(
        symbol=resolved.key,
        con_id=resolved.con_id,
        exchange=resolved.exchange,
        primary_exchange=resolved.primary_exchange,
        currency=resolved.currency,
        min_tick=resolved.min_tick,
        lot_size=resolved.lot_size,
    )


def _quote(symbol: str, ticker: Ticker, last_trade: datetime) -> Quote | None:
    """The quote, timed by its last trade (tick 45) when the gateway sends one, else by when
    it arrived."""
    bid, ask = _finite(ticker.bid), _finite(ticker.ask)
    last = _finite(ticker.last)
    if last is None and bid is not None and ask is not None:
        last = (bid + ask) / 2
    # The previous close (tick 9) is never a price for a new order (docs/planning.md).
    if last is None:
        return None
    # Tick 49: 1 halted, 2 volatility halt; 0 or nothing means trading.
    halted = _finite(ticker.halted) in (1.0, 2.0)
    return Quote(symbol=symbol, last=last, time=last_trade, bid=bid, ask=ask, halted=halted)


def _market_hours(
    symbol: str, details: list[ContractDetails], notes: list[str], today: date
) -> tuple[MarketHours, str] | None:
    """The symbol's hours, and their journal form (the day's cache survives a restart)."""
    stocks = [d for d in details if d.contract is not None and d.contract.secType == "STK"]
    if not stocks or not stocks[0].timeZoneId:
        return None
    chosen = stocks[0]
    try:
        hours = market_hours(chosen.timeZoneId, chosen.tradingHours, chosen.liquidHours)
    except (HoursFormatError, ValueError, KeyError) as exc:
        notes.append(f"{symbol}: trading hours from the gateway are unreadable ({exc})")
        return None
    stored = [today.isoformat(), chosen.timeZoneId, chosen.tradingHours, chosen.liquidHours]
    return hours, json.dumps(stored)


def _stored_hours(stored: str | None, today: date) -> MarketHours | None:
    """The hours the journal keeps for ``today``; None when it has none (or another day's)."""
    if stored is None:
        return None
    try:
        day, time_zone, trading, liquid = json.loads(stored)
        if day != today.isoformat():
            return None
        return market_hours(time_zone, trading, liquid)
    except (HoursFormatError, ValueError, KeyError, TypeError):
        return None


def _hours_key(symbol: str) -> str:
    # One key per symbol, overwritten each day, so the journal does not grow with the days.
    return f"market_hours:{symbol}"
