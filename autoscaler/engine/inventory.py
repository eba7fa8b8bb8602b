"""The live set of opted-in containers, kept from one listing plus the engine's event stream.

    connect ──► list (since = engine time) ──► follow events ──► (stream ends or fails)
       ▲                                                               │
       └──────────────── backoff, `ready` cleared ◄────────────────────┘

Events are requested from the moment just before the listing, so nothing that happens between
the two is missed; replaying an event twice is harmless because every event re-inspects its
container. While disconnected `ready` is clear and the control loop does not act.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import aiodocker

from autoscaler import labels
from autoscaler.backoff import Reconnect
from autoscaler.engine.client import LIBRARY_ERRORS, engine_errors, label_filter
from autoscaler.labels import Replica, ServiceKey
from autoscaler.supervisor import Faults

logger = logging.getLogger(__name__)

_BACKOFF_START, _BACKOFF_CAP = 0.5, 30.0
_LIST_CONCURRENCY = 16
# Actions that change nothing a scaling decision reads.
_IGNORED_ACTIONS = frozenset({"attach", "detach", "resize", "top", "export", "commit", "copy"})


class Inventory:
    def __init__(
        self,
        docker: aiodocker.Docker,
        *,
        on_event: Callable[[str, Replica], None] | None = None,
        faults: Faults | None = None,
    ) -> None:
        self._docker = docker
        self._on_event = on_event
        self._faults = faults or Faults()
        self._replicas: dict[str, Replica] = {}
        self.ready = asyncio.Event()
        """Set while the listing is complete and the event stream is followed."""
        self.events_seen = 0
        """Engine events applied since start: shown in /status."""

    def services(self) -> dict[ServiceKey, list[Replica]]:
        """Replicas grouped by service, each list in container-number order."""
        grouped: dict[ServiceKey, list[Replica]] = defaultdict(list)
        for replica in self._replicas.values():
            grouped[replica.key].append(replica)
        for replicas in grouped.values():
            replicas.sort(key=lambda r: (r.number is None, r.number or 0, r.name))
        return dict(grouped)

    def get(self, container_id: str) -> Replica | None:
        return self._replicas.get(container_id)

    async def run(self) -> None:
        """Follow the engine forever; reconnect with capped, jittered backoff."""
        retry = Reconnect(_BACKOFF_START, _BACKOFF_CAP)
        while True:
            try:
                await self._follow()
            except* LIBRARY_ERRORS as group:
                logger.warning(
                    "engine connection lost (%s); retrying in about %.1fs",
                    "; ".join(str(e) or type(e).__name__ for e in group.exceptions),
                    retry.delay,
                )
            else:
                logger.warning("engine event stream ended; re-listing in about %.1fs", retry.delay)
            if self.ready.is_set():
                # It had been working: start the backoff over rather than wait the capped delay.
                self.ready.clear()
                retry.reset()
            await asyncio.sleep(retry.next())

    async def _follow(self) -> None:
        info = await self._docker.system.info()
        since = f"{labels.timestamp(info.get('SystemTime')) - 1:.6f}"
        await self.resync()
        subscriber = self._docker.events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
        filters = label_filter(labels.ENABLE, type=["container"])
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._docker.events.run(since=since, filters=filters))
            self.ready.set()
            logger.info("following engine events; %d opted-in containers", len(self._replicas))
            while (event := await subscriber.get()) is not None:
                self.events_seen += 1
                try:
                    await self._apply(event)
                except LIBRARY_ERRORS:
                    raise  # the engine went away: reconnect and list again
                except Exception as exc:
                    # An event we cannot read must not stop us reading the next one.
                    self._faults.failed("engine events", exc)

    async def resync(self) -> None:
        """Replace the whole view with a fresh listing."""
        listed = await self._docker.containers.list(all=True, filters=label_filter(labels.ENABLE))
        slots = asyncio.Semaphore(_LIST_CONCURRENCY)

        async def inspect(container_id: str) -> Replica | None:
            async with slots:
                return await self._inspect(container_id)

        found = await asyncio.gather(*(inspect(c.id) for c in listed))
        self._replicas = {r.id: r for r in found if r is not None}

    async def refresh(self, container_id: str) -> Replica | None:
        """Re-inspect one container, e.g. right after the actuator created it; an engine that
        fails to answer is an EngineError."""
        with engine_errors(f"refreshing the view of container {container_id[:12]}"):
            return await self._refresh(container_id)

    async def _refresh(self, container_id: str) -> Replica | None:
        replica = await self._inspect(container_id)
        if replica is None:
            self._replicas.pop(container_id, None)
        else:
            self._replicas[container_id] = replica
        return replica

    async def _inspect(self, container_id: str) -> Replica | None:
        try:
            data = await self._docker.containers.get(container_id)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return None
            raise
        try:
            replica = Replica.from_inspect(data._container)
        except Exception as exc:
            # One container we cannot read is left out; every other one is still seen.
            self._faults.failed(f"container {container_id[:12]}", exc)
            return None
        return replica if labels.opted_in(replica.labels) else None

    async def _apply(self, event: Mapping[str, Any]) -> None:
        action = str(event.get("Action", "")).split(":")[0]
        container_id = event.get("id") or event.get("Actor", {}).get("ID", "")
        if action in _IGNORED_ACTIONS or not container_id:
            return
        logger.debug("event %s %s", event.get("Action"), container_id[:12])
        if action == "destroy":
            replica = self._replicas.pop(container_id, None)
        else:
            replica = await self._refresh(container_id)
        if replica is not None and self._on_event is not None:
            self._on_event(action, replica)
