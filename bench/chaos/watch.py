"""The invariants of a chaos run, checked continuously from the engine's own events and the
broker's messages, never from the autoscaler's word:

    over max          a service never runs more replicas than its max
    user's removed    no container the user made (not a clone) is removed or restarted by
                      anyone but the user (their own commands are marked as theirs)
    same number       no two running containers of a service with one container number
    stale create      no clone created under a lease term other than the one held then (a
                      clone's `autoscaler.term` against the lease's `autoscaler.lease.term`)
    stale action      no action begun by an instance other than the lease's holder, later than
                      a second after another took the lease (an action is told as it ends,
                      with how long it took: one begun before the takeover is told after it)
    left behind       nothing of the project runs after the user's `down`, nor is made later
    events            every action's MQTT event told once (by id), none lost: each scale event's
                      id is unique
    lost jobs         every job pushed is done once, or still waiting, once the queue drained:
                      none lost, none done twice, none held by a worker that never finished it

A violation is kept with what was seen, for the table and for a failing test's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiodocker
import aiohttp
import aiomqtt

INVARIANTS = ("over max", "user's removed", "same number", "stale create", "stale action",
              "left behind", "events", "lost jobs")  # fmt: skip

CLONE_OF = "autoscaler.clone-of"
NUMBER = "com.docker.compose.container-number"
SERVICE = "com.docker.compose.service"
TERM = "autoscaler.term"
LEASE_TERM = "autoscaler.lease.term"
LEASE_HOLDER = "autoscaler.lease.holder"
_TOLD_LATE = 1.0
_BROKEN = (aiodocker.DockerError, aiohttp.ClientError, OSError)
"""The engine's stream broken or the engine away: followed again, never the run's end."""


@dataclass
class Changing:
    """What is fed as it changes and waited on until a condition holds: the chaos run's Watch
    and the Swarm fault's view of the managers."""

    changed: asyncio.Event = field(default_factory=asyncio.Event, kw_only=True)
    """Set at each change and replaced by a new one: a wait began before the change ends."""

    def notify(self) -> None:
        """Wakes whatever waits for a change."""
        self.changed.set()
        self.changed = asyncio.Event()

    async def until(self, condition: Callable[[], bool], within: float) -> bool:
        """Until `condition()` holds, re-checked at each change and at least every half second
        (it may read what changes elsewhere); False past `within`."""
        deadline = time.monotonic() + within
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 0.5)):
                    await self.changed.wait()
        return True


@dataclass
class Watch(Changing):
    """What the engine and the broker said during a run, and the invariants' violations."""

    project: str
    maximum: Mapping[str, int]
    lease: str
    """The lease container's name."""
    running: dict[str, dict[str, tuple[str, bool]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    """service -> container id -> (its number, whether it is a clone), while it runs."""
    lease_term: str | None = None
    lease_holder: str | None = None
    lease_since = 0.0
    """When (wall time, the engine's clock) the holder took the lease."""
    users_own: bool = False
    """The user's own command is under way (compose up, down): what it removes is theirs."""
    down_at: float | None = None
    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    seen_ids: set[str] = field(default_factory=set)
    timeline: dict[str, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))
    """service -> (monotonic time, its running count) at each change: recoveries are read off
    it."""
    told: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    """(action, service) -> how many of its events the broker brought."""
    actions: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    """The worker's latest retained state: what it said it was doing, for a slow recovery."""
    jobs: dict[str, int] = field(default_factory=dict)
    """The jobs' accounting at the end (jobs.py)."""

    def count(self, service: str) -> int:
        return len(self.running[service])

    def violated(self, invariant: str, what: str) -> None:
        self.violations[invariant].append(f"{time.strftime('%H:%M:%S')} {what}")

    def engine(self, event: Mapping[str, Any]) -> None:
        actor, action = event.get("Actor", {}), event.get("Action", "")
        attrs: Mapping[str, str] = actor.get("Attributes", {})
        name = attrs.get("name", "")
        if name == self.lease:
            if action == "create":
                self.lease_term, self.lease_holder = attrs.get(LEASE_TERM), attrs.get(LEASE_HOLDER)
                self.lease_since = event.get("timeNano", 0) / 1e9
            return
        if attrs.get("com.docker.compose.project") != self.project:
            return
        service, ident = attrs.get(SERVICE, "?"), actor.get("ID", "")
        clone = CLONE_OF in attrs
        if self.down_at is not None and action == "create":
            self.violated("left behind", f"{name} created after the user's down")
        if action == "create" and clone and attrs.get(TERM) != self.lease_term:
            self.violated("stale create", f"{name} made under term {attrs.get(TERM)}, the lease's "
                                          f"is {self.lease_term}")  # fmt: skip
        if action == "start":
            number = attrs.get(NUMBER, "?")
            # Another's: an event read again after the stream broke is no second container.
            others = {n for i, (n, _) in self.running[service].items() if i != ident}
            if number in others:
                self.violated("same number", f"{name}: number {number} runs twice")
            self.running[service][ident] = (number, clone)
            if self.count(service) > self.maximum.get(service, 1 << 30):
                self.violated("over max", f"{service}: {self.count(service)} running, max "
                                          f"{self.maximum[service]}")  # fmt: skip
        elif action in ("die", "destroy"):
            self.running[service].pop(ident, None)
        if action in ("start", "die", "destroy"):
            self.timeline[service].append((time.monotonic(), self.count(service)))
        if action in ("destroy", "restart") and not clone and not self.users_own:
            self.violated("user's removed", f"{name}: {action}")
        self.notify()

    def broker(self, topic: str, payload: Mapping[str, Any]) -> None:
        if topic.endswith("/worker/state"):
            self.state = dict(payload)
        if not topic.endswith("/events") or payload.get("Action") not in (
            "scale_up",
            "scale_down",
            "sleep",
            "wake",
            "repair",
            "restore",
            "roll",
        ):
            return
        by = payload.get("Actor", {}).get("Attributes", {}).get("instance")
        # An action is told as it ends: it began `seconds` before (a frozen leader's action
        # that began before the takeover is told late, for what it did before the freeze).
        told = payload.get("timeNano", 0) / 1e9 - float(payload.get("seconds") or 0)
        if (
            by
            and self.lease_holder
            and by != self.lease_holder
            and told > self.lease_since + _TOLD_LATE
        ):
            self.violated("stale action", f"{payload['Action']} told by {by} while "
                                          f"{self.lease_holder} held the lease")  # fmt: skip
        ident = str(payload.get("id", ""))
        if not ident:
            return
        service = payload.get("Actor", {}).get("Attributes", {}).get("service", "?")
        self.told[(payload["Action"], service)] += 1
        if ident in self.seen_ids:
            self.violated("events", f"event {ident} ({payload['Action']}) told twice")
        self.seen_ids.add(ident)
        self.actions += 1

    def unknown(self) -> None:
        """Every service's count unknown from now until the next listing (the engine is away:
        its stream broke, and the last count it told may no longer hold)."""
        for service in self.timeline:
            self.timeline[service].append((time.monotonic(), -1))

    def listed(self) -> None:
        """Every service's count as a listing just found it."""
        for service in (*self.maximum, *self.timeline):
            self.timeline[service].append((time.monotonic(), self.count(service)))

    def reached(self, service: str, counts: set[int], since: float) -> float | None:
        """When (monotonic) `service` first ran one of `counts` at or after `since`; None if
        not yet."""
        timeline = self.timeline[service]
        before = [c for t, c in timeline if t < since]
        if (before[-1] if before else self.count(service)) in counts:
            return since
        return next((t for t, c in timeline if t >= since and c in counts), None)


async def _resync(docker: aiodocker.Docker, watch: Watch) -> None:
    """What runs now, from the engine's listing: at the start, and after the engine's event
    stream broke (a restart of the engine is one of the faults)."""
    listed = await docker.containers.list(
        filters=json.dumps({"label": [f"com.docker.compose.project={watch.project}"]})
    )
    # The lease as it is now: one taken while the stream was broken sent its create unseen.
    for lease in await docker.containers.list(
        all=True, filters=json.dumps({"name": [watch.lease]})
    ):  # fmt: skip
        labels = lease["Labels"] or {}
        if lease["Names"] and lease["Names"][0].lstrip("/") == watch.lease:
            watch.lease_term, watch.lease_holder = labels.get(LEASE_TERM), labels.get(LEASE_HOLDER)
            watch.lease_since = float(lease["Created"])
    watch.running.clear()
    for c in listed:
        labels = c["Labels"]
        number = labels.get(NUMBER, "?")
        watch.running[labels.get(SERVICE, "?")][c.id] = (number, CLONE_OF in labels)
    watch.listed()
    watch.notify()


async def _engine(docker: aiodocker.Docker, watch: Watch) -> None:
    """The engine's container events into `watch`, followed again whenever the stream breaks."""
    while True:
        try:
            subscriber = docker.events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
            # From just before the listing (the engine's clock is this machine's): nothing that
            # happens between the two is missed; what is read twice changes nothing.
            since = str(int(time.time()) - 1)
            await _resync(docker, watch)
            feed = asyncio.create_task(
                docker.events.run(since=since, filters=json.dumps({"type": ["container"]}))
            )
            try:
                while (event := await subscriber.get()) is not None:
                    watch.engine(event)
            finally:
                await _ended(feed)
        except _BROKEN:
            pass
        await asyncio.sleep(0.5)  # the engine is away: followed again once it answers


async def _broker(broker: tuple[str, int], prefix: str, watch: Watch) -> None:
    """The broker's messages under `prefix` into `watch`, through its outages."""
    while True:
        try:
            async with aiomqtt.Client(*broker) as client:
                await client.subscribe(f"{prefix}/#", qos=1)
                async for message in client.messages:
                    raw = bytes(message.payload or b"")
                    with contextlib.suppress(ValueError):
                        watch.broker(str(message.topic), json.loads(raw) if raw else {})
        except aiomqtt.MqttError:
            await asyncio.sleep(0.5)  # the broker is a fault of the run: back when it is


@contextlib.asynccontextmanager
async def watching(
    docker_host: str, broker: tuple[str, int], prefix: str, watch: Watch
) -> AsyncIterator[Watch]:
    """`watch` fed by the engine's container events and the broker's messages under `prefix`
    until the block ends."""
    docker = aiodocker.Docker(url=docker_host)
    await _resync(docker, watch)
    tasks = [asyncio.create_task(_engine(docker, watch)),
             asyncio.create_task(_broker(broker, prefix, watch))]  # fmt: skip
    try:
        yield watch
    finally:
        try:
            await _ended(*tasks)
        finally:
            await docker.close()


async def _ended(*tasks: asyncio.Task[Any]) -> None:
    """`tasks` cancelled and waited for. Their own cancellation ends here, and so does a broken
    engine or broker; anything else they raised goes on, and so does a cancellation of the
    caller's while it waits (gather raises that one, whatever it returns)."""
    for task in tasks:
        task.cancel()
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, Exception) and not isinstance(outcome, _BROKEN):
            raise outcome
