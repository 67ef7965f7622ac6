"""The simulated gateway's state file: account, positions, symbols and options.

The file is YAML validated by the pydantic models below; unknown keys are
errors so that a typo never silently changes the simulation.
``examples/sim-state.yaml`` documents every field.
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tradectl.schemas.loader import load_model_file
from tradectl.schemas.yaml_source import FileKind
from tradectl.sim.model import Execution, SimOrder

DEFAULT_ACCOUNT = "DU0000001"
SIM_STATE_FILE = FileKind(
    empty="file is empty: a sim state file holds at least a mapping such as 'account: {}'",
    mapping="a sim state file must be a mapping (account, symbols, positions, ...)",
)
SYNTHETIC_CON_ID_BASE = 900_000_000


class SimStateError(ValueError):
    """A state file that cannot be used; one ``file:line:col: field: message`` per line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClockSpec(_Strict):
    start: datetime | None = None
    frozen: bool = False

    @field_validator("start")
    @classmethod
    def _has_offset(cls, start: datetime | None) -> datetime | None:
        if start is not None and start.tzinfo is None:
            raise ValueError("clock.start needs a UTC offset, e.g. 2026-11-30T09:30:00-05:00")
        return start


class GatewaySpec(_Strict):
    # After a restart nextValidId starts again above the restored working orders
    # only, so ids of the day's finished orders are handed out again.
    reuse_order_ids: bool = False
    # An order without an account on a login managing several accounts: ``reject`` with
    # IB's error 436 (an advisor login must name an allocation), or place it for the
    # first account (``first``).
    order_without_account: Literal["reject", "first"] = "reject"


class IdsSpec(_Strict):
    next_order_id: dict[int, int] = {}
    next_perm_id: int | None = None
    next_exec_seq: int = 0


# What a buy in a currency the account holds too little of does (docs/sim.md,
# "Currencies"): ``borrow`` lets that currency's cash go negative, as a margin account
# borrows; ``reject`` refuses the order with 201, as a cash account does; ``auto`` is
# ``borrow`` with leverage above 1 and ``reject`` at leverage 1.
CurrencyShortfall = Literal["auto", "borrow", "reject"]


class AccountSpec(_Strict):
    id: str = DEFAULT_ACCOUNT
    # the base currency: cash, net liquidation and margin are reported in it
    currency: str = "USD"
    cash: float = 1_000_000.0
    # cash held in other currencies than the base one, e.g. {CAD: 5000, USD: -200}
    cash_balances: dict[str, float] = {}
    currency_shortfall: CurrencyShortfall = "auto"
    # Equity with loan value at the previous session's close (IB's
    # PreviousDayEquityWithLoanValue); by default the account's value at start.
    previous_day_equity: float | None = Field(default=None, gt=0)


class PositionSpec(_Strict):
    symbol: str
    # which managed account holds it; empty: the first (``account``)
    account: str = ""
    quantity: float
    avg_cost: float = Field(gt=0)
    realized_pnl: float = 0.0


class SymbolSpec(_Strict):
    """One listing. Its key in ``symbols`` names it in the state file, the control ops
    and the snapshot; ``symbol`` is what IB calls it (by default the key), so one IB
    symbol can be listed twice (``SHOP`` on NYSE and ``SHOP.TSX`` on TSX)."""

    price: float = Field(gt=0)
    con_id: int | None = None
    symbol: str = ""
    sec_type: Literal["STK", "CASH"] = "STK"
    # the primary exchange; STK listings are also on SMART, CASH pairs only on IDEALPRO
    exchange: str = "NASDAQ"
    currency: str = "USD"
    # a quote of 100 is one unit of the currency: LSE quotes GBP listings in pence (GBX)
    price_magnifier: int = Field(default=1, ge=1)
    # id in ``market_rules``; unset: 26 (US stocks) at min_tick 0.01, else one band of min_tick
    market_rule: int | None = None
    name: str = ""
    min_tick: float = Field(default=0.01, gt=0)
    lot_size: int = Field(default=1, ge=1)
    close: float | None = None
    # live: quotes; delayed: 354 for live requests, 10167 and delayed ticks for
    # reqMarketDataType 3/4; none: 354 always.
    market_data: Literal["live", "delayed", "none"] = "live"


# The hours contract details report (docs/sim.md, "Trading hours"): ``always_open`` (the
# default) says every day is one session around the clock, so tradectl trades at any host
# hour; ``us_equities`` says 04:00-20:00 / 09:30-16:00 every day; ``closed_today`` says today
# is CLOSED and the next days are open around the clock.
MarketHoursMode = Literal["always_open", "us_equities", "closed_today"]


class MarketSpec(_Strict):
    hours: MarketHoursMode = "always_open"
    random_walk: bool = False
    tick_interval: float = Field(default=1.0, gt=0)
    volatility_bps: float = Field(default=10.0, ge=0)
    seed: int = 0
    # nyse calendar, while no session is on: "unset" sends bid and ask as -1 as
    # IB was reported to; "keep" quotes as during the session.
    quotes_when_closed: Literal["unset", "keep"] = "unset"
    # an `advance` moves prices (random walk) and chunked fills every this many
    # simulated seconds while a session is on
    advance_step_seconds: float = Field(default=60.0, gt=0)


class MatchingSpec(_Strict):
    half_spread_ticks: int = Field(default=1, ge=0)
    half_spread_bps: float = Field(default=0.0, ge=0)
    fill_chunk: int = Field(default=0, ge=0)
    leverage: float = Field(default=1.0, gt=0)
    commission_per_share: float = Field(default=0.005, ge=0)
    commission_min: float = Field(default=1.0, ge=0)
    commission_max_fraction: float = Field(default=0.01, ge=0)


class LimitsSpec(_Strict):
    max_messages_per_second: int = Field(default=50, ge=0)
    max_market_data_lines: int = Field(default=100, ge=0)
    max_orders_per_side: int = Field(default=20, ge=0)


# What IB does with attached children while their parent is only partly filled is not
# documented (docs/sim.md, "Brackets on a partial parent fill"), so each behaviour seen or
# argued for is an option, and tradectl is tested under all of them.
ChildrenOnPartialFill = Literal["activate_filled", "activate_full", "hold_until_complete"]
ChildrenOnParentCancel = Literal["cancel", "keep_filled"]


class BracketsSpec(_Strict):
    children_on_partial_fill: ChildrenOnPartialFill = "activate_filled"
    children_on_partial_parent_cancel: ChildrenOnParentCancel = "cancel"


class PriceBand(_Strict):
    """From ``low_edge`` up to the next band's edge, prices move in steps of ``increment``."""

    low_edge: float = Field(ge=0)
    increment: float = Field(gt=0)


US_STOCKS_RULE = 26
# The market rules reqMarketRule answers (docs/sim.md, "Market rules"). 26 is the US stock
# rule (0.0001 below 1, 0.01 from 1); the others are the sim's own ids and tables.
DEFAULT_MARKET_RULES: dict[int, list[PriceBand]] = {
    US_STOCKS_RULE: [
        PriceBand(low_edge=0, increment=0.0001),
        PriceBand(low_edge=1, increment=0.01),
    ],
    1001: [PriceBand(low_edge=0, increment=0.005), PriceBand(low_edge=0.5, increment=0.01)],
    1002: [
        PriceBand(low_edge=edge, increment=inc)
        for edge, inc in (
            (0, 0.001),
            (1, 0.002),
            (5, 0.005),
            (10, 0.01),
            (50, 0.02),
            (100, 0.05),
            (200, 0.1),
            (500, 0.2),
        )
    ],
    1003: [
        PriceBand(low_edge=edge, increment=inc)
        for edge, inc in ((0, 0.01), (50, 0.02), (100, 0.05), (500, 0.1), (1000, 0.5), (5000, 1))
    ],
    1004: [PriceBand(low_edge=0, increment=0.00005)],
}
SYNTHETIC_RULE_BASE = 9000


class SimState(_Strict):
    calendar: Literal["always_open", "nyse"] = "always_open"
    clock: ClockSpec = ClockSpec()
    gateway: GatewaySpec = GatewaySpec()
    account: AccountSpec = AccountSpec()
    # further accounts managed by the same login (an advisor's or linked accounts)
    linked_accounts: list[AccountSpec] = []
    positions: list[PositionSpec] = []
    # written by --persist: the working orders and the current day's executions
    orders: list[SimOrder] = []
    executions: list[Execution] = []
    ids: IdsSpec = IdsSpec()
    symbols: dict[str, SymbolSpec] = {}
    market_rules: dict[int, list[PriceBand]] = DEFAULT_MARKET_RULES
    market: MarketSpec = MarketSpec()
    matching: MatchingSpec = MatchingSpec()
    limits: LimitsSpec = LimitsSpec()
    brackets: BracketsSpec = BracketsSpec()

    @field_validator("symbols")
    @classmethod
    def _assign_con_ids(cls, symbols: dict[str, SymbolSpec]) -> dict[str, SymbolSpec]:
        # Symbols without an explicit conId get a stable synthetic one so that
        # the same state file always yields the same contracts.
        taken = {s.con_id for s in symbols.values() if s.con_id is not None}
        next_id = SYNTHETIC_CON_ID_BASE
        for spec in symbols.values():
            if spec.con_id is None:
                while next_id in taken:
                    next_id += 1
                spec.con_id = next_id
                taken.add(next_id)
        return symbols

    @model_validator(mode="after")
    def _listings_are_complete(self) -> SimState:
        # Every rule named exists; a listing without one gets the US rule or a rule of its
        # own min_tick, so an older state file keeps its ticks.
        rules = {**DEFAULT_MARKET_RULES, **self.market_rules}
        own_rules: dict[float, int] = {}
        for key, spec in self.symbols.items():
            spec.symbol = spec.symbol or key
            if spec.sec_type == "CASH" and spec.exchange == "NASDAQ":
                spec.exchange = "IDEALPRO"
            if spec.market_rule is None:
                if spec.min_tick == 0.01 and spec.sec_type == "STK":
                    spec.market_rule = US_STOCKS_RULE
                else:
                    if spec.min_tick not in own_rules:
                        own_rules[spec.min_tick] = SYNTHETIC_RULE_BASE + len(own_rules)
                    spec.market_rule = own_rules[spec.min_tick]
                    rules[spec.market_rule] = [PriceBand(low_edge=0, increment=spec.min_tick)]
            elif spec.market_rule not in rules:
                raise ValueError(f"symbol {key}: market rule {spec.market_rule} is not defined")
        self.market_rules = rules
        accounts = [self.account.id] + [a.id for a in self.linked_accounts]
        if len(set(accounts)) != len(accounts):
            raise ValueError(f"account ids must differ: {', '.join(accounts)}")
        for pos in self.positions:
            if pos.account and pos.account not in accounts:
                raise ValueError(f"position in {pos.symbol}: unknown account {pos.account}")
        self._currencies_have_rates()
        return self

    def _currencies_have_rates(self) -> None:
        """Every currency in use needs a CASH pair against USD: its price is the rate."""
        quoted = {"USD"}
        for spec in self.symbols.values():
            if spec.sec_type == "CASH" and "USD" in (spec.symbol, spec.currency):
                quoted |= {spec.symbol, spec.currency}
        used = {s.currency for s in self.symbols.values()}
        for account in [self.account, *self.linked_accounts]:
            used |= {account.currency, *account.cash_balances}
        missing = sorted(used - quoted)
        if missing:
            raise ValueError(
                f"no exchange rate for {', '.join(missing)}: list a CASH pair against USD "
                f"(e.g. {missing[0]}.USD: {{symbol: {missing[0]}, sec_type: CASH, "
                f"currency: USD, price: 1.0}})"
            )

    @model_validator(mode="after")
    def _positions_have_symbols(self) -> SimState:
        for pos in self.positions:
            if pos.symbol not in self.symbols:
                raise ValueError(f"position in {pos.symbol}: symbol not listed under symbols")
        for symbol in [o.symbol for o in self.orders] + [e.symbol for e in self.executions]:
            if symbol not in self.symbols:
                raise ValueError(f"order or execution in {symbol}: symbol not listed")
        return self

    def save(self, path: str | Path) -> None:
        """Write the state as YAML, atomically (a crash leaves the old file or the new one)."""
        target = Path(path)
        scratch = target.with_name(target.name + ".tmp")
        data = self.model_dump(mode="json")
        scratch.write_text(yaml.safe_dump(data, sort_keys=False))
        scratch.replace(target)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimState:
        return cls.model_validate(data)

    @classmethod
    def load(cls, path: str | Path) -> SimState:
        """Read a state file; every problem is reported as ``validate`` reports rule files."""
        state, errors = load_model_file(Path(path), cls, SIM_STATE_FILE)
        if state is None:
            raise SimStateError("\n".join(str(error) for error in errors))
        return state

    @classmethod
    def default(cls) -> SimState:
        text = resources.files("tradectl.sim").joinpath("default_state.yaml").read_text()
        return cls.model_validate(yaml.safe_load(text))

    @classmethod
    def world(cls) -> SimState:
        """The default state with the listings outside the US and the IDEALPRO pairs."""
        return cls.default().with_world_listings()

    def with_world_listings(self) -> SimState:
        """Return a copy with ``world_listings.yaml`` added: SHOP on TSX, SAP on IBIS, VOD on
        LSE, BRK B and the currency pairs (docs/sim.md, "Listings"); the state's own
        symbols of the same keys win."""
        text = resources.files("tradectl.sim").joinpath("world_listings.yaml").read_text()
        listings = yaml.safe_load(text)["symbols"]
        data = self.model_dump(mode="json")
        data["symbols"] = {**listings, **data["symbols"]}
        return SimState.model_validate(data)

    def with_synthetic_symbols(self, count: int) -> SimState:
        """Return a copy with ``count`` extra tickers SYM0001... for scale tests."""
        state = self.model_copy(deep=True)
        for i in range(1, count + 1):
            name = f"SYM{i:04d}"
            if name not in state.symbols:
                price = round(10.0 + (i * 7.31) % 490.0, 2)
                state.symbols[name] = SymbolSpec(price=price, name=f"SYNTHETIC {i}")
        return SimState.model_validate(state.model_dump())
