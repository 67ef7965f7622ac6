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


class IdsSpec(_Strict):
    next_order_id: dict[int, int] = {}
    next_perm_id: int | None = None
    next_exec_seq: int = 0


class AccountSpec(_Strict):
    id: str = DEFAULT_ACCOUNT
    currency: str = "USD"
    cash: float = 1_000_000.0
    # Equity with loan value at the previous session's close (IB's
    # PreviousDayEquityWithLoanValue); by default the account's value at start.
    previous_day_equity: float | None = Field(default=None, gt=0)


class PositionSpec(_Strict):
    symbol: str
    quantity: float
    avg_cost: float = Field(gt=0)
    realized_pnl: float = 0.0


class SymbolSpec(_Strict):
    price: float = Field(gt=0)
    con_id: int | None = None
    exchange: str = "NASDAQ"
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


class SimState(_Strict):
    calendar: Literal["always_open", "nyse"] = "always_open"
    clock: ClockSpec = ClockSpec()
    gateway: GatewaySpec = GatewaySpec()
    account: AccountSpec = AccountSpec()
    positions: list[PositionSpec] = []
    # written by --persist: the working orders and the current day's executions
    orders: list[SimOrder] = []
    executions: list[Execution] = []
    ids: IdsSpec = IdsSpec()
    symbols: dict[str, SymbolSpec] = {}
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

    def with_synthetic_symbols(self, count: int) -> SimState:
        """Return a copy with ``count`` extra tickers SYM0001... for scale tests."""
        state = self.model_copy(deep=True)
        for i in range(1, count + 1):
            name = f"SYM{i:04d}"
            if name not in state.symbols:
                price = round(10.0 + (i * 7.31) % 490.0, 2)
                state.symbols[name] = SymbolSpec(price=price, name=f"SYNTHETIC {i}")
        return SimState.model_validate(state.model_dump())
