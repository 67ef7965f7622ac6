"""How plan() time grows with the number of allocation targets.

    .venv/bin/python benchmarks/planner_scaling.py [--repeat N]

Builds one allocation rule with N targets against an account that holds half of them (some
far from target, some inside the band) with a working order on every tenth, then times
``plan()`` (rule-set validation excluded: it happens once per file change, not per pass).
Prints the best of ``--repeat`` runs per size and the growth ratio between sizes: time ratio
divided by size ratio, ~1.0 for linear growth.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from daemon.planner import plan
from daemon.planner.types import ContractFacts, Observed, Position, Quote, WorkingOrder
from schemas.models import RuleSet, order_ref, rule_generation

SIZES = (100, 1_000, 5_000, 20_000)
NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


def symbol(index: int) -> str:
    return f"T{index:06d}"


def scenario(size: int) -> tuple[RuleSet, Observed]:
    weight = round(0.9 / size, 8)
    rules = RuleSet.model_validate(
        {
            "account": {"id": "DU1234567"},
            "risk": {
                "max_order_value": 50_000,
                "max_position_fraction": 0.25,
                "max_risk_per_trade_fraction": 0.02,
                "max_daily_loss_fraction": 0.05,
                "max_orders_per_minute": 3000,
            },
            "allocations": {
                "core": {
                    "capital": {"fraction_of_nav": 0.95},
                    # Many small targets need a band narrower than their weight.
                    "drift": {"absolute": weight / 4},
                    "min_trade_value": 0,
                    "targets": {symbol(i): weight for i in range(size)},
                }
            },
        }
    )
    generation = rule_generation(rules.allocations["core"])
    nav = 1_000.0 * size * 20
    prices = {symbol(i): 10.0 + (i % 490) for i in range(size)}
    positions = {
        symbol(i): Position(symbol(i), float(int(0.9 * nav / size / prices[symbol(i)] * (i % 3))))
        for i in range(0, size, 2)
    }
    orders = tuple(
        WorkingOrder(
            order_id=i + 1,
            symbol=symbol(i),
            action="BUY",
            order_type="LMT",
            total_quantity=1,
            limit_price=prices[symbol(i)],
            order_ref=order_ref("core", generation, f"{symbol(i)}.abc123"),
        )
        for i in range(0, size, 10)
    )
    observed = Observed(
        account_id="DU1234567",
        net_liquidation=nav,
        cash=nav,
        buying_power=nav,
        day_start_nav=nav,
        positions=positions,
        working_orders=orders,
        quotes={s: Quote(s, p, NOW - timedelta(seconds=5)) for s, p in prices.items()},
        contracts={s: ContractFacts(s, con_id=i + 1) for i, s in enumerate(prices)},
    )
    return rules, observed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    print(f"{'targets':>8}  {'intents':>8}  {'plan ms':>9}  {'µs/target':>9}  {'growth':>7}")
    previous: tuple[int, float] | None = None
    for size in SIZES:
        rules, observed = scenario(size)
        best = float("inf")
        intents = 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = plan(rules, observed, NOW)
            best = min(best, time.perf_counter() - started)
            intents = len(result.intents)
        growth = "" if previous is None else f"{(best / previous[1]) / (size / previous[0]):.2f}"
        print(
            f"{size:>8,}  {intents:>8,}  {best * 1000:>9.1f}  {best / size * 1e6:>9.1f}  "
            f"{growth:>7}"
        )
        previous = (size, best)
    print("growth = (time ratio) / (size ratio) against the previous row; 1.00 is linear")


if __name__ == "__main__":
    main()
