"""The gateway's clock as tradectl's clock for market time (docs/daemon.md, "Clock").

``reqCurrentTime`` answers in whole seconds, so the offset from the host clock is known to about
a second: an offset within ``RESOLUTION`` is taken as none (the host clock agrees with the
gateway), anything larger is applied to every market-time decision, and one beyond
``SKEW_WARNING`` is reported because it means the host's clock is wrong.

The offset is measured at the start of every pass, not once in a while: a clock that jumps (a
host clock stepped by NTP, a simulated gateway's ``advance``) must not leave a pass deciding on
the old time, which could send a market order after the close (found by the simulated week,
docs/reliability.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

RESOLUTION = timedelta(milliseconds=1500)
SKEW_WARNING = timedelta(seconds=5)


@dataclass
class MarketClock:
    offset: timedelta = timedelta(0)
    reported: timedelta | None = None

    def record(self, gateway_time: datetime, sent_at: datetime, received_at: datetime) -> None:
        """One ``reqCurrentTime`` answer, with the host times around the request."""
        midpoint = sent_at + (received_at - sent_at) / 2
        measured = gateway_time - midpoint
        # The gateway truncates to the second: its true time is up to a second later.
        measured += timedelta(milliseconds=500)
        self.offset = measured if abs(measured) > RESOLUTION else timedelta(0)

    def now(self, host_now: datetime) -> datetime:
        return host_now + self.offset

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
