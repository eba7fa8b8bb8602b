"""One actor per engine, against the real engine: a lease per set of managed projects, taken over
only when its holder is silent for a ttl or proven dead, held at once when it names this very
instance (its create's answer lost), renewed by the clock of before the write, and a decided
count forgotten by an instance that stopped leading."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiodocker
import pytest

from autoscaler.app import App
from autoscaler.backends.compose.holder import identity
from autoscaler.backends.compose.lease import HOLDER
from autoscaler.settings import LeaseSettings, lease_name
from tests.integration.conftest import (
    TEST_IMAGE,
    Mqtt,
    events,
    reaches,
    settings_for,
    states,
    states_after,
)
from tests.integration.relay import Relay
from tests.integration.test_scaling import WEB

TWO = WEB | {"autoscaler.min": "2"}


@pytest.fixture
async def other_project(docker: aiodocker.Docker, project: str) -> AsyncIterator[tuple[str, Any]]:
    """A second Compose project on the same engine, and a way to give it a service."""
    other = f"{project}b"

    async def make(service: str, labels: dict[str, str]) -> None:
        compose = {"com.docker.compose.project": other, "com.docker.compose.service": service,
                   "com.docker.compose.container-number": "1", "com.docker.compose.oneoff": "False"}  # fmt: skip
        config = {"Image": TEST_IMAGE, "Cmd": ["sleep", "86400"], "Labels": compose | labels,
                  "HostConfig": {"NetworkMode": "none"}}  # fmt: skip
        container = await docker.containers.create(config, name=f"{other}-{service}-1")
        await container.start()

    try:
        yield other, make
    finally:
        label = json.dumps({"label": [f"com.docker.compose.project={other}"]})
        for container in await docker.containers.list(all=True, filters=label):
            await container.delete(force=True)


async def test_two_stacks_on_one_engine_each_managing_its_own_project_both_scale(
    make_container: Any,
    spawn_autoscaler: Any,
    mqtt: Mqtt,
    project: str,
    other_project: tuple[str, Any],
) -> None:
    other, make_other = other_project
    await make_container("web", TWO)
    await make_other("web", TWO)
    # Deployed as the README says: the same settings but AUTOSCALER_PROJECTS, no lease name.
    await spawn_autoscaler(AUTOSCALER_LEASE__NAME=None, AUTOSCALER_PROJECTS=json.dumps([project]))
    await spawn_autoscaler(AUTOSCALER_LEASE__NAME=None, AUTOSCALER_PROJECTS=json.dumps([other]))
    await mqtt.wait_for(
        lambda m: events(m, project, "web", "scale_up") and events(m, other, "web", "scale_up"),
        within=30,
    )
    assert lease_name(frozenset({project})) != lease_name(frozenset({other}))


async def lease_held_by(
    docker: aiodocker.Docker, name: str, labels: dict[str, str]
) -> aiodocker.containers.DockerContainer:
    """A lease container as another instance on another host would have made it."""
    config = {"Image": TEST_IMAGE, "Cmd": ["lease"],
              "Labels": {"autoscaler.lease.holder": "elsewhere-1", "autoscaler.lease.boot": "another-boot",
                         "autoscaler.lease.pidns": "pid:[1]", "autoscaler.lease.pid": "1", **labels},
              "HostConfig": {"NetworkMode": "none", "RestartPolicy": {"Name": "no"}}}  # fmt: skip
    return await docker.containers.create(config, name=name)


async def test_a_lease_whose_holder_is_silent_is_taken_over_only_after_its_ttl(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, docker: aiodocker.Docker, project: str
) -> None:
    await make_container("web", TWO)
    name = f"autoscaler-lease-{project}"
    await lease_held_by(docker, name, {})  # nothing proves its holder dead; its counter stands
    started = time.time()
    await run_autoscaler(lease=LeaseSettings(name=name, ttl=4))
    ups = await mqtt.wait_for(lambda m: events(m, project, "web", "scale_up"), within=20)
    waited = ups[0]["timeNano"] / 1e9 - started
    assert waited >= 4, f"took over after {waited:.1f}s, before the ttl of 4s"
    assert waited < 4 + 4, f"took {waited:.1f}s"


async def test_a_holder_whose_container_is_gone_is_taken_over_at_once(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, docker: aiodocker.Docker, project: str
) -> None:
    await make_container("web", TWO)
    # The holder ran in a container of this engine that no longer runs (it was stopped).
    holder = await docker.containers.create(
        {"Image": TEST_IMAGE, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}},
        name=f"{project}-old-autoscaler",
    )
    try:
        name = f"autoscaler-lease-{project}"
        await lease_held_by(docker, name, {"autoscaler.lease.container": holder.id,
                                           "autoscaler.lease.container-start": "2026-01-01T00:00:00Z"})  # fmt: skip
        started = time.time()
        await run_autoscaler(lease=LeaseSettings(name=name, ttl=60))
        ups = await mqtt.wait_for(lambda m: events(m, project, "web", "scale_up"), within=20)
        assert ups[0]["timeNano"] / 1e9 - started < 60 / 6 + 5  # its first look, not the ttl
    finally:
        await holder.delete(force=True)


async def test_a_renewal_answered_late_never_stretches_the_lead(
    engine_relay: Relay, make_container: Any, run_autoscaler: Any, project: str
) -> None:
    ttl = 3.0
    app: App = await run_autoscaler(
        docker_host=engine_relay.url,
        lease=LeaseSettings(name=f"autoscaler-lease-{project}", ttl=ttl),
    )
    assert app.compose.lease is not None
    async with asyncio.timeout(10):
        while not app.compose.lease.leading:  # noqa: ASYNC110 - the lease has no event to wait on
            await asyncio.sleep(0.05)
    # From now on the engine answers every renewal 2 s late: longer than the lead (ttl/3)
    # a renewal buys, counted from when it was sent.
    held = engine_relay.hold(rf"POST /v[\d.]+/containers/{app.compose.lease._mine}/update", 2.0)
    async with asyncio.timeout(15):
        while held.seen < 2:  # noqa: ASYNC110 - one late renewal answered, the next one sent
            await asyncio.sleep(0.05)
    led = []
    for _ in range(40):  # 2 s, more than a renewal period
        led.append(app.compose.lease.leading)
        await asyncio.sleep(0.05)
    assert not any(led), "a renewal answered 2 s late counted as fresh"


async def test_an_instance_that_leads_again_reads_the_count_afresh(
    make_container: Any, make_load: Any, spawn_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    load = make_load("web")
    labels = WEB | {"autoscaler.max": "6", "autoscaler.scale-down.stabilization": "0s"}
    await make_container("web", labels, load=load)
    first = await spawn_autoscaler()
    load.set(450)  # 4 replicas: at 3 each would carry 150 millicores, 60 % of its 0.25 core
    await reaches(mqtt, project, "web", 4)
    second = await spawn_autoscaler()
    try:
        # The leader hangs (SIGSTOP): after the ttl, the other takes over and scales down.
        first.send_signal(signal.SIGSTOP)
        load.set(0)
        await reaches(mqtt, project, "web", 1, within=60)
        # Now the other hangs, and the first comes back: it takes the lease again after a ttl.
        second.send_signal(signal.SIGSTOP)
        resumed = time.time()
        first.send_signal(signal.SIGCONT)
        me = f"{socket.gethostname()}-{first.pid}-"
        back = await mqtt.wait_for(
            lambda m: [s for s in states(m, project, "web") if s["time"] > resumed and s["instance"].startswith(me)],
            within=30,
        )  # fmt: skip
        # It decided 4 before it lost the lease: restoring that count would undo the scale-down.
        later = await states_after(mqtt, project, "web", back[0]["time"], 5)
        assert {s["replicas"] for s in [back[0], *later]} == {1}
        assert not [e for e in events(mqtt, project, "web", "restore") if e["time"] >= int(resumed)]
    finally:
        for process in (first, second):
            if process.returncode is None:
                process.send_signal(signal.SIGCONT)


async def test_a_lease_that_names_this_instance_is_its_own_at_once(
    make_container: Any, docker_host: str, broker: tuple[str, int], mqtt: Mqtt,
    docker: aiodocker.Docker, project: str,
) -> None:  # fmt: skip
    await make_container("web", TWO)
    name = f"autoscaler-lease-{project}"
    app = App(settings_for(docker_host, broker, project, mqtt.prefix,
                           lease=LeaseSettings(name=name, ttl=60)))  # fmt: skip
    # Its own create went through, but the answer was lost: the lease is there, in its name,
    # and no proof of death can help (the holder's process is this one, and it runs).
    own = await lease_held_by(docker, name, {**identity(), HOLDER: app.instance})
    started, stop = time.time(), asyncio.Event()
    task = asyncio.create_task(app.serve(stop))
    try:
        ups = await mqtt.wait_for(lambda m: events(m, project, "web", "scale_up"), within=20)
        assert ups[0]["timeNano"] / 1e9 - started < 60 / 6, "waited as for a stranger's lease"
        assert ups[0]["Actor"]["Attributes"]["instance"] == app.instance
        assert app.compose.lease is not None and app.compose.lease._mine == own.id  # kept, renewed
    finally:
        stop.set()
        await task


async def test_a_create_refused_because_of_its_own_lease_holds_it_at_once(
    engine_relay: Relay, make_container: Any, run_autoscaler: Any, mqtt: Mqtt,
    docker: aiodocker.Docker, project: str,
) -> None:  # fmt: skip
    await make_container("web", TWO)
    name = f"autoscaler-lease-{project}"
    # The instance's create of the lease waits 2 s on the way to the engine; meanwhile the lease
    # appears in its name, as an earlier create of its own whose answer was lost would have
    # left it. Its create is then refused: the name is taken (409).
    held = engine_relay.hold(rf"POST /v[\d.]+/containers/create\?name={name}\b", 2.0)
    app: App = await run_autoscaler(
        docker_host=engine_relay.url, lease=LeaseSettings(name=name, ttl=60)
    )
    async with asyncio.timeout(10):
        while held.seen < 1:  # noqa: ASYNC110 - the relay has no event to wait on
            await asyncio.sleep(0.05)
    own = await lease_held_by(docker, name, {**identity(), HOLDER: app.instance})
    made = time.monotonic()
    assert app.compose.lease is not None
    async with asyncio.timeout(15):
        while not app.compose.lease.leading:  # noqa: ASYNC110 - the lease has no event to wait on
            await asyncio.sleep(0.05)
    # The refused create's answer, then a look at the lease: not the next watch (ttl/6 = 10 s).
    assert time.monotonic() - made < 2 + 4, f"held after {time.monotonic() - made:.1f}s"
    assert app.compose.lease._mine == own.id
    await mqtt.wait_for(lambda m: events(m, project, "web", "scale_up"), within=10)


async def test_three_instances_started_at_once_have_one_actor_and_the_next_takes_over_alone(
    make_container: Any, spawn_autoscaler: Any, mqtt: Mqtt, docker: aiodocker.Docker,
    project: str,
) -> None:  # fmt: skip
    # Three replicas of the autoscaler started together race for one lease: one creates it, the
    # others find it taken. Two actors would each add the missing replica: 3 containers, not 2.
    await make_container("web", TWO)
    instances = await asyncio.gather(*(spawn_autoscaler() for _ in range(3)))
    ups = await mqtt.wait_for(lambda m: events(m, project, "web", "scale_up"), within=30)
    acting = ups[0]["Actor"]["Attributes"]["instance"]
    await reaches(mqtt, project, "web", 2)
    leading = [i for i, s in mqtt.statuses().items() if s[-1].get("leading")]
    assert leading == [acting], mqtt.statuses()
    assert len(events(mqtt, project, "web", "scale_up")) == 1
    assert len(await _containers(docker, project)) == 2

    # The actor dies without a word: one of the other two takes over, after the lease's ttl,
    # and finds the count right: it adds nothing.
    (leader,) = [p for p in instances if acting.split("-")[-2] == str(p.pid)]
    leader.send_signal(signal.SIGKILL)
    await leader.wait()
    taken = await mqtt.wait_for(
        lambda m: [i for i, s in m.statuses().items() if i != acting and s[-1].get("leading")],
        within=30,
    )
    assert len(taken) == 1, mqtt.statuses()
    after = await states_after(mqtt, project, "web", time.time(), 3)
    assert {s["instance"] for s in after} == set(taken)
    assert {s["replicas"] for s in after} == {2}
    assert len(events(mqtt, project, "web", "scale_up")) == 1
    assert len(await _containers(docker, project)) == 2


async def _containers(docker: aiodocker.Docker, project: str) -> list[Any]:
    label = json.dumps({"label": [f"com.docker.compose.project={project}"]})
    return list(await docker.containers.list(filters=label))
