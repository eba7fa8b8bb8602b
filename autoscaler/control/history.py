"""One service's recent past, a row a round: what the page's chart draws (`/history`).

A ring of fixed columns, preallocated for the span (an hour by default) at the loop's interval:
numbers in C arrays, not Python objects, 44 bytes a row (the time as a double, the rest as
32-bit floats, NaN for none; counts are small integers, exact in a float). An hour at the
default 5 s interval is 721 rows, 32 kB a service, 3.2 MB for a hundred; at a 1 s interval
158 kB a service, 15.8 MB for a hundred (tests/unit/test_history.py pins the arithmetic).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from typing import Any

from autoscaler.control.state import ServiceState

COLUMNS = (
    "time", "replicas", "desired", "min", "max", "cpu", "memory", "metric", "received", "sent",
)  # fmt: skip
"""What a row holds: wall time, the counts and bounds, CPU and memory (percent of the limit),
the metric's value, and the network's bytes a second received and sent by the service."""

SPAN = 3600.0
"""Seconds of history kept."""
MAX_ROWS = 3601
"""However short the interval, a ring holds no more rows than this."""


class History:
    """The last `span` seconds of one service's states, one row a round."""

    __slots__ = ("_columns", "_next", "_rest", "_size", "capacity", "interval", "span")

    def __init__(self, interval: float, span: float = SPAN) -> None:
        self.span, self.interval = span, interval
        self.capacity = max(2, min(MAX_ROWS, math.ceil(span / interval) + 1))
        nan = [math.nan] * self.capacity
        self._columns = [array("d", nan)] + [array("f", nan) for _ in COLUMNS[1:]]
        self._rest = tuple(self._columns[1:])  # every column but the time: a row's values
        self._next = 0  # where the next row goes
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, state: ServiceState) -> None:
        """The state as a row, a round's: a second state within half an interval (an action's
        end shown soon after its start) takes the place of the first. The oldest row goes when
        the ring is full."""
        self.row(
            state.time, state.replicas, state.desired, state.minimum, state.maximum,
            state.cpu, state.memory, state.metric_value, state.received, state.sent,
        )  # fmt: skip

    def row(self, time: float, *values: float | None) -> None:
        """A row: its time, then the other columns' values in order (COLUMNS), as `add` takes
        them from a state."""
        times, at = self._columns[0], self._next
        if self._size and time - times[at - 1] < self.interval / 2:
            # (at - 1 is the last row: index -1 is the ring's end, where the ring wraps.)
            at, self._size = (at - 1) % self.capacity, self._size - 1
        times[at] = time
        for column, value in zip(self._rest, values, strict=True):
            column[at] = math.nan if value is None else value
        self._next = (at + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    @property
    def _last(self) -> int:
        return (self._next - 1) % self.capacity

    def _rows(self) -> Iterator[int]:
        """Row indices, oldest first."""
        start = (self._next - self._size) % self.capacity
        return ((start + i) % self.capacity for i in range(self._size))

    def since(self, after: float | None = None) -> dict[str, list[Any]]:
        """The rows of the span newer than `after` (wall time), by column, oldest first; None
        where a value is not known. Values are rounded to what a chart can show."""
        times = self._columns[0]
        newest = times[self._last] if self._size else 0.0
        oldest = newest - self.span
        after = -math.inf if after is None else after
        # Compared as they are served (to the millisecond): a client that asks for the rows
        # after the newest time it was given gets none of those again.
        picked = [i for i in self._rows() if times[i] >= oldest and round(times[i], 3) > after]
        out: dict[str, list[Any]] = {"time": [round(times[i], 3) for i in picked]}
        for name, column in zip(COLUMNS[1:], self._columns[1:], strict=True):
            out[name] = [None if math.isnan(v := column[i]) else round(v, 2) for i in picked]
        return out

    @property
    def bytes(self) -> int:
        """Memory the ring's columns take."""
        return sum(c.itemsize * len(c) for c in self._columns)
