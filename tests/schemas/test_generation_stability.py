"""A rule's generation is part of its orderRefs: upgrading tradectl must not change it.

The values below were computed by the first release (these rules were its default rule set);
keys added to the language since then (``reenter``, ``outside_rth``, ``targets_from``) leave the
generation alone while they hold their defaults, and change it like any edit otherwise."""

from __future__ import annotations

import yaml

from tradectl.schemas.models import Allocation, Bracket, Scale, rule_generation

CORE = """
capital: {fraction_of_nav: 0.6}
drift: {absolute: 0.02}
min_trade_value: 500
cash_buffer: {amount: 10000}
order: {type: limit, offset_bps: 10, tif: DAY}
targets: {SPY: 0.25, QQQ: 0.15, IWM: 0.10, TLT: 0.15, GLD: 0.10, MSFT: 0.08, JPM: 0.07}
"""
PULLBACK = """
symbol: NVDA
side: BUY
quantity: 100
entry: {limit: 170.00}
stop_loss: {price: 160.00}
take_profit: {price: 195.00}
tif: GTC
"""
LADDER = """
symbol: AMZN
side: BUY
total_quantity: 200
levels: 5
start_price: 220.00
step: 2.50
tif: GTC
"""


def test_first_release_generations_are_unchanged() -> None:
    assert rule_generation(Allocation.model_validate(yaml.safe_load(CORE))) == "73a2737add"
    assert rule_generation(Bracket.model_validate(yaml.safe_load(PULLBACK))) == "c02cd76b7e"
    assert rule_generation(Scale.model_validate(yaml.safe_load(LADDER))) == "d4f58f53f7"


def test_new_keys_at_their_defaults_keep_the_generation_and_otherwise_change_it() -> None:
    bracket = yaml.safe_load(PULLBACK)
    plain = rule_generation(Bracket.model_validate(bracket))
    assert rule_generation(Bracket.model_validate({**bracket, "outside_rth": False})) == plain
    assert rule_generation(Bracket.model_validate({**bracket, "reenter": "daily"})) == plain
    assert rule_generation(Bracket.model_validate({**bracket, "outside_rth": True})) != plain

    core = yaml.safe_load(CORE)
    plain = rule_generation(Allocation.model_validate(core))
    outside = {**core, "order": {**core["order"], "outside_rth": True}}
    assert rule_generation(Allocation.model_validate(outside)) != plain
