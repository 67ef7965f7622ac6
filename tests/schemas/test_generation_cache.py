"""A rule's generation and the rule set's are worked out once per object and reused while it
lives (the daemon plans the same validated rules on every pass). An edit is a new object and
gets its own; an object that is gone leaves nothing behind."""

from __future__ import annotations

import gc
import weakref

import pytest
import yaml

from tests.schemas.test_generation_stability import CORE, LADDER, PULLBACK
from tradectl.schemas import models
from tradectl.schemas.models import Allocation, Bracket, RuleSet, Scale, rule_generation


@pytest.fixture
def hashed() -> list[object]:
    """The objects ``counting`` hashed, in order."""
    return []


@pytest.fixture
def counting(hashed: list[object]) -> models._HashPerObject:
    def content_hash(rule: Allocation | Bracket | Scale) -> str:
        hashed.append(rule)
        return models._rule_content_hash(rule)

    return models._HashPerObject(content_hash)


@pytest.mark.parametrize(
    ("model", "text"), [(Allocation, CORE), (Bracket, PULLBACK), (Scale, LADDER)]
)
def test_an_object_is_hashed_once_and_answers_the_same_every_time(
    model: type[Allocation | Bracket | Scale],
    text: str,
    hashed: list[object],
    counting: models._HashPerObject,
) -> None:
    rule = model.model_validate(yaml.safe_load(text))
    first = counting(rule)
    assert first == rule_generation(rule)
    assert [counting(rule) for _ in range(3)] == [first] * 3
    assert hashed == [rule]
    # Another object with the same content: the same hash, worked out for it.
    twin = model.model_validate(yaml.safe_load(text))
    assert counting(twin) == first
    assert hashed == [rule, twin]


def test_an_edited_copy_gets_its_own_generation_not_the_cached_one() -> None:
    rule = Allocation.model_validate(yaml.safe_load(CORE))
    before = rule_generation(rule)
    edited = rule.model_copy(update={"targets": {"SPY": 0.5}})
    validated = Allocation.model_validate({**yaml.safe_load(CORE), "targets": {"SPY": 0.5}})
    assert rule_generation(edited) == rule_generation(validated) != before
    assert rule_generation(rule) == before


def test_the_rule_sets_generation_is_its_content_hash_and_an_edit_changes_it() -> None:
    rules = RuleSet.model_validate(
        {
            "account": {"id": "DU1234567"},
            "risk": {
                "max_order_value": 50_000,
                "max_position_fraction": 0.25,
                "max_risk_per_trade_fraction": 0.02,
                "max_daily_loss_fraction": 0.05,
            },
            "allocations": {"core": yaml.safe_load(CORE)},
        }
    )
    assert rules.generation() == models._rule_set_content_hash(rules)
    assert rules.generation() == rules.generation()
    edited = rules.model_copy(update={"allocations": {}})
    assert edited.generation() == models._rule_set_content_hash(edited) != rules.generation()


def test_objects_that_are_gone_leave_no_entry() -> None:
    generations = models._HashPerObject(models._rule_content_hash)
    for weight in range(200):
        rule = Allocation.model_validate({**yaml.safe_load(CORE), "targets": {"SPY": weight / 1e3}})
        generations(rule)
        assert rule in generations
    assert len(generations) == 1
    del rule
    gc.collect()
    assert len(generations) == 0


def test_an_entry_of_a_dead_object_under_a_reused_id_is_not_taken(
    hashed: list[object], counting: models._HashPerObject
) -> None:
    rule = Bracket.model_validate(yaml.safe_load(PULLBACK))

    class Gone:
        pass

    dead = Gone()
    counting._known[id(rule)] = (weakref.ref(dead), "0123456789")
    del dead
    assert counting(rule) == models._rule_content_hash(rule)
    assert hashed == [rule]
