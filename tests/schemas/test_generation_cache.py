"""``rule_generation`` is worked out once per rule object and reused while that object lives
(the daemon plans the same validated rules on every pass). An edit is a new object and gets its
own generation; a rule that is gone leaves nothing behind."""

from __future__ import annotations

import gc

import pytest
import yaml

from tests.schemas.test_generation_stability import CORE, LADDER, PULLBACK
from tradectl.schemas import models
from tradectl.schemas.models import Allocation, Bracket, Scale, rule_generation


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The rules whose content was hashed, in order."""
    seen: list[object] = []
    content_hash = models._rule_content_hash

    def counting(rule: Allocation | Bracket | Scale) -> str:
        seen.append(rule)
        return content_hash(rule)

    monkeypatch.setattr(models, "_rule_content_hash", counting)
    return seen


@pytest.mark.parametrize(
    ("model", "text"), [(Allocation, CORE), (Bracket, PULLBACK), (Scale, LADDER)]
)
def test_a_rule_is_hashed_once_and_answers_the_same_every_time(
    model: type[Allocation | Bracket | Scale], text: str, hashed: list[object]
) -> None:
    rule = model.model_validate(yaml.safe_load(text))
    first = rule_generation(rule)
    assert [rule_generation(rule) for _ in range(3)] == [first] * 3
    assert hashed == [rule]
    # Another object with the same content has the same generation (its own entry).
    twin = model.model_validate(yaml.safe_load(text))
    assert rule_generation(twin) == first
    assert hashed == [rule, twin]


def test_an_edited_copy_gets_its_own_generation_not_the_cached_one(hashed: list[object]) -> None:
    rule = Allocation.model_validate(yaml.safe_load(CORE))
    before = rule_generation(rule)
    edited = rule.model_copy(update={"targets": {"SPY": 0.5}})
    validated = Allocation.model_validate({**yaml.safe_load(CORE), "targets": {"SPY": 0.5}})
    assert rule_generation(edited) == rule_generation(validated) != before
    assert rule_generation(rule) == before


def test_rules_that_are_gone_leave_no_entry() -> None:
    gc.collect()
    entries = len(models._GENERATIONS)
    for weight in range(200):
        rule = Allocation.model_validate(
            {**yaml.safe_load(CORE), "targets": {"SPY": weight / 1000}}
        )
        rule_generation(rule)
        assert id(rule) in models._GENERATIONS
    del rule
    gc.collect()
    assert len(models._GENERATIONS) == entries


def test_an_entry_left_by_a_dead_rule_under_a_reused_id_is_not_taken(hashed: list[object]) -> None:
    rule = Bracket.model_validate(yaml.safe_load(PULLBACK))
    expected = models._rule_content_hash(rule)
    hashed.clear()

    class Gone:
        pass

    dead = Gone()
    models._GENERATIONS[id(rule)] = (models.weakref.ref(dead), "0123456789")  # type: ignore[arg-type]
    del dead
    assert rule_generation(rule) == expected
    assert hashed == [rule]
