"""The default pacing (what apply and the daemon use) against IB's 50 messages per second."""

from __future__ import annotations

import random

import pytest

from tests.apply.test_pacer import FakeClock, max_in_any_window
from tradectl.broker_types import Priority
from tradectl.ib.pacer import IB_MESSAGE_LIMIT, Pacer


def test_default_pacing_keeps_a_margin_under_ib_limit_and_loses_nothing_to_late_timers() -> None:
    clock = FakeClock()
    pacer: Pacer[int] = Pacer(clock=clock)
    for number in range(1000):
        pacer.submit(number, Priority.ORDER)
    lateness = random.Random(8)
    sent: list[tuple[float, int]] = []
    while pacer.waiting:
        sent.extend((clock.now, item) for item in pacer.release())
        # The pump's timer fires up to 8 ms late, as it does while the event loop is busy.
        clock.now += (pacer.delay() or 0.0) + lateness.uniform(0.0, 0.008)
    assert [item for _, item in sent] == list(range(1000))
    assert max_in_any_window(sent, 1.0) <= IB_MESSAGE_LIMIT - 1.5
    # 1,000 messages at the 50/s floor take 20 s; the defaults stay within 7 % of it.
    assert sent[-1][0] - sent[0][0] <= 1.07 * 1000 / IB_MESSAGE_LIMIT


def test_after_a_pause_of_one_message_interval_the_first_message_waits_for_nothing() -> None:
    # A fill's pass sends nothing before its protective order (docs/daemon.md, "Clock"), so
    # after a quiet 32 ms even a pacer that was sending at the limit lets it go at once; what
    # follows it in the same pass waits its turn, which keeps every window under IB's 50.
    clock = FakeClock()
    pacer: Pacer[str] = Pacer(clock=clock)
    for number in range(100):
        pacer.submit(f"request {number}", Priority.REQUEST)
    while pacer.waiting:
        pacer.release()
        clock.now += (pacer.delay() or 0.0) + 0.0001
    clock.now += 1.5 / pacer.rate
    pacer.submit("stop", Priority.PROTECTIVE)
    pacer.submit("target", Priority.PROTECTIVE)
    assert pacer.release() == ["stop"]
    assert pacer.delay() == pytest.approx(0.5 / pacer.rate)
