"""The path to the engine as real hosts have it, through a relay in front of the real engine
(relay.py): a call that never gets an answer, an event stream that goes silent without a word."""

from __future__ import annotations

import json
import time
from typing import Any

import aiodocker

from tests.integration.conftest import Mqtt, events, reaches, states
from tests.integration.relay import Relay
from tests.integration.test_scaling import WEB


async def test_a_hung_engine_call_is_an_error_and_a_backoff_never_a_service_scaling_forever(
    engine_relay: Relay,  # before the autoscaler: it is torn down after it
    make_container: Any,
    make_load: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    project: str,
) -> None:
    load = make_load("web")
    labels = WEB | {"autoscaler.scale-down.stabilization": "0s"}
    await make_container("web", labels, load=load)
    await run_autoscaler(docker_host=engine_relay.url, engine_timeout=3)
    load.set(300)
    await reaches(mqtt, project, "web", 3)
    # From now on the engine takes every stop and never answers. (Errors from before: a loaded
    # engine may have answered a start of the scale-up late too.)
    before = len(events(mqtt, project, "web", "error"))
    held = time.time()
    engine_relay.hold(r"POST /v[\d.]+/containers/[0-9a-f]+/stop", None)
    load.set(0)
    errors = await mqtt.wait_for(lambda m: events(m, project, "web", "error")[before:], within=30)
    assert "stopping clone" in errors[0]["message"]
    assert "the engine did not answer in time" in errors[0]["message"]
    backoff = await mqtt.wait_for(
        lambda m: [
            s for s in states(m, project, "web") if s["phase"] == "backoff" and s["time"] > held
        ]
    )
    assert "failed; next try in" in backoff[0]["reason"]


async def test_an_event_stream_gone_silent_is_found_by_listing_again(
    engine_relay: Relay,  # before the autoscaler: it is torn down after it
    make_container: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    docker: aiodocker.Docker,
    project: str,
) -> None:
    # The stream is open and says nothing, as one a NAT forgot: no event reaches the autoscaler.
    engine_relay.silence(r"GET /v[\d.]+/events")
    await make_container("web", WEB | {"autoscaler.min": "2"})
    app = await run_autoscaler(docker_host=engine_relay.url, relist=2)
    await reaches(mqtt, project, "web", 2)  # its own action's refresh saw the clone
    # Another hand removes the clone; the stream would have said `destroy`.
    label = json.dumps({"label": [f"com.docker.compose.project={project}", "autoscaler.clone-of"]})
    (clone,) = await docker.containers.list(all=True, filters=label)
    await clone.delete(force=True)
    restored = await mqtt.wait_for(lambda m: events(m, project, "web", "restore"), within=30)
    assert restored[0]["created"] == 1
    await reaches(mqtt, project, "web", 2)
    assert app.compose.inventory.ready.is_set()
