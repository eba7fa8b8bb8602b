"""Per-node agents for Swarm services, and the controller's side of them.

    autoscaler agent   on every node (a global service): twice an interval, sample this node's
                       Swarm task containers by the fast cgroup path (collector.py) and publish
                       them: <prefix>/agents/<node id>/samples, QoS 0, one JSON message
    AgentFeed          on the controller: the latest message of every node; the samples of the
                       nodes heard from within three intervals

The tasks of a node whose agent is silent are unseen (cluster.py): they hold the count, never a
scale-down on what nobody measured. /status names such nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import aiomqtt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autoscaler.backends.docker import client as engine
from autoscaler.backends.docker.client import LIBRARY_ERRORS
from autoscaler.backends.docker.collector import Collector
from autoscaler.backends.docker.replicas import from_inspect
from autoscaler.control.replicas import Replica, Sample
from autoscaler.errors import Reconnect
from autoscaler.labels import SWARM_TASK
from autoscaler.mqtt.client import client, tls_context
from autoscaler.settings import MqttSettings, Settings

logger = logging.getLogger(__name__)

_BACKOFF_START, _BACKOFF_CAP = 0.25, 2.0


def topic(prefix: str, node: str) -> str:
    return f"{prefix.rstrip('/')}/agents/{node}/samples"


async def run_agent(settings: Settings, stop: asyncio.Event) -> None:
    """Sample this node's Swarm task containers twice an interval and publish them, until
    `stop`: so the controller's samples, read once an interval at its own moment, are never
    more than half an interval old, and a new task's first reading comes that much sooner."""
    period = settings.interval / 2
    docker = engine.client(
        settings.docker_host, settings.engine_timeout, settings.docker_api_version
    )
    collector = Collector(docker, interval=period)
    tls = tls_context(settings.mqtt)
    inspected: dict[str, Replica] = {}
    try:
        with engine.engine_errors("reading the node's swarm identity"):
            info = await docker.system.info()
        node = (info.get("Swarm") or {}).get("NodeID") or socket.gethostname()
        hostname = info.get("Name") or socket.gethostname()  # the node's, not the container's
        where = topic(settings.mqtt.topic_prefix, node)
        logger.info("agent of node %s publishing on %s every %.1fs", node, where,
                    period)  # fmt: skip
        retry = Reconnect(_BACKOFF_START, _BACKOFF_CAP)
        while not stop.is_set():
            try:
                async with client(settings.mqtt, tls) as mqtt:
                    retry.reset()
                    next_round = time.monotonic()
                    while not stop.is_set():
                        replicas, health = await _tasks(docker, inspected)
                        samples = await collector.sample(replicas)
                        body = {"node": node, "hostname": hostname,
                                "time": time.time(), "samples": _wire(samples, health)}  # fmt: skip
                        await mqtt.publish(where, json.dumps(body), qos=0)
                        next_round = max(next_round + period, time.monotonic())
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(next_round - time.monotonic()):
                                await stop.wait()
            except (aiomqtt.MqttError, *LIBRARY_ERRORS) as exc:
                logger.warning("agent: %s; retrying", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(retry.next()):
                    await stop.wait()
    finally:
        collector.close()
        await docker.close()


async def _tasks(
    docker: Any, inspected: dict[str, Replica]
) -> tuple[list[Replica], dict[str, str | None]]:
    """This node's running task containers (each inspected once), and their health checks'
    verdicts, read from the listing's status text at no extra cost."""
    listed = await docker.containers.list(filters=json.dumps({"label": [SWARM_TASK]}))
    ids = {c.id for c in listed}
    for gone in set(inspected) - ids:
        del inspected[gone]
    for c in listed:
        if c.id not in inspected:
            inspected[c.id] = from_inspect((await docker.containers.get(c.id))._container)
    health = {c.id: health_of(c._container.get("Status", "")) for c in listed}
    return [inspected[i] for i in ids], health


def health_of(status: str) -> str | None:
    """`Up 3 minutes (healthy)` -> healthy; `(health: starting)` -> starting; None without one."""
    for verdict in ("unhealthy", "health: starting", "healthy"):
        if f"({verdict})" in status:
            return verdict.removeprefix("health: ")
    return None


def _wire(
    samples: Mapping[str, Sample], health: Mapping[str, str | None]
) -> dict[str, dict[str, Any]]:
    return {
        cid: {
            "cpu": s.cpu,
            "memory": s.memory,
            "memory_bytes": s.memory_bytes,
            "throttled": s.throttled,
            "received": s.received,
            "sent": s.sent,
            "source": s.source,
            "health": health.get(cid),
        }
        for cid, s in samples.items()
    }


_CPU = Annotated[float, Field(ge=0, le=25_600, allow_inf_nan=False)]
"""Percent of the limit, or of one core without one: 256 busy cores at most."""
_Memory = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
"""Percent of the memory limit, which the kernel never lets a container pass."""
_Rate = Annotated[float, Field(ge=0, allow_inf_nan=False)]
"""Bytes a second."""


class AgentSample(BaseModel):
    """One task container's reading, as an agent publishes it (`_wire`)."""

    model_config = ConfigDict(frozen=True)

    cpu: _CPU | None
    memory: _Memory | None = None
    memory_bytes: Annotated[int, Field(ge=0)] | None = None
    throttled: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    received: _Rate | None = None
    sent: _Rate | None = None
    source: Annotated[str, Field(max_length=64)] | None = None
    health: Literal["starting", "healthy", "unhealthy"] | None = None


class AgentMessage(BaseModel):
    """What one agent publishes, twice an interval; anything else is no such message."""

    model_config = ConfigDict(frozen=True)

    node: Annotated[str, Field(min_length=1, max_length=128)]
    hostname: Annotated[str, Field(max_length=255)] | None = None
    time: Annotated[float, Field(allow_inf_nan=False)]
    samples: Annotated[dict[str, AgentSample], Field(max_length=10_000)]


@dataclass(frozen=True, slots=True)
class _Heard:
    at: float
    samples: Mapping[str, Sample]
    health: Mapping[str, str | None]


class AgentFeed:
    def __init__(
        self,
        mqtt: MqttSettings,
        *,
        interval: float,
        now: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._mqtt = mqtt
        self._tls = tls_context(mqtt)
        self._interval = interval
        self._now, self._wall = now, wall
        self._skew = max(30.0, 3 * interval)
        """How far a message's time may be from our clock: clocks of a cluster's nodes agree
        within a second or two; a message further off is a replay, or a clock to fix."""
        self._nodes: dict[str, _Heard] = {}
        self._since = now()

    async def run(self) -> None:
        """Follow every agent until cancelled, across broker restarts."""
        retry = Reconnect(_BACKOFF_START, _BACKOFF_CAP)
        while True:
            try:
                async with client(self._mqtt, self._tls) as mqtt:
                    retry.reset()
                    await mqtt.subscribe(topic(self._mqtt.topic_prefix, "+"), qos=0)
                    async for message in mqtt.messages:
                        self._receive(str(message.topic), message.payload)
            except aiomqtt.MqttError as exc:
                logger.debug("agent samples: broker connection lost or refused: %s", exc)
            await asyncio.sleep(retry.next())

    def _receive(self, where: str, payload: Any) -> None:
        """One agent's message on `where`, its node's topic: the node is the topic's (what the
        broker's ACL lets only that agent publish on), never the body's word alone."""
        try:
            body = AgentMessage.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "the message"
            logger.warning("agent samples on %s: a message that is not one (%s: %s); ignored",
                           where, field, first["msg"])  # fmt: skip
            return
        if where != topic(self._mqtt.topic_prefix, body.node):
            logger.warning("agent samples on %s: the message names node %s; ignored", where,
                           body.node)  # fmt: skip
            return
        if abs(self._wall() - body.time) > self._skew:
            logger.warning("agent samples on %s: the message's time is %.0f s from this clock "
                           "(a replay, or a clock to set); ignored", where,
                           self._wall() - body.time)  # fmt: skip
            return
        node = body.hostname or body.node
        samples = {
            cid: Sample(
                cid,
                s.cpu,
                s.memory_bytes,
                s.memory,
                f"{s.source or 'agent'}@{node}",
                s.throttled,
                s.received,
                s.sent,
            )
            for cid, s in body.samples.items()
        }
        health = {cid: s.health for cid, s in body.samples.items()}
        self._nodes[body.node] = _Heard(self._now(), samples, health)
        # A node not heard from lately is silent whether it is remembered or not: forget it.
        for gone in [n for n, heard in self._nodes.items() if not self._fresh(heard)]:
            del self._nodes[gone]

    def _fresh(self, heard: _Heard) -> bool:
        return self._now() - heard.at <= 3 * self._interval

    def readings(
        self, placed: Mapping[str, str]
    ) -> tuple[dict[str, Sample], dict[str, str | None]]:
        """The samples and health-check verdicts of the containers `placed` (id -> the node the
        Swarm runs it on), each as its own node's agent told it lately: an agent speaks for its
        node's tasks only, so one node's topic cannot drive another's services."""
        samples: dict[str, Sample] = {}
        health: dict[str, str | None] = {}
        for cid, node in placed.items():
            heard = self._nodes.get(node)
            if heard is not None and self._fresh(heard) and cid in heard.samples:
                samples[cid], health[cid] = heard.samples[cid], heard.health.get(cid)
        return samples, health

    def silent(self, nodes: Mapping[str, str]) -> dict[str, str]:
        """Of `nodes` (id -> hostname), those whose agent has not been heard from lately."""
        return {
            node: name
            for node, name in nodes.items()
            if (heard := self._nodes.get(node)) is None or not self._fresh(heard)
        }

    @property
    def settled(self) -> bool:
        """Every agent has had three intervals to be heard from since this feed started: a node
        silent before then is not worth a warning yet (its tasks are unseen all the same)."""
        return self._now() - self._since > 3 * self._interval
