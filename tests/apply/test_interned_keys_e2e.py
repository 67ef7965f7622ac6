"""Every instrument key the planner reads is one string object per key (``interned_key``):
the rules' targets and the account the adapter observes through the real ib_insync client,
on a first pass and on one that reads its contracts from the journal's cache. The planner
relies on it for speed only (benchmarks/README.md, "Round seven"), never for correctness."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tradectl.ib import IbAdapter
from tradectl.journal import Journal
from tradectl.runtime.reconcile import build_observed, observed_symbols
from tradectl.runtime.session import connection_settings
from tradectl.schemas.loader import load_rule_set
from tradectl.schemas.models import interned_key
from tradectl.sim import SimState
from tradectl.timezones import trading_day_start

from .conftest import ACCOUNT, DEFAULT_PRICES, Gateway, place_manual_order, write_rules

pytestmark = pytest.mark.e2e


def _not_interned(keys: Iterable[str]) -> list[str]:
    return [key for key in keys if key is not interned_key(key)]


def test_the_rules_and_the_observed_account_share_one_string_per_key(
    gateway_factory: Callable[[SimState], Gateway], tmp_path: Path
) -> None:
    state = SimState.from_dict(
        {
            "account": {"id": ACCOUNT, "cash": 1_000_000},
            "symbols": {symbol: {"price": price} for symbol, price in DEFAULT_PRICES.items()},
            "positions": [
                {"symbol": "AAPL", "quantity": 100, "avg_cost": 90.0},
                # Held, and named by no rule: the adapter's own key for it.
                {"symbol": "AMZN", "quantity": 10, "avg_cost": 200.0},
            ],
        }
    )
    gateway = gateway_factory(state)
    rules_dir = write_rules(
        tmp_path / "rules",
        gateway,
        allocations={
            "core": {
                "capital": {"fraction_of_nav": 0.5},
                "targets": {"AAPL": 0.2, "MSFT": 0.2, "SPY": 0.2},
            }
        },
    )
    place_manual_order(gateway, "MSFT", "BUY", 5, 150.0)
    rules = load_rule_set([rules_dir]).rule_set
    assert rules is not None
    targets = rules.allocations["core"].inline_targets
    assert _not_interned(targets) == []
    now = datetime.now(UTC)
    with Journal.open(tmp_path / "state") as journal:
        for _ in range(2):
            adapter = IbAdapter(connection_settings(rules, readonly=True), journal)
            adapter.connect()
            try:
                broker_state = adapter.observe(observed_symbols(rules, {}), trading_day_start(now))
            finally:
                adapter.disconnect()
            observed = build_observed(rules, broker_state, journal, now)
            assert {"AAPL", "AMZN"} <= set(observed.positions)
            assert set(targets) <= set(observed.quotes) & set(observed.contracts)
            assert [order.symbol for order in observed.working_orders] == ["MSFT"]
            assert _not_interned(observed.positions) == []
            assert _not_interned(observed.quotes) == []
            assert _not_interned(observed.contracts) == []
            assert _not_interned(observed.market_hours or {}) == []
            assert _not_interned(order.symbol for order in observed.working_orders) == []
