"""Read an account snapshot (YAML or JSON) into an ``Observed`` for ``tradectl plan --observed``.

The format is documented in docs/planning.md, with an example in examples/observed.yaml.
Short forms keep hand-written snapshots small: ``positions: {AAPL: 100}`` and
``quotes: {AAPL: 190.5}``. Times without a zone are UTC. A quote without a time was taken at
``as_of``; ``as_of`` defaults to the moment the command runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tradectl.planner.domain import (
    ContractFacts,
    Execution,
    Observed,
    Position,
    Quote,
    WorkingOrder,
)
from tradectl.planner.ticks import PriceBand
from tradectl.schemas.loader import load_model_file
from tradectl.schemas.yaml_source import FileKind

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class ObservedFileError(Exception):
    """A snapshot that cannot be read; the message names the file and every problem."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Position(_Model):
    quantity: FiniteFloat
    average_cost: FiniteFloat = 0.0


class _Quote(_Model):
    last: PositiveFloat
    time: datetime | None = None
    bid: PositiveFloat | None = None
    ask: PositiveFloat | None = None


class _Contract(_Model):
    con_id: int = 0
    min_tick: PositiveFloat
    lot_size: Annotated[int, Field(ge=1)] = 1
    # The market rule as reqMarketRule answers it: [low edge, increment] per band.
    price_bands: list[tuple[Annotated[float, Field(ge=0)], PositiveFloat]] = Field(
        default_factory=list
    )
    currency: str | None = None
    price_magnifier: Annotated[int, Field(ge=1)] = 1


class _WorkingOrder(_Model):
    order_id: int
    symbol: str
    action: Literal["BUY", "SELL"]
    order_type: Literal["MKT", "LMT", "STP", "STP LMT", "TRAIL"]
    total_quantity: PositiveFloat
    filled: Annotated[float, Field(ge=0)] = 0.0
    limit_price: PositiveFloat | None = None
    aux_price: PositiveFloat | None = None
    trailing_percent: PositiveFloat | None = None
    tif: Literal["DAY", "GTC", "IOC"] = "DAY"
    order_ref: str | None = None
    perm_id: int = 0
    client_id: int = 0
    parent_id: int = 0
    oca_group: str = ""
    status: str = "Submitted"


class _Execution(_Model):
    exec_id: str
    order_id: int
    symbol: str
    side: Literal["BUY", "SELL"]
    shares: PositiveFloat
    price: PositiveFloat
    time: datetime
    order_ref: str | None = None
    perm_id: int = 0
    commission: FiniteFloat | None = None


class _Fill(_Model):
    rule: str
    generation: str
    quantity: Annotated[float, Field(ge=0)]
    average_price: PositiveFloat | None = None


class _Snapshot(_Model):
    as_of: datetime | None = None
    account_id: str
    net_liquidation: FiniteFloat
    cash: FiniteFloat
    buying_power: FiniteFloat | None = None
    margin_account: bool = False
    day_start_nav: FiniteFloat | None = None
    daily_pnl: FiniteFloat | None = None
    positions: dict[str, FiniteFloat | _Position] = Field(default_factory=dict)
    quotes: dict[str, PositiveFloat | _Quote] = Field(default_factory=dict)
    contracts: dict[str, _Contract] = Field(default_factory=dict)
    working_orders: list[_WorkingOrder] = Field(default_factory=list)
    executions: list[_Execution] = Field(default_factory=list)
    entry_fills: list[_Fill] = Field(default_factory=list)
    exit_fills: list[_Fill] = Field(default_factory=list)
    in_flight: list[str] = Field(default_factory=list)
    orders_sent_last_minute: Annotated[int, Field(ge=0)] = 0
    halted: bool = False
    breaker_tripped: bool = False
    allocations_due: bool = True
    base_currency: str = "USD"
    cash_balances: dict[str, FiniteFloat] = Field(default_factory=dict)
    exchange_rates: dict[str, PositiveFloat] = Field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    observed: Observed
    as_of: datetime


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


SNAPSHOT_FILE = FileKind(
    empty="file is empty: a snapshot holds at least account_id, cash and net_liquidation",
    mapping="a snapshot must be a mapping (account_id: ..., cash: ...)",
)


def read_snapshot(path: Path, now: datetime) -> Snapshot:
    """Parse and check ``path``; ``now`` is ``as_of`` when the file does not give one. Problems
    are reported as ``validate`` reports rule files, one ``file:line:col: field: message`` per
    line."""
    snapshot, errors = load_model_file(path, _Snapshot, SNAPSHOT_FILE)
    if snapshot is None:
        raise ObservedFileError("\n".join(str(error) for error in errors))
    return _convert(snapshot, now)


def _fills(fills: list[_Fill]) -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    quantities: dict[tuple[str, str], float] = {}
    prices: dict[tuple[str, str], float] = {}
    for fill in fills:
        key = (fill.rule, fill.generation)
        quantities[key] = fill.quantity
        if fill.average_price is not None:
            prices[key] = fill.average_price
    return quantities, prices


def _convert(snapshot: _Snapshot, now: datetime) -> Snapshot:
    as_of = _utc(snapshot.as_of) if snapshot.as_of is not None else _utc(now)
    positions = {
        symbol: Position(symbol, held)
        if isinstance(held, float | int)
        else Position(symbol, held.quantity, held.average_cost)
        for symbol, held in snapshot.positions.items()
    }
    quotes = {
        symbol: Quote(symbol, last=quote, time=as_of)
        if isinstance(quote, float | int)
        else Quote(
            symbol,
            last=quote.last,
            time=as_of if quote.time is None else _utc(quote.time),
            bid=quote.bid,
            ask=quote.ask,
        )
        for symbol, quote in snapshot.quotes.items()
    }
    entry_fills, entry_prices = _fills(snapshot.entry_fills)
    exit_fills, _ = _fills(snapshot.exit_fills)
    observed = Observed(
        account_id=snapshot.account_id,
        net_liquidation=snapshot.net_liquidation,
        cash=snapshot.cash,
        buying_power=snapshot.cash if snapshot.buying_power is None else snapshot.buying_power,
        margin_account=snapshot.margin_account,
        day_start_nav=(
            snapshot.net_liquidation if snapshot.day_start_nav is None else snapshot.day_start_nav
        ),
        daily_pnl=snapshot.daily_pnl,
        positions=positions,
        working_orders=tuple(
            WorkingOrder(**order.model_dump()) for order in snapshot.working_orders
        ),
        executions=tuple(
            Execution(**{**execution.model_dump(), "time": _utc(execution.time)})
            for execution in snapshot.executions
        ),
        quotes=quotes,
        contracts={
            symbol: ContractFacts(
                symbol,
                facts.con_id,
                facts.min_tick,
                facts.lot_size,
                price_bands=tuple(PriceBand(low, step) for low, step in facts.price_bands),
                currency=facts.currency,
                price_magnifier=facts.price_magnifier,
            )
            for symbol, facts in snapshot.contracts.items()
        },
        entry_fills=entry_fills,
        entry_fill_prices=entry_prices,
        exit_fills=exit_fills,
        in_flight=frozenset(snapshot.in_flight),
        orders_sent_last_minute=snapshot.orders_sent_last_minute,
        halted=snapshot.halted,
        breaker_tripped=snapshot.breaker_tripped,
        allocations_due=snapshot.allocations_due,
        base_currency=snapshot.base_currency,
        cash_balances=snapshot.cash_balances,
        exchange_rates=snapshot.exchange_rates,
    )
    return Snapshot(observed, as_of)
