"""The only writer to the engine's containers: clones a service's template, removes clones.

Scale-up clones the template's inspect data (Config, HostConfig, networks) under a new name and
container number, with `autoscaler.clone-of` marking it as ours; clones are created and started
concurrently, bounded by slots shared by all services (removals have slots of their own, so a
slow graceful stop never holds back another service's create). Scale-down stops clones gracefully
(the template's stop signal and timeout travel with the clone's config) and removes them, newest
and least healthy first. The template, and any container the autoscaler did not create, is never
stopped or removed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import aiodocker
import aiohttp

from autoscaler import labels
from autoscaler.backends.compose import marker as asleep
from autoscaler.backends.docker.client import engine_errors
from autoscaler.backends.docker.fence import TERM, TERM_LABEL, Fence
from autoscaler.control.replicas import (
    Replica,
    ScaleResult,
    counted,
    template_of,
    victims,
    woken,
)
from autoscaler.errors import AutoscalerError, EngineError, TemplateError
from autoscaler.labels import ServiceKey

logger = logging.getLogger(__name__)

# Config keys a clone copies from its template; Hostname and anything naming the template's
# own identity are left for the engine to assign.
_CONFIG_KEYS = (
    "User", "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
    "ArgsEscaped", "Volumes", "WorkingDir", "Entrypoint", "NetworkDisabled", "OnBuild",
    "StopSignal", "StopTimeout", "Shell", "Domainname",
)  # fmt: skip
# HostConfig keys that are one container's alone.
_HOST_OWN = frozenset({"ContainerIDFile"})
_DEFAULT_STOP_TIMEOUT = 10
_EVERY_NETWORK_AT_CREATE = (1, 44)  # the API from which create takes several endpoints
_NAME_TRIES = 5


def clone_name(template: Replica, number: int) -> str:
    """`demo-web-1` -> `demo-web-4` (Compose v2); `demo_web_1` -> `demo_web_4` (v1)."""
    return _renumbered(template.name, template.number, number)


def _renumbered(name: str, own: int | None, number: int) -> str:
    for sep in ("-", "_"):
        suffix = f"{sep}{own}"
        if own is not None and name.endswith(suffix):
            return f"{name.removesuffix(suffix)}{sep}{number}"
    return f"{name}-{number}"


def clone_config(
    template: Mapping[str, Any],
    number: int,
    name: str | None = None,
    *,
    every_network: bool = False,
) -> dict[str, Any]:
    """The create body for clone `number` (named `name`) of the container whose inspect data is
    `template`: on its primary network, or (`every_network`, API 1.44 and later) on all of
    them; below 1.44 the others are connected before the clone starts (`clone_networks`)."""
    source = template["Config"]
    config: dict[str, Any] = {k: source[k] for k in _CONFIG_KEYS if source.get(k) is not None}
    # The image ID, not its tag: a tag moved by a rebuild must not make clones differ.
    config["Image"] = template["Image"]
    own = dict(source.get("Labels") or {})
    own[labels.COMPOSE_NUMBER] = str(number)
    own[labels.CLONE_OF] = template["Id"]
    config["Labels"] = own

    host = {k: v for k, v in template["HostConfig"].items() if k not in _HOST_OWN}
    if host.get("NanoCpus"):
        # One CPU limit, as it was given: Podman reports NanoCpus with the quota and period it
        # made of them, and refuses a create that sets both (as Docker would).
        host.pop("CpuQuota", None)
        host.pop("CpuPeriod", None)
    if host.get("Ulimits"):
        # Podman names them RLIMIT_NOFILE where its create (and Docker's) takes `nofile`.
        host["Ulimits"] = [
            {**u, "Name": str(u.get("Name", "")).lower().removeprefix("rlimit_")}
            for u in host["Ulimits"]
        ]
    # Fixed host ports would collide with the template's; let the engine pick free ones.
    bindings = host.get("PortBindings") or {}
    host["PortBindings"] = {
        port: [{"HostIp": b.get("HostIp", ""), "HostPort": ""} for b in spec or []]
        for port, spec in bindings.items()
    }
    config["HostConfig"] = host

    endpoints = clone_networks(template, name or clone_name_of(template, number))
    primary = primary_network(template)
    chosen = endpoints if every_network else {n: e for n, e in endpoints.items() if n == primary}
    if chosen:
        config["NetworkingConfig"] = {"EndpointsConfig": chosen}
    return config


def primary_network(template: Mapping[str, Any]) -> str:
    """The network the template was created on (its network mode), by the name its endpoint
    has: `default` is the engine's word for its default bridge, `bridge`."""
    mode = str((template.get("HostConfig") or {}).get("NetworkMode") or "")
    return "bridge" if mode == "default" else mode


def clone_networks(template: Mapping[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """Every network of the template, each with an endpoint like the template's there: its
    aliases (the service's name, the user's aliases), without what is the template's alone
    (its id, its name, its addresses); and the clone's own name where the template's was among
    them, as Compose v2 adds every container's name.

    Not the default bridge's aliases (it has no DNS, and the engine refuses them there), and
    not an endpoint the engine never joined: a container started on an engine without a
    default bridge (`"bridge": "none"`) still reports one for `bridge`, with no network id;
    connecting a clone to it fails (Docker 20.10 panics in the handler)."""
    networks = (template.get("NetworkSettings") or {}).get("Networks") or {}
    started = bool(labels.timestamp((template.get("State") or {}).get("StartedAt")))
    own = template["Name"].lstrip("/")
    out: dict[str, dict[str, Any]] = {}
    for network, endpoint in networks.items():
        if started and not endpoint.get("NetworkID"):
            continue
        theirs = endpoint.get("Aliases") or []
        aliases = [a for a in theirs if a != own and not template["Id"].startswith(a)]
        if own in theirs:
            aliases.insert(0, name)
        if network == "bridge":
            aliases = []
        out[network] = {"Aliases": aliases or None, "Links": endpoint.get("Links")}
    return out


def clone_name_of(template: Mapping[str, Any], number: int) -> str:
    """`clone_name`, from inspect data."""
    own = str((template["Config"].get("Labels") or {}).get(labels.COMPOSE_NUMBER, ""))
    return _renumbered(template["Name"].lstrip("/"), int(own) if own.isdigit() else None, number)


class Actuator:
    def __init__(
        self,
        docker: aiodocker.Docker,
        *,
        concurrency: int,
        timeout: float = 30.0,
        fence: Fence | None = None,
    ) -> None:
        """`fence`: asked before each write of an action (fence.py); none: every write is sent."""
        self._docker = docker
        self._timeout = timeout
        self._fence = fence or Fence(lambda: None)
        # Creates and removals each have slots of their own: a removal holds its slot through the
        # clone's graceful stop (up to its stop_grace_period), and one service's slow
        # scale-down must never hold back another's scale-up or repair.
        self._creating = asyncio.Semaphore(concurrency)
        self._removing = asyncio.Semaphore(concurrency)

    async def scale_to(
        self, key: ServiceKey, replicas: Sequence[Replica], target: int
    ) -> ScaleResult:
        """Create or remove clones until the service has `target` counted replicas."""
        live = counted(replicas)
        if target > len(live):
            return await self._change(key, replicas, remove=(), create=target - len(live))
        return await self._change(key, replicas, remove=victims(live, len(live) - target), create=0)

    async def repair(
        self,
        key: ServiceKey,
        replicas: Sequence[Replica],
        old: Sequence[Replica],
        replace: int,
        *,
        surge: bool = False,
    ) -> ScaleResult:
        """Remove the `old` clones and create `replace` new ones from the template: all at once,
        or (`surge`) the new ones first, and the old ones only once every new one started."""
        if not surge:
            return await self._change(key, replicas, remove=old, create=replace)
        result = await self._change(key, replicas, remove=(), create=replace)
        if result.errors:
            return result
        removed = await self._change(key, replicas, remove=old, create=0)
        result.removed, result.errors = removed.removed, removed.errors
        result.seconds += removed.seconds
        return result

    async def sleep(self, key: ServiceKey, replicas: Sequence[Replica]) -> ScaleResult:
        """To zero: the sleep is marked on the engine (marker.py), then every clone is
        removed and every running container of the user's is stopped, gracefully and at once."""
        started = time.monotonic()
        live = counted(replicas)
        result = ScaleResult(key, len(live))
        own = [r for r in replicas if not r.is_clone and r.up]
        self._fence.check("marking the service asleep", str(key))
        await asleep.mark(self._docker, key, template_of(key, replicas), own)
        clones = [r for r in replicas if r.is_clone]
        outcomes = await _each([*(self._remove(key, r) for r in clones),
                                *(self._stop(key, r) for r in own)])  # fmt: skip
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, AutoscalerError):
                result.errors.append(outcome)
            else:
                (result.removed if i < len(clones) else result.stopped).append(outcome)
        result.seconds = time.monotonic() - started
        return result

    async def wake(self, key: ServiceKey, replicas: Sequence[Replica]) -> ScaleResult:
        """From zero: the user's own containers the sleep stopped (its marker says which) are
        started again, all at once, and the marker goes once they have. One its owner had
        stopped before the sleep stays stopped."""
        started = time.monotonic()
        result = ScaleResult(key, len(counted(replicas)))
        own = woken(replicas, await asleep.stopped(self._docker, key))
        outcomes = await _each([self._start(key, r) for r in own])
        for outcome in outcomes:
            if isinstance(outcome, AutoscalerError):
                result.errors.append(outcome)
            else:
                result.started.append(outcome)
        if result.started:
            self._fence.check("removing the sleep's marker", str(key))
            await asleep.unmark(self._docker, key)
        result.seconds = time.monotonic() - started
        return result

    async def asleep(self, key: ServiceKey) -> bool:
        return await asleep.asleep(self._docker, key)

    async def awake(self, key: ServiceKey) -> bool:
        return await asleep.unmark(self._docker, key)

    async def _change(
        self,
        key: ServiceKey,
        replicas: Sequence[Replica],
        *,
        remove: Sequence[Replica],
        create: int,
    ) -> ScaleResult:
        """Remove the clones `remove` and create `create` new ones, all at once."""
        started = time.monotonic()
        result = ScaleResult(key, len(counted(replicas)))
        creations: list[Awaitable[str]] = []
        if create:
            template = template_of(key, replicas)
            data = await self._inspect(key, template.id)
            numbers = _free_numbers({r.number for r in replicas}, create)
            creations = [self._create(key, template, data, n, len(numbers)) for n in numbers]
        removals = [self._remove(key, r) for r in remove]
        outcomes = await _each([*removals, *creations])
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, AutoscalerError):
                result.errors.append(outcome)
            elif i < len(removals):
                result.removed.append(outcome)
            else:
                result.created.append(outcome)
        result.seconds = time.monotonic() - started
        return result

    async def _inspect(self, key: ServiceKey, container_id: str) -> dict[str, Any]:
        with engine_errors("inspecting the template", service=str(key)):
            container = await self._docker.containers.get(container_id)
        data: dict[str, Any] = container._container
        return data

    async def _create(
        self,
        key: ServiceKey,
        template: Replica,
        data: Mapping[str, Any],
        number: int,
        stride: int = 1,
    ) -> str:
        """Create and start clone `number`. If another container already holds its name, try
        `number + stride` (the stride keeps clear of the batch's other numbers), a few times."""
        every = await self._every_network_at_create()
        async with self._creating:
            for _ in range(_NAME_TRIES):
                name = clone_name(template, number)
                self._fence.check(f"creating clone {name}", str(key))
                try:
                    with engine_errors(f"creating clone {name} of {template.name}", str(key)):
                        config = clone_config(data, number, name, every_network=every)
                        config["Labels"][TERM_LABEL] = str(TERM.get() or 0)
                        container = await self._docker.containers.create(config, name=name)
                    break
                except EngineError as exc:
                    if exc.status != 409:
                        raise
                    logger.warning("%s: name %s is taken; trying the next number", key, name)
                    number += stride
            else:
                raise TemplateError(str(key), f"no free clone name after {_NAME_TRIES} tries")
            try:
                if not every:
                    await self._connect(key, container.id, name, data)
                self._fence.check(f"starting clone {name}", str(key))
                with engine_errors(f"starting clone {name}", service=str(key)):
                    await container.start()
            except AutoscalerError:
                # A clone that cannot start is removed now rather than left behind (unless the
                # action is fenced: then the new leader's first round finds it, never started).
                self._fence.check(f"removing clone {name} that failed to start", str(key))
                with engine_errors(f"removing clone {name} that failed to start"):
                    await container.delete(force=True, v=True)
                raise
        logger.info("%s: started clone %s", key, name)
        return container.id

    async def _connect(
        self, key: ServiceKey, clone_id: str, name: str, data: Mapping[str, Any]
    ) -> None:
        """The template's other networks, before the clone starts: from its first moment it is
        a member of its service on each (a proxy on any of them finds it)."""
        primary = primary_network(data)
        for network, endpoint in clone_networks(data, name).items():
            if network == primary:
                continue
            self._fence.check(f"connecting clone {name} to network {network}", str(key))
            with engine_errors(f"connecting clone {name} to network {network}", str(key)):
                await self._docker._query_json(
                    f"networks/{network}/connect",
                    method="POST",
                    data={"Container": clone_id, "EndpointConfig": endpoint},
                )

    async def _every_network_at_create(self) -> bool:
        """Whether this engine's API takes every endpoint at create (1.44 and later)."""
        with engine_errors("asking the engine for its API version"):
            await self._docker._check_version()
        version = str(self._docker.api_version).lstrip("v").split(".")
        try:
            return (int(version[0]), int(version[1])) >= _EVERY_NETWORK_AT_CREATE
        except (ValueError, IndexError):
            return False

    async def _stop(self, key: ServiceKey, replica: Replica) -> str:
        """Stop one of the user's own containers, within its grace period; never remove it."""
        timeout = replica.stop_timeout or _DEFAULT_STOP_TIMEOUT
        async with self._removing:
            self._fence.check(f"stopping {replica.name} to sleep", str(key))
            with engine_errors(f"stopping {replica.name} to sleep", service=str(key)):
                bound = aiohttp.ClientTimeout(total=int(timeout) + self._timeout)
                container = self._docker.containers.container(replica.id)
                await container.stop(t=int(timeout), timeout=bound)
                await self._stopped(container)
        logger.info("%s: stopped %s (asleep)", key, replica.name)
        return replica.id

    async def _stopped(self, container: aiodocker.containers.DockerContainer) -> None:
        """Until the engine has the container as not running: Docker 26 answers a stop as its
        process ends, a moment before its state says so, and an inspect (or a removal) in that
        moment would still find it running."""
        bound = aiohttp.ClientTimeout(total=self._timeout)
        await container.wait(condition="not-running", timeout=bound)

    async def _start(self, key: ServiceKey, replica: Replica) -> str:
        """Start one of the user's own containers again: the fastest way back from zero."""
        async with self._creating:
            self._fence.check(f"starting {replica.name} to wake", str(key))
            with engine_errors(f"starting {replica.name} to wake", service=str(key)):
                await self._docker.containers.container(replica.id).start()
        logger.info("%s: started %s (awake)", key, replica.name)
        return replica.id

    async def _remove(self, key: ServiceKey, replica: Replica) -> str:
        if not replica.is_clone:
            raise TemplateError(str(key), f"refusing to remove {replica.name}: not a clone")
        timeout = replica.stop_timeout or _DEFAULT_STOP_TIMEOUT
        container = self._docker.containers.container(replica.id)
        try:
            async with self._removing:
                if replica.up:
                    self._fence.check(f"stopping clone {replica.name}", str(key))
                    with engine_errors(f"stopping clone {replica.name}", service=str(key)):
                        # Its grace period, and then as long as any other call may take.
                        bound = aiohttp.ClientTimeout(total=int(timeout) + self._timeout)
                        await container.stop(t=int(timeout), timeout=bound)
                        await self._stopped(container)
                self._fence.check(f"removing clone {replica.name}", str(key))
                with engine_errors(f"removing clone {replica.name}", service=str(key)):
                    await container.delete(v=True)
        except EngineError as exc:
            if exc.status != 404 and not (exc.status == 409 and "in progress" in str(exc)):
                raise
            # Another hand removed it first, or is removing it (`docker compose up` removes
            # what is beyond its scale): gone, as asked.
            logger.info("%s: clone %s was already removed", key, replica.name)
            return replica.id
        logger.info("%s: removed clone %s", key, replica.name)
        return replica.id


def _free_numbers(taken: set[int | None], count: int) -> list[int]:
    numbers: list[int] = []
    candidate = 1
    while len(numbers) < count:
        if candidate not in taken:
            numbers.append(candidate)
        candidate += 1
    return numbers


async def _each(operations: Sequence[Awaitable[str]]) -> list[str | AutoscalerError]:
    """Run operations concurrently; an AutoscalerError is a result, anything else propagates."""

    async def guarded(op: Awaitable[str]) -> str | AutoscalerError:
        try:
            return await op
        except AutoscalerError as exc:
            return exc

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(guarded(op)) for op in operations]
    return [t.result() for t in tasks]
