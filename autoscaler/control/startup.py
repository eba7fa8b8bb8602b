"""When a service's replicas started, on our clock, and how long they take to start, measured
from the action that created a clone to the first round in which its sample counts (running,
healthy if it has a health check, with a reading): what the state shows, and the horizon a
predictive policy provisions for, since a replica asked for now serves only that much later."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from statistics import median

from autoscaler.control.replicas import Replica

KEPT = 5
"""Start-ups kept: the median of the latest is the service's."""


class Startup:
    def __init__(self) -> None:
        self._created: dict[str, float] = {}  # container id -> when its action began
        self._measured: deque[float] = deque(maxlen=KEPT)
        self._started: dict[tuple[str, float], float] = {}  # (id, StartedAt) -> our clock
        self._median: float | None = None  # of `_measured`: read a round, changed seldom

    def on_our_clock(
        self, replicas: Sequence[Replica], now: float, wall: float
    ) -> dict[str, float]:
        """When each replica started, on the monotonic clock (`now`): the engine says it in
        wall time (`wall` is now on it), which is read once per start, so that a later step of
        the wall clock does not make a replica young again (or old at once)."""
        seen = {}
        for r in replicas:
            if r.started_at > 0:
                key = (r.id, r.started_at)
                seen[key] = self._started.get(key, now - max(wall - r.started_at, 0.0))
        self._started = seen
        return {cid: at for (cid, _), at in seen.items()}

    def created(self, container_ids: Iterable[str], at: float) -> None:
        """Clones made by an action that began at `at` (the monotonic clock)."""
        for container_id in container_ids:
            self._created[container_id] = at

    def counted(
        self, container_ids: Iterable[str], at: float, live: Iterable[str]
    ) -> frozenset[str]:
        """The replicas whose samples count this round (`at`); `live`: every replica there is,
        so that a clone removed before it ever counted is forgotten. The clones an action made
        that count for the first time: fresh, their window began with their first moments."""
        if not self._created:
            return frozenset()  # no clone of an action waits for its first count: most rounds
        first = set()
        for container_id in container_ids:
            began = self._created.pop(container_id, None)
            if began is not None:
                self._measured.append(at - began)
                self._median = median(self._measured)
                first.add(container_id)
        alive = set(live)
        for gone in [c for c in self._created if c not in alive]:
            del self._created[gone]
        return frozenset(first)

    @property
    def waiting(self) -> bool:
        """Whether a clone an action made waits for its first count."""
        return bool(self._created)

    @property
    def seconds(self) -> float | None:
        """The median of the latest start-ups; None before one was measured."""
        return self._median
