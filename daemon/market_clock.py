"""The gateway's clock as tradectl's clock for market time (docs/daemon.md, "Clock").

``reqCurrentTime`` answers in whole seconds, so the offset from the host clock is known to about
a second: an offset within ``RESOLUTION`` is taken as none (the host clock agrees with the
gateway), anything larger is applied to every market-time decision, and one beyond
``SKEW_WARNING`` is reported because it means the host's clock is wrong.

Each measurement is anchored on the host's monotonic clock: until the next one, "now" is the
measured market time plus the monotonic time elapsed since, so a host clock stepped between two
measurements (NTP) does not move market time.

The clock is measured at the start of every pass, not once in a while: a clock that jumps (a
simulated gateway's ``advance``) must not leave a pass deciding on the old time, which could send
a market order after the close (found by the simulated week, docs/reliability.md). Two kinds of
pass plan on the anchored clock instead (``anchored_now``) when its measurement is recent, of
the same trading day and not contradicted by the fills' own times, which the gateway stamps: a
pass only fills started, and one only a rule edit started, whose measurement was taken when the
edit began.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tradectl.timezones import trading_day

RESOLUTION = timedelta(milliseconds=1500)
# A pass that must measure the clock, whenever it was measured last.
NO_REUSE = timedelta(0)
SKEW_WARNING = timedelta(seconds=5)
# How old a measurement a pass only fills started may plan on: the default
# `gateway.full_refresh_every`, two timer passes (`schedule.reconcile_every`, 30 s), each of
# which measures. The fills' own times, which the gateway stamps, check it (``anchored_now``).
FILL_CLOCK_MAX_AGE = timedelta(seconds=60)
# How old a measurement a pass only a rule edit started may plan on: the daemon measures when
# the watcher sees the edit begin, a debounce (150 ms) before the pass.
EDIT_CLOCK_MAX_AGE = timedelta(seconds=1)


@dataclass(frozen=True)
class Anchor:
    """The market time of a measurement and the host's monotonic time when it was taken."""

    market_time: datetime
    monotonic: float


@dataclass
class MarketClock:
    offset: timedelta = timedelta(0)
    reported: timedelta | None = None
    anchor: Anchor | None = None
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def record(self, gateway_time: datetime, sent_at: datetime, received_at: datetime) -> None:
        """One ``reqCurrentTime`` answer, with the host times around the request; call it as
        soon as the answer arrives (the anchor's monotonic time is taken now)."""
        midpoint = sent_at + (received_at - sent_at) / 2
        measured = gateway_time - midpoint
        # The gateway truncates to the second: its true time is up to a second later.
        measured += timedelta(milliseconds=500)
        self.offset = measured if abs(measured) > RESOLUTION else timedelta(0)
        self.anchor = Anchor(received_at + self.offset, self.monotonic())

    def now(self, host_now: datetime) -> datetime:
        """Market time: the last measurement plus the monotonic time since; ``host_now`` moved
        by the offset only before the first measurement."""
        if self.anchor is None:
            return host_now + self.offset
        return self._anchored()

    def anchored_now(self, max_age: timedelta, not_before: datetime | None) -> datetime | None:
        """Market time from the anchor alone, or None when a pass must measure instead: no
        measurement yet, one older than ``max_age``, one of another trading day than now, or
        one contradicted by ``not_before`` (the latest time the gateway stamped on a fill):
        then the gateway's clock moved on without us (a simulated gateway's ``advance``).
        A stamp up to ``RESOLUTION`` later than the anchored time is within what the
        measurement can tell apart; "now" is then the stamp."""
        anchor = self.anchor
        if anchor is None or self.monotonic() - anchor.monotonic > max_age.total_seconds():
            return None
        now = self._anchored()
        if trading_day(now) != trading_day(anchor.market_time):
            return None
        if not_before is None or not_before <= now:
            return now
        if not_before - now > RESOLUTION:
            return None
        return not_before

    def _anchored(self) -> datetime:
        assert self.anchor is not None
        elapsed = self.monotonic() - self.anchor.monotonic
        return self.anchor.market_time + timedelta(seconds=elapsed)

    def report_due(self) -> bool:
        """Whether to log the skew: once, and again only when the offset moved by more than
        ``SKEW_WARNING`` since (measured on every pass, a steady skew would flood the log)."""
        if not self.skewed:
            self.reported = None
            return False
        if self.reported is not None and abs(self.offset - self.reported) <= SKEW_WARNING:
            return False
        self.reported = self.offset
        return True

    @property
    def skewed(self) -> bool:
        return abs(self.offset) > SKEW_WARNING

    def describe(self) -> str:
        seconds = self.offset.total_seconds()
        direction = "behind" if seconds > 0 else "ahead of"
        return (
            f"the host clock is {abs(seconds):.0f} s {direction} the gateway's; market time "
            "follows the gateway (fix the host's time sync)"
        )
