"""Scale to zero and back (`autoscaler.min: "0"`), on the real engine and broker: a queue's depth
on MQTT puts a service to sleep and wakes it; the autoscaler knows its own sleep from its owner's
stop, even after a restart of its own. Behind real proxies (Caddy, HAProxy), with real requests:
the first requests to a service at zero are answered."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from autoscaler.backends.compose.marker import marker_name
from autoscaler.labels import ServiceKey
from tests.integration.conftest import ROOT, Mqtt, events, reaches, states
from tests.integration.exporter import QUEUE, Queue
from tests.integration.platforms import Platform
from tests.integration.socket_proxy import overlay_env
from tests.integration.web import WEB, explained, send_load, web_stack

ZERO = QUEUE | {"autoscaler.min": "0", "autoscaler.scale-down.to-zero-after": "1s",
                "autoscaler.scale-down.stabilization": "0s"}  # fmt: skip


async def running(docker: aiodocker.Docker, project: str, service: str = "worker") -> list[str]:
    """The names of the service's containers that run."""
    label = json.dumps({"label": [f"com.docker.compose.project={project}",
                                  f"com.docker.compose.service={service}"]})  # fmt: skip
    return [c["Names"][0].lstrip("/") for c in await docker.containers.list(filters=label)]


async def marked(docker: aiodocker.Docker, project: str) -> bool:
    try:
        await docker.containers.get(marker_name(ServiceKey(project, "worker")))
    except aiodocker.DockerError:
        return False
    return True


def acted(mqtt: Mqtt, project: str, action: str, after: int = 0) -> list[dict[str, Any]]:
    return events(mqtt, project, "worker", action)[after:]


async def test_a_quiet_service_sleeps_and_even_after_a_restart_wakes_on_demand(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str,
    docker: aiodocker.Docker,
) -> None:  # fmt: skip
    labels = ZERO | {"autoscaler.metric.topic": queue.topic}
    own = await make_container("worker", labels)
    await run_autoscaler()
    await queue.set(25)
    ups = await mqtt.wait_for(lambda m: acted(m, project, "scale_up"))
    assert ups[0]["to"] == 3

    await queue.set(0)  # quiet: after 1 s, to zero; the clones go, the user's container stops
    slept = (await mqtt.wait_for(lambda m: acted(m, project, "sleep"), within=30))[0]
    assert slept["to"] == 0 and " 0 at 0 for " in slept["reason"], slept
    assert "(to-zero-after 1s)" in slept["reason"], slept
    assert await running(docker, project) == []
    assert (await own.show())["State"]["Status"] == "exited"  # stopped, never removed
    assert await marked(docker, project)
    idle = await mqtt.wait_for(lambda m: [s for s in states(m, project, "worker")
                                          if s["phase"] == "idle"])  # fmt: skip
    assert idle[0]["replicas"] == 0 and "woken when it is wanted" in idle[-1]["reason"]

    await run_autoscaler.stop()
    seen = len(mqtt.messages)
    await run_autoscaler()  # a new instance: only the engine says the sleep was its own
    await mqtt.wait_for(lambda m: [t for t, p, _ in m.messages[seen:]
                                   if t.endswith("/worker/state") and p["phase"] == "idle"])  # fmt: skip

    await queue.set(5)  # demand: the very container started again, then scaled as usual
    woke = (await mqtt.wait_for(lambda m: acted(m, project, "wake")))[0]
    assert (woke["from"], woke["to"]) == (0, 1) and "5 above 0" in woke["reason"], woke
    assert (await own.show())["State"]["Running"]
    assert not await marked(docker, project)
    await queue.set(25)
    await mqtt.wait_for(lambda m: [e for e in acted(m, project, "scale_up") if e["to"] == 3])


async def test_its_owners_stop_is_left_alone_and_its_owners_start_ends_a_sleep(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str,
    docker: aiodocker.Docker,
) -> None:  # fmt: skip
    labels = ZERO | {"autoscaler.metric.topic": queue.topic}
    own = await make_container("worker", labels)
    await queue.set(0)
    await run_autoscaler()
    await mqtt.wait_for(lambda m: acted(m, project, "sleep"), within=30)

    await own.start()  # `docker compose up -d` while asleep: the owner's start ends the sleep
    by_owner = (await mqtt.wait_for(lambda m: acted(m, project, "wake")))[0]
    assert by_owner["Actor"]["Attributes"]["by"] == "owner", by_owner
    assert not await marked(docker, project)

    await own.stop(t=1)  # `docker compose stop`: its owner's; demand does not undo it
    told = await mqtt.wait_for(lambda m: [s for s in states(m, project, "worker")
                                          if s["phase"] == "stopped"])  # fmt: skip
    await queue.set(40)
    later = await mqtt.wait_for(
        lambda m: [s for s in states(m, project, "worker") if s["time"] > told[0]["time"] + 3]
    )
    assert later[0]["phase"] == "stopped" and len(acted(mqtt, project, "wake")) == 1
    assert await running(docker, project) == []


async def test_a_service_asleep_whose_metric_goes_missing_wakes_to_its_fallback_count(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str,
    docker: aiodocker.Docker,
) -> None:  # fmt: skip
    labels = ZERO | {"autoscaler.metric.topic": queue.topic, "autoscaler.metric.max-age": "2s",
                     "autoscaler.metric.fallback": "2",
                     "autoscaler.metric.fallback-after": "2s"}  # fmt: skip
    own = await make_container("worker", labels)
    await queue.set(0)
    await run_autoscaler()
    await mqtt.wait_for(lambda m: acted(m, project, "sleep"), within=30)
    assert await running(docker, project) == []

    queue.stall()  # its publisher stops: missing 2 s after its last value, woken 2 s later
    woke = (await mqtt.wait_for(lambda m: acted(m, project, "wake"), within=30))[0]
    missing = f"mqtt {queue.topic}: no value for longer than its max age of 2s, missing "
    assert (woke["from"], woke["to"]) == (0, 1), woke
    assert woke["reason"].startswith(missing) and woke["reason"].endswith("s: fallback to 2")
    waking = await mqtt.wait_for(lambda m: [s for s in states(m, project, "worker")
                                            if s["reason"].startswith("waking: ")])  # fmt: skip
    assert waking[-1]["reason"] == f"waking: {woke['reason']}", waking
    assert (await own.show())["State"]["Running"]

    told = (await mqtt.wait_for(lambda m: events(m, project, "worker", "fallback")))[0]
    assert told["Actor"]["Attributes"]["replicas"] == "2", told
    await reaches(mqtt, project, "worker", 2)
    assert "fallback to 2" in states(mqtt, project, "worker")[-1]["reason"]


async def test_a_wake_starts_only_what_the_sleep_stopped_never_what_its_owner_stopped(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, queue: Queue, project: str,
    docker: aiodocker.Docker,
) -> None:  # fmt: skip
    labels = ZERO | {"autoscaler.metric.topic": queue.topic}
    await make_container("worker", labels)
    by_hand = await make_container("worker", labels, number=2)
    await by_hand.stop(t=1)  # `docker stop`, its owner's, before any sleep
    await queue.set(0)
    await run_autoscaler()
    slept = (await mqtt.wait_for(lambda m: acted(m, project, "sleep"), within=30))[0]
    assert slept["stopped"] == 1, slept
    assert await running(docker, project) == []

    await queue.set(5)
    woke = (await mqtt.wait_for(lambda m: acted(m, project, "wake")))[0]
    assert (woke["from"], woke["to"]) == (0, 1), woke
    assert await running(docker, project) == [f"{project}-worker-1"]
    assert (await by_hand.show())["State"]["Status"] == "exited"
    assert not await marked(docker, project)


async def _no_server_told(docker: aiodocker.Docker, platform: Platform, project: str) -> int:
    """How often the proxy (HAProxy) has logged that its backend has no server up."""
    logs = await (await docker.containers.get(platform.container(project, "proxy"))).log(
        stdout=True, stderr=True
    )
    return "".join(logs).count("has no server available")


@pytest.mark.parametrize("proxy", ["caddy", "haproxy"])
async def test_behind_a_real_proxy_the_first_requests_to_a_service_at_zero_are_answered(
    proxy: str, web_images: None, deploy_image: str, docker_host: str, platform: Platform,
    docker: aiodocker.Docker, project: str, tmp_path: Path,
) -> None:  # fmt: skip
    # deploy/web as a user runs it: the proxy's own metrics (requests as they arrive) wake the
    # service, and the proxy holds the requests meanwhile (Caddy's lb_try_duration, HAProxy's
    # wake.lua); the autoscaler containerised behind its socket proxy, at a 1 s interval.
    overlay = ROOT / "deploy" / "compose.autoscaler.yaml"
    env = {"AUTOSCALER_IMAGE": deploy_image, "DOCKER_SOCKET": docker_host.removeprefix("unix://"),
           "AUTOSCALER_INTERVAL": "1", "COMPOSE_PROJECT_NAME": project, "TO_ZERO_AFTER": "2s",
           **overlay_env(docker_host, tmp_path / "secrets")}  # fmt: skip
    scrape = "compose.scrape.yaml" if proxy == "caddy" else "compose.haproxy.scrape.yaml"
    extra = (WEB / scrape, WEB / "compose.zero.yaml", overlay)
    async with web_stack(project, proxy, platform, tmp_path / "stack", env=env,
                         extra=extra) as stack:  # fmt: skip
        url = f"http://{await stack.address(docker)}/"
        warm = await send_load(url, (("warm", 4.0, 1.0),))
        assert all(o["status"] == 200 for o in warm), warm
        told = await _no_server_told(docker, platform, project)
        async with asyncio.timeout(60):
            # Asleep 2 s after the last request; the engine has no event for "none runs".
            while await running(docker, project, "web"):  # noqa: ASYNC110
                await asyncio.sleep(0.5)
            # HAProxy takes the stopped replicas for up until a check fails (up to a second
            # later): a request in that moment passes wake.lua and is answered 503
            # (docs/proxies.md). Its own alert says when it knows.
            while proxy == "haproxy" and await _no_server_told(docker, platform, project) == told:  # noqa: ASYNC110
                await asyncio.sleep(0.25)
        service = f"{project}/web"
        asleep = await explained(docker, platform.container(project, "autoscaler"), service)
        assert asleep["services"][service]["state"]["phase"] == "idle", asleep

        outcomes = await send_load(url, (("wake", 2.0, 3.0),))
        awake = await explained(docker, platform.container(project, "autoscaler"), service)
    failed = [o for o in outcomes if o["status"] != 200]
    assert not failed, failed
    assert len(outcomes) == 6
    state = awake["services"][service]["state"]
    assert state["phase"] != "idle" and state["replicas"] >= 1, state
