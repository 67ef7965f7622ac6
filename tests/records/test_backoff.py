"""Retry delays: exponential, capped, jittered, never zero."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tradectl.records.gcs import Backoff


@settings(max_examples=200, deadline=None)
@given(
    initial=st.floats(min_value=0.01, max_value=60),
    cap=st.floats(min_value=0.01, max_value=3600),
    attempts=st.integers(min_value=1, max_value=10_000),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_is_within_half_and_all_of_the_capped_exponential(
    initial: float, cap: float, attempts: int, seed: int
) -> None:
    backoff = Backoff(initial=initial, cap=cap)
    ceiling = min(cap, initial * 2.0 ** min(attempts - 1, 60))

    delay = backoff.delay(attempts, random.Random(seed))

    assert ceiling / 2 <= delay <= ceiling
    assert delay <= cap


def test_delays_double_until_the_cap_and_spread_out() -> None:
    backoff = Backoff(initial=2.0, cap=600.0)
    rng = random.Random(5)
    ceilings = [max(backoff.delay(n, rng) for _ in range(200)) for n in range(1, 12)]

    assert [round(c) for c in ceilings[:5]] == [2, 4, 8, 16, 32]
    assert all(590 < c <= 600 for c in ceilings[9:])
    assert len({round(backoff.delay(3, rng), 3) for _ in range(50)}) > 40
