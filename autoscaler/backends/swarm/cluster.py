"""The Swarm backend, as the app drives it: its services' controllers, run while this instance
holds the cluster lease, on samples the per-node agents publish.

    parts()    its long-lived parts: the cluster lease, the agents' samples
    acts()     this instance holds the cluster lease
    round(tg)  list services and tasks (services.SwarmView) ─► the agents' latest samples
               (agents.AgentFeed) ─► controller.step per service ─► SwarmScaler.scale_to

The controllers are the very ones Compose services get (control/controller.py), on a context whose
backend is Swarm: Swarm places and mends the tasks, so nothing here clones or repairs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import aiodocker

from autoscaler.backends.docker.fence import TERM, Fence
from autoscaler.backends.swarm.agents import AgentFeed
from autoscaler.backends.swarm.lease import SwarmLease
from autoscaler.backends.swarm.services import SwarmScaler, SwarmView
from autoscaler.control.context import Clock, Context
from autoscaler.control.controls import Control, ControlError
from autoscaler.control.fleet import Fleet
from autoscaler.control.keep import Keep
from autoscaler.control.ports import Meter, Notices
from autoscaler.control.replicas import Replica
from autoscaler.control.spec import MetricSource, Sources
from autoscaler.errors import Faults
from autoscaler.labels import ServiceKey
from autoscaler.settings import Settings
from policies.base import Signal

logger = logging.getLogger(__name__)


async def _nothing(*_: Any) -> None:
    """Swarm tasks need no re-inspect after a scale, and their sample windows are the agents'."""


async def is_manager(docker: aiodocker.Docker) -> bool:
    info = await docker.system.info()
    return bool((info.get("Swarm") or {}).get("ControlAvailable"))


class Cluster:
    def __init__(
        self,
        docker: aiodocker.Docker,
        settings: Settings,
        *,
        notifier: Notices,
        metrics: Meter,
        signal: Callable[[MetricSource], Signal],
        sources: Sources,
        faults: Faults,
        clock: Clock,
        instance: str,
    ) -> None:
        """`instance`: this instance's name, the cluster lease's holder."""
        self.view = SwarmView(docker, faults)
        self.lease = SwarmLease(
            docker, settings.cluster_lease, settings.swarm.lease_ttl, holder=instance
        )
        self.feed = AgentFeed(settings.mqtt, interval=settings.interval)
        self.context = Context(
            actuator=SwarmScaler(docker, Fence(self.lease.held)),
            refresh=_nothing,
            restart=_nothing,
            view=self.view.get,
            notifier=notifier,
            metrics=metrics,
            dry_run=settings.dry_run,
            instance=lambda: self.lease.holder,
            signal=signal,
            sources=sources,
            heartbeat=settings.mqtt.heartbeat,
            band=settings.mqtt.state_band,
            clock=clock,
            interval=settings.interval,
            keep=Keep(settings.state_dir) if settings.state_dir else None,
        )
        self.fleet = Fleet(self.context)
        self._faults = faults
        self._stacks = settings.projects
        self.silent: dict[str, str] = {}
        self._error: str | None = None

    def parts(self) -> dict[str, Callable[[], Awaitable[None]]]:
        return {"swarm lease": self.lease.run, "agent samples": self.feed.run}

    def leads(self) -> bool:
        return self.lease.leading

    def acts(self) -> bool:
        """It leads: its view is listed afresh each round."""
        return self.lease.leading

    def problem(self) -> str | None:
        return None

    def instance(self) -> str | None:
        return self.lease.holder

    def mend(self, tg: asyncio.TaskGroup) -> None:
        """Swarm mends its own tasks: nothing between rounds."""

    def due(self) -> float | None:
        """Its samples come from the agents at their own pace: nothing to look at early."""
        return None

    async def look(self, tg: asyncio.TaskGroup) -> None:
        """Nothing is looked at between rounds (see `due`)."""

    def asked(self, keys: Iterable[ServiceKey]) -> None:
        """A Swarm service decides on a pushed value at the next round: its round lists the
        cluster afresh, which a look between rounds would have to do too."""

    def unready(self) -> str | None:
        return None

    def followed(self) -> list[ServiceKey]:
        return list(self.fleet)

    async def control(self, key: ServiceKey, control: Control) -> None:
        """Runtime controls are kept on the engine of Compose services (a record container);
        a Swarm service is paused by its `autoscaler.paused` label, which `docker service
        update --label-add` changes without restarting a task."""
        raise ControlError(
            f"service {key}: runtime controls are for Compose services; pause a Swarm service "
            "with `docker service update --label-add autoscaler.paused=true`"
        )

    def header(self) -> dict[str, Any]:
        return {"swarm": self.status()}

    def close(self) -> None:
        """Nothing of its own to close: the engine client is the app's."""

    async def round(self, tg: asyncio.TaskGroup) -> None:
        """One round for every opted-in Swarm service, guarded: a failure of this backend is
        its own, and the Compose services of this process go on."""
        with self._faults.guard("swarm round"):
            await self._round(tg)

    async def _round(self, tg: asyncio.TaskGroup) -> None:
        try:
            services = await self.view.refresh()
        except Exception as exc:
            # An engine that does not answer, or a listing we cannot read: the Swarm services
            # wait, the Compose services of this process go on.
            self._error = f"swarm services wait: {exc}"
            self._faults.failed("swarm services", exc)
            return
        self._error = None
        self._faults.ok("swarm services")
        if self._stacks:
            services = {k: v for k, v in services.items() if k.project in self._stacks}
        silent = self.feed.silent(self.view.nodes)
        if self.feed.settled:
            for node, name in silent.items() - self.silent.items():
                logger.warning("agent of node %s (%s) is silent: its tasks are unseen", name, node)
            self.silent = silent
        placed = {t.id: t.node or "" for ts in services.values() for t in ts}
        samples, health = self.feed.readings(placed)
        seen = {key: self._as_seen(tasks, health, silent) for key, tasks in services.items()}
        TERM.set(self.lease.term)  # what the actions started now are fenced by (fence.py)
        self.fleet.step(tg, seen, samples)

    def status(self) -> dict[str, Any]:
        return {
            "leading": self.lease.leading,
            "lease": self.lease.name,
            "nodes": dict(sorted(self.view.nodes.items())),
            "silent": dict(sorted(self.silent.items())),
            "error": self._error,
        }

    def _as_seen(
        self, tasks: Sequence[Replica], health: dict[str, str | None], silent: dict[str, str]
    ) -> list[Replica]:
        """Tasks as their agents last saw them: a health check's `starting` or `unhealthy` makes
        a task's sample not ready, as it does for a container on one engine; a task on a node
        whose agent is silent is unseen, so the service cannot shrink on what nobody measured
        (an unready replica holds any scale-down, policies/replicas.py)."""
        seen = []
        for task in tasks:
            node = task.node or ""
            unseen = f"agent of node {silent[node]} silent" if node in silent else None
            seen.append(replace(task, health=health.get(task.id), unseen=unseen))
        return seen
