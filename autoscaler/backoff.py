"""Waits that grow with failures in a row: 1 failure waits `start`, each further one twice as long,
up to `cap`; a success, or a quiet spell of `quiet` seconds, starts the count over."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    start: float
    cap: float
    quiet: float = float("inf")
    failures: int = 0
    last: float = float("-inf")

    @property
    def wait(self) -> float:
        """Seconds to wait after the last failure before trying again."""
        return min(self.start * 2 ** (self.failures - 1), self.cap) if self.failures else 0.0

    def ready(self, now: float) -> bool:
        if self.failures and now - self.last > self.quiet:
            self.failures = 0
        return now - self.last >= self.wait

    def left(self, now: float) -> float:
        return max(self.wait - (now - self.last), 0.0)

    def failed(self, now: float) -> None:
        self.failures += 1
        self.last = now

    def succeeded(self) -> None:
        self.failures = 0


@dataclass(slots=True)
class Reconnect:
    """Delays between tries to reach the engine or a broker: `start`, doubling up to `cap`, each
    drawn from its upper half so that clients cut off together do not come back together;
    `reset` once connected."""

    start: float
    cap: float
    delay: float = field(init=False)

    def __post_init__(self) -> None:
        self.delay = self.start

    def reset(self) -> None:
        self.delay = self.start

    def next(self) -> float:
        """The seconds to wait now; the next wait doubles."""
        wait = self.delay * random.uniform(0.5, 1.0)
        self.delay = min(self.delay * 2, self.cap)
        return wait
