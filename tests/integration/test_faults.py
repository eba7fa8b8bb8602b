"""Faults, each against the real engine and broker: dying clones, orphans, a kill -9 in the middle
of a scale-up, an engine restart, a broker outage, names taken, creates refused."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp
import aiomqtt
import pytest

from autoscaler.app import App
from autoscaler.settings import MqttSettings
from tests.integration.conftest import Mqtt, control, events, reaches, states
from tests.integration.test_scaling import WEB, names

TWO = WEB | {"autoscaler.min": "2"}


def running(app: App, project: str, service: str = "web") -> int:
    return sum(
        1
        for key, replicas in app.inventory.services().items()
        if (key.project, key.service) == (project, service)
        for r in replicas
        if r.running
    )


async def test_a_clone_that_dies_is_replaced(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, docker: aiodocker.Docker, project: str
) -> None:
    await make_container("web", TWO)
    await run_autoscaler()
    await reaches(mqtt, project, "web", 2)

    clone = docker.containers.container(f"{project}-web-2")
    await clone.kill()
    repairs = await mqtt.wait_for(lambda m: events(m, project, "web", "repair"))
    assert "exited with code 137" in repairs[0]["reason"]
    assert repairs[0]["removed"] == [f"{project}-web-2"]
    await reaches(mqtt, project, "web", 2)
    assert await names(docker, project) == {
        f"{project}-web-1": "running",
        f"{project}-web-3": "running",
    }


async def test_an_oom_kill_is_published_and_the_clone_replaced(
    make_container: Any,
    make_load: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    docker: aiodocker.Docker,
    project: str,
) -> None:
    # Each replica waits for a file named after its hostname, then fills memory past its limit.
    load = make_load("oom")
    hog = "while [ ! -e /load/oom-$(hostname) ]; do sleep 0.2; done; x=$(head -c 200000000 /dev/zero | tr '\\0' x)"
    template = await make_container("web", TWO, load=load)
    await template.delete(force=True)
    config = {
        "Image": "autoscaler-test/busybox:latest",
        "Cmd": ["sh", "-c", hog],
        "Labels": {
            **TWO,
            "com.docker.compose.project": project,
            "com.docker.compose.service": "web",
            "com.docker.compose.container-number": "1",
        },
        "HostConfig": {
            "NetworkMode": "none",
            "Memory": 16 * 2**20,
            "Binds": [f"{load.path}:/load"],
        },
    }
    template = await docker.containers.create(config, name=f"{project}-web-1")
    await template.start()
    await run_autoscaler()
    await reaches(mqtt, project, "web", 2)

    clone = await docker.containers.get(f"{project}-web-2")
    (load.path / f"oom-{clone['Config']['Hostname']}").touch()
    ooms = await mqtt.wait_for(lambda m: events(m, project, "web", "oom"))
    assert ooms[0]["Actor"]["Attributes"]["container"] == f"{project}-web-2"
    repairs = await mqtt.wait_for(lambda m: events(m, project, "web", "repair"))
    assert "out of memory" in repairs[0]["reason"]
    await reaches(mqtt, project, "web", 2)


async def test_clones_left_created_but_not_started_are_removed(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, docker: aiodocker.Docker, project: str
) -> None:
    template = await make_container("web", WEB)
    info = await template.show()
    orphan_config = {
        "Image": info["Image"],
        "Cmd": ["sleep", "86400"],
        "Labels": {**info["Config"]["Labels"], "autoscaler.clone-of": info["Id"],
                   "com.docker.compose.container-number": "2"},
        "HostConfig": {"NetworkMode": "none"},
    }  # fmt: skip
    await docker.containers.create(orphan_config, name=f"{project}-web-2")
    await run_autoscaler()
    await mqtt.wait_for(lambda m: events(m, project, "web", "repair"))
    await reaches(mqtt, project, "web", 1)
    assert await names(docker, project) == {f"{project}-web-1": "running"}


async def test_killed_in_the_middle_of_a_scale_up_a_restarted_autoscaler_converges(
    make_container: Any,
    make_load: Any,
    mqtt: Mqtt,
    docker: aiodocker.Docker,
    spawn_autoscaler: Any,
    project: str,
) -> None:
    load = make_load("web")
    one_at_a_time = {
        "autoscaler.scale-up.max-replicas": "1",
        "autoscaler.scale-up.max-percent": "0",
        "autoscaler.scale-up.period": "1s",
    }
    await make_container("web", WEB | one_at_a_time, load=load)
    first = await spawn_autoscaler()
    try:
        load.set(1000)  # needs 8, max 4: one clone at a time (rate limit 1)
        await mqtt.wait_for(
            lambda m: any(s.get("replicas", 0) >= 2 for s in states(m, project, "web"))
        )
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    second = await spawn_autoscaler()
    try:
        await reaches(mqtt, project, "web", 4, within=60)
    finally:
        second.send_signal(signal.SIGTERM)
        assert await second.wait() == 0
    listed = await names(docker, project)
    assert listed == {f"{project}-web-{n}": "running" for n in (1, 2, 3, 4)}, listed


async def test_an_engine_restart_is_survived_and_nothing_acts_while_it_is_down(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, docker: aiodocker.Docker, project: str
) -> None:
    await make_container("web", WEB)
    app = await run_autoscaler()
    await reaches(mqtt, project, "web", 1)
    ready = f"http://127.0.0.1:{app.api.port}/readyz"

    await control("engine.sh", "stop")
    try:
        async with asyncio.timeout(10):
            while app.inventory.ready.is_set():  # noqa: ASYNC110 - the test watches from outside
                await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as http, http.get(ready) as response:
            assert response.status == 503
        before = len(states(mqtt, project, "web"))
        await asyncio.sleep(3)
        assert len(states(mqtt, project, "web")) == before  # no rounds on a stale view
    finally:
        await control("engine.sh", "start")
    async with asyncio.timeout(60):
        await app.inventory.ready.wait()
    async with aiohttp.ClientSession() as http, http.get(ready) as response:
        assert response.status == 200
    # The engine stopped the template; started again, it is scaled as before.
    await docker.containers.container(f"{project}-web-1").start()
    await reaches(mqtt, project, "web", 1)


async def test_a_broker_outage_never_stops_scaling_and_events_arrive_in_order_after_it(
    make_container: Any,
    make_load: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    broker: tuple[str, int],
    project: str,
    tmp_path: Path,
) -> None:
    host, port = broker
    prefix = mqtt.prefix
    topic = f"{prefix}/{project}/web/events"
    # A persistent session: the broker keeps its subscription and queues for it across a restart.
    watcher = f"watch-{project}"
    async with aiomqtt.Client(host, port, identifier=watcher, clean_session=False) as client:
        await client.subscribe(topic, qos=1)

    load = make_load("web")
    await make_container("web", WEB, load=load)
    outbox = tmp_path / "outbox.jsonl"
    app = await run_autoscaler(
        mqtt=MqttSettings(host=host, port=port, topic_prefix=prefix, outbox_path=outbox)
    )
    await reaches(mqtt, project, "web", 1)

    await control("broker.sh", "stop")
    try:
        load.set(300)  # ceil(300 / 125) = 3
        async with asyncio.timeout(60):
            while running(app, project) < 3:  # noqa: ASYNC110 - the test watches from outside
                await asyncio.sleep(0.2)
        assert app.notifier.pending > 0
        journal = outbox.read_text().splitlines()
        assert journal
        assert {json.loads(line)["topic"] for line in journal} == {topic}
    finally:
        await control("broker.sh", "start")

    received: list[dict[str, Any]] = []
    async with aiomqtt.Client(host, port, identifier=watcher, clean_session=False) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(30):
            async for message in client.messages:
                received.append(json.loads(bytes(message.payload)))  # type: ignore[arg-type]
                if received[-1].get("to") == 3:
                    break
    ups = [(e["from"], e["to"]) for e in received if e["Action"] == "scale_up"]
    assert ups[-1][1] == 3
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ups)), ups  # in order
    assert [e["timeNano"] for e in received] == sorted(e["timeNano"] for e in received)


async def test_two_instances_never_both_act_and_one_takes_over_when_the_leader_dies(
    make_container: Any,
    make_load: Any,
    mqtt: Mqtt,
    docker: aiodocker.Docker,
    spawn_autoscaler: Any,
    project: str,
) -> None:
    load = make_load("web")
    await make_container("web", WEB, load=load)
    first = await spawn_autoscaler()
    await reaches(mqtt, project, "web", 1)
    second = await spawn_autoscaler()
    await asyncio.sleep(4)  # both run; only the lease holder publishes and acts
    instances = {s["instance"] for s in states(mqtt, project, "web")}
    assert len(instances) == 1, instances
    leader = instances.pop()
    assert leader.endswith(f"-{first.pid}")
    lease = await docker.containers.get(f"autoscaler-lease-{project}")
    assert lease["Config"]["Labels"]["autoscaler.lease.holder"] == leader

    first.send_signal(signal.SIGKILL)
    await first.wait()
    before = len(states(mqtt, project, "web"))
    load.set(200)  # ceil(200 / 125) = 2
    seen = await reaches(mqtt, project, "web", 2, within=60)
    later = {s["instance"] for s in seen[before:]}
    assert later == {f"{leader.rsplit('-', 1)[0]}-{second.pid}"}, later
    second.terminate()
    assert await second.wait() == 0
    # A clean stop releases the lease.
    with pytest.raises(aiodocker.DockerError):
        await docker.containers.get(f"autoscaler-lease-{project}")


async def test_a_name_taken_by_a_stranger_is_skipped(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, docker: aiodocker.Docker, project: str
) -> None:
    await make_container("web", TWO)
    # Not part of the service (no labels), but it holds the name the first clone would take.
    await make_container("squatter", {}, name=f"{project}-web-2", compose=False)
    await run_autoscaler()
    await reaches(mqtt, project, "web", 2)
    assert (await names(docker, project)).keys() == {f"{project}-web-1", f"{project}-web-3"}


async def test_a_create_the_engine_refuses_is_an_error_event_retried_with_backoff(
    make_container: Any,
    make_load: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    docker: aiodocker.Docker,
    project: str,
    tmp_path: Path,
) -> None:
    # The template mounts a folder that is gone by the time a clone is made: the engine refuses.
    gone = tmp_path / "gone"
    gone.mkdir()
    config = {
        "Image": "autoscaler-test/busybox:latest",
        "Cmd": ["sleep", "86400"],
        "Labels": {**TWO, "com.docker.compose.project": project,
                   "com.docker.compose.service": "web",
                   "com.docker.compose.container-number": "1"},
        "HostConfig": {"NetworkMode": "none",
                       "Mounts": [{"Type": "bind", "Source": str(gone), "Target": "/data"}]},
    }  # fmt: skip
    template = await docker.containers.create(config, name=f"{project}-web-1")
    await template.start()
    gone.rmdir()
    load = make_load("api")
    await make_container("api", WEB, load=load)
    await run_autoscaler()
    load.set(200)

    errors = await mqtt.wait_for(lambda m: events(m, project, "web", "error"))
    assert errors[0]["message"].startswith(f"service {project}/web: creating clone {project}-web-2")
    assert errors[0]["Actor"]["Attributes"]["error"] == "EngineError"
    await reaches(mqtt, project, "api", 2)  # the other service scales meanwhile
    # Retried, but with growing pauses: far fewer attempts than rounds.
    attempts = len([e for e in mqtt.on(f"{project}/web/events") if e["Action"] == "error"])
    rounds = len(states(mqtt, project, "api"))
    assert 2 <= attempts < rounds / 2, (attempts, rounds)
