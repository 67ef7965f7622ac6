"""The broker thread runs jobs one at a time off the daemon's loop; halt and breaker state
round-trip through the journal under the keys the runtime reads."""

from __future__ import annotations

import asyncio
import threading
from datetime import date, datetime
from pathlib import Path

import pytest

from tradectl.journal import Journal
from tradectl.journal.keys import BREAKER_KEY, HALT_KEY
from tradectl.market_clock import EDIT_CLOCK_MAX_AGE, FILL_CLOCK_MAX_AGE, NO_REUSE
from tradectl.service.broker import BrokerThread, clock_reuse, read_safety, write_safety
from tradectl.service.safety import SafetyState
from tradectl.timezones import trading_day_start


def test_jobs_run_in_order_on_the_broker_thread_and_errors_come_back() -> None:
    async def scenario() -> None:
        broker = BrokerThread()
        broker.start()
        try:
            threads: list[str] = []

            def job(value: int) -> int:
                threads.append(threading.current_thread().name)
                return value * 2

            def failing() -> None:
                raise ValueError("the gateway said no")

            results = await asyncio.gather(*(broker.submit(lambda v=v: job(v)) for v in range(5)))
            assert results == [0, 2, 4, 6, 8]
            assert set(threads) == {"broker"}
            with pytest.raises(ValueError, match="the gateway said no"):
                await broker.submit(failing)
        finally:
            await asyncio.to_thread(broker.stop, 5)

    asyncio.run(scenario())


def test_halt_and_breaker_round_trip_through_the_journal(tmp_path: Path) -> None:
    moment = datetime.fromisoformat("2026-11-25T15:00:00+00:00")
    with Journal.open(tmp_path, clock=lambda: moment) as journal:
        assert read_safety(journal) == SafetyState()
        day = trading_day_start(moment).date()
        journal.set_state(f"day_start_nav:{day.isoformat()}", "1000000.0")
        state = SafetyState().halt("maintenance", moment).trip(day, "NAV fell 6%")
        write_safety(journal, state)
        assert journal.get_state(HALT_KEY) is not None
        assert journal.get_state(BREAKER_KEY) == "2026-11-25"
        assert read_safety(journal) == state

        write_safety(journal, read_safety(journal).resumed())
        assert read_safety(journal) == SafetyState()
        assert journal.get_state(HALT_KEY) is None
        assert journal.get_state(BREAKER_KEY) is None
        # The next observation becomes the day's reference, or the breaker would trip again.
        assert journal.get_state(f"day_start_nav:{day.isoformat()}") is None


def test_breaker_of_another_day_is_not_active() -> None:
    state = SafetyState().trip(date(2026, 11, 24), "yesterday")
    assert not state.breaker_active(date(2026, 11, 25))
    assert state.breaker_active(date(2026, 11, 24))


def test_only_a_pass_of_fills_or_of_a_rule_edit_alone_may_skip_measuring_the_clock() -> None:
    assert clock_reuse(frozenset({"fill"})) == FILL_CLOCK_MAX_AGE
    assert clock_reuse(frozenset({"fill", "order-filled"})) == FILL_CLOCK_MAX_AGE
    # A Filled status before its execution: no time the gateway stamped to check the clock by.
    assert clock_reuse(frozenset({"order-filled"})) == NO_REUSE
    # An expiry at the close, a reconnect, a timer: the clock may have moved, measure it.
    assert clock_reuse(frozenset({"fill", "order-cancelled"})) == NO_REUSE
    assert clock_reuse(frozenset({"rules"})) == EDIT_CLOCK_MAX_AGE
    assert clock_reuse(frozenset({"rules", "timer"})) == NO_REUSE
    for reason in ("timer", "connect", "rebalance", "link-restored", "targets file", "resume"):
        assert clock_reuse(frozenset({reason})) == NO_REUSE
