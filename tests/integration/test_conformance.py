"""Every backend keeps the same promises through the verbs the core uses (control.ports.Backend):
the in-memory backend (backends/fake.py, on which the controller's unit tests run), the Compose
backend on the real engine, and the Swarm backend on the real swarm. The same test, each of
them: so the fake cannot drift from the real ones.

    scale_to(n)   n counted replicas; a scale-down never takes the user's own
    sleep, wake   to zero with the record that it is the autoscaler's, and back to one
    awake         its owner's start ends the record, once
    repair        a clone is replaced by a new one (a backend whose scheduler mends its own,
                  Swarm's, refuses: the controller never asks it)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiodocker
import pytest

from autoscaler.backends.compose.actuator import Actuator
from autoscaler.backends.docker.replicas import from_inspect
from autoscaler.backends.fake import Fake
from autoscaler.backends.swarm.services import SwarmScaler, SwarmView
from autoscaler.control.ports import Backend
from autoscaler.control.replicas import Replica, counted
from autoscaler.errors import EngineError
from autoscaler.labels import ServiceKey
from tests.integration.conftest import TEST_IMAGE

LABELS = {"autoscaler.enable": "true", "autoscaler.max": "6", "autoscaler.cpu.target": "50"}


@dataclass
class Subject:
    """One backend and one service on it, as the controller meets them."""

    kind: str
    backend: Backend
    key: ServiceKey
    replicas: Callable[[], Awaitable[list[Replica]]]
    """The service's replicas, read afresh."""

    @property
    def scheduled(self) -> bool:
        return self.kind == "swarm"

    async def counted(self, count: int) -> list[Replica]:
        """The replicas once `count` are counted (a scheduler takes a moment to place them)."""
        async with asyncio.timeout(30):
            while len(counted(found := await self.replicas())) != count:  # noqa: ASYNC110
                await asyncio.sleep(0.2)  # nothing to wait on but a listing
        return found


@pytest.fixture(params=["fake", "compose", "swarm"])
async def subject(
    request: pytest.FixtureRequest, project: str, make_container: Any
) -> AsyncIterator[Subject]:
    """A service of one running replica on the backend the parameter names."""
    if request.param == "fake":
        fake = Fake()
        key = ServiceKey(project, "web")
        fake.add(key, labels=LABELS)

        async def view() -> list[Replica]:
            return fake.view(key)

        yield Subject("fake", fake, key, view)
    elif request.param == "compose":
        docker: aiodocker.Docker = request.getfixturevalue("docker")
        await make_container("web", LABELS)
        key = ServiceKey(project, "web")
        label = json.dumps({"label": [f"com.docker.compose.project={project}"]})

        async def inspected() -> list[Replica]:
            listed = await docker.containers.list(all=True, filters=label)
            found = [from_inspect((await docker.containers.get(c.id))._container) for c in listed]
            return sorted(found, key=lambda r: r.number or 0)

        yield Subject("compose", Actuator(docker, concurrency=4), key, inspected)
    else:
        nodes: list[str] = request.getfixturevalue("swarm")
        async with aiodocker.Docker(url=nodes[0]) as manager:
            name = f"{project}_web"
            spec = {
                "Name": name,
                "Labels": {"com.docker.stack.namespace": project, **LABELS},
                "TaskTemplate": {"ContainerSpec": {"Image": TEST_IMAGE,
                                                   "Command": ["sleep", "86400"],
                                                   "StopGracePeriod": 1_000_000_000}},
                "Mode": {"Replicated": {"Replicas": 1}},
            }  # fmt: skip
            await manager._query_json("services/create", method="POST", data=spec)
            key = ServiceKey(project, "web", scope="swarm")
            listing = SwarmView(manager)

            async def tasks() -> list[Replica]:
                return (await listing.refresh()).get(key, [])

            try:
                yield Subject("swarm", SwarmScaler(manager), key, tasks)
            finally:
                await manager._query_json(f"services/{name}", method="DELETE")


async def test_scale_to_counts_and_a_scale_down_never_takes_the_users_own(
    subject: Subject,
) -> None:
    start = await subject.counted(1)
    result = await subject.backend.scale_to(subject.key, start, 3)
    assert (result.before, result.after, result.errors) == (1, 3, [])
    grown = await subject.counted(3)
    result = await subject.backend.scale_to(subject.key, grown, 1)
    assert (result.before, result.after, result.errors) == (3, 1, [])
    left = await subject.counted(1)
    if not subject.scheduled:
        assert [r.id for r in counted(left)] == [start[0].id]  # the user's own, never a clone


async def test_sleep_and_wake_are_recorded_as_the_autoscalers(subject: Subject) -> None:
    start = await subject.counted(1)
    assert not await subject.backend.asleep(subject.key)
    result = await subject.backend.sleep(subject.key, start)
    assert result.after == 0 and not result.errors
    assert await subject.backend.asleep(subject.key)
    asleep = await subject.counted(0)
    result = await subject.backend.wake(subject.key, asleep)
    assert result.after == 1 and not result.errors
    assert not await subject.backend.asleep(subject.key)
    await subject.counted(1)


async def test_its_owners_start_ends_the_record_of_a_sleep_once(subject: Subject) -> None:
    await subject.backend.sleep(subject.key, await subject.counted(1))
    assert await subject.backend.awake(subject.key) is True
    assert not await subject.backend.asleep(subject.key)
    assert await subject.backend.awake(subject.key) is False


async def test_a_clone_is_repaired_by_a_new_one(subject: Subject) -> None:
    start = await subject.counted(1)
    if subject.scheduled:
        with pytest.raises(EngineError, match="Swarm replaces its failed tasks itself"):
            await subject.backend.repair(subject.key, start, (), 1)
        return
    await subject.backend.scale_to(subject.key, start, 2)
    two = await subject.counted(2)
    clone = next(r for r in two if r.is_clone)
    result = await subject.backend.repair(subject.key, two, [clone], 1)
    assert (len(result.removed), len(result.created), result.errors) == (1, 1, [])
    after = await subject.counted(2)
    assert clone.id not in {r.id for r in after}
    assert {r.clone_of for r in after if r.is_clone} == {start[0].id}
