"""One bad thing touches only its own part or service, against the real engine and broker: a bug
in a part of the process, a template that crashes, two stacks on one engine, a slow scale-down
beside a scale-up, a service that goes away for good."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from typing import Any

import aiodocker
import aiohttp
import aiomqtt
import pytest

from autoscaler.app import App
from tests.integration.conftest import TEST_IMAGE, Mqtt, events, reaches, states, states_after

# Two replicas from the start (min 2): the clone the autoscaler makes at once shows it scales.
TWO = {
    "autoscaler.enable": "true",
    "autoscaler.min": "2",
    "autoscaler.max": "4",
    "autoscaler.cpu.target": "50",
}


def fail_once(method: Any) -> tuple[Any, list[str]]:
    """`method`, raising a bug of ours the first time it is called."""
    failed: list[str] = []

    async def failing(*args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append("injected")
            raise RuntimeError("injected")
        return await method(*args, **kwargs)

    return failing, failed


@pytest.mark.parametrize(
    ("part", "where"),
    [
        pytest.param(
            "engine events", ("compose.inventory", "_apply"), id="reading-an-engine-event"
        ),
        pytest.param("metric sources", ("signals", "follow"), id="asking-the-metric-sources"),
        pytest.param("sampling", ("compose.collector", "sample"), id="a-sampling-round"),
    ],
)
async def test_a_bug_in_one_part_is_reported_once_and_never_ends_the_process(
    part: str,
    where: tuple[str, str],
    make_container: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    project: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app: App = await run_autoscaler()
    owner, name = functools.reduce(getattr, where[0].split("."), app), where[1]
    failing, failed = fail_once(getattr(owner, name))
    monkeypatch.setattr(owner, name, failing)
    # A service appears after the bug is armed: its events, its round and its samples go
    # through the part that fails.
    await make_container("web", TWO)
    faults = await mqtt.wait_for(lambda m: m.on("events"))
    assert failed == ["injected"]
    assert faults[0]["Type"] == "autoscaler"
    assert faults[0]["Actor"]["ID"] == part
    assert faults[0]["Actor"]["Attributes"]["error"] == "RuntimeError"
    assert faults[0]["message"] == f"{part}: injected"
    # The process lives on, and scales: the clone is made after the fault.
    await reaches(mqtt, project, "web", 2)
    assert events(mqtt, project, "web", "scale_up")
    assert len(mqtt.on("events")) == 1


# Runs until a file named after its own hostname (its container id, short) appears in /load,
# then exits 3 by itself: a crash, with no stop request. Clones get hostnames of their own.
CRASH_ON_CUE = ["sh", "-c", "while [ ! -e /load/crash-$(hostname) ]; do sleep 0.2; done; exit 3"]


@pytest.mark.parametrize("how", ["crashes", "is-stopped-by-its-owner"])
async def test_a_crashed_template_is_reported_and_its_clones_keep_the_count(
    how: str,
    make_container: Any,
    make_load: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    docker: aiodocker.Docker,
    project: str,
) -> None:
    load = make_load("web")
    labels = TWO | {"autoscaler.min": "3"}
    template = await make_container("web", labels, load=load, command=CRASH_ON_CUE)
    await run_autoscaler()
    await reaches(mqtt, project, "web", 3)
    since = time.time()
    if how == "crashes":
        # As an OOM under load would, with Compose's default `restart: "no"`.
        (load.path / f"crash-{template.id[:12]}").touch()
        errors = await mqtt.wait_for(lambda m: events(m, project, "web", "error"))
        assert f"{project}-web-1 crashed (exit code 3)" in errors[0]["message"]
        assert errors[0]["Actor"]["Attributes"]["error"] == "TemplateError"
        # The service is kept at its decided count from its clones, and says what is down.
        restored = await mqtt.wait_for(lambda m: events(m, project, "web", "restore"))
        assert restored[0]["created"] == 1
        later = await reaches(mqtt, project, "web", 3)
        assert "crashed" in (later[-1]["error"] or "")
        assert later[-1]["phase"] != "stopped"
        assert len(events(mqtt, project, "web", "error")) == 1
    else:
        await template.stop(t=1)  # `docker compose stop`, as far as the engine can tell
        stopped = await mqtt.wait_for(
            lambda m: [
                s
                for s in states(m, project, "web")
                if s["time"] > since and s["phase"] == "stopped"
            ]
        )
        assert stopped[0]["error"] is None
        held = await states_after(mqtt, project, "web", stopped[0]["time"], 3)
        assert {s["phase"] for s in held} == {"stopped"}
        assert not events(mqtt, project, "web", "restore")
        assert not events(mqtt, project, "web", "error")


async def retained(broker: tuple[str, int], topic: str) -> list[bytes]:
    """What a new reader is handed, retained, on `topic`: subscribed first, then to a sentinel
    retained just before; the broker hands over retained messages in the order of the
    subscriptions, so once the sentinel is in, anything retained on `topic` is too."""
    sentinel = f"sentinels/{topic}"  # outside the prefix the test collects
    found: list[bytes] = []
    async with aiomqtt.Client(*broker) as client:
        await client.publish(sentinel, b"here", qos=1, retain=True)
        await client.subscribe(topic, qos=1)
        await client.subscribe(sentinel, qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                if str(message.topic) == sentinel:
                    break
                found.append(bytes(message.payload))  # type: ignore[arg-type]
        await client.publish(sentinel, b"", qos=1, retain=True)
    return found


async def test_a_service_gone_for_good_leaves_no_retained_state_and_no_series(
    make_container: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    docker: aiodocker.Docker,
    broker: tuple[str, int],
    project: str,
) -> None:
    await make_container("web", TWO)
    await make_container("api", TWO)
    app: App = await run_autoscaler()
    await reaches(mqtt, project, "web", 2)
    await reaches(mqtt, project, "api", 2)
    # Its decisions and its action left series of their own.
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{app.api.port}/metrics") as response:
            assert 'service="web"' in await response.text()

    # `docker compose down` of the one service: all its containers go.
    label = json.dumps(
        {"label": ["com.docker.compose.service=web", f"com.docker.compose.project={project}"]}
    )
    for container in await docker.containers.list(all=True, filters=label):
        await container.delete(force=True)
    topic = f"{mqtt.prefix}/{project}/web/state"
    await mqtt.wait_for(lambda m: topic in m.cleared)
    assert await retained(broker, topic) == []
    assert await retained(broker, f"{mqtt.prefix}/{project}/api/state") != []
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{app.api.port}/metrics") as response:
            text = await response.text()
    assert f'project="{project}",service="web"' not in text
    assert f'project="{project}",service="api"' in text


async def test_a_slow_scale_down_never_holds_back_another_services_scale_up(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    # `slow`'s replicas ignore SIGTERM: each graceful stop takes its whole 30 s grace period.
    load = make_load("slow")
    labels = TWO | {"autoscaler.min": "1", "autoscaler.scale-down.stabilization": "0s",
                    "autoscaler.warmup": "0s"}  # fmt: skip
    await make_container("slow", labels, load=load, stop_timeout=30, env={"IGNORE_TERM": "1"})
    # One create or removal at a time, as a busy host would set it.
    await run_autoscaler(clone_concurrency=1, shutdown_timeout=2)
    load.set(300)  # ceil(300 / 125) = 3
    await reaches(mqtt, project, "slow", 3)
    load.set(0)
    # Down to 1, or first to 2 when the round that saw the drop also saw some of the load:
    # either way a scale-down whose stops take 30 s each is under way.
    try:
        shrinking = await mqtt.wait_for(lambda m: [
            s for s in states(m, project, "slow") if s["phase"] == "scaling" and s["desired"] < 3
        ])  # fmt: skip
    except TimeoutError:
        seen = [
            (s["replicas"], s["desired"], s["phase"], s["reason"])
            for s in states(mqtt, project, "slow")
        ]
        raise AssertionError(f"slow never began its scale-down; the last states: {seen[-5:]}") from None  # fmt: skip
    # While its two stops run, another service needs a clone.
    asked = time.time()
    await make_container("fast", TWO)
    made = time.time()
    ups = await mqtt.wait_for(lambda m: events(m, project, "fast", "scale_up"), within=20)
    # From when `fast` exists (making its container is the test's, and a busy engine's, time):
    # a create that queued behind the stops would wait 30 s for the first.
    waited = ups[0]["timeNano"] / 1e9 - made
    seen = [(round(s["time"] - made, 1), s["replicas"], s["desired"], s["phase"], s["reason"])
            for s in states(mqtt, project, "fast")]  # fmt: skip
    assert waited < 15, (
        f"the scale-up waited for the stops: {waited:.1f}s after fast was made (which took "
        f"{made - asked:.1f}s, {made - shrinking[0]['time']:.1f}s after the scale-down began); "
        f"its states: {seen[:8]}"
    )
    # And the stops did run meanwhile: slow's scale-down (30 s a stop) ends after fast's scale-up.
    downs = events(mqtt, project, "slow", "scale_down")
    assert all(down["timeNano"] > ups[0]["timeNano"] for down in downs)


@pytest.mark.alone
async def test_health_check_probes_are_not_engine_events_to_follow(
    docker: aiodocker.Docker, make_container: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    # (make_container: its clean-up removes every container of the project, this one too.)
    app: App = await run_autoscaler()
    # A health check ten times a second: each probe is an exec_create, exec_start and exec_die.
    config = {
        "Image": TEST_IMAGE, "Cmd": ["sleep", "86400"],
        "Labels": TWO | {"com.docker.compose.project": project, "com.docker.compose.service": "web",
                         "com.docker.compose.container-number": "1", "autoscaler.min": "1"},
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 100_000_000, "StartPeriod": 0},
        "HostConfig": {"NetworkMode": "none"},
    }  # fmt: skip
    container = await docker.containers.create(config, name=f"{project}-web-1")
    await container.start()
    healthy = await mqtt.wait_for(
        lambda m: [s for s in states(m, project, "web") if s["replicas"] == 1], within=20
    )
    before = app.compose.inventory.events_seen
    later = await states_after(mqtt, project, "web", healthy[0]["time"], 4)
    assert later
    # Four rounds of 1 s: about 120 probe events if they were followed, none now.
    assert app.compose.inventory.events_seen - before <= 3
