"""Where samples come from: a container's own cgroup files when the engine runs on this host, the
stats API otherwise. The pid the engine reports is only trusted when the cgroup that process is
in is the container's; otherwise the container's cgroup is looked up by its id."""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiodocker

from autoscaler.backends.docker.cgroups import CgroupLocator
from autoscaler.backends.docker.collector import Collector
from autoscaler.backends.docker.replicas import from_inspect
from autoscaler.control.replicas import Replica
from tests.integration.conftest import Mqtt, reaches, states
from tests.integration.test_scaling import WEB


def seconds() -> Callable[[], int]:
    """A clock on which every reading comes a second after the one before: a full window
    between two samples, without waiting for one."""
    return itertools.count(0, 1_000_000_000).__next__


async def replica_of(docker: aiodocker.Docker, container: Any) -> Replica:
    return from_inspect((await docker.containers.get(container.id))._container)


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


async def test_a_pid_that_is_not_the_containers_process_here_is_never_read_as_it(
    make_container: Any, docker: aiodocker.Docker
) -> None:
    replica = await replica_of(docker, await make_container("web", WEB))
    # From another pid namespace (a Swarm service has no `pid: host`) the engine's pid names
    # some unrelated local process (this one stands in for it): its cgroup is not the
    # container's, so the container's own is found by its id.
    elsewhere = dataclasses.replace(replica, pid=os.getpid())
    collector = Collector(docker, clock=seconds())
    try:
        await collector.sample([elsewhere])
        second = await collector.sample([elsewhere])
    finally:
        collector.close()
    assert second[replica.id].source == "cgroup"
    assert second[replica.id].cpu is not None


async def test_a_container_whose_cgroup_is_not_on_this_host_is_sampled_by_the_stats_api(
    make_container: Any, docker: aiodocker.Docker, tmp_path: Path
) -> None:
    replica = await replica_of(docker, await make_container("web", WEB))
    # A remote engine's host: its pids and cgroup tree are not this one's. A /proc with no
    # cgroup mounted stands in for this host seen from there.
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "mountinfo").write_text("")
    collector = Collector(docker, clock=seconds())
    collector._locator = CgroupLocator(proc=str(tmp_path))
    try:
        await collector.sample([replica])
        second = await collector.sample([replica])
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
