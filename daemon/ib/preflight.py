"""The read-only questions `tradectl doctor` asks the gateway (docs/ib-gateway.md#tradectl-doctor).

Everything goes through the adapter's connection, so every message is paced like any other.
Nothing here places an order: the plan's orders are sent as whatIf orders only, which IB answers
with a margin and commission estimate and does not place.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from ib_insync import Contract, ContractDetails
from ib_insync.order import OrderState
from ib_insync.util import UNSET_DOUBLE

from tradectl.ib import translate
from tradectl.ib.adapter import IbAdapter, cached_contract
from tradectl.journal import CachedContract
from tradectl.planner.domain import OrderSpec
from tradectl.planner.instruments import ResolvedInstrument, resolve
from tradectl.schemas.models import parse_instrument

T = TypeVar("T")

# reqMarketDataType: 1 live, 3 delayed where live is not permitted (IB's API guide).
LIVE = 1
DELAYED_FALLBACK = 3
DataKind = Literal["live", "delayed", "none"]


@dataclass(frozen=True)
class GatewayError:
    code: int
    text: str

    def __str__(self) -> str:
        return f"IB error {self.code}: {self.text}"


@dataclass(frozen=True)
class AccountFacts:
    managed: tuple[str, ...]
    account_type: str | None
    base_currency: str | None


@dataclass(frozen=True)
class Candidate:
    con_id: int
    exchange: str
    currency: str
    name: str


@dataclass(frozen=True)
class TradingSession:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class SymbolLookup:
    symbol: str
    candidates: tuple[Candidate, ...]
    error: GatewayError | None = None
    time_zone: str = ""
    regular_hours: tuple[TradingSession, ...] = ()
    contract: CachedContract | None = None


@dataclass(frozen=True)
class MarketData:
    symbol: str
    kind: DataKind
    errors: tuple[GatewayError, ...] = ()


@dataclass(frozen=True)
class WhatIf:
    order_ref: str
    symbol: str
    init_margin_change: float | None = None
    init_margin_after: float | None = None
    maint_margin_after: float | None = None
    equity_with_loan_after: float | None = None
    commission: float | None = None
    currency: str = ""
    warning: str = ""
    errors: tuple[GatewayError, ...] = ()


@dataclass
class _Errors:
    """Gateway errors seen while a block ran, by the contract they answered."""

    by_contract: dict[int, list[GatewayError]] = field(default_factory=dict)

    def of(self, contract: Contract) -> tuple[GatewayError, ...]:
        return tuple(self.by_contract.get(id(contract), ()))


@contextmanager
def _errors_seen(adapter: IbAdapter) -> Iterator[_Errors]:
    seen = _Errors()

    def on_error(req_id: int, code: int, text: str, contract: Contract | None = None) -> None:
        if contract is not None:
            seen.by_contract.setdefault(id(contract), []).append(GatewayError(code, text))

    adapter.ib.errorEvent += on_error
    try:
        yield seen
    finally:
        adapter.ib.errorEvent -= on_error


def _run(adapter: IbAdapter, requests: Sequence[Awaitable[T]]) -> list[T]:
    gathered = asyncio.wait_for(asyncio.gather(*requests), adapter.settings.request_timeout)
    results: list[T] = adapter.ib.run(gathered)
    return results


def server_version(adapter: IbAdapter) -> int:
    version: int = adapter.ib.client.serverVersion()
    return version


def account_facts(adapter: IbAdapter) -> AccountFacts:
    """Managed accounts, and the rules' account's AccountType and base currency as reported by
    the account updates the connection subscribed to."""
    account = adapter.settings.account
    account_type = base_currency = None
    for value in adapter.ib.accountValues(account):
        if value.modelCode:
            continue
        if value.tag == "AccountType":
            account_type = value.value or None
        elif value.tag == "NetLiquidation" and value.currency not in ("", "BASE"):
            # IB reports net liquidation once, in the account's base currency.
            base_currency = value.currency
    return AccountFacts(tuple(adapter.ib.managedAccounts()), account_type, base_currency)


def clock_offset(adapter: IbAdapter) -> float:
    """Seconds the gateway's clock is ahead of this host's, to about half a second: IB sends
    whole seconds, so the gateway's time lies within the second it names."""
    before = time.time()
    gateway = adapter.ib.reqCurrentTime()
    after = time.time()
    return gateway.timestamp() + 0.5 - (before + after) / 2


def look_up(adapter: IbAdapter, symbols: Sequence[str]) -> list[SymbolLookup]:
    """Every contract IB offers for each instrument key (a US stock routed SMART for a bare
    ticker), asked as the daemon asks; more than one is an ambiguity the daemon refuses."""
    instruments = [parse_instrument(symbol) for symbol in symbols]
    contracts = [translate.query_contract(instrument) for instrument in instruments]
    with _errors_seen(adapter) as errors:
        answers = _run(adapter, [adapter.ib.reqContractDetailsAsync(c) for c in contracts])
    lookups = []
    for symbol, instrument, contract, details in zip(
        symbols, instruments, contracts, answers, strict=True
    ):
        resolutions = [(d, resolve(instrument, [translate.candidate(d)])) for d in details or []]
        stocks = [d for d, found in resolutions if isinstance(found, ResolvedInstrument)]
        resolved = [found for _, found in resolutions if isinstance(found, ResolvedInstrument)]
        failed = errors.of(contract)
        lookups.append(
            SymbolLookup(
                symbol=symbol,
                candidates=tuple(_candidate(d) for d in stocks),
                error=failed[0] if failed and not stocks else None,
                time_zone=stocks[0].timeZoneId if len(stocks) == 1 else "",
                regular_hours=_sessions(stocks[0]) if len(stocks) == 1 else (),
                contract=cached_contract(resolved[0]) if len(resolved) == 1 else None,
            )
        )
    return lookups


def _candidate(details: ContractDetails) -> Candidate:
    contract = details.contract
    assert contract is not None
    return Candidate(
        con_id=contract.conId,
        exchange=contract.primaryExchange or details.validExchanges.split(",")[-1],
        currency=contract.currency,
        name=details.longName,
    )


def _sessions(details: ContractDetails) -> tuple[TradingSession, ...]:
    try:
        parsed = details.liquidSessions()
    except (ValueError, KeyError):
        return ()
    return tuple(TradingSession(s.start.astimezone(UTC), s.end.astimezone(UTC)) for s in parsed)


def market_data(adapter: IbAdapter, contracts: Mapping[str, CachedContract]) -> list[MarketData]:
    """Which data the account may see per symbol. First a snapshot as the daemon asks for it,
    live; for a symbol that got no price, one more with delayed data as fallback (IB then sends
    delayed data with a 10167 notice where only that is permitted, and an error such as 354
    where nothing is). The connection is set back to live data afterwards."""
    symbols = sorted(contracts)
    live = _snapshots(adapter, contracts, symbols)
    unpriced = [symbol for symbol in symbols if not live[symbol][0]]
    delayed: dict[str, tuple[bool, tuple[GatewayError, ...]]] = {}
    if unpriced:
        adapter.ib.reqMarketDataType(DELAYED_FALLBACK)
        try:
            delayed = _snapshots(adapter, contracts, unpriced)
        finally:
            adapter.ib.reqMarketDataType(LIVE)
    answers = []
    for symbol in symbols:
        priced, errors = live[symbol]
        if priced:
            answers.append(MarketData(symbol, "live", errors))
            continue
        priced_delayed, more = delayed[symbol]
        answers.append(MarketData(symbol, "delayed" if priced_delayed else "none", errors + more))
    return answers


def _snapshots(
    adapter: IbAdapter, contracts: Mapping[str, CachedContract], symbols: Sequence[str]
) -> dict[str, tuple[bool, tuple[GatewayError, ...]]]:
    """Per symbol: whether a snapshot brought a price, and the gateway's errors about it. In
    batches within the market-data line limit, like the adapter's quotes."""
    seen: dict[str, tuple[bool, tuple[GatewayError, ...]]] = {}
    lines = max(1, adapter.settings.market_data_lines)
    for start in range(0, len(symbols), lines):
        batch = symbols[start : start + lines]
        asked = [translate.stock_contract(contracts[symbol]) for symbol in batch]
        with _errors_seen(adapter) as errors:
            tickers = adapter.ib.reqTickers(*asked)
        for symbol, contract, ticker in zip(batch, asked, tickers, strict=True):
            seen[symbol] = (_has_price(ticker), errors.of(contract))
    return seen


def _has_price(ticker: Any) -> bool:
    return any(
        isinstance(value, float) and math.isfinite(value) and value > 0
        for value in (ticker.last, ticker.bid, ticker.ask, ticker.close)
    )


def what_if(
    adapter: IbAdapter, orders: Sequence[OrderSpec], contracts: Mapping[str, CachedContract]
) -> list[WhatIf]:
    """Each order as a standalone whatIf order (a bracket's children without their parent):
    IB's margin and commission estimate against the account as it is now."""
    asked: list[tuple[OrderSpec, Contract]] = []
    requests = []
    for spec in orders:
        parents = {spec.parent_ref: 0} if spec.parent_ref else {}
        order = translate.to_ib_order(
            spec, order_id=0, account=adapter.settings.account, parent_ids=parents
        )
        order.parentId, order.transmit = 0, True
        contract = translate.stock_contract(contracts[spec.symbol])
        asked.append((spec, contract))
        requests.append(adapter.ib.whatIfOrderAsync(contract, order))
    with _errors_seen(adapter) as errors:
        states = _run(adapter, requests)
    answers = []
    for (spec, contract), state in zip(asked, states, strict=True):
        seen = errors.of(contract)
        if not isinstance(state, OrderState):
            answers.append(WhatIf(spec.order_ref, spec.symbol, errors=seen))
            continue
        answers.append(
            WhatIf(
                order_ref=spec.order_ref,
                symbol=spec.symbol,
                init_margin_change=_number(state.initMarginChange),
                init_margin_after=_number(state.initMarginAfter),
                maint_margin_after=_number(state.maintMarginAfter),
                equity_with_loan_after=_number(state.equityWithLoanAfter),
                commission=_number(state.commission),
                currency=state.commissionCurrency,
                warning=state.warningText,
                errors=seen,
            )
        )
    return answers


def _number(value: str | float) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number == UNSET_DOUBLE:
        return None
    return number
