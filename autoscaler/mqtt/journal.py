"""The latest events, every service's and the process's, exactly as MQTT carries them, each
numbered in the order it happened: what the page's events list and its chart's marks read.

The notifier adds each event as it publishes it (whether or not a broker is configured), so the
page and MQTT can never tell two stories. Bounded: the oldest go first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

SIZE = 2000
"""Events kept, all services together (about 1 kB each)."""


class Journal:
    def __init__(self, size: int = SIZE) -> None:
        self._events: deque[tuple[int, Mapping[str, Any]]] = deque(maxlen=size)
        self.last = 0
        """The number of the newest event (0: none yet)."""

    def add(self, event: Mapping[str, Any]) -> None:
        self.last += 1
        self._events.append((self.last, event))

    def after(self, number: int, limit: int | None = None) -> list[dict[str, Any]]:
        """The events numbered above `number`, oldest first, each with its number as `seq`;
        only the newest `limit` of them with a limit."""
        found = [{**event, "seq": n} for n, event in self._events if n > number]
        return found[-limit:] if limit is not None else found

    def of(self, actor: str, since: float) -> list[dict[str, Any]]:
        """One actor's events (a service: `project/name`) since `since` (wall time), oldest
        first."""
        return [
            {**event, "seq": n}
            for n, event in self._events
            if event.get("Actor", {}).get("ID") == actor and event.get("timeNano", 0) / 1e9 >= since
        ]
