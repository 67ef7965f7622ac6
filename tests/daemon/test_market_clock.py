"""The gateway's clock as the market clock (docs/daemon.md, "Clock")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tradectl.market_clock import FILL_CLOCK_MAX_AGE, RESOLUTION, SKEW_WARNING, MarketClock
from tradectl.timezones import TRADING_TIME_ZONE

HOST = datetime(2026, 11, 30, 15, 0, 0, tzinfo=UTC)


class Monotonic:
    """The host's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


def measured(
    gateway_time: datetime,
    round_trip: timedelta = timedelta(0),
    monotonic: Monotonic | None = None,
) -> MarketClock:
    clock = MarketClock(monotonic=monotonic or Monotonic())
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
    # Anchored when the answer came, on the host's clock moved by the offset.
    assert clock.now(HOST) == HOST + timedelta(milliseconds=200) + clock.offset
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


def test_before_the_first_measurement_market_time_is_the_hosts() -> None:
    clock = MarketClock(monotonic=Monotonic())
    assert clock.now(HOST) == HOST
    assert clock.anchored_now(FILL_CLOCK_MAX_AGE, None) is None


def test_between_measurements_market_time_runs_on_the_monotonic_clock() -> None:
    monotonic = Monotonic()
    clock = measured(HOST + timedelta(seconds=30), monotonic=monotonic)
    measured_now = clock.now(HOST)
    monotonic.seconds += 10
    # The host clock stepped back an hour meanwhile (NTP): market time does not follow it.
    assert clock.now(HOST - timedelta(hours=1)) == measured_now + timedelta(seconds=10)


def test_a_fill_pass_plans_on_a_recent_anchor_and_measures_once_it_is_old() -> None:
    monotonic = Monotonic()
    clock = measured(HOST, monotonic=monotonic)
    monotonic.seconds += FILL_CLOCK_MAX_AGE.total_seconds()
    assert clock.anchored_now(FILL_CLOCK_MAX_AGE, None) == HOST + FILL_CLOCK_MAX_AGE
    monotonic.seconds += 0.001
    assert clock.anchored_now(FILL_CLOCK_MAX_AGE, None) is None


def test_a_fill_pass_measures_when_the_anchored_clock_crossed_into_another_trading_day() -> None:
    monotonic = Monotonic()
    before_midnight = datetime(2026, 11, 30, 23, 59, 50, tzinfo=TRADING_TIME_ZONE)
    clock = MarketClock(monotonic=monotonic)
    clock.record(before_midnight, before_midnight, before_midnight)
    monotonic.seconds += 5
    assert clock.anchored_now(FILL_CLOCK_MAX_AGE, None) == before_midnight + timedelta(seconds=5)
    monotonic.seconds += 10
    assert clock.anchored_now(FILL_CLOCK_MAX_AGE, None) is None


def test_a_fill_stamped_later_than_the_anchored_clock_means_the_gateways_clock_moved_on() -> None:
    monotonic = Monotonic()
    clock = measured(HOST, monotonic=monotonic)
    monotonic.seconds += 2
    anchored = HOST + timedelta(seconds=2)
    # Stamped earlier: the fill is in the past, as it should be.
    assert clock.anchored_now(FILL_CLOCK_MAX_AGE, HOST) == anchored
    # Within what a whole-second measurement can tell apart: "now" is the stamp.
    slightly_later = anchored + RESOLUTION
    assert clock.anchored_now(FILL_CLOCK_MAX_AGE, slightly_later) == slightly_later
    # Beyond it (a simulated gateway's advance, say): the pass must measure.
    assert clock.anchored_now(FILL_CLOCK_MAX_AGE, anchored + timedelta(hours=1)) is None
