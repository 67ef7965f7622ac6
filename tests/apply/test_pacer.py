from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tradectl.broker_types import Priority
from tradectl.ib.pacer import SLOW_DOWN_FACTOR, SLOW_DOWN_SECONDS, Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def drain(pacer: Pacer[int], clock: FakeClock, step: float = 0.001) -> list[tuple[float, int]]:
    sent: list[tuple[float, int]] = []
    while pacer.waiting:
        sent.extend((clock.now, item) for item in pacer.release())
        delay = pacer.delay()
        clock.now += max(step, delay or 0.0)
    return sent


def test_a_large_plan_goes_out_at_the_configured_rate_not_in_a_burst() -> None:
    clock = FakeClock()
    pacer: Pacer[int] = Pacer(rate=45, burst=1, clock=clock)
    for number in range(500):
        pacer.submit(number, Priority.ORDER)
    sent = drain(pacer, clock)
    assert [item for _, item in sent] == list(range(500))
    duration = sent[-1][0] - sent[0][0]
    assert 499 / 45 - 0.05 <= duration <= 499 / 45 + 0.5
    assert max_in_any_window(sent, 1.0) <= 46


def test_cancels_then_protective_orders_jump_the_queue() -> None:
    clock = FakeClock()
    pacer: Pacer[str] = Pacer(rate=10, burst=1, clock=clock)
    for number in range(5):
        pacer.submit(f"data-{number}", Priority.REQUEST)
    pacer.submit("entry", Priority.ORDER)
    pacer.submit("stop", Priority.PROTECTIVE)
    pacer.submit("cancel", Priority.CANCEL)
    order = [item for _, item in drain(pacer, clock)]
    assert order[:3] == ["cancel", "stop", "entry"]
    assert order[3:] == [f"data-{number}" for number in range(5)]


def test_clear_drops_what_waits() -> None:
    clock = FakeClock()
    pacer: Pacer[int] = Pacer(rate=1, burst=1, clock=clock)
    pacer.submit(1)
    pacer.submit(2)
    assert pacer.release() == [1]
    assert pacer.clear() == [2]
    assert pacer.delay() is None


def max_in_any_window(sent: list[tuple[float, object]], window: float) -> int:
    times = [moment for moment, _ in sent]
    best = 0
    start = 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@settings(max_examples=60, deadline=None)
@given(
    rate=st.integers(min_value=5, max_value=60),
    burst=st.integers(min_value=1, max_value=5),
    arrivals=st.lists(
        st.tuples(st.floats(min_value=0, max_value=3), st.sampled_from(list(Priority))),
        min_size=1,
        max_size=300,
    ),
)
def test_no_one_second_window_exceeds_rate_plus_burst(
    rate: int, burst: int, arrivals: list[tuple[float, Priority]]
) -> None:
    clock = FakeClock()
    pacer: Pacer[int] = Pacer(rate=rate, burst=burst, clock=clock)
    sent: list[tuple[float, object]] = []
    pending = sorted(arrivals, key=lambda arrival: arrival[0])
    index = 0
    while index < len(pending) or pacer.waiting:
        while index < len(pending) and pending[index][0] <= clock.now:
            pacer.submit(index, pending[index][1])
            index += 1
        sent.extend((clock.now, item) for item in pacer.release())
        clock.now += 0.003
    assert len(sent) == len(arrivals)
    assert max_in_any_window(sent, 1.0) <= rate + burst


def test_after_a_slow_down_the_rate_is_halved_for_ten_seconds_then_restored() -> None:
    clock = FakeClock()
    pacer: Pacer[int] = Pacer(rate=40, burst=1.5, clock=clock)
    pacer.slow_down()
    for number in range(800):
        pacer.submit(number, Priority.ORDER)
    sent = drain(pacer, clock)
    assert [item for _, item in sent] == list(range(800))
    slowed = [moment for moment, _ in sent if moment < SLOW_DOWN_SECONDS]
    # About 20 per second for 10 s (the fake clock steps past each due time a little), then 40.
    assert 195 <= len(slowed) <= 202
    assert max_in_any_window([entry for entry in sent if entry[0] < 9.0], 1.0) <= 21
    after = [entry for entry in sent if entry[0] >= SLOW_DOWN_SECONDS + 1.0]
    assert max_in_any_window(after, 1.0) >= 39
    assert not pacer.slowed


def test_a_slow_down_takes_the_burst_away_at_once() -> None:
    clock = FakeClock()
    pacer: Pacer[int] = Pacer(rate=10, burst=5, clock=clock)
    clock.now = 10.0
    pacer.slow_down()
    for number in range(5):
        pacer.submit(number)
    assert pacer.release() == [0]
    assert pacer.delay() == 1 / (10 * SLOW_DOWN_FACTOR)
    assert pacer.slowed


def test_a_second_slow_down_extends_the_slow_period() -> None:
    clock = FakeClock()
    pacer: Pacer[int] = Pacer(rate=10, burst=1, clock=clock)
    pacer.slow_down()
    clock.now = SLOW_DOWN_SECONDS - 1
    pacer.slow_down()
    clock.now = SLOW_DOWN_SECONDS + 1
    assert pacer.current_rate == 10 * SLOW_DOWN_FACTOR
    clock.now = 2 * SLOW_DOWN_SECONDS
    assert pacer.current_rate == 10
