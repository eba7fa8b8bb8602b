"""The whole pipeline against the real engine and broker: labels in, containers out, MQTT told."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiodocker
import aiohttp
import aiomqtt
import pytest

from autoscaler.app import App
from autoscaler.control.context import Clock
from tests.integration.conftest import (
    Mqtt,
    events,
    reaches,
    settings_for,
    states,
    states_after,
)

# A replica may use 0.25 core (the fixture's default limit) and should average 50 % of it, so it
# serves 125 millicores of demand: D millicores need ceil(D / 125) replicas.
WEB = {
    "autoscaler.enable": "true",
    "autoscaler.min": "1",
    "autoscaler.max": "4",
    "autoscaler.cpu.target": "50",
    # Short enough for a test: the default scale-down window is 300 s, the warm-up 10 s.
    "autoscaler.scale-down.stabilization": "2s",
    "autoscaler.warmup": "2s",
}


async def names(docker: aiodocker.Docker, project: str) -> dict[str, str]:
    """name -> status of every container of the project."""
    listed = await docker.containers.list(
        all=True, filters=json.dumps({"label": [f"com.docker.compose.project={project}"]})
    )
    return {c["Names"][0].lstrip("/"): c["State"] for c in listed}


async def test_shared_demand_scales_to_the_needed_count_then_max_then_back_to_min(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, docker: Any, project: str
) -> None:
    load = make_load("web")
    await make_container("web", WEB, load=load)
    await run_autoscaler()

    load.set(300)  # ceil(300 / 125) = 3, far enough from 250 and 375 for noisy samples
    await reaches(mqtt, project, "web", 3)
    assert set(await names(docker, project)) == {f"{project}-web-{n}" for n in (1, 2, 3)}
    # How long a clone took from the action to its first counted sample, in the state.
    measured = await mqtt.wait_for(
        lambda m: [s["startup"] for s in states(m, project, "web") if s.get("startup")]
    )
    assert 0 < measured[0] < 10, measured

    load.set(1000)  # needs 8, max is 4
    await reaches(mqtt, project, "web", 4)
    await mqtt.wait_for(
        lambda m: [s for s in states(m, project, "web") if "bound to max 4" in s["reason"]]
    )
    assert max(s["replicas"] for s in states(mqtt, project, "web")) == 4

    load.set(0)
    await reaches(mqtt, project, "web", 1)
    # The one left is the template that Compose made, never a clone.
    assert await names(docker, project) == {f"{project}-web-1": "running"}


async def test_every_action_is_an_engine_shaped_event_and_state_is_retained(
    make_container: Any,
    make_load: Any,
    run_autoscaler: Any,
    mqtt: Mqtt,
    broker: tuple[str, int],
    project: str,
) -> None:
    load = make_load("api")
    await make_container("api", WEB, load=load)
    await run_autoscaler()
    load.set(200)  # ceil(200 / 125) = 2
    await reaches(mqtt, project, "api", 2)

    events = mqtt.on(f"{project}/api/events")
    ups = [e for e in events if e["Action"] == "scale_up"]
    assert ups, events
    event = ups[0]
    assert event["Type"] == "service"
    assert event["Actor"]["ID"] == f"{project}/api"
    assert event["Actor"]["Attributes"]["project"] == project
    assert event["Actor"]["Attributes"]["service"] == "api"
    assert event["Actor"]["Attributes"]["policy"] == "target-tracking"
    assert event["from"] == 1
    assert event["to"] == 2
    assert "cpu" in event["reason"]
    assert event["timeNano"] // 1_000_000_000 == event["time"]

    # A subscriber arriving now is handed the latest state at once, retained.
    host, port = broker
    async with aiomqtt.Client(host, port) as late:
        await late.subscribe(f"{mqtt.prefix}/{project}/api/state", qos=1)
        async for message in late.messages:
            state = json.loads(bytes(message.payload))  # type: ignore[arg-type]
            break
    assert message.retain
    assert state["replicas"] == 2
    assert (state["min"], state["max"], state["policy"]) == (1, 4, "target-tracking")
    assert state["cpu"] is not None
    assert len(state["containers"]) == 2

    async with aiomqtt.Client(host, port) as late:
        await late.subscribe(f"{mqtt.prefix}/status/+", qos=1)
        async for message in late.messages:
            assert json.loads(bytes(message.payload))["status"] == "online"  # type: ignore[arg-type]
            break


async def test_containers_that_did_not_opt_in_and_templates_are_never_removed(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, docker: Any, project: str
) -> None:
    # Compose made two replicas of `web` (both templates, not clones); a third container of the
    # same service has no opt-in label. Idle, the policy wants 1 replica.
    await make_container("web", WEB, number=1)
    await make_container("web", WEB, number=2)
    await make_container("web", {}, number=3)
    await run_autoscaler()

    # Idle, the policy proposes 1 once the 2 s scale-down window has passed; the two containers
    # Compose made bound that at 2. Then three more rounds, each of which would have acted.
    bounded = await mqtt.wait_for(
        lambda m: [s for s in states(m, project, "web") if "not clones" in s.get("reason", "")]
    )
    assert bounded[0]["desired"] == 2
    decided = bounded[0]["time"]
    later = await states_after(mqtt, project, "web", decided, 3)
    assert [s["replicas"] for s in later] == [2] * len(later)
    assert await names(docker, project) == {f"{project}-web-{n}": "running" for n in (1, 2, 3)}
    assert not [e for e in mqtt.on(f"{project}/web/events") if e["Action"] == "scale_down"]


async def test_a_bad_label_is_a_named_error_and_other_services_still_scale(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    await make_container("broken", WEB | {"autoscaler.cpu.target": "fast"})
    await make_container("typo", WEB | {"autoscaler.maxx": "3"})
    load = make_load("web")
    await make_container("web", WEB, load=load)
    await run_autoscaler()
    load.set(200)  # ceil(200 / 125) = 2

    errors = await mqtt.wait_for(lambda m: m.on(f"{project}/broken/events"))
    assert errors[0]["Action"] == "error"
    assert errors[0]["Actor"]["Attributes"]["label"] == "autoscaler.cpu.target"
    assert errors[0]["Actor"]["Attributes"]["value"] == "fast"
    assert f"service {project}/broken" in errors[0]["message"]
    typo = await mqtt.wait_for(lambda m: m.on(f"{project}/typo/events"))
    assert typo[0]["Actor"]["Attributes"]["label"] == "autoscaler.maxx"
    assert "unknown label" in typo[0]["message"]

    await reaches(mqtt, project, "web", 2)
    # Reported once, not every interval; its state says what is wrong.
    assert len(mqtt.on(f"{project}/broken/events")) == 1
    assert "autoscaler.cpu.target" in states(mqtt, project, "broken")[-1]["error"]


async def test_a_drop_in_load_scales_down_only_after_the_stabilization_window(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    load = make_load("web")
    await make_container("web", WEB | {"autoscaler.scale-down.stabilization": "8s"}, load=load)
    app = await run_autoscaler()
    load.set(200)  # ceil(200 / 125) = 2
    await reaches(mqtt, project, "web", 2)

    dropped = time.time()
    load.set(0)
    seen = await reaches(mqtt, project, "web", 1)
    first = next(i for i, s in enumerate(seen) if s["time"] >= dropped and s["replicas"] == 1)
    # The window holds the highest proposal of its 8 s: the count falls only once 8 s have
    # passed since the last round that proposed 2.
    decisions = app.status()["services"][f"{project}/web"]["decisions"]
    down = next(d for d in decisions if (d["from"], d["to"]) == (2, 1))
    last_two = [d for d in decisions if d["proposal"] == 2 and d["time"] < down["time"]][-1]
    assert down["time"] - last_two["time"] >= 8
    after = [s for s in seen[:first] if s["time"] >= dropped]
    held = [s for s in after if s["replicas"] == 2 and s["desired"] == 2]
    assert any("scale-down stabilization" in s["reason"] for s in held), held


async def test_a_paused_service_holds_and_says_so(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    load = make_load("web")
    await make_container("web", WEB | {"autoscaler.paused": "true"}, load=load)
    await run_autoscaler()
    load.set(400)
    # Wait until the policy wants more replicas, so that holding at 1 is the pause's doing.
    wanting = await mqtt.wait_for(
        lambda m: [s for s in states(m, project, "web") if s.get("desired", 1) > 1]
    )
    assert wanting[0]["paused"] is True
    assert wanting[0]["reason"].startswith("paused; would:")
    before = len(states(mqtt, project, "web"))
    await mqtt.wait_for(lambda m: len(states(m, project, "web")) >= before + 3)
    assert {s["replicas"] for s in states(mqtt, project, "web")} == {1}
    assert not mqtt.on(f"{project}/web/events")


async def test_a_service_its_owner_stopped_is_not_cloned_back_to_life(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, docker: Any, project: str
) -> None:
    template = await make_container("web", WEB | {"autoscaler.min": "2"})
    await template.stop(t=1)
    await run_autoscaler()
    seen = await reaches(mqtt, project, "web", 0, hold=3)
    assert "not scaling" in seen[-1]["reason"]
    assert await names(docker, project) == {f"{project}-web-1": "exited"}


async def test_dry_run_decides_and_publishes_but_never_acts(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, docker: Any, project: str
) -> None:
    load = make_load("web")
    # A cooldown that a decision which never happened must not start.
    await make_container("web", WEB | {"autoscaler.scale-up.cooldown": "60s"}, load=load)
    app = await run_autoscaler(dry_run=True)
    load.set(200)
    ups = await mqtt.wait_for(lambda m: events(m, project, "web", "scale_up"))
    assert ups[0]["dry_run"] is True
    assert ups[0]["Actor"]["Attributes"]["dry_run"] == "true"
    assert (ups[0]["from"], ups[0]["to"]) == (1, 2)
    # Later rounds still want more and say so: no cooldown (a decision that never happened
    # started none), nothing acted on, and the same decision is announced once, not every
    # round. (A round's CPU reading on a busy machine may dip below the target: the desired
    # count of every round is not what this pins.)
    later = await states_after(mqtt, project, "web", ups[0]["timeNano"] / 1e9, 4)
    assert [s["replicas"] for s in later] == [1] * len(later), later
    assert 2 in [s["desired"] for s in later], later
    assert not [s for s in later if "cooldown" in s["reason"]], later
    assert all(s["dry_run"] for s in later)
    assert len(events(mqtt, project, "web", "scale_up")) == 1
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{app.api.port}/metrics") as response:
            assert "autoscaler_actions_total{" not in await response.text()
    assert await names(docker, project) == {f"{project}-web-1": "running"}


def busy(app: App) -> bool:
    return any(c.busy for c in app.compose.fleet.values())


async def test_shutdown_finishes_the_scale_action_in_flight(
    make_container: Any, docker_host: str, broker: tuple[str, int], mqtt: Mqtt, docker: Any,
    project: str,
) -> None:  # fmt: skip
    await make_container("web", WEB | {"autoscaler.min": "3", "autoscaler.max": "3"})
    settings = settings_for(docker_host, broker, project, mqtt.prefix, clone_concurrency=1)
    app, stop = App(settings), asyncio.Event()
    serving = asyncio.create_task(app.serve(stop))
    async with asyncio.timeout(30):
        while not busy(app):  # noqa: ASYNC110 - the test watches from outside
            await asyncio.sleep(0.01)
    stop.set()  # as SIGTERM does, while the two clones are created and started one by one
    async with asyncio.timeout(30):
        await serving
    assert await names(docker, project) == {f"{project}-web-{n}": "running" for n in (1, 2, 3)}
    # The action's event went out before the service said goodbye.
    ups = await mqtt.wait_for(lambda m: events(m, project, "web", "scale_up"))
    assert (ups[0]["from"], ups[0]["to"]) == (1, 3)


async def test_shutdown_waits_for_an_action_no_longer_than_its_bound(
    make_container: Any, make_load: Any, docker_host: str, broker: tuple[str, int], mqtt: Mqtt,
    project: str,
) -> None:  # fmt: skip
    load = make_load("web")
    # Replicas that ignore SIGTERM: a graceful stop of one waits its whole minute.
    await make_container("web", WEB, load=load, stop_timeout=60, env={"IGNORE_TERM": "1"})
    settings = settings_for(docker_host, broker, project, mqtt.prefix, shutdown_timeout=2.0)
    app, stop = App(settings), asyncio.Event()
    serving = asyncio.create_task(app.serve(stop))
    try:
        load.set(200)
        await reaches(mqtt, project, "web", 2, hold=1)
        load.set(0)
        async with asyncio.timeout(30):
            while not busy(app):  # noqa: ASYNC110 - the test watches from outside
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        stopped = time.monotonic()
        async with asyncio.timeout(60):
            await serving
    assert time.monotonic() - stopped < 2.0 + 3.0


async def test_a_plugin_policy_cannot_break_the_bounds(
    fixed_policy: None, make_container: Any, run_autoscaler: Any, mqtt: Mqtt, docker: Any,
    project: str,
) -> None:  # fmt: skip
    # docs/policies.md's `Fixed` always proposes `count`; max is 2.
    labels = {"autoscaler.enable": "true", "autoscaler.max": "2", "autoscaler.policy": "fixed",
              "autoscaler.count": "5"}  # fmt: skip
    await make_container("web", labels)
    await run_autoscaler()
    ups = await mqtt.wait_for(lambda m: events(m, project, "web", "scale_up"))
    assert (ups[0]["from"], ups[0]["to"]) == (1, 2)
    assert ups[0]["reason"] == "always 5; bound to max 2"
    later = await states_after(mqtt, project, "web", ups[0]["timeNano"] / 1e9, 3)
    assert {s["replicas"] for s in later} == {2}
    assert len(await names(docker, project)) == 2


class SteppedWall:
    """The wall clock as NTP may leave it: stepped by `offset` seconds at some moment."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.mark.parametrize("step", [-3600.0, 3600.0], ids=["back-an-hour", "forward-an-hour"])
async def test_a_step_of_the_wall_clock_neither_holds_nor_hastens_a_scale_down(
    step: float, make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    load, wall = make_load("web"), SteppedWall()
    await make_container("web", WEB | {"autoscaler.scale-down.stabilization": "6s"}, load=load)
    await run_autoscaler(clock=Clock(wall=wall))
    load.set(300)
    await reaches(mqtt, project, "web", 3)
    dropped = time.time()
    load.set(0)
    wall.offset = step  # right after the drop: the window's proposals are an hour off now
    downs = await mqtt.wait_for(lambda m: events(m, project, "web", "scale_down"), within=30)
    # The window holds the scale-down its 6 s, measured on a clock that does not step.
    waited = downs[0]["timeNano"] / 1e9 - dropped
    assert 5 <= waited <= 20, f"scaled down {waited:.1f}s after the drop"


async def test_what_the_predictive_policy_learned_is_kept_across_a_restart(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, project: str, tmp_path: Any
) -> None:
    labels = WEB | {"autoscaler.policy": "predictive"}
    await make_container("web", labels)
    kept = tmp_path / "state"
    await run_autoscaler(state_dir=kept)
    # The first round with a reading to learn from (a replica's first second is its start).
    first = await mqtt.wait_for(lambda m: [s for s in states(m, project, "web")
                                           if "no usable samples" not in s["reason"]])  # fmt: skip
    assert first[-1]["replicas"] == 1
    # A stop saves what was learned (a restart within the five minutes between saves loses
    # nothing): today's first bucket of the daily history.
    await run_autoscaler.stop()
    (file,) = kept.glob(f"{project}_web-*.json")  # the service's name, and a digest of it
    saved = json.loads(file.read_text())
    assert saved["bucket"] == 300.0 and saved["sums"]
    # As if it had run for two days, the last six hours as level as the same hours yesterday
    # (a day that repeats), and yesterday's load rose from now on (a bucket more each five
    # minutes, whichever bucket the next minute falls in): the file is read back when the
    # policy is made, and its daily floor leads that rise with no load at all.
    now = time.time()
    today, yesterday = int(now // 300), int((now - 86400) // 300)
    level = {str(b + k): [1.0, 1] for b in (today, yesterday) for k in range(-72, 0)}
    rise = {str(yesterday + k): [1.0 + 0.5 * (k + 2), 1] for k in range(-2, 10)}
    saved |= {"first": now - 2 * 86400, "sums": level | rise}
    file.write_text(json.dumps(saved))
    await run_autoscaler(state_dir=kept)
    up = (await mqtt.wait_for(lambda m: events(m, project, "web", "scale_up")))[0]
    assert up["to"] == 4  # the floor asks for 5 and more; max is 4
    assert "this time of day needed" in up["reason"], up["reason"]


async def test_a_look_asked_after_an_action_comes_as_soon_as_the_new_windows_measure(
    make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    """What a saturated service's growth asks for after each action (the controller's side is
    tests/unit/control/test_controller.py): the Compose backend samples and steps it again as
    soon as its windows measure, not at the next round. At a 6 s interval a window of 3.6 s
    measures: the look comes about 3.7 s after it is asked, the next round about 5.5 s."""
    load = make_load("web")
    await make_container("web", WEB | {"autoscaler.max": "2"}, load=load)
    app = await run_autoscaler(interval=6.0)
    load.set(300)  # 3 wanted, max 2: one action, then the count holds
    await mqtt.wait_for(lambda m: events(m, project, "web", "scale_up"), within=30)
    ((key, controller),) = app.compose.fleet.items()
    asked = time.time()
    app.compose.context.look(key)
    await states_after(mqtt, project, "web", asked + 6.5, 1)
    after = [e.at for e in controller.history if e.at > asked]
    measured = [e for e in controller.history if e.at > asked and any(s.cpu for s in e.samples)]
    assert measured, f"no evaluation with samples after the look was asked ({after})"
    assert 3.5 < measured[0].at - asked < 4.5, (measured[0].at - asked, after)
