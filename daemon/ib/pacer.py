"""Keep every client message under IB's rate limit, most urgent first.

IB disconnects or answers error 100 when a client sends more than 50 messages per second. Every
message the adapter writes (market data, contract details, orders, cancels, the client's own
start-up requests) passes through one ``Pacer``: a token bucket refilled at ``rate`` per second on
an injected monotonic clock, holding at most ``burst`` tokens. With ``burst`` small, no one-second
window ever carries more than ``rate + burst`` messages, so a large plan goes out at the limit
instead of in bursts.

After IB's error 100 (a message dropped for pacing) the adapter calls ``slow_down``: for
``SLOW_DOWN_SECONDS`` the bucket refills at ``SLOW_DOWN_FACTOR`` times its rate and holds a single
message, so whatever made the gateway count too many (a backlog it read at once) has time to
clear before the rate goes back up (docs/daemon.md, "Pacing").

Waiting messages leave in priority order (cancels, then protective orders, then other orders,
then requests for data), first come first served within a priority. Callers that must keep
several messages in order (the legs of a bracket) give them the same priority.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from tradectl.message_priority import Priority

IB_MESSAGE_LIMIT = 50
# 47/s with room for 1.5 messages: at most 48.5 in any one-second window, so sending-to-counting
# jitter of about 30 ms still stays under IB's 50; the half message of slack absorbs a pump timer
# that fires a little late, which a bucket of exactly one message turns into lost throughput.
DEFAULT_RATE = 47.0
DEFAULT_BURST = 1.5
# After error 100: half the rate, for long enough that the gateway's one-second window has
# emptied several times over.
SLOW_DOWN_FACTOR = 0.5
SLOW_DOWN_SECONDS = 10.0

Item = TypeVar("Item")


@dataclass(order=True)
class _Waiting(Generic[Item]):
    priority: int
    sequence: int
    item: Item = field(compare=False)


class Pacer(Generic[Item]):
    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: float = DEFAULT_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("pacing rate must be positive (messages per second)")
        if burst < 1:
            raise ValueError("pacing burst must be at least 1 message")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._refilled_at = clock()
        self._slow_until: float | None = None
        self._queue: list[_Waiting[Item]] = []
        self._sequence = itertools.count()

    def submit(self, item: Item, priority: Priority = Priority.REQUEST) -> None:
        heapq.heappush(self._queue, _Waiting(int(priority), next(self._sequence), item))

    def release(self) -> list[Item]:
        """Take every waiting item the bucket allows now, most urgent first."""
        self._refill()
        released: list[Item] = []
        while self._queue and self._tokens >= 1:
            self._tokens -= 1
            released.append(heapq.heappop(self._queue).item)
        return released

    def delay(self) -> float | None:
        """Seconds until the next waiting item may go; None when nothing waits."""
        if not self._queue:
            return None
        self._refill()
        return max(0.0, (1 - self._tokens) / self.current_rate)

    def clear(self) -> list[Item]:
        """Drop everything waiting (the connection it was meant for is gone)."""
        dropped = [waiting.item for waiting in sorted(self._queue)]
        self._queue.clear()
        return dropped

    def slow_down(self) -> None:
        """Send at ``SLOW_DOWN_FACTOR`` of the rate, with no burst, for the next
        ``SLOW_DOWN_SECONDS`` (again from now if already slowed)."""
        self._refill()
        self._tokens = min(self._tokens, 1.0)
        self._slow_until = self._clock() + SLOW_DOWN_SECONDS

    @property
    def slowed(self) -> bool:
        return self._slow_until is not None and self._clock() < self._slow_until

    @property
    def current_rate(self) -> float:
        return self.rate * SLOW_DOWN_FACTOR if self.slowed else self.rate

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._refilled_at)
        self._refilled_at = now
        slow_until = self._slow_until
        if slow_until is None:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            return
        slow_part = min(elapsed, max(0.0, slow_until - (now - elapsed)))
        fast_part = elapsed - slow_part
        refill = slow_part * self.rate * SLOW_DOWN_FACTOR + fast_part * self.rate
        if now >= slow_until:
            self._slow_until = None
            self._tokens = min(self.burst, self._tokens + refill)
        else:
            self._tokens = min(1.0, self._tokens + refill)
