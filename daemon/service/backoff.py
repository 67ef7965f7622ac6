"""Capped exponential backoff with jitter for reconnecting to the gateway.

Jitter keeps a fleet of daemons (or one daemon and IB's own restart) from retrying in lockstep;
the lower half of each window is kept so a retry never fires immediately after a failure.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError("backoff needs 0 < initial <= maximum")
        if self.multiplier < 1:
            raise ValueError("backoff multiplier must be >= 1")

    def ceiling(self) -> float:
        # The exponent is bounded so that months of failures never overflow a float.
        return min(self.maximum, self.initial * self.multiplier ** min(self.attempt, 64))

    def next_delay(self) -> float:
        ceiling = self.ceiling()
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
