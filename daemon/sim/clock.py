"""The simulated gateway's clock: host time, or a set point that runs on (or stands still).

Between two settings the clock runs at the host's speed from the last set point,
so a live daemon sees time pass; a frozen clock moves only when it is set
(``advance``), which makes tests independent of how long they take.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class SimClock:
    def __init__(
        self,
        start: float | None = None,
        *,
        frozen: bool = False,
        host: Callable[[], float] = time.time,
    ) -> None:
        self._host = host
        self.frozen = frozen
        self._set_at_host = host()
        self._set_to = self._set_at_host if start is None else start

    def now(self) -> float:
        if self.frozen:
            return self._set_to
        return self._set_to + self._host() - self._set_at_host

    def set(self, ts: float) -> None:
        self._set_to = ts
        self._set_at_host = self._host()

    def iso(self) -> str:
        return iso_time(self.now())


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def parse_iso(text: str) -> float:
    """ISO-8601 with a UTC offset (``Z`` allowed) to Unix seconds; a naive time is an error."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} needs a UTC offset, e.g. 2026-11-30T09:30:00-05:00")
    return moment.timestamp()
