"""Per-container CPU, CFS throttling and memory samples, each over a window of our own readings.

The fast path reads the container's cgroup files (cgroups.py): tens of microseconds a container.
The stats API, which blocks about a second per call and costs the engine CPU, is the fallback
for containers whose cgroup files are not readable here (a remote engine, or no access to the
host's /proc). Either way CPU percent comes from our own successive readings, so both paths
measure the same window.

A window normally runs from one round to the next. `restart` starts the windows of some
containers afresh, now: after a scale action, so that the next samples show the load as it is
spread over the new count (a window that straddled the action would mix the old count's load
into it), and so that a new replica is measured from its first moments on. A window shorter
than `min_window` (WINDOW_SHARE of an interval, and never under MIN_WINDOW) gives no CPU figure
yet; it is left to grow until the next round, or the look the backend takes once it is long
enough (backends/compose/backend.py), so that no decision rests on the first instants after an
action, while the load is still moving onto the new replicas.

What no decision reads, only the page, the history and the state show (the network's bytes a
second, and the memory of a container without a memory limit, which has no percent), is read
in turn: each container's at its first round and then once in about SHOWN seconds, a share of
the containers each round, and shown as last read in between. Those are the dearest files
(net/dev and v1's memory.stat, ~10 µs each): at 1,000 containers, read every round, they cost
more than everything else the sampling reads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiodocker

from autoscaler.backends.docker.cgroups import CgroupFiles, CgroupLocator, Counters
from autoscaler.backends.docker.client import LIBRARY_ERRORS
from autoscaler.control.replicas import Replica, Sample
from policies.records import record

logger = logging.getLogger(__name__)

_API_CONCURRENCY = 32
MIN_WINDOW = 0.4
"""Seconds: CPU over less would rest on a handful of CFS periods."""
WINDOW_SHARE = 0.6
"""A window must span this share of an interval to be measured."""
SHOWN = 10.0
"""Seconds, about, between two readings of a container's counters that only are shown."""


@record
class Reading:
    """A container's counters, and when we read them (our monotonic clock)."""

    counters: Counters
    at_ns: int


@dataclass(slots=True)
class Shown:
    """What is only shown of a container, as last read: its memory in use, and its network's
    bytes a second between the two last readings of its counters (`net`, the later one)."""

    turn: int
    """Which round, of every `Collector.turns`, reads it."""
    memory: int | None = None
    received: float | None = None
    sent: float | None = None
    net: Reading | None = None

    def update(self, reading: Reading, min_window: float) -> None:
        """Take what `reading` read of what is shown (its None counters were not read)."""
        counters = reading.counters
        if counters.memory is not None:
            self.memory = counters.memory
        if counters.received is None and counters.sent is None:
            return
        before = self.net
        if before is None:
            self.net = reading
            return
        elapsed = reading.at_ns - before.at_ns
        if elapsed < min_window * 1e9:
            return  # too close to the last (a look between rounds): the next spans more
        self.received = _rate(counters.received, before.counters.received, elapsed)
        self.sent = _rate(counters.sent, before.counters.sent, elapsed)
        self.net = reading


class Collector:
    def __init__(
        self,
        docker: aiodocker.Docker,
        *,
        use_cgroups: bool = True,
        interval: float = 0.0,
        clock: Callable[[], int] = time.monotonic_ns,
        unlimited_memory: bool = True,
        locator: CgroupLocator | None = None,
    ) -> None:
        """`unlimited_memory`: read the memory of containers without a memory limit too (their
        bytes in use, shown: no percent without a limit, so no policy reads them), in turn. The
        cgroup path skips those files otherwise: v1's memory.stat is a dear read. `locator`:
        where the cgroup files are found (this host's /proc by default)."""
        self._docker = docker
        self._clock = clock
        self._unlimited_memory = unlimited_memory
        self.min_window = max(MIN_WINDOW, WINDOW_SHARE * interval)
        """Seconds a window must span to give a CPU figure."""
        self._locator = (locator or CgroupLocator()) if use_cgroups else None
        self._files: dict[str, tuple[int, CgroupFiles | None]] = {}  # id -> (pid, files)
        self._last: dict[str, Reading] = {}  # id -> where its window starts
        self._shown: dict[str, Shown] = {}
        # (An interval under MIN_WINDOW counts as MIN_WINDOW: at most SHOWN / MIN_WINDOW turns.)
        self.turns = max(1, round(SHOWN / max(interval, MIN_WINDOW))) if interval > 0 else 1
        """Rounds between two readings of what a container only shows."""
        self._round = 0
        self._api_slots = asyncio.Semaphore(_API_CONCURRENCY)

    async def sample(self, replicas: Iterable[Replica], *, every: bool = True) -> dict[str, Sample]:
        """One sample per running replica, over its window; the next window starts now.
        `every`: these are all the replicas followed (a round), so the windows and files of any
        other container, gone by now, are dropped, and it is some containers' turn to read what
        they show. A look samples a few services between rounds (every=False): the others'
        windows go on to the next round, which would otherwise find none and measure nothing,
        and their files stay open."""
        running = [r for r in replicas if r.running]
        if every:
            live = {r.id for r in running}
            for gone in set(self._last) - live:
                del self._last[gone]
            for gone in set(self._shown) - live:
                del self._shown[gone]
            for gone in set(self._files) - live:
                self._drop(gone)
            self._round += 1
        samples: dict[str, Sample] = {}
        last, min_window = self._last, self.min_window
        for replica, reading, source in await self._read(running, shown=every):
            previous = last.get(replica.id)
            # A look keeps what it read of a container a round has shown already; one it sees
            # first (a new replica) still has its first round, which reads all it shows.
            shown = self._shown_of(replica.id) if every else self._shown.get(replica.id)
            counters = reading.counters
            read_shown = (
                counters.memory is not None
                or counters.received is not None
                or counters.sent is not None
            )
            if shown is not None and read_shown:
                shown.update(reading, min_window)
            sample = sample_of(replica, previous, reading, source, min_window, shown)
            if (
                previous is None
                or sample.cpu is not None
                or counters.cpu_ns < previous.counters.cpu_ns
            ):
                last[replica.id] = reading
            samples[replica.id] = sample
        return samples

    async def preview(self, replicas: Iterable[Replica]) -> dict[str, Sample]:
        """What a sample would give now, over the windows as they are; they go on."""
        running = [r for r in replicas if r.running]
        return {
            r.id: sample_of(
                r, self._last.get(r.id), reading, source, self.min_window, self._shown.get(r.id)
            )
            for r, reading, source in await self._read(running)
        }

    async def peek(self, replicas: Iterable[Replica]) -> dict[str, Reading]:
        """The running replicas' counters now; their windows go on."""
        return {
            r.id: reading for r, reading, _ in await self._read([r for r in replicas if r.running])
        }

    def _shown_of(self, container_id: str) -> Shown:
        shown = self._shown.get(container_id)
        if shown is None:
            # Turns dealt in order of arrival: the containers of a round are spread evenly.
            shown = self._shown[container_id] = Shown(turn=len(self._shown) % self.turns)
        return shown

    def _shows(self, container_id: str) -> bool:
        """Whether this round reads what the container only shows: at its first, then its turn."""
        shown = self._shown.get(container_id)
        return shown is None or shown.turn == self._round % self.turns

    def forget(self, container_ids: Iterable[str]) -> None:
        """End these containers' windows: the next reading starts new ones."""
        for container_id in container_ids:
            self._last.pop(container_id, None)

    async def restart(self, replicas: Iterable[Replica]) -> None:
        """Start these containers' windows afresh, now."""
        self._last.update(await self.peek(replicas))

    async def _read(
        self, running: list[Replica], *, shown: bool = False
    ) -> list[tuple[Replica, Reading, str]]:
        """`shown`: a round, which reads what some containers only show (at their turn)."""
        out: list[tuple[Replica, Reading, str]] = []
        slow: list[Replica] = []
        clock = self._clock
        for replica in running:
            if (files := self._cgroup_files(replica)) is None:
                slow.append(replica)
                continue
            turn = shown and self._shows(replica.id)
            try:
                # Without a CPU limit nothing throttles it (Sample.throttled is None): those
                # counters are not read; its memory without a limit and its network only at
                # its turn (only shown).
                counters = files.read(
                    throttling=replica.cpu_limit is not None,
                    memory=replica.memory_limit is not None or (turn and self._unlimited_memory),
                    network=turn,
                )
            except (OSError, ValueError, IndexError):
                # The container stopped between the listing and this read.
                self._drop(replica.id)
                continue
            out.append((replica, Reading(counters, clock()), "cgroup"))
        if slow:
            results = await asyncio.gather(*(self._from_api(r) for r in slow))
            out.extend(
                (r, reading, "api") for r, reading in zip(slow, results, strict=True) if reading
            )
        return out

    def _cgroup_files(self, replica: Replica) -> CgroupFiles | None:
        if self._locator is None:
            return None
        cached = self._files.get(replica.id)
        if cached is None or cached[0] != replica.pid:
            # New, or restarted with a new process: find its cgroup (again).
            self._drop(replica.id)
            cached = (replica.pid, self._locator.locate(replica.pid, replica.id))
            self._files[replica.id] = cached
        return cached[1]

    def _drop(self, container_id: str) -> None:
        _, files = self._files.pop(container_id, (0, None))
        if files is not None:
            files.close()

    def close(self) -> None:
        """Close every counter file held open."""
        for container_id in list(self._files):
            self._drop(container_id)

    async def _from_api(self, replica: Replica) -> Reading | None:
        async with self._api_slots:
            try:
                # one-shot (API 1.41+) answers at once instead of waiting for a second reading;
                # aiodocker's stats() does not pass it.
                stats: dict[str, Any] = await self._docker._query_json(
                    f"containers/{replica.id}/stats",
                    params={"stream": "false", "one-shot": "true"},
                )
            except LIBRARY_ERRORS as exc:
                logger.debug("stats of %s failed: %s", replica.name, exc)
                return None
        try:
            cpu_ns = int(stats["cpu_stats"]["cpu_usage"]["total_usage"])
        except (KeyError, TypeError, ValueError):
            return None
        memory_stats = stats.get("memory_stats") or {}
        memory: int | None = None
        if "usage" in memory_stats:
            extra = memory_stats.get("stats") or {}
            inactive = extra.get("total_inactive_file", extra.get("inactive_file", 0))
            memory = max(int(memory_stats["usage"]) - int(inactive), 0)
        throttling = stats["cpu_stats"].get("throttling_data") or {}
        periods, throttled = throttling.get("periods"), throttling.get("throttled_periods")
        received, sent = _network(stats.get("networks"))
        counters = Counters(cpu_ns, memory, periods, throttled, received, sent)
        return Reading(counters, self._clock())


def sample_of(
    replica: Replica,
    previous: Reading | None,
    reading: Reading,
    source: str,
    min_window: float = MIN_WINDOW,
    shown: Shown | None = None,
) -> Sample:
    """CPU as percent of the replica's limit (of one core without one), the share of CFS
    periods throttled and the network's bytes a second, between two readings; none of them on
    the first reading, over a window shorter than `min_window` seconds, or when the counter went
    back (the container restarted). With `shown` (the collector's), the network's rates and
    a memory not read this time are as it last read them."""
    now, memory = reading.counters, reading.counters.memory
    cpu: float | None = None
    throttled = received = sent = None
    if previous is not None:
        before, elapsed = previous.counters, reading.at_ns - previous.at_ns
        if elapsed >= min_window * 1e9 and now.cpu_ns >= before.cpu_ns:
            cores = replica.cpu_limit or 1.0
            cpu = 100.0 * (now.cpu_ns - before.cpu_ns) / elapsed / cores
            throttled = _share(now, before)
            if shown is None:
                received = _rate(now.received, before.received, elapsed)
                sent = _rate(now.sent, before.sent, elapsed)
    if shown is not None:
        received, sent = shown.received, shown.sent
        if memory is None:
            memory = shown.memory
    memory_percent = (
        100.0 * memory / replica.memory_limit
        if memory is not None and replica.memory_limit
        else None
    )
    return Sample(replica.id, cpu, memory, memory_percent, source, throttled, received, sent)


def _rate(now: int | None, before: int | None, elapsed_ns: int) -> float | None:
    """Bytes a second; None without both readings, or when the counter went back."""
    if now is None or before is None or now < before:
        return None
    return (now - before) * 1e9 / elapsed_ns


def _network(networks: Any) -> tuple[int | None, int | None]:
    """The stats API's bytes received and sent, summed over the container's interfaces."""
    if not isinstance(networks, dict) or not networks:
        return None, None
    try:
        received = sum(int(n["rx_bytes"]) for n in networks.values())
        sent = sum(int(n["tx_bytes"]) for n in networks.values())
    except (KeyError, TypeError, ValueError):
        return None, None
    return received, sent


def _share(now: Counters, before: Counters) -> float | None:
    if now.periods is None or now.throttled is None:
        return None
    if before.periods is None or before.throttled is None:
        return None
    periods = now.periods - before.periods
    return (now.throttled - before.throttled) / periods if periods > 0 else None
