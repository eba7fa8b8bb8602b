"""Service-level measures of demand, from the sources the services' labels name:

    mqtt        the number published on a topic (or at a dotted path of its JSON payload); a
                wildcard topic (`+`, `#`) sums the latest value of every matching topic
    prometheus  an instant PromQL query: its number, or the sum of its vector

MQTT topics are followed as values arrive, on a connection of their own (reconnecting like the
notifier's). Prometheus queries are asked once a round, all at once, before the services step.
A value reaches the policy with its age; one older than its source's max age, one that could not
be read (the source unreachable, a payload that is not a number) reaches it as missing, with the
reason, and the policy holds: it never scales down on missing data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import aiomqtt

from autoscaler.backoff import Reconnect
from autoscaler.mqtt.client import client, tls_context
from autoscaler.settings import MqttSettings
from autoscaler.spec import MetricSource
from policies.base import Signal

logger = logging.getLogger(__name__)

_BACKOFF_START, _BACKOFF_CAP = 0.25, 2.0
_QUERY_TIMEOUT = 5.0  # seconds, and never more than half an interval: a round must not wait


@dataclass(frozen=True, slots=True)
class _Value:
    value: float | None
    at: float
    error: str | None = None


def parse(payload: bytes, field: str | None) -> float:
    """The number in an MQTT payload: the payload itself, or `field` (a dotted path) of its
    JSON. Raises ValueError saying what is wrong."""
    text = payload.decode("utf-8", errors="replace").strip()
    shown = text if len(text) <= 40 else text[:37] + "..."
    if field is None:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"payload {shown!r} is not a number") from None
    else:
        try:
            found: Any = json.loads(text)
        except ValueError:
            raise ValueError(f"payload {shown!r} is not JSON") from None
        for part in field.split("."):
            if not isinstance(found, dict) or part not in found:
                raise ValueError(f"payload {shown!r} has no {field}")
            found = found[part]
        if isinstance(found, bool) or not isinstance(found, int | float):
            raise ValueError(f"{field} in payload {shown!r} is not a number")
        number = float(found)
    if not math.isfinite(number):
        raise ValueError(f"payload {shown!r} is not a finite number")
    return number


class Signals:
    def __init__(
        self,
        mqtt: MqttSettings,
        *,
        interval: float,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._mqtt = mqtt
        self._tls = tls_context(mqtt)
        self._interval = interval
        self._now = now
        self._patterns: dict[str, str | None] = {}  # topic pattern -> JSON field
        self._topics: dict[str, _Value] = {}  # concrete topic -> its latest value
        self._queries: dict[tuple[str, str], _Value] = {}  # (url, query) -> its latest value
        self._since: dict[str, float] = {}  # source name -> when it was first asked for
        self._client: aiomqtt.Client | None = None
        self._wanted = asyncio.Event()

    # -- what the loop calls ------------------------------------------------------------------

    async def follow(self, sources: Iterable[MetricSource]) -> None:
        """Follow these sources from now on: MQTT topics are subscribed (at once if connected),
        Prometheus queries asked, all at once."""
        queries: set[tuple[str, str]] = set()
        for source in sources:
            self._since.setdefault(source.name, self._now())
            if source.source == "mqtt" and source.topic is not None:
                if source.topic not in self._patterns:
                    self._patterns[source.topic] = source.field
                    await self._subscribe(source.topic)
            elif source.url is not None and source.query is not None:
                queries.add((source.url, source.query))
        if self._patterns:
            self._wanted.set()
        await asyncio.gather(*(self._ask(url, query) for url, query in queries))

    def read(self, source: MetricSource) -> Signal:
        """The source's value as the policy should see it."""
        max_age = source.max_age if source.max_age is not None else 3 * self._interval
        now = self._now()
        if source.source == "mqtt":
            assert source.topic is not None
            found = [v for t, v in self._topics.items() if aiomqtt.Topic(t).matches(source.topic)]
        else:
            assert source.url is not None and source.query is not None
            latest = self._queries.get((source.url, source.query))
            found = [latest] if latest is not None else []
        failed = [v.error for v in found if v.error is not None]
        if failed:
            return Signal(source.name, None, error=failed[0])
        fresh = [v for v in found if v.value is not None and now - v.at <= max_age]
        if fresh:
            age = max(now - v.at for v in fresh)
            return Signal(source.name, sum(v.value or 0.0 for v in fresh), age=age)
        # The reasons stay the same while the cause does, so that it is reported once.
        if found:
            age = min(now - v.at for v in found)
            error = f"no value for longer than its max age of {max_age:g}s"
            return Signal(source.name, None, age=age, error=error)
        waited = now - self._since.get(source.name, now)
        if waited <= max_age:
            return Signal(source.name, None)  # just started following it: not an error yet
        return Signal(source.name, None, error=f"no value yet, after its max age of {max_age:g}s")

    # -- MQTT ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the subscribed topics until cancelled; reconnect when the broker goes away."""
        if not self._mqtt.enabled:
            return
        await self._wanted.wait()
        retry = Reconnect(_BACKOFF_START, _BACKOFF_CAP)
        while True:
            try:
                async with client(self._mqtt, self._tls) as mqtt:
                    self._client = mqtt
                    retry.reset()
                    for pattern in list(self._patterns):
                        await mqtt.subscribe(pattern, qos=1)
                    async for message in mqtt.messages:
                        self._receive(str(message.topic), message.payload)
            except aiomqtt.MqttError as exc:
                logger.debug("metric topics: broker connection lost or refused: %s", exc)
            finally:
                self._client = None
            await asyncio.sleep(retry.next())

    async def _subscribe(self, pattern: str) -> None:
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):  # subscribed again on reconnect
                await self._client.subscribe(pattern, qos=1)

    def _receive(self, topic: str, payload: Any) -> None:
        field = next(
            (f for p, f in self._patterns.items() if aiomqtt.Topic(topic).matches(p)), None
        )
        raw = payload if isinstance(payload, bytes) else str(payload).encode()
        try:
            self._topics[topic] = _Value(parse(raw, field), self._now())
        except ValueError as exc:
            logger.warning("metric topic %s: %s", topic, exc)
            self._topics[topic] = _Value(None, self._now(), f"{topic}: {exc}")

    # -- Prometheus ----------------------------------------------------------------------------

    async def _ask(self, url: str, query: str) -> None:
        try:
            value = await _instant(url, query, min(_QUERY_TIMEOUT, self._interval / 2))
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            error = f"{url} did not answer {query!r}: {exc or type(exc).__name__}"
            self._queries[(url, query)] = _Value(None, self._now(), error)
        else:
            self._queries[(url, query)] = _Value(value, self._now())


async def _instant(url: str, query: str, seconds: float) -> float:
    """An instant query's number: a scalar, or the sum of a vector's samples."""
    endpoint = f"{url.rstrip('/')}/api/v1/query"
    timeout = aiohttp.ClientTimeout(total=seconds)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(endpoint, params={"query": query}) as response:
            body = await response.json(content_type=None)
    if body.get("status") != "success":
        raise ValueError(body.get("error") or f"status {response.status}")
    data = body["data"]
    if data["resultType"] == "scalar":
        return float(data["result"][1])
    if data["resultType"] == "vector":
        if not data["result"]:
            raise ValueError("the query matched nothing")
        return sum(float(sample["value"][1]) for sample in data["result"])
    raise ValueError(f"a {data['resultType']} is not one number")
