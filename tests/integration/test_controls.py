"""Operators' controls on the real engine and broker: a pause or a hold through the API or an
MQTT command takes effect within an interval without recreating a container, says who and why,
ends on its own, and outlives a kill -9 of the instance that took it and a change of leader."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import aiodocker
import aiohttp
import aiomqtt
import pytest

from autoscaler.backends.compose.marker import marker_name
from autoscaler.labels import ServiceKey
from tests.integration.conftest import Mqtt, events, reaches, states, states_after
from tests.integration.exporter import QUEUE, Queue


@pytest.fixture
async def records(docker: aiodocker.Docker, project: str) -> AsyncIterator[None]:
    """The control records the test's commands leave on the engine, removed after it."""
    yield
    for service in ("worker", "web"):
        name = marker_name(ServiceKey(project, service), "control")
        try:
            await docker.containers.container(name).delete(force=True)
        except aiodocker.DockerError:
            pass


async def post(port: int, body: dict[str, Any], *, json_body: bool = True) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/controls"
        sent = http.post(url, json=body) if json_body else http.post(url, data=json.dumps(body))
        async with sent as answer:
            return answer.status, await answer.json()


async def started(docker: aiodocker.Docker, project: str) -> dict[str, str]:
    """Each container of the project by id, with the time it started: what a recreate or a
    restart would change."""
    label = json.dumps({"label": [f"com.docker.compose.project={project}"]})
    found = {}
    for c in await docker.containers.list(filters=label):
        found[c.id] = (await c.show())["State"]["StartedAt"]
    return found


async def test_a_pause_holds_the_count_within_an_interval_and_recreates_nothing_until_resumed(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str,
    docker: aiodocker.Docker, records: None,
) -> None:  # fmt: skip
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": queue.topic})
    await queue.set(30)
    app = await run_autoscaler()
    await reaches(mqtt, project, "worker", 3)
    before = await started(docker, project)

    status, answer = await post(app.api.port, {"service": "worker", "action": "pause",
                                               "who": "alice", "why": "incident 42"})  # fmt: skip
    assert status == 200, answer
    assert answer["service"] == f"{project}/worker"
    assert answer["control"]["action"] == "pause" and answer["control"]["until"] is None
    told = await mqtt.wait_for(lambda m: events(m, project, "worker", "pause"), within=5)
    attributes = told[0]["Actor"]["Attributes"]
    assert (attributes["who"], attributes["why"]) == ("alice", "incident 42")

    # The queue asks for 9; paused, the service says what it would do and stays at 3.
    asked = time.time()
    await queue.set(90)
    paused = await mqtt.wait_for(lambda m: [
        s for s in states(m, project, "worker") if s["time"] > asked and "would" in s["reason"]
    ], within=10)  # fmt: skip
    assert paused[0]["phase"] == "paused" and paused[0]["replicas"] == 3
    assert paused[0]["reason"].startswith("paused by alice (incident 42); would:"), paused[0]
    assert paused[0]["control"]["who"] == "alice"
    later = await states_after(mqtt, project, "worker", time.time(), 3)
    assert {s["replicas"] for s in later} == {3}
    assert not events(mqtt, project, "worker", "scale_up")[1:]  # only the one to 3
    assert await started(docker, project) == before  # same ids, same start times

    status, answer = await post(app.api.port, {"service": f"{project}/worker",
                                               "action": "resume", "who": "alice"})  # fmt: skip
    assert (status, answer["control"]) == (200, None)
    resumed = await mqtt.wait_for(lambda m: events(m, project, "worker", "resume"), within=5)
    assert resumed[0]["Actor"]["Attributes"]["who"] == "alice"
    await reaches(mqtt, project, "worker", 9)


async def test_a_hold_keeps_its_count_whatever_the_policy_says_and_ends_on_its_own(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str,
    records: None,
) -> None:  # fmt: skip
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": queue.topic,
                                            "autoscaler.scale-down.stabilization": "0s"})  # fmt: skip
    await queue.set(20)
    app = await run_autoscaler(interval=2.0)
    await reaches(mqtt, project, "worker", 2)

    sent = time.time()
    status, answer = await post(app.api.port, {"service": "worker", "action": "hold",
                                               "replicas": 5, "for": "6s", "why": "launch"})  # fmt: skip
    assert status == 200, answer
    ups = await mqtt.wait_for(lambda m: events(m, project, "worker", "scale_up")[1:], within=10)
    assert (ups[0]["from"], ups[0]["to"]) == (2, 5)
    # Within one interval of the command (2 s), the containers of the step started included.
    assert ups[0]["timeNano"] / 1e9 - sent < 2.0 + 1.5, ups[0]
    held = await states_after(mqtt, project, "worker", time.time(), 2)
    assert {s["replicas"] for s in held} == {5}
    assert all(s["control"]["replicas"] == 5 for s in held)

    # Six seconds on, the hold runs out on its own: told, and the policy's 2 again.
    ran_out = await mqtt.wait_for(lambda m: events(m, project, "worker", "resume"), within=15)
    assert "ran out" in ran_out[0]["Actor"]["Attributes"]["why"]
    assert ran_out[0]["timeNano"] / 1e9 - sent >= 6
    await reaches(mqtt, project, "worker", 2)


async def test_bad_commands_are_refused_with_what_is_wrong_and_change_nothing(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str,
    records: None,
) -> None:  # fmt: skip
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": queue.topic})
    await queue.set(10)
    app = await run_autoscaler()
    await reaches(mqtt, project, "worker", 1, hold=1)
    port = app.api.port
    # Not JSON: a form any page could send cross-site.
    assert (await post(port, {"service": "worker", "action": "pause"}, json_body=False))[0] == 415
    status, answer = await post(port, {"service": "nope", "action": "pause"})
    assert status == 404 and "no service 'nope'" in answer["error"]
    status, answer = await post(port, {"service": "worker", "action": "hold", "replicas": 11})
    assert status == 400 and "hold 11 is outside its min and max (1..10" in answer["error"]
    status, answer = await post(port, {"service": "worker", "action": "pause", "for": "soon"})
    assert status == 400 and answer["error"].startswith("for:")
    later = await states_after(mqtt, project, "worker", time.time(), 2)
    assert all(s["control"] is None and s["phase"] != "paused" for s in later)


async def test_a_control_set_over_mqtt_outlives_a_kill_of_its_leader_and_is_set_once(
    make_container: Any, spawn_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str,
    broker: tuple[str, int], records: None,
) -> None:  # fmt: skip
    await make_container("worker", QUEUE | {"autoscaler.metric.topic": queue.topic})
    await queue.set(20)
    instances = [await spawn_autoscaler(), await spawn_autoscaler()]
    await reaches(mqtt, project, "worker", 2)
    leading = await mqtt.wait_for(
        lambda m: [i for i, s in m.statuses().items() if s[-1].get("leading")], within=20
    )
    command = {"id": "c-1", "service": "worker", "action": "hold", "replicas": 4, "who": "ops"}
    async with aiomqtt.Client(*broker) as client:
        await client.publish(f"{mqtt.prefix}/control", json.dumps(command), qos=1)
        await mqtt.wait_for(lambda m: events(m, project, "worker", "hold"), within=10)
        # Delivered again once it took effect (QoS 1 may): answered, set once, told once.
        await client.publish(f"{mqtt.prefix}/control", json.dumps(command), qos=1)
    results = await mqtt.wait_for(lambda m: m.on("control/result")[1:], within=10)
    assert all(r["ok"] and r["id"] == "c-1" for r in results), results
    assert results[0]["control"]["replicas"] == 4
    await reaches(mqtt, project, "worker", 4)
    assert len(events(mqtt, project, "worker", "hold")) == 1

    # The leader dies without a word; the other takes over after the lease's ttl, and holds.
    (leader,) = [p for p in instances if leading[0].split("-")[-2] == str(p.pid)]
    leader.send_signal(signal.SIGKILL)
    await leader.wait()
    await mqtt.wait_for(
        lambda m: [i for i, s in m.statuses().items() if i != leading[0] and s[-1].get("leading")],
        within=30,
    )
    await queue.set(90)  # the policy would take it to 9
    asked = time.time()
    after = await mqtt.wait_for(lambda m: [
        s for s in states(m, project, "worker") if s["time"] > asked + 2
        and s["instance"] != leading[0]
    ], within=20)  # fmt: skip
    assert after[0]["replicas"] == 4 and after[0]["control"]["replicas"] == 4, after[0]
    assert after[0]["control"]["who"] == "ops"
    assert len(events(mqtt, project, "worker", "hold")) == 1  # not told again by the new leader
