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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiodocker
import aiohttp

from autoscaler.backends.compose import marker as asleep
from autoscaler.backends.compose.clones import (
    clone_config,
    clone_name,
    clone_networks,
    free_numbers,
    primary_network,
)
from autoscaler.backends.docker.client import engine_errors
from autoscaler.backends.docker.fence import TERM, TERM_LABEL, Fence
from autoscaler.backends.docker.replicas import removing_name
from autoscaler.control.replicas import (
    Replica,
    ScaleResult,
    counted,
    template_of,
    victims,
    woken,
)
from autoscaler.errors import AutoscalerError, EngineError, TemplateError, TemplateLeaving
from autoscaler.labels import ServiceKey

logger = logging.getLogger(__name__)

_EVERY_NETWORK_AT_CREATE = (1, 44)  # the API from which create takes several endpoints
_NAME_TRIES = 5

_Outcome = TypeVar("_Outcome")


@dataclass(frozen=True, slots=True)
class _Gone:
    """A clone another hand had removed, or was removing, when this action came to remove it."""

    id: str


class Actuator:
    def __init__(
        self,
        docker: aiodocker.Docker,
        *,
        concurrency: int,
        timeout: float = 30.0,
        fence: Fence | None = None,
        current: Callable[[str], Replica | None] | None = None,
    ) -> None:
        """`fence`: asked before each write of an action (fence.py); none: every write is sent.
        `current`: a container as the engine's events have it now (the inventory's view), to
        see a template leave in the middle of an action; none: the action's own snapshot."""
        self._docker = docker
        self._timeout = timeout
        self._fence = fence or Fence(lambda: None)
        self._current = current
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
        result.removed, result.gone, result.errors = removed.removed, removed.gone, removed.errors
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
            elif isinstance(outcome, _Gone):
                result.gone.append(outcome.id)
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
            numbers = free_numbers({r.number for r in replicas}, create)
            creations = [self._create(key, template, data, n, len(numbers)) for n in numbers]
        removals = [self._remove(key, r) for r in remove]
        outcomes = await _each([*removals, *creations])
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, AutoscalerError):
                result.errors.append(outcome)
            elif isinstance(outcome, _Gone):
                result.gone.append(outcome.id)
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
                self._staying(key, template, name)
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

    def _staying(self, key: ServiceKey, template: Replica, name: str) -> None:
        """Raise TemplateError where the template is leaving: removed, or stopped (or being
        stopped) by its owner (`docker compose rm -s`, `stop`, `down`, Compose replacing it).
        A clone made then would outlive it, and the `docker compose up` that follows an `rm`
        would take that clone for the service's one container and make no template of its
        own (Compose keeps the lowest-numbered containers of an unchanged configuration). A
        template that crashed is no owner's word: its clones keep the service at its count.
        One started in the moment between their listing and their stop still outlives it (a
        clone is never removed after the fact: the `up` may have taken it already, and the
        service would be left with nothing); the template error then says what to run."""
        if self._current is None:
            return
        now = self._current(template.id)
        if now is None:
            leaving = "was removed"
        elif now.stopping or (now.status in ("exited", "dead") and not now.crashed):
            leaving = "is being stopped or removed by its owner"
        else:
            return
        raise TemplateLeaving(
            str(key), f"not making clone {name}: its template {template.name} {leaving}"
        )

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
        timeout = replica.grace
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

    async def _mark(self, key: ServiceKey, replica: Replica) -> None:
        """Mark a clone as being removed by an autoscaler, before its stop (replicas.REMOVING):
        an instance that takes the lease over while this one is frozen between the stop and the
        removal finishes the removal at once, rather than wait the stop out as an owner's. A
        mark that cannot be made leaves that wait, never the removal, undone."""
        if replica.removing:
            return
        self._fence.check(f"marking clone {replica.name} as being removed", str(key))
        try:
            with engine_errors(f"marking clone {replica.name} as being removed", str(key)):
                await self._docker.containers.container(replica.id).rename(
                    removing_name(replica.name)
                )
        except EngineError as exc:
            if exc.status == 404:
                raise  # gone already: the removal says so
            logger.warning("%s: %s", key, exc)

    async def _remove(self, key: ServiceKey, replica: Replica) -> str | _Gone:
        """Stop and remove one clone: its id, or where another hand was first, that it is gone
        (no removal of this action's, to be told or counted as one)."""
        if not replica.is_clone:
            raise TemplateError(str(key), f"refusing to remove {replica.name}: not a clone")
        timeout = replica.grace
        container = self._docker.containers.container(replica.id)
        try:
            async with self._removing:
                if replica.up:
                    await self._mark(key, replica)
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
            # what is beyond its scale): gone, as asked, but not by this action.
            logger.info("%s: clone %s was already removed", key, replica.name)
            return _Gone(replica.id)
        logger.info("%s: removed clone %s", key, replica.name)
        return replica.id


async def _each(
    operations: Sequence[Awaitable[_Outcome]],
) -> list[_Outcome | AutoscalerError]:
    """Run operations concurrently; an AutoscalerError is a result, anything else propagates."""

    async def guarded(op: Awaitable[_Outcome]) -> _Outcome | AutoscalerError:
        try:
            return await op
        except AutoscalerError as exc:
            return exc

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(guarded(op)) for op in operations]
    return [t.result() for t in tasks]
