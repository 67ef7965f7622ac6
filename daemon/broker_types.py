"""The domain types that cross the broker boundary (docs/architecture.md, "The Broker
protocol"): what a broker observes and the updates it streams, in tradectl's own terms.

``tradectl.runtime.broker.Broker`` (the protocol) speaks these types, and ``tradectl.ib``
builds them from ib_insync's objects; no ib_insync object ever leaves ``tradectl.ib``. The
module sits beside the layers because both the runtime and the IB adapter, which lies below
it, need them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tradectl.journal import CachedContract, RecordedExecution
from tradectl.message_priority import Priority as Priority
from tradectl.planner.domain import ContractFacts, Position, Quote, WorkingOrder
from tradectl.planner.instruments import UnresolvedInstrument
from tradectl.planner.market_time import MarketHours


@dataclass(frozen=True)
class AccountCurrencies:
    """The account's base currency; ``cash_balances``: IB's ``CashBalance`` per currency, in that
    currency; ``exchange_rates``: IB's ``ExchangeRate`` per currency, the base-currency value of
    one unit (docs/planning.md, "Currencies")."""

    base_currency: str
    cash_balances: dict[str, float] = field(default_factory=dict)
    exchange_rates: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BrokerState:
    """What the broker shows at one moment, before the journal's view is added."""

    account_id: str
    net_liquidation: float
    cash: float
    buying_power: float
    positions: Mapping[str, Position]
    working_orders: tuple[WorkingOrder, ...]
    executions: tuple[RecordedExecution, ...]
    quotes: Mapping[str, Quote]
    contracts: Mapping[str, ContractFacts]
    qualified: Mapping[str, CachedContract]
    notes: tuple[str, ...] = ()
    margin_account: bool = False
    previous_day_equity: float | None = None
    daily_pnl: float | None = None
    completed_orders: tuple[WorkingOrder, ...] = ()
    market_hours: Mapping[str, MarketHours] = field(default_factory=dict)
    currencies: AccountCurrencies = field(default_factory=lambda: AccountCurrencies("USD"))
    unresolved: Mapping[str, UnresolvedInstrument] = field(default_factory=dict)


@dataclass
class Progress:
    sent: int = 0
    acknowledged: int = 0
    filled: int = 0
    rejected: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"sent {self.sent} / acknowledged {self.acknowledged} / filled {self.filled} / "
            f"rejected {self.rejected}"
        )


@dataclass(frozen=True)
class OrderSnapshot:
    """An order as the broker shows it now (IB's openOrder, kept current by orderStatus)."""

    client_id: int
    order_id: int
    perm_id: int
    order_ref: str | None
    symbol: str
    action: str
    order_type: str
    quantity: float
    limit_price: float | None
    aux_price: float | None
    status: str
    filled: float
    con_id: int = 0


@dataclass(frozen=True)
class OrderUpdate:
    """The broker reports an order (placed, changed, or listed among the open orders)."""

    order: OrderSnapshot


@dataclass(frozen=True)
class OrderStatusUpdate:
    """The broker reports an order's status (IB's orderStatus). ``order`` is the order with
    that status when the broker has reported the order itself; ``order_ref`` is its orderRef."""

    order_id: int
    client_id: int
    perm_id: int
    status: str
    filled: float
    remaining: float
    order_ref: str | None = None
    order: OrderSnapshot | None = None


@dataclass(frozen=True)
class ExecutionUpdate:
    """The broker reports an execution. The same execution may be reported again (IB repeats
    every execution of the day in each executions answer): ``execution.exec_id`` tells.
    ``order_executed`` is what the executions seen on this connection add up to for its order,
    ``order_quantity`` that order's total (0 when the order was not reported)."""

    execution: RecordedExecution
    order_executed: float = 0.0
    order_quantity: float = 0.0


@dataclass(frozen=True)
class CommissionUpdate:
    """The broker reports the commission (and realized P&L, when it has one) of an execution."""

    exec_id: str
    commission: float
    currency: str
    realized_pnl: float | None


@dataclass(frozen=True)
class ErrorUpdate:
    """The broker reports an error or message about request or order ``req_id`` (an order of
    client ``client_id``, this connection's). ``informational``: a notice, not a failure.
    ``refusal``: it refuses the latest action on order ``req_id`` (not a notice, a cancel
    confirmation, or ``already_ended``: a cancel of an order that had already ended, which is
    no rejection of any order)."""

    req_id: int
    code: int
    text: str
    client_id: int = 0
    informational: bool = False
    refusal: bool = False
    already_ended: bool = False


@dataclass(frozen=True)
class LinkUpdate:
    """The broker's own link to its exchange went down (IB 1100) or came back (1101/1102);
    ``data_lost`` when it came back without its subscriptions (1101)."""

    up: bool
    data_lost: bool = False


@dataclass(frozen=True)
class Disconnected:
    """The connection to the broker closed."""


BrokerUpdate = (
    OrderUpdate
    | OrderStatusUpdate
    | ExecutionUpdate
    | CommissionUpdate
    | ErrorUpdate
    | LinkUpdate
    | Disconnected
)
UpdateListener = Callable[[BrokerUpdate], None]
