"""The simulated gateway's state file: account, positions, symbols and options.

The file is YAML validated by the pydantic models below; unknown keys are
errors so that a typo never silently changes the simulation.
``examples/sim-state.yaml`` documents every field.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_ACCOUNT = "DU0000001"
SYNTHETIC_CON_ID_BASE = 900_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountSpec(_Strict):
    id: str = DEFAULT_ACCOUNT
    currency: str = "USD"
    cash: float = 1_000_000.0


class PositionSpec(_Strict):
    symbol: str
    quantity: float
    avg_cost: float = Field(gt=0)


class SymbolSpec(_Strict):
    price: float = Field(gt=0)
    con_id: int | None = None
    exchange: str = "NASDAQ"
    name: str = ""
    min_tick: float = Field(default=0.01, gt=0)
    lot_size: int = Field(default=1, ge=1)
    close: float | None = None


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
    account: AccountSpec = AccountSpec()
    positions: list[PositionSpec] = []
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
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimState:
        return cls.model_validate(data)

    @classmethod
    def load(cls, path: str | Path) -> SimState:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return cls.model_validate(data)

    @classmethod
    def default(cls) -> SimState:
        text = resources.files("daemon.sim").joinpath("default_state.yaml").read_text()
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
