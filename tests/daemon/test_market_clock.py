"""The gateway's clock as the market clock (docs/daemon.md, "Clock")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tradectl.market_clock import SKEW_WARNING, MarketClock

HOST = datetime(2026, 11, 30, 15, 0, 0, tzinfo=UTC)


def measured(gateway_time: datetime, round_trip: timedelta = timedelta(0)) -> MarketClock:
    clock = MarketClock()
    clock.record(gateway_time, HOST, HOST + round_trip)
    return clock


def test_a_host_clock_within_the_gateways_resolution_is_left_alone() -> None:
    clock = measured(HOST)
    assert clock.offset == timedelta(0)
    assert clock.now(HOST) == HOST and not clock.skewed


def test_a_host_clock_behind_the_gateway_is_moved_onto_it_and_reported() -> None:
    clock = measured(HOST + timedelta(seconds=30), round_trip=timedelta(milliseconds=200))
    # Midpoint of the request, and the half second the gateway's whole seconds lose.
    assert clock.offset == timedelta(seconds=30, milliseconds=400)
    assert clock.now(HOST) == HOST + clock.offset
    assert clock.skewed
    assert "30 s behind the gateway's" in clock.describe()


def test_a_small_real_offset_is_applied_but_not_reported() -> None:
    clock = measured(HOST - timedelta(seconds=3))
    assert clock.offset == timedelta(seconds=-2.5)
    assert not clock.skewed


def test_a_skew_is_reported_once_and_again_when_the_gateways_clock_jumps() -> None:
    # Measured on every pass: a steady skew is logged once, a jump (a simulated gateway's
    # advance, a host clock stepped by NTP) again.
    clock = measured(HOST + timedelta(seconds=30))
    assert clock.report_due()
    clock.record(HOST + timedelta(seconds=31), HOST, HOST)
    assert not clock.report_due()
    clock.record(HOST + timedelta(hours=1), HOST, HOST)
    assert clock.report_due()
    clock.record(HOST, HOST, HOST)
    assert not clock.report_due() and clock.reported is None
    clock.record(HOST + SKEW_WARNING * 2, HOST, HOST)
    assert clock.report_due()
