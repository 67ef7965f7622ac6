"""The planner's plans on large random accounts, pinned by a digest.

The planner was restructured for speed (issue #17, a linear planner); these digests were taken
from the planner before that change, so the restructured one is shown to give exactly the same
plans: every intent (key, order fields, reason, blocked_by), note and target, in order.

If a deliberate change of planning behaviour alters a digest, check the changed plans by hand
(``plan_text`` shows them) and record the new digest here with the reason in the commit.
"""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta

import pytest

from daemon.planner import plan
from daemon.planner.types import ContractFacts, Observed, Plan, Position, Quote, WorkingOrder
from schemas.models import RuleSet, order_ref, rule_generation
from tests.planner.builders import NOW, rule_set


def random_account(seed: int, size: int) -> tuple[RuleSet, Observed]:
    """Three allocation rules over ``size`` symbols with every kind of working order an
    allocation meets: current and earlier generations, the wrong side or type, partly filled,
    pending cancel, manual; missing and stale quotes, lots and ticks; cash tight enough that
    buys are shared, limits tight enough that orders are sliced and the rate limit blocks."""
    chooser = random.Random(seed)
    symbols = [f"R{index:05d}" for index in range(size)]
    rule_names = ("alpha", "beta", "gamma")
    owner = {symbol: rule_names[index % 3] for index, symbol in enumerate(symbols)}
    targets: dict[str, dict[str, float]] = {name: {} for name in rule_names}
    for symbol in symbols:
        roll = chooser.random()
        weight = 0.0 if roll < 0.05 else round(chooser.uniform(0.2, 2.0) / size, 8)
        targets[owner[symbol]][symbol] = weight
    rules = rule_set(
        risk={
            "max_order_value": chooser.choice([2_000, 20_000, 200_000]),
            "max_position_fraction": 0.25,
            "max_risk_per_trade_fraction": 0.02,
            "max_daily_loss_fraction": 0.05,
            "max_orders_per_minute": chooser.choice([size // 2, 3000]),
        },
        allocations={
            "alpha": {
                "capital": {"fraction_of_nav": 0.5},
                "drift": {"absolute": 0.1 / size},
                "min_trade_value": 0,
                "targets": targets["alpha"],
            },
            "beta": {
                "capital": {"amount": 300_000.0 * size / 100},
                "drift": {"absolute": 0.3 / size},
                "min_trade_value": 50,
                "cash_buffer": {"fraction_of_nav": 0.05},
                "order": {"offset_bps": 25, "tif": "GTC"},
                "targets": targets["beta"],
            },
            "gamma": {
                "capital": {"fraction_of_nav": 0.3},
                "drift": {"absolute": 0.2 / size},
                "order": {"type": "market"},
                "targets": targets["gamma"],
            },
        },
    )
    generations = {name: rule_generation(rules.allocations[name]) for name in rule_names}
    nav = 1_000_000.0 * size / 100
    quotes: dict[str, Quote] = {}
    contracts: dict[str, ContractFacts] = {}
    positions: dict[str, Position] = {}
    orders: list[WorkingOrder] = []
    for index, symbol in enumerate(symbols):
        price = round(chooser.uniform(1, 900), chooser.choice([2, 3, 4]))
        if chooser.random() > 0.02:
            age = timedelta(minutes=20) if chooser.random() < 0.02 else timedelta(seconds=3)
            quotes[symbol] = Quote(symbol, price, NOW - age)
        if chooser.random() > 0.01:
            contracts[symbol] = ContractFacts(
                symbol,
                con_id=index + 1,
                min_tick=chooser.choice([0.01, 0.01, 0.05, 0.0001]),
                lot_size=chooser.choice([1, 1, 1, 10, 100]),
            )
        if chooser.random() < 0.5:
            positions[symbol] = Position(symbol, float(chooser.randint(-5, 400)))
        for _ in range(chooser.choice([0, 0, 0, 1, 1, 2])):
            rule = owner[symbol] if chooser.random() < 0.9 else chooser.choice(rule_names)
            generation = generations[rule] if chooser.random() < 0.8 else "0ld0ld0ld0ld"
            kind = chooser.random()
            ref = (
                None
                if kind < 0.03
                else order_ref(rule, generation, f"{symbol}.{chooser.getrandbits(24):06x}")
            )
            quantity = chooser.randint(1, 300)
            orders.append(
                WorkingOrder(
                    order_id=len(orders) + 1,
                    symbol=symbol,
                    action=chooser.choice(["BUY", "BUY", "SELL"]),
                    order_type=chooser.choice(["LMT", "LMT", "LMT", "MKT", "STP"]),
                    total_quantity=quantity,
                    filled=chooser.choice([0, 0, 0, quantity // 3]),
                    limit_price=round(price * chooser.uniform(0.97, 1.03), 2),
                    aux_price=round(price * 0.9, 2),
                    tif=chooser.choice(["DAY", "GTC"]),
                    order_ref=ref,
                    status=chooser.choice(["Submitted"] * 12 + ["PendingCancel", "Filled"]),
                )
            )
    cash = nav * chooser.choice([0.02, 0.3, 1.0])
    observed = Observed(
        account_id="DU1234567",
        net_liquidation=nav,
        cash=cash,
        buying_power=cash,
        day_start_nav=nav,
        positions=positions,
        working_orders=tuple(orders),
        quotes=quotes,
        contracts=contracts,
        orders_sent_last_minute=chooser.choice([0, 0, 40]),
    )
    return rules, observed


def plan_text(result: Plan) -> str:
    return "\n".join(
        [repr(intent) for intent in result.intents]
        + list(result.notes)
        + [repr(order) for order in result.manual_orders]
        + [repr(decision) for decision in result.targets]
    )


EXPECTED = {
    (0, 300): "32d68d6eff71509309e26a2a8cf94061f752268395cd92b5490d9099950cb0b5",
    (0, 3000): "3c1ce8b9535ef07eedc53d5ce4c35d983347ed6c1bd013b7e53325f51249711d",
    (1, 300): "2410fce4a0e6af0ecd6c2771f25307694d4ec41a6a2e0a53a9e860dc9bf296a6",
    (1, 3000): "07bc6be5d9789dcf0b3109e11ec5051a30e9cc837005dce201c1241a914533b8",
    (2, 300): "dcfe46b411e6a5b0f0c841b04d49b8138b2fa4564dfaeef106d63195003a6902",
    (2, 3000): "fe4638a28a089f8606931fae83adfcfdb9cb05b00325ce9b625f773d30f06cc0",
    (3, 300): "cdaddfc7cc75329c64bc4e96889e55e0e505dfceb81e07f250e3a9e7e2951e7c",
    (3, 3000): "163e61afd028da5162de47376d89ecf133c0e953e2d62b4cc7040dd56d498f0b",
    (4, 300): "683bedf1f6981d5fd79b17532664fb761d44d4f06f8e934dfd62e12330cb981a",
    (4, 3000): "e4a1fd8a74c746dd6741beaa48c91f39b3e278d3c08cfa569d733205935c5241",
    (5, 300): "a2a5d8fe6e0dfac03ec3177103d3b238daa2d07685d41d3bc90fca3ad11347ff",
    (5, 3000): "497dc66cfb6748e841cd2c7dce98e293716c3d5e610b9811511f0f30f20848c2",
    (6, 300): "3fdbf791aa1913746a8add0bd34f56e130a1fa1348f6deea203e471d3da72db6",
    (6, 3000): "fc558d651562d7bf08fd7325a6113da67469b4ced4b6015c55e08e1e0b9b1ea8",
    (7, 300): "e261dbb2c4b45dce2a78ddcfa1f932fd0ba52cd0da92d643e5c159d761a664a1",
    (7, 3000): "deb29c4657abd7780770e5bfea712052a8f202a473e0bb406006355cfe34bd3e",
}


@pytest.mark.parametrize(("seed", "size"), sorted(EXPECTED))
def test_the_plan_of_a_large_random_account_is_unchanged(seed: int, size: int) -> None:
    rules, observed = random_account(seed, size)
    result = plan(rules, observed, NOW)
    assert len(result.intents) > size // 4
    digest = hashlib.sha256(plan_text(result).encode()).hexdigest()
    assert digest == EXPECTED[(seed, size)]
