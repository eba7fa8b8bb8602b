"""Faults, each against the real engine and broker: dying clones, orphans, a kill -9 in the middle
of a scale-up, an engine restart, a broker outage, names taken, creates refused."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp
import aiomqtt
import pytest

from autoscaler.app import App
from autoscaler.labels import timestamp
from tests.integration.conftest import (
    Mqtt,
    control,
    events,
    mqtt_settings,
    reaches,
    states,
    states_after,
)
from tests.integration.test_scaling import WEB, names

TWO = WEB | {"autoscaler.min": "2"}


@contextlib.asynccontextmanager
async def engine_events(
    docker: aiodocker.Docker, project: str, action: str
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """The engine's `action` events for the project's containers, from now on, as they happen."""
    since = f"{timestamp((await docker.system.info())['SystemTime']):.6f}"
    filters = {"label": [f"com.docker.compose.project={project}"], "event": [action]}
    params = {"since": since, "filters": json.dumps(filters)}
    forever = docker._resolve_long_running_timeout(None)
    async with docker._query("events", params=params, timeout=forever) as response, response:

        async def each() -> AsyncIterator[dict[str, Any]]:
            async for line in response.content:
                yield json.loads(line)

        yield each()


def running(app: App, project: str, service: str = "web") -> int:
    return sum(
        1
        for key, replicas in app.compose.inventory.services().items()
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

    # A neighbour's project on the same engine runs out of memory first: not ours to tell.
    neighbour = f"{project}x"
    stranger = await docker.containers.create(
        config | {"Labels": {**config["Labels"], "com.docker.compose.project": neighbour}},
        name=f"{neighbour}-web-1",
    )
    try:
        (load.path / f"oom-{(await stranger.show())['Config']['Hostname']}").touch()
        await stranger.start()
        await stranger.wait()
        clone = await docker.containers.get(f"{project}-web-2")
        (load.path / f"oom-{clone['Config']['Hostname']}").touch()
        ooms = await mqtt.wait_for(lambda m: events(m, project, "web", "oom"))
    finally:
        await stranger.delete(force=True)
    assert ooms[0]["Actor"]["Attributes"]["container"] == f"{project}-web-2"
    assert not events(mqtt, neighbour, "web", "oom")
    repairs = await mqtt.wait_for(lambda m: events(m, project, "web", "repair"))
    assert "out of memory" in repairs[0]["reason"]
    assert (repairs[0]["removed"], repairs[0]["created"]) == ([f"{project}-web-2"], 1)
    later = await states_after(mqtt, project, "web", repairs[0]["timeNano"] / 1e9, 1)
    assert later[0]["containers"] == [f"{project}-web-1", f"{project}-web-3"]


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
    await make_container("web", WEB, load=load)
    # One clone at a time, so a scale-up of 1 -> 4 is three creates and starts in a row.
    first = await spawn_autoscaler(AUTOSCALER_CLONE_CONCURRENCY="1")
    try:
        async with engine_events(docker, project, "create") as created:
            load.set(1000)  # needs 8, max 4: one action, 1 -> 4
            await anext(created)  # the first clone of the action exists: kill in the middle
            first.send_signal(signal.SIGKILL)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    cut_short = await names(docker, project)
    assert len(cut_short) < 4, cut_short  # the kill did land in the middle of the action
    second = await spawn_autoscaler()
    try:
        await reaches(mqtt, project, "web", 4, within=60)
    finally:
        second.send_signal(signal.SIGTERM)
        assert await second.wait() == 0
    listed = await names(docker, project)
    assert listed == {f"{project}-web-{n}": "running" for n in (1, 2, 3, 4)}, listed


@pytest.mark.alone
async def test_an_engine_restart_is_survived_and_nothing_acts_while_it_is_down(
    make_container: Any,
    make_load: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    docker: aiodocker.Docker,
    project: str,
) -> None:
    load = make_load("web")
    await make_container("web", WEB, load=load)
    app = await run_autoscaler()
    await reaches(mqtt, project, "web", 1)
    ready = f"http://127.0.0.1:{app.api.port}/readyz"

    await control("engine.sh", "stop")
    try:
        async with asyncio.timeout(10):
            while app.compose.inventory.ready.is_set():  # noqa: ASYNC110 - the test watches from outside
                await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as http, http.get(ready) as response:
            assert response.status == 503
        before = len(states(mqtt, project, "web"))
        await asyncio.sleep(3)
        assert len(states(mqtt, project, "web")) == before  # no rounds on a stale view
    finally:
        await control("engine.sh", "start")
    async with asyncio.timeout(60):
        await app.compose.inventory.ready.wait()
    # Ready again once the lease, which could not be renewed while the engine was away, is
    # renewed too (every sixth of its TTL): not always at the instant the view is back.
    async with aiohttp.ClientSession() as http, asyncio.timeout(15):
        while True:
            async with http.get(ready) as response:
                if response.status == 200:
                    break
            await asyncio.sleep(0.2)  # an endpoint to poll: there is no event to wait on
    # The engine stopped the template; started again, it is scaled as before: a load that needs
    # a second replica gets one, decided and made after the restart.
    await docker.containers.container(f"{project}-web-1").start()
    back = time.time()
    load.set(200)  # ceil(200 / 125) = 2
    ups = await mqtt.wait_for(
        lambda m: [e for e in events(m, project, "web", "scale_up") if e["timeNano"] / 1e9 > back]
    )
    assert (ups[0]["from"], ups[0]["to"]) == (1, 2)
    later = await states_after(mqtt, project, "web", ups[0]["timeNano"] / 1e9, 1)
    assert later[0]["replicas"] == 2


@pytest.mark.alone
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
        mqtt=mqtt_settings(host=host, port=port, topic_prefix=prefix, outbox_path=outbox)
    )
    await reaches(mqtt, project, "web", 1)

    await control("broker.sh", "stop")
    try:
        load.set(300)  # ceil(300 / 125) = 3
        # Down until the service has scaled and the notifier has knocked six times: long enough
        # for a backoff that kept doubling to be waiting far longer than the broker is away.
        async with asyncio.timeout(60):
            while running(app, project) < 3 or app.notifier.failed_connects < 6:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        assert app.notifier.pending > 0
        journal = outbox.read_text().splitlines()
        assert journal
        assert {json.loads(line)["topic"] for line in journal} == {topic}
    finally:
        await control("broker.sh", "start")  # returns once the broker accepts connections
    back = time.monotonic()

    received: list[dict[str, Any]] = []
    async with aiomqtt.Client(host, port, identifier=watcher, clean_session=False) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(30):
            async for message in client.messages:
                received.append(json.loads(bytes(message.payload)))  # type: ignore[arg-type]
                if received[-1].get("to") == 3:
                    break
    # The goal: everything held during the outage is delivered within 3 s of the broker's return.
    assert time.monotonic() - back <= 3.0
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
    await mqtt.wait_for(lambda m: len(m.statuses()) >= 2)  # both are up and connected
    # Both run while the load calls for actions up, down and up again.
    for millicores, replicas in ((300, 3), (0, 1), (200, 2)):
        load.set(millicores)
        await reaches(mqtt, project, "web", replicas)
    actions = [e for e in mqtt.on(f"{project}/web/events") if e["Action"].startswith("scale")]
    moves = [(e["from"], e["to"]) for e in actions]
    # One actor: each action starts from the count the one before left (a second actor would
    # act on a count it had not made), and they go up, then down, then up.
    assert len(moves) >= 3, moves
    assert all(a[1] == b[0] for a, b in itertools.pairwise(moves)), moves
    assert (moves[0][0], moves[-1][1]) == (1, 2), moves
    acting = {e["Actor"]["Attributes"]["instance"] for e in actions}
    acting |= {s["instance"] for s in states(mqtt, project, "web")}
    assert len(acting) == 1, acting
    (actor,) = acting
    assert actor.startswith(f"{socket.gethostname()}-{first.pid}-"), actor
    lease = await docker.containers.get(f"autoscaler-lease-{project}")
    assert lease["Config"]["Labels"]["autoscaler.lease.holder"] == actor

    first.send_signal(signal.SIGKILL)
    await first.wait()
    killed = time.time()
    load.set(300)  # ceil(300 / 125) = 3
    ups = await mqtt.wait_for(
        lambda m: [e for e in events(m, project, "web", "scale_up") if e["timeNano"] / 1e9 > killed]
    )
    assert ups[0]["Actor"]["Attributes"]["instance"].startswith(
        f"{socket.gethostname()}-{second.pid}-"
    )
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
    # Retried, but after 2, 4, 8 s: four attempts take some fourteen rounds of 1 s.
    four = await mqtt.wait_for(lambda m: events(m, project, "web", "error")[3:], within=40)
    first, fourth = errors[0]["timeNano"] / 1e9, four[0]["timeNano"] / 1e9
    rounds = [s for s in states(mqtt, project, "web") if first <= s["time"] <= fourth]
    assert len(rounds) >= 2 * 4, len(rounds)
    waits = [s["reason"] for s in rounds if s["phase"] == "backoff"]
    assert any("next try in 8s" in w or "next try in 7s" in w for w in waits), waits


async def test_a_restarted_instance_acts_at_once_when_the_holder_is_provably_dead(
    make_container: Any,
    make_load: Any,
    mqtt: Mqtt,
    spawn_autoscaler: Any,
    project: str,
) -> None:
    # A lease of a minute: waiting it out would take far longer than this test allows.
    lease = {"AUTOSCALER_LEASE__TTL": "60"}
    load = make_load("web")
    await make_container("web", WEB, load=load)
    first = await spawn_autoscaler(**lease)
    await reaches(mqtt, project, "web", 1, hold=1)
    first.send_signal(signal.SIGKILL)  # its lease stays behind, renewed a moment ago
    await first.wait()
    second = await spawn_autoscaler(**lease)
    started = time.time()
    load.set(200)  # ceil(200 / 125) = 2
    ups = await mqtt.wait_for(lambda m: events(m, project, "web", "scale_up"), within=20)
    assert ups[0]["Actor"]["Attributes"]["instance"].startswith(
        f"{socket.gethostname()}-{second.pid}-"
    )
    assert ups[0]["timeNano"] / 1e9 - started < 20
    second.terminate()
    assert await second.wait() == 0


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(aiodocker.DockerError(500, {"message": "injected"}), id="an-engine-error"),
        pytest.param(RuntimeError("injected"), id="a-bug"),
    ],
)
async def test_a_repair_that_fails_is_an_error_event_and_the_service_carries_on(
    failure: Exception,
    make_container: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    docker: aiodocker.Docker,
    project: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await make_container("web", TWO)
    app = await run_autoscaler()
    await reaches(mqtt, project, "web", 2)
    # The engine (or our own code) fails once, right after the repair's actions, as the view is
    # brought up to date: the one step of an action that had no guard of its own.
    refresh, failed = app.compose.context.refresh, []

    async def refresh_failing_once(container_id: str) -> Any:
        if not failed:
            failed.append(container_id)
            raise failure
        return await refresh(container_id)

    monkeypatch.setattr(app.compose.context, "refresh", refresh_failing_once)
    await docker.containers.container(f"{project}-web-2").kill()
    errors = await mqtt.wait_for(lambda m: events(m, project, "web", "error"))
    assert errors[0]["message"].startswith(f"service {project}/web:")
    assert "injected" in errors[0]["message"]
    assert "after repairing" in errors[0]["message"] or "while repairing" in errors[0]["message"]
    # The process lives on, the service is whole again, and it goes on scaling.
    later = await states_after(mqtt, project, "web", errors[0]["timeNano"] / 1e9, 3)
    assert later[-1]["replicas"] == 2
    assert {s["error"] for s in later[1:]} == {None}


async def test_a_clone_whose_restart_policy_gave_up_is_replaced(
    make_load: Any,
    make_container: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    docker: aiodocker.Docker,
    project: str,
) -> None:
    # Each replica fails (exit 3) once a file named after it appears; `on-failure:1` restarts it
    # once, it fails again, and the engine gives up on it.
    load = make_load("die")
    template = await make_container("web", TWO, load=load)
    await template.delete(force=True)
    fail = "while [ ! -e /load/die-$(hostname) ]; do sleep 0.2; done; exit 3"
    config = {
        "Image": "autoscaler-test/busybox:latest",
        "Cmd": ["sh", "-c", fail],
        "Labels": {**TWO, "com.docker.compose.project": project,
                   "com.docker.compose.service": "web",
                   "com.docker.compose.container-number": "1"},
        "HostConfig": {"NetworkMode": "none", "Binds": [f"{load.path}:/load"],
                       "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 1}},
    }  # fmt: skip
    template = await docker.containers.create(config, name=f"{project}-web-1")
    await template.start()
    await run_autoscaler()
    await reaches(mqtt, project, "web", 2)

    clone = await docker.containers.get(f"{project}-web-2")
    (load.path / f"die-{clone['Config']['Hostname']}").touch()
    repairs = await mqtt.wait_for(lambda m: events(m, project, "web", "repair"), within=60)
    assert "restart policy gave up after 1 restarts" in repairs[0]["reason"]
    assert (repairs[0]["removed"], repairs[0]["created"]) == ([f"{project}-web-2"], 1)
    later = await states_after(mqtt, project, "web", repairs[0]["timeNano"] / 1e9, 1)
    assert later[0]["containers"] == [f"{project}-web-1", f"{project}-web-3"]
