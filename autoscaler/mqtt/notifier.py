"""MQTT notifications: an event for every scale action and error, a retained state per service,
and each instance's retained online/offline status backed by its last will.

    <prefix>/<project>/<service>/events   one JSON event per action or error (QoS 1)
    <prefix>/<project>/<service>/state    retained: replicas, min, max, cpu, memory, ...,
                                          `instance`: the one that acts on it
    <prefix>/status/<instance>            retained: online (whether it leads, why it stands by)
                                          / offline (the last will says offline); cleared on a
                                          clean stop

Each instance has a status topic of its own: a will is one connection's, so on a topic shared
by several instances a standby's (or its clean stop) would say `offline` over the leader's
`online`. The shared `<prefix>/status` of earlier releases is cleared once, at the first
connection, so that no reader trusts what it last said.

Every event has an `id` of its own, `<instance>:<n>`, made once when it happens: a resend (a
reconnect, a restart's outbox, a webhook's retry) carries the same one. Each event is handed to
`forward` too (the webhooks, given by the app), whether or not a broker is configured.

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
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiomqtt

from autoscaler.errors import Reconnect
from autoscaler.labels import ServiceKey
from autoscaler.mqtt.client import client, tls_context
from autoscaler.mqtt.journal import Journal
from autoscaler.mqtt.outbox import Message, Outbox
from autoscaler.settings import MqttSettings, instance_name

logger = logging.getLogger(__name__)

# A returned broker is found within about two seconds: the retry waits 0.25 s, doubling to 2 s,
# each between half and all of that (jitter, so that many instances do not knock at once).
_BACKOFF_START, _BACKOFF_CAP = 0.25, 2.0
# While the broker stays away, say so once, then again at most this often.
_REMIND = 60.0


# What a name may not hold as one level of a topic: MQTT's wildcards (a broker refuses a
# publish to them, and paho before it), the level separator (the name would span levels, and
# `a/b` of project `p` would meet service `b` of project `p/a`), NUL, and `%` itself, so that
# the encoding is undone unambiguously.
_ESCAPES = {c: f"%{ord(c):02X}" for c in "%+#/\x00"}


def level(name: str) -> str:
    """A project's or a service's name as one level of a topic: `a+b#c` is `a%2Bb%23c`, as in a
    URL; a name of letters, digits, `-`, `_` and `.` (every name Compose allows) is unchanged."""
    return "".join(_ESCAPES.get(c, c) for c in name)


@dataclass(frozen=True, slots=True)
class Standing:
    """What an instance's status says of it while it is online."""

    leading: bool = False
    """It holds the engine's lease (or runs without one): it acts on the Compose services."""
    swarm_leading: bool | None = None
    """It holds the cluster lease: it acts on the Swarm services (None: it serves none)."""
    standing_by: str | None = None
    """Why it cannot act (a lease it cannot take), while it cannot."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"leading": self.leading}
        if self.swarm_leading is not None:
            out["swarm_leading"] = self.swarm_leading
        if self.standing_by is not None:
            out["standing_by"] = self.standing_by
        return out


def engine_event(
    action: str, key: ServiceKey, attributes: Mapping[str, Any], *, ident: str, **extra: Any
) -> dict[str, Any]:
    """A service's event, shaped like the Docker engine's own (`docker events --format json`),
    with `id`: `ident`, the event's own, unique and made once (see `Notifier.event`)."""
    attrs = {"project": key.project, "service": key.service, **attributes}
    return _shaped("service", action, str(key), attrs, ident=ident, scope=key.scope, **extra)


def _shaped(
    kind: str,
    action: str,
    actor: str,
    attributes: Mapping[str, Any],
    *,
    ident: str,
    scope: str = "local",
    **extra: Any,
) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "id": ident,
        "Type": kind,
        "Action": action,
        "Actor": {"ID": actor, "Attributes": {k: str(v) for k, v in attributes.items()}},
        "scope": scope,
        "time": now // 1_000_000_000,
        "timeNano": now,
        **extra,
    }


class Notifier:
    def __init__(
        self,
        settings: MqttSettings,
        journal: Journal | None = None,
        *,
        instance: str | None = None,
        forward: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        """`instance`: this instance's name (`settings.instance_name`, made here when not
        given): the last level of its status topic, and the first part of its events' ids.
        `forward`: handed every event too, as it is told (the webhooks), broker or none."""
        self._settings = settings
        self.instance = instance or instance_name()
        self._forward = forward
        self._told = 0
        """Events made so far: the last part of the next one's id."""
        self.journal = journal or Journal()
        """Every event told, kept for the page whether or not a broker is configured."""
        self._tls = tls_context(settings)
        self._outbox = Outbox(settings.outbox_size, settings.outbox_path)
        self._retained: OrderedDict[str, Message] = OrderedDict()
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self.connected = False
        self.published = 0
        self.refused = 0
        """Messages paho refused to send (dropped, each logged)."""
        self.failed_connects = 0
        """Connection attempts that failed since start: the outage, as the notifier saw it."""
        self._standing = Standing()
        if settings.enabled:
            # Earlier releases' shared status, cleared once (`online` there may be a dead one's).
            shared = self.topic(None, "status")
            self._retained[shared] = Message(shared, b"", True)

    def topic(self, key: ServiceKey | None, leaf: str) -> str:
        prefix = self._settings.topic_prefix.rstrip("/")
        if key is None:
            return f"{prefix}/{leaf}"
        project = level(key.project)
        namespace = project if key.scope == "local" else f"{key.scope}/{project}"
        return f"{prefix}/{namespace}/{level(key.service)}/{leaf}"

    # -- what the rest of the service calls; none of these wait ------------------------------

    def publish(self, topic: str, payload: Mapping[str, Any], *, retain: bool = False) -> None:
        if not self._settings.enabled:
            return
        message = Message(topic, json.dumps(payload, sort_keys=True).encode(), retain)
        if retain:
            self._retained.pop(topic, None)
            self._retained[topic] = message
        else:
            self._outbox.append(message)
        self._wake.set()

    def event(
        self,
        key: ServiceKey,
        action: str,
        attributes: Mapping[str, Any],
        *,
        instance: str | None,
        **extra: Any,
    ) -> None:
        """An event of the service; `instance` is the autoscaler that acted (the holder of the
        engine's lease, or the cluster's), among the actor's attributes."""
        if instance is not None:
            attributes = {**attributes, "instance": instance}
        event = engine_event(action, key, attributes, ident=self._ident(), **extra)
        self._tell(event)
        self.publish(self.topic(key, "events"), event)

    def fault(self, part: str, exc: BaseException, *, instance: str | None) -> None:
        """A part of the process failed (errors.Faults): `<prefix>/events`, Type `autoscaler`."""
        attributes = {"part": part, "error": type(exc).__name__}
        if instance is not None:
            attributes["instance"] = instance
        event = _shaped(
            "autoscaler", "error", part, attributes, ident=self._ident(), message=f"{part}: {exc}"
        )
        self._tell(event)
        self.publish(self.topic(None, "events"), event)

    def _ident(self) -> str:
        """A new event's id, `<instance>:<n>`: unique (an instance's name is), in the order the
        events happened, and made once, so that every resend of the event carries it."""
        self._told += 1
        return f"{self.instance}:{self._told}"

    def _tell(self, event: Mapping[str, Any]) -> None:
        self.journal.add(event)
        if self._forward is not None:
            self._forward(event)

    @property
    def status_topic(self) -> str:
        """This instance's own status: `<prefix>/status/<instance>`."""
        return f"{self.topic(None, 'status')}/{level(self.instance)}"

    def standing(self, standing: Standing) -> None:
        """Whether this instance leads, and why it cannot act, in its retained status as that
        changes."""
        if standing == self._standing:
            return
        self._standing = standing
        if self._settings.enabled:
            self._online()
            self._wake.set()

    def state(self, key: ServiceKey, state: Mapping[str, Any]) -> None:
        self.publish(self.topic(key, "state"), state, retain=True)

    def clear(self, key: ServiceKey) -> None:
        """An empty retained message: the broker forgets the service's retained state."""
        if not self._settings.enabled:
            return
        topic = self.topic(key, "state")
        self._retained.pop(topic, None)
        self._retained[topic] = Message(topic, b"", True)
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._outbox) + len(self._retained)

    @property
    def dropped(self) -> int:
        return self._outbox.dropped

    # -- delivery --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver the outbox until `close()` and the outbox is empty; reconnect on failure."""
        try:
            if self._settings.enabled:
                await self._run()
        finally:
            self._outbox.close()

    async def _run(self) -> None:
        retry, told = Reconnect(_BACKOFF_START, _BACKOFF_CAP), float("-inf")
        while True:
            try:
                async with self._client() as client:
                    # Connected: the queue goes first, in order; `online` is retained state and
                    # can wait its turn behind the events held during the outage.
                    self.connected, told = True, float("-inf")
                    retry.reset()
                    logger.info(
                        "connected to MQTT broker %s:%d; %d messages to deliver",
                        self._settings.host, self._settings.port, self.pending,
                    )  # fmt: skip
                    if await self._deliver(client):
                        await self._gone(client)
                        return
            except aiomqtt.MqttError as exc:
                self.failed_connects += not self.connected
                if self.connected:
                    logger.warning("MQTT broker connection lost: %s", exc)
                elif time.monotonic() - told >= _REMIND:
                    told = time.monotonic()
                    logger.warning(
                        "MQTT broker %s:%d unreachable (%s); %d messages waiting; retrying "
                        "every %.2g s at most",
                        self._settings.host, self._settings.port, exc, self.pending, _BACKOFF_CAP,
                    )  # fmt: skip
                else:
                    logger.debug("MQTT broker still unreachable: %s", exc)
            self.connected = False
            if self._closed.is_set():
                logger.warning("shutting down with %d MQTT messages undelivered", self.pending)
                return
            # Sleep out the backoff, but go at once for a last try when asked to close.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(retry.next()):
                    await self._closed.wait()

    def close(self) -> None:
        """Ask `run` to deliver what is queued, publish offline, clear the status, return."""
        self._closed.set()
        self._wake.set()

    def _client(self) -> aiomqtt.Client:
        return client(
            self._settings, self._tls, identifier=self._settings.client_id, will=self._will()
        )

    def _will(self) -> aiomqtt.Will:
        """What the broker says for this instance when its connection dies without a goodbye."""
        return aiomqtt.Will(self.status_topic, self._status_payload("offline"), qos=1, retain=True)

    def _status_payload(self, status: str) -> bytes:
        body: dict[str, Any] = {"status": status, "instance": self.instance,
                                "host": socket.gethostname(), "time": time.time()}  # fmt: skip
        if status == "online":
            body |= self._standing.to_dict()
        return json.dumps(body, sort_keys=True).encode()

    def _online(self) -> None:
        """Retained `online`, queued behind what is already waiting."""
        topic = self.status_topic
        self._retained.pop(topic, None)
        self._retained[topic] = Message(topic, self._status_payload("online"), True)

    async def _gone(self, client: aiomqtt.Client) -> None:
        """A clean stop: `offline` for whoever listens now, then the status cleared, so that a
        reader arriving later finds only instances that run (or died: their will's `offline`)."""
        topic = self.status_topic
        await client.publish(topic, self._status_payload("offline"), qos=1, retain=True)
        await client.publish(topic, b"", qos=1, retain=True)

    async def _deliver(self, client: aiomqtt.Client) -> bool:
        """Send queued messages oldest first; True once closing with nothing left to send."""
        self._online()
        while True:
            self._wake.clear()
            while self._outbox or self._retained:
                message = self._outbox.first() or next(iter(self._retained.values()))
                try:
                    await client.publish(
                        message.topic, message.payload, qos=1, retain=message.retain
                    )
                    self.published += 1
                except ValueError as exc:
                    # One no broker takes (paho refuses it before sending: a topic over 64 kB,
                    # say): told and dropped, so that it never stands before every later one.
                    self.refused += 1
                    logger.error("MQTT message to %.200r dropped: %s", message.topic, exc)
                # Removed only once the broker acknowledged it: a lost connection resends it.
                if message.retain:
                    if self._retained.get(message.topic) is message:
                        del self._retained[message.topic]
                else:
                    self._outbox.delivered()
            if self._closed.is_set():
                return True
            await self._wake.wait()
