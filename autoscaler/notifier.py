"""MQTT notifications: an event for every scale action and error, a retained state per service,
and a retained online/offline status backed by a last will.

    <prefix>/<project>/<service>/events   one JSON event per action or error (QoS 1)
    <prefix>/<project>/<service>/state    retained: replicas, min, max, cpu, memory, ...
    <prefix>/status                       retained: online / offline (the last will says offline)

`publish` never waits for the broker: messages go to an outbox that `run` delivers in order,
reconnecting with capped backoff while the broker is away, so a broker outage never slows
scaling. Events are bounded (the oldest are dropped, counted and logged); retained state keeps
only the newest message per topic, since a reader only ever needs the latest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiomqtt

from autoscaler.errors import AutoscalerError
from autoscaler.labels import ServiceKey
from autoscaler.settings import MqttSettings

logger = logging.getLogger(__name__)

_BACKOFF_START, _BACKOFF_CAP = 0.5, 30.0


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


def engine_event(
    action: str, key: ServiceKey, attributes: Mapping[str, Any], **extra: Any
) -> dict[str, Any]:
    """An event shaped like the Docker engine's own (`docker events --format json`)."""
    now = time.time_ns()
    attrs = {"project": key.project, "service": key.service}
    attrs.update({k: str(v) for k, v in attributes.items()})
    return {
        "Type": "service",
        "Action": action,
        "Actor": {"ID": str(key), "Attributes": attrs},
        "scope": "local",
        "time": now // 1_000_000_000,
        "timeNano": now,
        **extra,
    }


class Notifier:
    def __init__(self, settings: MqttSettings) -> None:
        self._settings = settings
        self._events: deque[Message] = deque()
        self._retained: OrderedDict[str, Message] = OrderedDict()
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self.connected = False
        self.published = 0
        self.dropped = 0

    def topic(self, key: ServiceKey | None, leaf: str) -> str:
        prefix = self._settings.topic_prefix.rstrip("/")
        return f"{prefix}/{leaf}" if key is None else f"{prefix}/{key.project}/{key.service}/{leaf}"

    # -- what the rest of the service calls; none of these wait ------------------------------

    def publish(self, topic: str, payload: Mapping[str, Any], *, retain: bool = False) -> None:
        if not self._settings.enabled:
            return
        message = Message(topic, json.dumps(payload, sort_keys=True).encode(), retain)
        if retain:
            self._retained.pop(topic, None)
            self._retained[topic] = message
        else:
            if len(self._events) >= self._settings.outbox_size:
                self._events.popleft()
                self.dropped += 1
                logger.warning(
                    "MQTT outbox full (%d events): dropped the oldest; %d dropped so far",
                    self._settings.outbox_size,
                    self.dropped,
                )
            self._events.append(message)
        self._wake.set()

    def event(
        self, key: ServiceKey, action: str, attributes: Mapping[str, Any], **extra: Any
    ) -> None:
        self.publish(self.topic(key, "events"), engine_event(action, key, attributes, **extra))

    def error(self, key: ServiceKey, exc: AutoscalerError) -> None:
        self.event(key, "error", exc.event_attributes(), message=str(exc))

    def state(self, key: ServiceKey, state: Mapping[str, Any]) -> None:
        self.publish(self.topic(key, "state"), state, retain=True)

    @property
    def pending(self) -> int:
        return len(self._events) + len(self._retained)

    # -- delivery --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver the outbox until `close()` and the outbox is empty; reconnect on failure."""
        if not self._settings.enabled:
            return
        delay = _BACKOFF_START
        while True:
            try:
                async with self._client() as client:
                    await self._status(client, "online")
                    self.connected, delay = True, _BACKOFF_START
                    logger.info(
                        "connected to MQTT broker %s:%d", self._settings.host, self._settings.port
                    )
                    if await self._deliver(client):
                        await self._status(client, "offline")
                        return
            except aiomqtt.MqttError as exc:
                if self.connected:
                    logger.warning("MQTT broker connection lost: %s", exc)
                else:
                    logger.warning(
                        "MQTT broker %s:%d unreachable (%s); %d messages waiting, retry in ~%.1fs",
                        self._settings.host, self._settings.port, exc, self.pending, delay,
                    )  # fmt: skip
            self.connected = False
            if self._closed.is_set():
                logger.warning("shutting down with %d MQTT messages undelivered", self.pending)
                return
            # Sleep out the backoff, but go at once for a last try when asked to close.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay * random.uniform(0.5, 1.0)):
                    await self._closed.wait()
            delay = min(delay * 2, _BACKOFF_CAP)

    def close(self) -> None:
        """Ask `run` to deliver what is queued, publish offline, and return."""
        self._closed.set()
        self._wake.set()

    def _client(self) -> aiomqtt.Client:
        s = self._settings
        will = aiomqtt.Will(
            self.topic(None, "status"), self._status_payload("offline"), qos=1, retain=True
        )
        return aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password.get_secret_value() if s.password else None,
            identifier=s.client_id,
            will=will,
            keepalive=s.keepalive,
            timeout=10,
        )

    def _status_payload(self, status: str) -> bytes:
        body = {"status": status, "host": socket.gethostname(), "time": time.time()}
        return json.dumps(body, sort_keys=True).encode()

    async def _status(self, client: aiomqtt.Client, status: str) -> None:
        await client.publish(
            self.topic(None, "status"), self._status_payload(status), qos=1, retain=True
        )

    async def _deliver(self, client: aiomqtt.Client) -> bool:
        """Send queued messages oldest first; True once closing with nothing left to send."""
        while True:
            self._wake.clear()
            while self._events or self._retained:
                if self._events:
                    message = self._events[0]
                else:
                    message = next(iter(self._retained.values()))
                await client.publish(message.topic, message.payload, qos=1, retain=message.retain)
                # Removed only once the broker acknowledged it: a lost connection resends it.
                if message.retain:
                    if self._retained.get(message.topic) is message:
                        del self._retained[message.topic]
                else:
                    self._events.popleft()
                self.published += 1
            if self._closed.is_set():
                return True
            await self._wake.wait()


__all__ = ["Message", "Notifier", "engine_event"]
