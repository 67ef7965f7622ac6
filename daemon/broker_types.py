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
from tradectl.planner.market_time import MarketHours
from tradectl.planner.types import ContractFacts, Position, Quote, WorkingOrder


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
class OrderStatusUpdate:
    """The broker reports an order's status (IB's orderStatus)."""

    order_id: int
    client_id: int
    perm_id: int
    status: str
    filled: float
    remaining: float


@dataclass(frozen=True)
class ExecutionUpdate:
    """The broker reports an execution. The same execution may be reported again (IB repeats
    every execution of the day in each executions answer): ``execution.exec_id`` tells."""

    execution: RecordedExecution


@dataclass(frozen=True)
class ErrorUpdate:
    """The broker reports an error or message. ``rejection`` is True when it refuses one of
    tradectl's own order actions (``order_ref`` names the order); IB's informational codes,
    cancel confirmations and refusals to cancel an order that already ended are not."""

    req_id: int
    code: int
    text: str
    order_ref: str | None = None
    rejection: bool = False


@dataclass(frozen=True)
class LinkUpdate:
    """The broker's own link to its exchange went down (IB 1100) or came back (1101/1102);
    ``data_lost`` when it came back without its subscriptions (1101)."""

    up: bool
    data_lost: bool = False


@dataclass(frozen=True)
class Disconnected:
    """The connection to the broker closed."""


BrokerUpdate = OrderStatusUpdate | ExecutionUpdate | ErrorUpdate | LinkUpdate | Disconnected
UpdateListener = Callable[[BrokerUpdate], None]
