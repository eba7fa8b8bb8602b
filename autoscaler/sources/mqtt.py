"""A metric source: numbers published on MQTT topics, followed on a connection of their own.

    metric.topic   the topic; `+` and `#` wildcards sum the latest value of every matching topic
    metric.field   a dotted path to the number in a JSON payload; the payload is the number
                   without it

    follow(patterns)  subscribe to new patterns, unsubscribe from those no service names any
                      more, and forget what their topics said
    heard(pattern)    the latest message of every topic the pattern matches
    members(options)  a source's value now: each matching topic's latest number
    run()             follow the broker, reconnecting like the notifier

A message is kept as it came (payload, when, whether it was a retained one) and read per
source, so that two services may read two fields of one topic. An empty payload retracts a
topic (the MQTT way of clearing a retained value): a wildcard no longer sums it.

How fresh a message is: as its publisher says, when its JSON carries `time` (seconds since the
epoch); otherwise from its arrival, unless it was a retained message handed over on
subscription, whose age nobody knows: that one is stale from the start, so that a depth
retained hours ago is never taken for today's after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from autoscaler.errors import Faults, Reconnect
from autoscaler.mqtt.client import client, tls_context
from autoscaler.settings import MqttSettings
from autoscaler.sources.base import Member, Needs
from autoscaler.sources.bounds import MAX_PAYLOAD, finite_or_infinite, parsed

logger = logging.getLogger(__name__)

_BACKOFF_START, _BACKOFF_CAP = 0.25, 2.0
_SHOWN = 40  # characters of a payload quoted in a reason


class Options(BaseModel):
    """An MQTT source's own labels."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    topic: str = Field(alias="metric.topic", min_length=1)
    field: str | None = Field(default=None, alias="metric.field", min_length=1)

    @field_validator("topic")
    @classmethod
    def _subscribable(cls, topic: str) -> str:
        if (problem := topic_filter_problem(topic)) is not None:
            raise PydanticCustomError(
                "topic", "not an MQTT topic filter: {problem}", {"problem": problem}
            )
        return topic

    @property
    def name(self) -> str:
        return f"mqtt {self.topic}"


def topic_filter_problem(topic: str) -> str | None:
    """What makes `topic` no MQTT topic filter (MQTT 3.1.1, 4.7), or None: a broker and paho
    refuse such a filter, so it is a label error rather than a failure at subscribe time."""
    if not topic:
        return "it is empty"
    if "\x00" in topic:
        return "it contains a NUL character"
    if len(topic.encode("utf-8", errors="surrogatepass")) > 65535:
        return "it is longer than 65535 bytes"
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return "'#' must be a level of its own, and the last one"
        if "+" in level and level != "+":
            return "'+' must be a level of its own"
    return None


@dataclass(frozen=True, slots=True)
class Payload:
    """A message's payload, read once as it arrives: its text, and its JSON where it is JSON;
    each source then takes its number from it (`number`)."""

    text: str
    document: Any = None
    problem: str | None = None
    """Why there is no JSON document: it is none, or nested too deeply to read."""
    refused: str | None = None
    """Why it was not read at all: its size."""

    @property
    def shown(self) -> str:
        text = self.text
        return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "...")

    @classmethod
    def read(cls, payload: bytes, limit: int = MAX_PAYLOAD) -> Payload:
        """The payload read; one over `limit` bytes is refused before any of it is parsed."""
        if len(payload) > limit:
            refused = f"a payload of {len(payload)} bytes, over the limit of {limit}"
            return cls(payload[:_SHOWN].decode("utf-8", errors="replace"), refused=refused)
        text = payload.decode("utf-8", errors="replace").strip()
        try:
            return cls(text, json.loads(text))
        except ValueError:
            return cls(text, None, "is not JSON")
        except RecursionError:
            return cls(text, None, "is JSON nested too deeply to read")


@dataclass(frozen=True, slots=True)
class Heard:
    """A topic's latest message, as it arrived."""

    payload: Payload
    at: float
    """Our monotonic clock when it arrived."""
    wall: float
    """Our wall clock when it arrived, to age a publisher's own `time` by."""
    retained: bool
    """Handed over on subscription: of unknown age unless its payload has a time."""


def parse(payload: bytes, field: str | None) -> tuple[float, float | None]:
    """The number in an MQTT payload and the publisher's time, if it gave one (`number`)."""
    return number(Payload.read(payload), field)


def number(payload: Payload, field: str | None) -> tuple[float, float | None]:
    """The number in a payload and the publisher's time, if it gave one: the payload itself, or
    `field` (a dotted path) of its JSON, whose `time` is when it was measured. Raises ValueError
    saying what is wrong."""
    shown = payload.shown
    if payload.refused is not None:
        raise ValueError(payload.refused)
    if field is None:
        try:
            value = float(payload.text)
        except ValueError:
            raise ValueError(f"payload {shown} is not a number") from None
        published = None
    else:
        if payload.problem is not None:
            raise ValueError(f"payload {shown} {payload.problem}")
        found = body = payload.document
        for part in field.split("."):
            if not isinstance(found, dict) or part not in found:
                raise ValueError(f"payload {shown} has no {field}")
            found = found[part]
        if not _is_number(found):
            raise ValueError(f"{field} in payload {shown} is not a number")
        value = finite_or_infinite(found)
        stamp = body.get("time")
        if stamp is not None and not (
            _is_number(stamp) and math.isfinite(finite_or_infinite(stamp))
        ):
            raise ValueError(f"time in payload {shown} is not seconds since the epoch")
        published = finite_or_infinite(stamp) if stamp is not None else None
    if not math.isfinite(value):
        raise ValueError(f"payload {shown} is not a finite number")
    return value, published


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def matches(topic: str, pattern: str) -> bool:
    """MQTT's matching of a topic to a filter; a filter that is none matches nothing (Options
    refuses such labels, so this is only a guard)."""
    try:
        return aiomqtt.Topic(topic).matches(pattern)
    except ValueError:
        return False


class Topics:
    def __init__(
        self,
        mqtt: MqttSettings,
        *,
        now: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        faults: Faults | None = None,
        limit: int = MAX_PAYLOAD,
        arrived: Callable[[Options], None] = lambda _: None,
    ) -> None:
        self._mqtt = mqtt
        self._arrived = arrived
        self._options: list[Options] = []  # the sources named this round
        self._limit = limit  # bytes of a payload read at most
        self._tls = tls_context(mqtt)
        self._now, self._wall = now, wall
        self._faults = faults or Faults()
        self._patterns: set[str] = set()
        self._heard: dict[str, Heard] = {}  # concrete topic -> its latest message
        self._client: aiomqtt.Client | None = None
        self._wanted = asyncio.Event()

    @classmethod
    def made(cls, needs: Needs) -> Topics:
        return cls(needs.mqtt, now=needs.now, wall=needs.wall, faults=needs.faults,
                   limit=needs.max_payload, arrived=needs.arrived)  # fmt: skip

    async def want(self, wanted: Sequence[Options]) -> None:
        self._options = list(dict.fromkeys(wanted))
        await self.follow({o.topic for o in wanted})

    def members(self, options: Options) -> list[Member]:
        """The source's value now: every matching topic's latest number, sorted by topic."""
        return [
            self._reading(t, h, options.field) for t, h in sorted(self.heard(options.topic).items())
        ]

    def _reading(self, topic: str, heard: Heard, field: str | None) -> Member:
        """A topic's latest message as a member of its source."""
        try:
            value, published = number(heard.payload, field)
        except ValueError as exc:
            return Member(topic, None, heard.at, str(exc))
        if published is not None:
            # The publisher's word, on our monotonic clock; a clock ahead of ours is not younger.
            return Member(topic, value, heard.at - max(heard.wall - published, 0.0))
        if heard.retained:
            unknown = "a retained value of unknown age (no time in its payload)"
            return Member(topic, None, -math.inf, unknown)
        return Member(topic, value, heard.at)

    async def follow(self, patterns: set[str]) -> None:
        """Follow exactly these patterns from now on; what only the others matched is forgotten."""
        for gone in self._patterns - patterns:
            await self._unsubscribe(gone)
        for new in patterns - self._patterns:
            await self._subscribe(new)
        self._patterns = set(patterns)
        for topic in [t for t in self._heard if not any(matches(t, p) for p in patterns)]:
            del self._heard[topic]
        if patterns:
            self._wanted.set()

    def heard(self, pattern: str) -> Mapping[str, Heard]:
        return {t: h for t, h in self._heard.items() if matches(t, pattern)}

    async def run(self) -> None:
        """Follow the wanted topics until cancelled; reconnect when the broker goes away."""
        if not self._mqtt.enabled:
            return
        await self._wanted.wait()
        retry = Reconnect(_BACKOFF_START, _BACKOFF_CAP)
        while True:
            try:
                async with client(self._mqtt, self._tls) as mqtt:
                    self._client = mqtt
                    retry.reset()
                    for pattern in sorted(self._patterns):
                        await mqtt.subscribe(pattern, qos=1)
                    async for message in mqtt.messages:
                        raw = _raw(message.payload)
                        read = await parsed(raw, partial(Payload.read, limit=self._limit))
                        self._receive(str(message.topic), raw, message.retain, read)
            except aiomqtt.MqttError as exc:
                logger.debug("metric topics: broker connection lost or refused: %s", exc)
            finally:
                self._client = None
            await asyncio.sleep(retry.next())

    async def _subscribe(self, pattern: str) -> None:
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):  # or on the next connection
                await self._client.subscribe(pattern, qos=1)

    async def _unsubscribe(self, pattern: str) -> None:
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):  # a new connection never subscribes it
                await self._client.unsubscribe(pattern)

    def _receive(
        self, topic: str, payload: Any, retained: bool, read: Payload | None = None
    ) -> None:
        """A message arrived; `read`: its payload, where it was read off the loop."""
        try:
            raw = _raw(payload)
            before = self._heard.pop(topic, None)
            if raw:  # empty: retracted
                read = read or Payload.read(raw, self._limit)
                self._heard[topic] = Heard(read, self._now(), self._wall(), retained)
                if retained or (before is not None and before.payload == read):
                    # Handed over on subscription (of unknown age: no news), or the same value
                    # again (an exporter's period): nothing new to decide on.
                    return
            for options in self._options:
                if matches(topic, options.topic):
                    self._arrived(options)
        except Exception as exc:
            self._faults.failed(f"metric topic {topic}", exc)


def _raw(payload: Any) -> bytes:
    """A message's payload as bytes (aiomqtt hands bytes; None when empty)."""
    if payload is None or isinstance(payload, bytes):
        return payload or b""
    return str(payload).encode()
