"""Reconnect delays grow exponentially, stay under the cap, are jittered and reset."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradectl.service.backoff import Backoff


def test_delays_grow_to_the_cap_and_reset_after_success() -> None:
    backoff = Backoff(initial=0.5, maximum=8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(10)]
    ceilings = [min(8.0, 0.5 * 2**attempt) for attempt in range(10)]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 8.0
    assert delays[-1] >= 4.0
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_jitter_spreads_retries() -> None:
    delays = {
        Backoff(initial=1, maximum=30, rng=random.Random(seed)).next_delay() for seed in range(20)
    }
    assert len(delays) == 20


@settings(max_examples=50, deadline=None)
@given(
    initial=st.floats(min_value=0.01, max_value=5),
    maximum=st.floats(min_value=5, max_value=600),
    failures=st.integers(min_value=0, max_value=2000),
)
def test_never_exceeds_the_cap_even_after_months_of_failures(
    initial: float, maximum: float, failures: int
) -> None:
    backoff = Backoff(initial=initial, maximum=maximum, rng=random.Random(0))
    backoff.attempt = failures
    assert 0 < backoff.next_delay() <= maximum


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        Backoff(initial=5, maximum=1)
