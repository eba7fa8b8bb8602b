"""Swarm services: the same labels on the service (`deploy.labels` in a stack file), the same
policies; Swarm places the tasks, the autoscaler decides how many. Talks to a manager.

    SwarmView      the opted-in services and their running tasks, listed each round
    SwarmScaler    `scale_to`: a service update of the replica count, at the version read; an
                   update by someone else in between is retried on the fresh spec, never
                   overwritten blindly. `sleep` and `wake`: to 0 with the label `autoscaler.asleep`
                   on the service, and back to 1 without it

A service is `<stack>/<service>` (the stack from `com.docker.stack.namespace`, `swarm` without
one). Its tasks are its replicas, each keyed by its container's id so that the samples the
per-node agents publish (agents.py) find it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiodocker

from autoscaler import labels
from autoscaler.backends.docker.client import engine_errors
from autoscaler.backends.docker.fence import Fence
from autoscaler.control.replicas import Replica, ScaleResult, counted
from autoscaler.errors import EngineError, Faults
from autoscaler.labels import ASLEEP, ServiceKey

logger = logging.getLogger(__name__)

STACK = "com.docker.stack.namespace"
NO_STACK = "swarm"
_TRIES = 5
# Task states on the way to running: counted (Swarm was asked for them), not yet a sample.
_ON_THE_WAY = {"new", "pending", "assigned", "accepted", "ready", "preparing", "starting"}


def service_key(service: Mapping[str, Any]) -> ServiceKey:
    spec = service["Spec"]
    own = spec.get("Labels") or {}
    stack = own.get(STACK)
    name = spec["Name"]
    if stack:
        return ServiceKey(stack, name.removeprefix(f"{stack}_"), scope="swarm")
    return ServiceKey(NO_STACK, name, scope="swarm")


def task_replica(service: Mapping[str, Any], task: Mapping[str, Any]) -> Replica:
    """A running task as a replica: the service's labels, the task's container and node."""
    spec = service["Spec"]
    limits = (spec.get("TaskTemplate", {}).get("Resources") or {}).get("Limits") or {}
    status = task.get("Status") or {}
    container = (status.get("ContainerStatus") or {}).get("ContainerID") or task["ID"]
    state = status.get("State", "unknown")
    phase = "running" if state == "running" else "starting" if state in _ON_THE_WAY else "exited"
    return Replica(
        id=container,
        name=f"{spec['Name']}.{task.get('Slot') or task['ID'][:12]}",
        key=service_key(service),
        labels={**(spec.get("Labels") or {}), labels.SWARM_SERVICE: spec["Name"]},
        status=phase,
        health=None,
        pid=0,
        started_at=labels.timestamp(status.get("Timestamp")) if state == "running" else 0.0,
        number=task.get("Slot"),
        clone_of=None,
        scheduled=True,
        cpu_limit=(limits.get("NanoCPUs") or 0) / 1e9 or None,
        memory_limit=limits.get("MemoryBytes") or None,
        node=task.get("NodeID") or None,
    )


def asleep_replica(service: Mapping[str, Any]) -> Replica:
    """A service the autoscaler put to 0 has no task: one that never runs stands for it, so
    that its controller has its labels (and can wake it)."""
    spec = service["Spec"]
    return Replica(
        id=f"asleep-{service['ID']}",
        name=f"{spec['Name']} (asleep)",
        key=service_key(service),
        labels={**(spec.get("Labels") or {}), labels.SWARM_SERVICE: spec["Name"]},
        status="exited",
        health=None,
        pid=0,
        started_at=0.0,
        number=None,
        clone_of=None,
        scheduled=True,
        cpu_limit=None,
        memory_limit=None,
    )


class SwarmView:
    def __init__(self, docker: aiodocker.Docker, faults: Faults | None = None) -> None:
        self._docker = docker
        self._faults = faults or Faults()
        self.nodes: dict[str, str] = {}
        """node id -> hostname, of the nodes that run a task of an opted-in service."""
        self._services: dict[ServiceKey, list[Replica]] = {}

    async def refresh(self) -> dict[ServiceKey, list[Replica]]:
        """List the opted-in services and their tasks that Swarm wants running."""
        filters = json.dumps({"label": [labels.ENABLE]})
        with engine_errors("listing swarm services"):
            services = await self._docker._query_json("services", params={"filters": filters})
            tasks: list[dict[str, Any]] = []
            if services:  # only the opted-in services' tasks: a cluster may run many others
                # `ready`: a replacement waiting out the restart delay (see `_one_a_slot`).
                wanted = {"service": [s["ID"] for s in services],
                          "desired-state": ["running", "ready"]}  # fmt: skip
                tasks = await self._docker._query_json(
                    "tasks", params={"filters": json.dumps(wanted)}
                )
            nodes = await self._docker._query_json("nodes")
        hostnames = {n["ID"]: n.get("Description", {}).get("Hostname", n["ID"]) for n in nodes}
        by_service: dict[str, list[Mapping[str, Any]]] = {}
        for task in tasks:
            by_service.setdefault(task["ServiceID"], []).append(task)
        found: dict[ServiceKey, list[Replica]] = {}
        used: dict[str, str] = {}
        for service in services:
            if "Replicated" not in service["Spec"].get("Mode", {}):
                continue  # a global service runs one task a node: nothing to decide
            own = _one_a_slot(by_service.get(service["ID"], []))
            if not own:
                # At 0 by the autoscaler (`min: "0"`, its label on the service): listed, so that
                # it can be woken. At 0 by its owner, as a stopped Compose service: left alone.
                if ASLEEP in (service["Spec"].get("Labels") or {}):
                    found[service_key(service)] = [asleep_replica(service)]
                continue
            part = f"swarm service {service['Spec'].get('Name')}"
            try:
                found[service_key(service)] = [task_replica(service, t) for t in own]
            except Exception as exc:
                # One service we cannot read is left out this round; the others are scaled.
                self._faults.failed(part, exc)
                continue
            self._faults.ok(part)
            # A pending task has no node yet (Swarm found none with room for it).
            placed = {t["NodeID"] for t in own if t.get("NodeID")}
            used.update((node, hostnames.get(node, node)) for node in placed)
        self._services, self.nodes = found, used
        return found

    def services(self) -> dict[ServiceKey, list[Replica]]:
        return self._services

    def get(self, key: ServiceKey) -> list[Replica]:
        return self._services.get(key, [])


class SwarmScaler:
    """The one writer to Swarm services: their replica count."""

    def __init__(self, docker: aiodocker.Docker, fence: Fence | None = None) -> None:
        """`fence`: asked before each update of an action (fence.py); none: every one is sent."""
        self._docker = docker
        self._fence = fence or Fence(lambda: None)

    async def scale_to(
        self, key: ServiceKey, replicas: Sequence[Replica], target: int
    ) -> ScaleResult:
        return await self._update(key, replicas, target)

    async def sleep(self, key: ServiceKey, replicas: Sequence[Replica]) -> ScaleResult:
        """To 0, with the label that says the autoscaler did it (in the same update)."""
        return await self._update(key, replicas, 0, asleep=True)

    async def wake(self, key: ServiceKey, replicas: Sequence[Replica]) -> ScaleResult:
        """To 1, the label gone; the policy takes it from there."""
        return await self._update(key, replicas, 1, asleep=False)

    async def asleep(self, key: ServiceKey) -> bool:
        service = await self._read(_name(key), key)
        return ASLEEP in (service["Spec"].get("Labels") or {})

    async def awake(self, key: ServiceKey) -> bool:
        service = await self._read(_name(key), key)
        if ASLEEP not in (service["Spec"].get("Labels") or {}):
            return False
        await self._update(key, (), None, asleep=False, service_id=service["ID"])
        return True

    async def _read(self, service: str, key: ServiceKey) -> dict[str, Any]:
        """The service by its id or its name (the Engine API takes either)."""
        with engine_errors(f"reading swarm service {key}", service=str(key)):
            found: dict[str, Any] = await self._docker._query_json(f"services/{service}")
        return found

    async def _update(
        self,
        key: ServiceKey,
        replicas: Sequence[Replica],
        target: int | None,
        *,
        asleep: bool | None = None,
        service_id: str | None = None,
    ) -> ScaleResult:
        """Set the replica count (`target`) and the sleep's label (`asleep`) at the version
        read; None leaves either as it is."""
        started = time.monotonic()
        result = ScaleResult(key, len(counted(replicas)))
        for attempt in range(_TRIES):
            current = await self._read(service_id or _name(key), key)
            service_id, spec, version = current["ID"], current["Spec"], current["Version"]["Index"]
            if target is not None:
                spec["Mode"]["Replicated"]["Replicas"] = target
            own = spec.setdefault("Labels", {})
            if asleep:
                own[ASLEEP] = "true"
            elif asleep is False:
                own.pop(ASLEEP, None)
            self._fence.check(f"updating swarm service {key}", str(key))
            try:
                with engine_errors(f"updating swarm service {key}", service=str(key)):
                    await self._docker._query_json(
                        f"services/{service_id}/update",
                        method="POST",
                        params={"version": version},
                        data=spec,
                    )
                break
            except EngineError as exc:
                # Someone else updated it since we read it: read it again, never overwrite.
                if "out of sequence" not in str(exc) and exc.status != 409:
                    raise
                logger.info("%s: service changed under us (attempt %d); reading it again",
                            key, attempt + 1)  # fmt: skip
        else:
            raise EngineError(f"service {key} kept changing under us", service=str(key))
        result.target = target if target is not None else result.before
        result.seconds = time.monotonic() - started
        return result

    async def repair(self, key: ServiceKey, *_: Any, **__: Any) -> ScaleResult:
        raise EngineError("Swarm replaces its failed tasks itself", service=str(key))


def _one_a_slot(tasks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The tasks Swarm wants running, and the replacements it holds back (desired `ready`) for
    a slot that has none running. A task of a node gone down, or one that failed, is replaced
    by a task that waits out the restart delay (5 s by default) at `ready`: without it the
    service would seem short of its Spec for that long, and be "scaled" to what it already is.
    A rolling update's new task waits at `ready` beside its slot's running one: one a slot."""
    running = {t.get("Slot") for t in tasks if t.get("DesiredState") == "running"}
    return [t for t in tasks if t.get("DesiredState") == "running" or t.get("Slot") not in running]


def _name(key: ServiceKey) -> str:
    """The Swarm service's own name: `<stack>_<service>`, or the service's alone."""
    return key.service if key.project == NO_STACK else f"{key.project}_{key.service}"
