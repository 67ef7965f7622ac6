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
    (0, 300): "2c9bf09a02ce5eab1dc38dc06ae97f8618dbed8f84fea967a1c6777fb5dfedeb",
    (0, 3000): "c1050af0eaf7a71a67fa76bd964f9b65a707ac3541514b73bc426ee26a7d2361",
    (1, 300): "fa6c42a43f2af6bd5ea4a4e4439403e5d85d6d6968be6b056d4da4d837d1a4ea",
    (1, 3000): "119e3c7e79829b6d6f45e6ca97bff1976213b87a31e4afd366a41ed9d9dc2506",
    (2, 300): "cac74a7dd043d3d305ad5bb7580570e0a0c0822d7199a8423ad906d5e9782396",
    (2, 3000): "acd6bfbb275b1a5bb29281d89b56bd8f311b4f0c5045e77247342cf49c9c683a",
    (3, 300): "af5e10c289c22a0aedc729d580e2ae76bb4628a11aeadaa311e3c606b4567db7",
    (3, 3000): "a677d7fcbad3b8fbcffcf69111c02e34de39d9ca66760e67d2f07f1c5a911265",
    (4, 300): "f000adc847983cca08b047f3b5bf87c26b2006a7530903bcd42d1cee501ea7a1",
    (4, 3000): "4aed32cd98b0ffdbbcca608e21addd365d75533dd0b7e0cabecf7129454f38f7",
    (5, 300): "fdb405c52a7fb910b776d489576c1510977bcb2065753867197dde3f71886767",
    (5, 3000): "ddd5cd4b13785b0ac54c1e892a044137c078746e9d41bd1114535cbc22b461a8",
    (6, 300): "70c69a1295433c87ba0882ec504def5bb90d849370843a387488131d9ea88da3",
    (6, 3000): "096e82cd497a60a849825621d725e9b28afa7c8848e4cce290896300b5c711bb",
    (7, 300): "ef6bdd6a26dedcb11ceb95f77776c95960dd948c9c10a2549c8528e8aef193db",
    (7, 3000): "c827523730fc9c0ed52672987b6e075eb0676798745bb20dacf81cad343e9c63",
}


@pytest.mark.parametrize(("seed", "size"), sorted(EXPECTED))
def test_the_plan_of_a_large_random_account_is_unchanged(seed: int, size: int) -> None:
    rules, observed = random_account(seed, size)
    result = plan(rules, observed, NOW)
    assert len(result.intents) > size // 4
    digest = hashlib.sha256(plan_text(result).encode()).hexdigest()
    assert digest == EXPECTED[(seed, size)]
