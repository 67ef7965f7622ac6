"""State file loading, defaults and the seeded random walk."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from tradectl.sim.engine import Engine
from tradectl.sim.model import QuoteChanged
from tradectl.sim.state import SimState

from .helpers import small_state


def test_default_state_is_a_fresh_paper_account() -> None:
    state = SimState.default()
    assert state.account.id == "DU0000001"
    assert state.account.cash == 1_000_000
    assert state.positions == []
    assert len(state.symbols) >= 30
    for symbol in ("AAPL", "MSFT", "GOOGL", "SPY", "AMZN", "NVDA", "META", "QQQ", "IWM", "TLT"):
        assert state.symbols[symbol].min_tick == 0.01
    con_ids = [s.con_id for s in state.symbols.values()]
    assert len(set(con_ids)) == len(con_ids)


def test_synthetic_symbols_for_scale_tests() -> None:
    state = SimState.default().with_synthetic_symbols(250)
    assert "SYM0001" in state.symbols and "SYM0250" in state.symbols
    assert len({s.con_id for s in state.symbols.values()}) == len(state.symbols)
    assert all(10 <= state.symbols[f"SYM{i:04d}"].price <= 500 for i in range(1, 251))


def test_unknown_keys_and_orphan_positions_are_errors() -> None:
    with pytest.raises(ValidationError, match="typo"):
        SimState.from_dict({"account": {"typo": 1}})
    with pytest.raises(ValidationError, match="ZZZ"):
        SimState.from_dict({"positions": [{"symbol": "ZZZ", "quantity": 1, "avg_cost": 1}]})


def test_random_walk_is_reproducible_from_the_seed() -> None:
    def walk(seed: int) -> list[float]:
        engine = Engine(small_state())
        rng = random.Random(seed)
        for _ in range(20):
            engine.random_walk(rng, volatility_bps=50)
        return [i.last for i in engine.instruments.values()]

    assert walk(7) == walk(7)
    assert walk(7) != walk(8)


def test_random_walk_reports_quotes_and_stays_on_tick() -> None:
    engine = Engine(small_state())
    events = engine.random_walk(random.Random(1), volatility_bps=100)
    assert {e.symbol for e in events if isinstance(e, QuoteChanged)} <= {"AAPL", "MSFT", "LOT"}
    for inst in engine.instruments.values():
        assert round(inst.last / inst.min_tick, 6).is_integer()
