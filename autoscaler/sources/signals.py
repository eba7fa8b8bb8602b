"""The services' metric sources, as the app and the controllers see them:

    follow(sources)   the sources the services name this round: MQTT topics are followed
                      (topics.py), Prometheus queries asked (prometheus.py); what no service
                      names any more is forgotten
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
from collections.abc import Callable, Iterable
from typing import NamedTuple

from autoscaler.control.spec import MetricSource
from autoscaler.errors import Faults
from autoscaler.settings import MqttSettings
from autoscaler.sources.prometheus import Queries
from autoscaler.sources.scrape import Scrapes, value_of
from autoscaler.sources.topics import Heard, Topics, parse
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
    ) -> None:
        self._interval = interval
        self._now, self._wall = now, wall
        self.topics = Topics(mqtt, now=now, wall=wall, faults=faults)
        self.queries = Queries(interval=interval, now=now, faults=faults)
        self.scrapes = Scrapes(interval=interval, now=now, faults=faults)
        self._since: dict[str, float] = {}  # source name -> when it was first asked for

    async def follow(self, sources: Iterable[MetricSource]) -> None:
        wanted = list(sources)
        names = {s.name for s in wanted}
        for gone in set(self._since) - names:
            del self._since[gone]
        for source in wanted:
            self._since.setdefault(source.name, self._now())
        await self.topics.want({s.topic for s in wanted if s.topic is not None})
        await asyncio.gather(
            self.queries.ask(
                (s.url, s.query) for s in wanted if s.url is not None and s.query is not None
            ),
            self.scrapes.ask(s.url for s in wanted if s.source == "scrape" and s.url is not None),
        )

    async def run(self) -> None:
        """Follow the MQTT topics until cancelled (Prometheus is asked by `follow`)."""
        await self.topics.run()

    def read(self, source: MetricSource) -> Signal:
        """The source's value as the policy should see it."""
        max_age = source.max_age if source.max_age is not None else 3 * self._interval
        now = self._now()
        members = self._members(source)
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
            where = f"{member.name}: " if source.topic not in (None, member.name) else ""
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

    def _members(self, source: MetricSource) -> list[_Member]:
        """The values a source is made of now: a topic's (or a wildcard's several), a query's,
        a scraped sample's; none while there is none yet."""
        members: list[_Member] = []
        if source.topic is not None:
            for topic, heard in sorted(self.topics.heard(source.topic).items()):
                members.append(self._reading(topic, heard, source.field))
        elif source.source == "scrape" and source.url is not None and source.sample is not None:
            scraped = self.scrapes.scraped(source.url)
            if scraped is not None:
                value, error = value_of(scraped, source.sample, source.matchers, source.pending)
                if value is not None or error is not None:
                    members.append(_Member(source.sample, value, scraped.at, error))
        elif source.url is not None and source.query is not None:
            answer = self.queries.answer(source.url, source.query)
            if answer is not None:
                members.append(_Member(source.query, answer.value, answer.at, answer.error))
        return members

    def _reading(self, topic: str, heard: Heard, field: str | None) -> _Member:
        """A topic's latest message as a member of its source."""
        try:
            value, published = parse(heard.payload, field)
        except ValueError as exc:
            return _Member(topic, None, heard.at, str(exc))
        if published is not None:
            # The publisher's word, on our monotonic clock; a clock ahead of ours is not younger.
            return _Member(topic, value, heard.at - max(heard.wall - published, 0.0))
        if heard.retained:
            unknown = "a retained value of unknown age (no time in its payload)"
            return _Member(topic, None, -math.inf, unknown)
        return _Member(topic, value, heard.at)


class _Member(NamedTuple):
    """One value a source is made of: a topic's (of a wildcard's several), or a query's."""

    name: str
    value: float | None
    at: float
    """Our monotonic clock when it was measured; -inf when nobody knows."""
    error: str | None = None
