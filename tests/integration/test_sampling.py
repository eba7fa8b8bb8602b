"""Where samples come from: a container's own cgroup files when the engine runs on this host, the
stats API otherwise. The pid the engine reports is only trusted when the cgroup that process is
in is the container's."""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable
from typing import Any

import aiodocker

from autoscaler.collector import Collector
from autoscaler.labels import Replica
from tests.integration.conftest import Mqtt, reaches, states
from tests.integration.test_scaling import WEB


def seconds() -> Callable[[], int]:
    """A clock on which every reading comes a second after the one before: a full window
    between two samples, without waiting for one."""
    return itertools.count(0, 1_000_000_000).__next__


async def replica_of(docker: aiodocker.Docker, container: Any) -> Replica:
    return Replica.from_inspect((await docker.containers.get(container.id))._container)


async def test_a_local_containers_own_cgroup_is_read_directly(
    make_container: Any, docker: aiodocker.Docker
) -> None:
    replica = await replica_of(docker, await make_container("web", WEB))
    collector = Collector(docker, clock=seconds())
    try:
        await collector.sample([replica])
        second = await collector.sample([replica])
    finally:
        collector.close()
    assert second[replica.id].source == "cgroup"
    assert second[replica.id].cpu is not None


async def test_a_pid_that_is_not_the_containers_process_here_means_the_stats_api(
    make_container: Any, docker: aiodocker.Docker
) -> None:
    replica = await replica_of(docker, await make_container("web", WEB))
    # A remote engine reports pids of its own host; here such a pid names some unrelated local
    # process (this one stands in for it), whose cgroup must not be read as the container's.
    remote = dataclasses.replace(replica, pid=os.getpid())
    collector = Collector(docker, clock=seconds())
    try:
        await collector.sample([remote])
        second = await collector.sample([remote])
    finally:
        collector.close()
    assert second[replica.id].source == "api"
    assert second[replica.id].cpu is not None


async def test_the_state_says_which_sampler_served_the_service(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    await make_container("web", WEB)
    await run_autoscaler()
    await reaches(mqtt, project, "web", 1, hold=2)
    assert states(mqtt, project, "web")[-1]["sampler"] == "cgroup"
