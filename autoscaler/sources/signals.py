"""The services' metric sources, as the app and the controllers see them:

    follow(sources)   the sources the services name this round, handed to their kinds' readers
                      (registry.py): MQTT topics followed, Prometheus queries asked, endpoints
                      scraped; what no service names any more is forgotten
    read(source)      its value now, as the policy's `Signal`: a number with its age, or
                      missing with the reason

A value is missing (and the count holds: never a scale-down on missing data) when there is none
yet, when it is older than the source's max age, when it is malformed or not finite, and, for a
wildcard topic, when any one of the topics it sums is stale or malformed: a sum without one of
its members would be a drop in demand that nobody measured. The reason names the member and
stays the same while the cause lasts, so that the controller reports it once.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from autoscaler.control.spec import MetricSource
from autoscaler.errors import Faults
from autoscaler.settings import SECRETS_DIR, MqttSettings
from autoscaler.sources.base import Kind, Needs, Reader
from autoscaler.sources.bounds import MAX_PAYLOAD, MAX_SCRAPE
from autoscaler.sources.registry import KINDS
from policies.base import Signal


class Signals:
    def __init__(
        self,
        mqtt: MqttSettings,
        *,
        interval: float,
        now: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        faults: Faults | None = None,
        kinds: Mapping[str, Kind] = KINDS,
        max_payload: int = MAX_PAYLOAD,
        max_scrape: int = MAX_SCRAPE,
        secrets_dir: Path = SECRETS_DIR,
        secrets: Mapping[str, SecretStr] | None = None,
        arrived: Callable[[MetricSource], None] = lambda _: None,
    ) -> None:
        self._interval = interval
        self._now = now
        self._arrived = arrived
        self._wanted: list[MetricSource] = []
        needs = Needs(mqtt, interval, now, wall, faults or Faults(), max_payload, max_scrape,
                      secrets_dir, secrets or {}, self._pushed)  # fmt: skip
        self.readers: dict[str, Reader] = {name: kind.reader(needs) for name, kind in kinds.items()}
        self.options: Mapping[str, type[BaseModel]] = {n: k.options for n, k in kinds.items()}
        """Each kind's options, to parse a service's labels with (control/spec.py)."""
        self._since: dict[str, float] = {}  # source name -> when it was first asked for

    async def follow(self, sources: Iterable[MetricSource]) -> None:
        # Each source once, however many services name it: a push tells it once (`_pushed`).
        wanted = self._wanted = list(dict.fromkeys(sources))
        names = {s.name for s in wanted}
        for gone in set(self._since) - names:
            del self._since[gone]
        for source in wanted:
            self._since.setdefault(source.name, self._now())
        await asyncio.gather(*(
            reader.want([s.options for s in wanted if s.source == kind])
            for kind, reader in self.readers.items()
        ))  # fmt: skip

    def _pushed(self, options: Any) -> None:
        """A reader was pushed a new value of the source these options make: each service
        that reads it is told (`arrived`), to decide on it now."""
        for source in self._wanted:
            if source.options == options:
                self._arrived(source)

    async def run(self) -> None:
        """Run the readers' long-lived parts (MQTT's connection) until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for kind, reader in self.readers.items():
                tg.create_task(reader.run(), name=f"{kind} source")

    def read(self, source: MetricSource) -> Signal:
        """The source's value as the policy should see it."""
        max_age = source.max_age if source.max_age is not None else 3 * self._interval
        now = self._now()
        reader = self.readers.get(source.source)
        members = reader.members(source.options) if reader is not None else []
        if not members:
            waited = now - self._since.get(source.name, now)
            if waited <= max_age:
                return Signal(source.name, None)  # just started following it: not an error yet
            return Signal(
                source.name, None, error=f"no value yet, after its max age of {max_age:g}s"
            )
        ages = [now - m.at for m in members if math.isfinite(m.at)]
        age = max(ages) if ages else None
        for member in members:
            # A wildcard's member names itself; a source made of one is named by the source.
            where = "" if member.name in source.name else f"{member.name}: "
            problem = member.error
            # A malformed value ages like a good one: once old, it is stale as any other.
            if math.isfinite(member.at) and now - member.at > max_age:
                problem = f"no value for longer than its max age of {max_age:g}s"
            if problem is not None:
                return Signal(source.name, None, age=age, error=where + problem)
        total = sum(m.value or 0.0 for m in members)
        if not math.isfinite(total):
            return Signal(source.name, None, age=age, error=f"the sum is {total}")
        return Signal(source.name, total, age=age)
