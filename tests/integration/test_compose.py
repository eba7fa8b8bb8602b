"""Beside Compose, every command a user types: Compose v2.26 on Docker 26.1, and where it differs
docker-compose 1.29 on Docker 20.10 (platforms.py). A one-off is never a replica; what Compose
removes or replaces is mended from the engine's events, before the next round; what its owner
stops, pauses, restarts or takes down is theirs; and Compose lists the clones as the service's."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from autoscaler.cli import main
from tests.integration.compose_stack import (
    EVENTS_ONLY,
    HELD,
    Stack,
    below,
    containers,
    engine_until,
    is_clone,
)
from tests.integration.conftest import (
    ON_BOTH,
    Load,
    Mqtt,
    events,
    reaches,
    states,
    states_after,
)
from tests.integration.platforms import Platform


@pytest.fixture
async def stack(
    platform: Platform, project: str, tmp_path: Path, make_load: Callable[[str], Load],
    make_container: Any, docker: aiodocker.Docker,
) -> AsyncIterator[Stack]:  # fmt: skip
    """The project's file, written; afterwards its containers (make_container's cleanup) and
    its networks go, so that a run of tests never exhausts the engine's address pools."""
    made = Stack.write(platform, project, tmp_path, make_load("web").path)
    try:
        yield made
    finally:
        await made.remove(docker)


# -- one-offs ------------------------------------------------------------------------------------


ONE_OFFS = {
    "run -d --name": ("run", "-d", "--name", "{project}-oneoff", "web", "sleep", "600"),
    "run -d --no-deps": ("run", "-d", "--no-deps", "web", "sleep", "600"),
    "run --rm, attached": ("run", "--rm", "-T", "web", "sleep", "600"),
}


@pytest.mark.parametrize("command", list(ONE_OFFS))
async def test_a_one_off_of_the_service_is_never_a_replica(
    command: str, stack: Stack, run_autoscaler: Any, mqtt: Mqtt, project: str,
    docker: aiodocker.Docker,
) -> None:  # fmt: skip
    # `docker compose run web ./manage.py migrate`: a container with every label of the
    # service, its autoscaler.enable too, and `com.docker.compose.oneoff=True`.
    await stack("up", "-d", env=HELD)
    await run_autoscaler()
    await reaches(mqtt, project, "web", 3)
    before = {c["Id"] for c in await containers(docker, project)}

    args = [a.format(project=project) for a in ONE_OFFS[command]]
    since = time.time()
    one_off = asyncio.ensure_future(stack(*args, env=HELD, check=False))
    try:

        async def started() -> dict[str, Any] | None:
            found = [c for c in await containers(docker, project)
                     if c["Labels"].get("com.docker.compose.oneoff") == "True"]  # fmt: skip
            return found[0] if found else None

        it = await engine_until(docker, project, started)
        name = it["Names"][0].lstrip("/")
        seen = await states_after(mqtt, project, "web", time.time(), count=3)
        # Never counted, never a template, never rolled to, cloned or scaled around.
        assert all(s["replicas"] == 3 and name not in s["containers"] for s in seen), seen
        for action in ("roll", "restore", "repair", "scale_up", "scale_down"):
            later = [e for e in events(mqtt, project, "web", action) if e["timeNano"] / 1e9 > since]
            assert not later, later
        running = await containers(docker, project)
        assert {c["Id"] for c in running} == before | {it["Id"]}
        assert not [c for c in running if c["Labels"].get("autoscaler.clone-of") == it["Id"]]
        # Nothing runs the one-off's command but the one-off itself.
        assert [c["Id"] for c in running if c["Command"].endswith("sleep 600")] == [it["Id"]]
    finally:
        one_off.cancel()
        await asyncio.gather(one_off, return_exceptions=True)


@ON_BOTH
async def test_exec_and_a_run_of_a_service_that_depends_on_it_leave_it_its_count(
    stack: Stack, run_autoscaler: Any, mqtt: Mqtt, project: str, docker: aiodocker.Docker,
    platform: Platform,
) -> None:  # fmt: skip
    await stack("up", "-d", env=HELD)
    await run_autoscaler(interval=EVENTS_ONLY)
    await reaches(mqtt, project, "web", 3, hold=1)
    await stack("exec", "-T", "web", "true", env=HELD)

    # `run job` starts what job depends on: Compose v2 converges `web` to its file's scale first
    # (pkg/compose run.go startDependencies), and so removes its clones; 1.29 only starts it.
    await stack("--profile", "jobs", "run", "--rm", "job", env=HELD)

    async def three() -> bool:
        running = await containers(docker, project)
        return len(running) == 3 and not any(c["Labels"].get("com.docker.compose.oneoff") == "True"
                                             for c in running)  # fmt: skip

    await engine_until(docker, project, three, within=15)
    if platform.compose_v1:
        assert not events(mqtt, project, "web", "restore")
    else:
        restores = await mqtt.wait_for(lambda m: events(m, project, "web", "restore"), within=5)
        assert restores[0]["created"] == 2, restores
    assert not events(mqtt, project, "web", "scale_up")[1:]  # the one from 1 to its min only


# -- up, again and with a new release ------------------------------------------------------------


@ON_BOTH
async def test_up_again_removes_the_clones_and_their_removal_brings_them_back_at_once(
    stack: Stack, run_autoscaler: Any, mqtt: Mqtt, project: str, docker: aiodocker.Docker,
) -> None:  # fmt: skip
    # Anyone runs `up -d` again after editing another service: Compose keeps one `web` (its
    # file's scale) and removes the rest; the engine's events say so, and the decided count is
    # back before any round (the next one is a minute away).
    await stack("up", "-d", env=HELD)
    await run_autoscaler(interval=EVENTS_ONLY)
    await reaches(mqtt, project, "web", 3, hold=1)
    out: list[str] = []

    async def up() -> str:
        out.append(await stack("up", "-d", env=HELD))
        return out[0]

    short = await below(docker, project, 3, up())
    assert "Remov" in out[0] or "Stopp" in out[0], out[0]
    # One restore of both, or one a clone where the engine told their removals apart.
    restores = await mqtt.wait_for(
        lambda m: (found := events(m, project, "web", "restore"))
        and sum(r["created"] for r in found) >= 2 and found, within=5
    )  # fmt: skip
    assert sum(r["created"] for r in restores) == 2
    assert all("replicas went away outside the autoscaler" in r["reason"] for r in restores)
    assert short < 10, f"{short:.2f} s below 3"
    assert len(events(mqtt, project, "web", "scale_up")) == 1  # restored, not rescaled


@ON_BOTH
async def test_a_new_release_puts_every_replica_on_it_before_the_next_round(
    stack: Stack, run_autoscaler: Any, mqtt: Mqtt, project: str, docker: aiodocker.Docker,
) -> None:  # fmt: skip
    await stack("up", "-d", env=HELD)
    await run_autoscaler(interval=EVENTS_ONLY)
    await reaches(mqtt, project, "web", 3, hold=1)

    await stack("up", "-d", env=HELD | {"RELEASE": "2"})
    # Compose is done: what its file asks for runs.
    assert len(await containers(docker, project)) >= 1

    async def released() -> list[dict[str, Any]] | None:
        running = await containers(docker, project)
        if len(running) != 3:
            return None
        inspected = [(await docker.containers.get(c["Id"]))._container for c in running]
        return inspected if all("RELEASE=2" in c["Config"]["Env"] for c in inspected) else None

    new = await engine_until(docker, project, released, within=20)
    clones = [c for c in new if "autoscaler.clone-of" in c["Config"]["Labels"]]
    own = [c for c in new if "autoscaler.clone-of" not in c["Config"]["Labels"]]
    assert len(own) == 1 and all(c["Config"]["Labels"]["autoscaler.clone-of"] == own[0]["Id"]
                                 for c in clones)  # fmt: skip
    # Nothing of the old release is left, running or not.

    async def only_the_new() -> bool:
        every = await containers(docker, project, every=True)
        return {c["Id"] for c in every} == {c["Id"] for c in new}

    await engine_until(docker, project, only_the_new, within=10)


# -- --scale -------------------------------------------------------------------------------------


@ON_BOTH
async def test_up_with_the_counts_the_autoscaler_prints_keeps_every_replica(
    stack: Stack, run_autoscaler: Any, mqtt: Mqtt, project: str, docker: aiodocker.Docker,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    await stack("up", "-d", env=HELD)
    app = await run_autoscaler()
    await reaches(mqtt, project, "web", 3)

    monkeypatch.setenv("AUTOSCALER_API__PORT", str(app.api.port))
    assert await asyncio.to_thread(main, ["replicas", "--project", project, "--compose-args"]) == 0
    scale = capsys.readouterr().out.split()
    assert scale == ["--scale", "web=3"]
    before = {c["Id"] for c in await containers(docker, project)}
    out = await stack("up", "-d", *scale, env=HELD)
    assert "Remov" not in out, out
    assert {c["Id"] for c in await containers(docker, project)} == before
    assert not events(mqtt, project, "web", "restore")


async def test_up_with_more_than_the_decided_count_adds_containers_of_the_users_own(
    stack: Stack, run_autoscaler: Any, mqtt: Mqtt, project: str, docker: aiodocker.Docker,
) -> None:  # fmt: skip
    # `up -d --scale web=5` while the autoscaler holds 3: Compose creates two of its own. They
    # are the user's: never removed; the policy's count (its min, 3) is kept by removing clones.
    held = HELD | {"DOWN_WINDOW": "0s"}
    await stack("up", "-d", env=held)
    await run_autoscaler()
    await reaches(mqtt, project, "web", 3)
    await stack("up", "-d", "--scale", "web=5", env=held)
    made = {c["Id"]: c["Names"][0].lstrip("/") for c in await containers(docker, project)
            if not is_clone(c)}  # fmt: skip
    assert len(made) == 3

    # Compose creates its two, then starts them one at a time. A round may count 5, or 4: one
    # started while the autoscaler's inspect of the other waits for that one's start (the
    # engine answers it then, a loaded one seconds later), and the clones go one at a time.
    # Either way what must hold is the same: the service is kept at 3 by the user's three,
    # seen as the user's, each clone removed by a scale-down to the policy's count.
    def kept(m: Mqtt) -> list[dict[str, Any]] | None:
        last = states(m, project, "web")[-3:]
        mine = sorted(made.values())
        steady = len(last) == 3 and all(s["own"] == 3 and s["containers"] == mine for s in last)
        return last if steady else None

    await mqtt.wait_for(kept, within=45)
    assert {c["Id"] for c in await containers(docker, project)} == made.keys()
    downs = events(mqtt, project, "web", "scale_down")
    assert downs and all(d["to"] == 3 for d in downs), downs
    assert len(events(mqtt, project, "web", "scale_up")) == 1  # to its min, before the up


# -- the owner's own commands --------------------------------------------------------------------


async def test_restart_is_its_owners_the_same_replicas_come_back(
    stack: Stack, run_autoscaler: Any, mqtt: Mqtt, project: str, docker: aiodocker.Docker,
) -> None:  # fmt: skip
    await stack("up", "-d", env=HELD)
    await run_autoscaler()
    await reaches(mqtt, project, "web", 3)
    before = {c["Id"] for c in await containers(docker, project)}
    await stack("restart", "web", env=HELD)
    await reaches(mqtt, project, "web", 3)
    assert {c["Id"] for c in await containers(docker, project)} == before
    for action in ("restore", "repair", "roll"):
        assert not events(mqtt, project, "web", action), action
    assert len(events(mqtt, project, "web", "scale_up")) == 1


async def test_stop_and_start_are_its_owners(
    stack: Stack, run_autoscaler: Any, mqtt: Mqtt, project: str, docker: aiodocker.Docker,
) -> None:  # fmt: skip
    await stack("up", "-d", env=HELD)
    await run_autoscaler()
    await reaches(mqtt, project, "web", 3)
    every = {c["Id"] for c in await containers(docker, project)}
    since = time.time()
    await stack("stop", env=HELD)
    stopped = await mqtt.wait_for(
        lambda m: [
            s for s in states(m, project, "web") if s["time"] > since and s["phase"] == "stopped"
        ]
    )
    later = await states_after(mqtt, project, "web", stopped[0]["time"], count=3)
    assert all(s["phase"] == "stopped" and s["replicas"] == 0 for s in later), later
    assert not await containers(docker, project)

    await stack("start", env=HELD)  # the clones too: Compose lists them as the service's
    await reaches(mqtt, project, "web", 3)
    assert {c["Id"] for c in await containers(docker, project)} == every
    for action in ("restore", "repair"):
        assert not events(mqtt, project, "web", action), action


async def test_pause_holds_the_service_as_it_is(
    stack: Stack, run_autoscaler: Any, mqtt: Mqtt, project: str, docker: aiodocker.Docker,
) -> None:  # fmt: skip
    await stack("up", "-d", env=HELD)
    await run_autoscaler()
    await reaches(mqtt, project, "web", 3)
    every = {c["Id"] for c in await containers(docker, project)}
    since = time.time()
    await stack("pause", env=HELD)
    paused = await mqtt.wait_for(
        lambda m: [
            s for s in states(m, project, "web") if s["time"] > since and "paused" in s["reason"]
        ]
    )
    assert paused[0]["phase"] == "stopped", paused[0]
    await states_after(mqtt, project, "web", paused[0]["time"], count=3)
    assert {c["Id"] for c in await containers(docker, project, every=True)} == every

    await stack("unpause", env=HELD)
    await reaches(mqtt, project, "web", 3)
    assert {c["Id"] for c in await containers(docker, project)} == every
    for action in ("restore", "repair", "scale_up"):
        assert len(events(mqtt, project, "web", action)) == (action == "scale_up"), action


@ON_BOTH
async def test_down_leaves_nothing_behind_and_nothing_comes_back(
    stack: Stack, run_autoscaler: Any, mqtt: Mqtt, project: str, docker: aiodocker.Docker,
) -> None:  # fmt: skip
    await stack("up", "-d", env=HELD)
    # Rounds four times a second: any round while Compose takes the service down would act
    # on what it saw of it half stopped.
    await run_autoscaler(interval=0.25)
    await reaches(mqtt, project, "web", 3)
    created: list[str] = []

    async def watch() -> None:
        subscriber = docker.events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
        label = f"com.docker.compose.project={project}"
        filters = json.dumps({"type": ["container"], "event": ["create"], "label": [label]})
        feed = asyncio.ensure_future(docker.events.run(filters=filters))
        try:
            while (event := await subscriber.get()) is not None:
                created.append(event["Actor"]["Attributes"]["name"])
        finally:
            feed.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        out = await stack("down", env=HELD)
        # The service is gone: its retained state is cleared, a round or more after the down.
        topic = f"{mqtt.prefix}/{project}/web/state"
        await mqtt.wait_for(lambda m: topic in m.cleared)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert "still in use" not in out and "rror" not in out, out
    assert not created, f"created during and after the down: {created}"
    # A down is no fault: no error told, whichever container went first.
    assert not events(mqtt, project, "web", "error"), events(mqtt, project, "web", "error")
    assert not await containers(docker, project, every=True)
    assert not await docker.networks.list(
        filters={"label": [f"com.docker.compose.project={project}"]}
    )


@ON_BOTH
async def test_ps_and_logs_list_the_clones_as_the_services(
    stack: Stack, run_autoscaler: Any, mqtt: Mqtt, project: str, docker: aiodocker.Docker,
) -> None:  # fmt: skip
    await stack("up", "-d", env=HELD)
    await run_autoscaler()
    await reaches(mqtt, project, "web", 3)
    listed = await stack("ps", env=HELD)
    assert all(stack.name(n) in listed for n in (1, 2, 3)), listed
    # Each replica says its hostname (its short id) as it starts: every one is in the logs.
    logs = await stack("logs", "--no-color", "web", env=HELD)
    said = set(re.findall(r"serving as (\w+)", logs))
    assert said == {c["Id"][:12] for c in await containers(docker, project)}, logs


async def test_the_counts_of_a_service_its_owner_stopped_keep_its_containers(
    stack: Stack, run_autoscaler: Any, mqtt: Mqtt, docker: aiodocker.Docker, project: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    await stack("up", "-d", "--scale", "web=2")
    await stack("stop")
    app = await run_autoscaler()
    seen = await reaches(mqtt, project, "web", 0)
    assert seen[-1]["phase"] == "stopped"

    monkeypatch.setenv("AUTOSCALER_API__PORT", str(app.api.port))
    assert await asyncio.to_thread(main, ["replicas", "--project", project, "--compose-args"]) == 0
    scale = capsys.readouterr().out.split()
    # Not web=0: `up --scale web=0` would remove the user's own two containers.
    assert scale == ["--scale", "web=2"]
    mine = {c["Id"] for c in await containers(docker, project, every=True)}
    out = await stack("up", "-d", *scale)
    assert "Remov" not in out, out
    assert {c["Id"] for c in await containers(docker, project)} == mine


async def test_a_slow_stop_just_before_a_start_is_still_its_owners(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    # `docker stop` of a replica that takes two seconds to finish on SIGTERM: the engine's
    # `kill` now, its `die` and `stop` two seconds later. Started right after, the autoscaler
    # reads the engine's events from a second back: the `die` and the `stop`, not the `kill`
    # that asked for them (as `docker compose stop` meets it on a busy host).
    labels = {"autoscaler.enable": "true", "autoscaler.min": "1", "autoscaler.max": "4",
              "autoscaler.cpu.target": "50"}  # fmt: skip
    slow = "trap 'sleep 2; exit 0' TERM; while true; do sleep 0.2; done"
    own = await make_container("web", labels, stop_timeout=10, command=["sh", "-c", slow])
    await own.stop()
    await run_autoscaler()
    seen = await reaches(mqtt, project, "web", 0)
    assert seen[-1]["phase"] == "stopped", seen[-1]
    assert not events(mqtt, project, "web", "scale_up")


async def test_a_reload_signal_is_no_stop(
    make_container: Any, run_autoscaler: Any, mqtt: Mqtt, project: str, docker: aiodocker.Docker
) -> None:
    # `docker kill -s HUP` (a reload) is an engine `kill` too; the service still runs, and is
    # still scaled: it is only the stop signals that mark a container on its way out.
    labels = {"autoscaler.enable": "true", "autoscaler.min": "2", "autoscaler.max": "4",
              "autoscaler.cpu.target": "50"}  # fmt: skip
    reload = "trap 'echo reloaded' HUP; while true; do sleep 0.2; done"
    own = await make_container("web", labels, command=["sh", "-c", reload])
    await own.kill(signal="SIGHUP")
    await run_autoscaler()
    ups = await mqtt.wait_for(lambda m: events(m, project, "web", "scale_up"))
    assert (ups[0]["from"], ups[0]["to"]) == (1, 2), ups


async def test_clones_of_a_replaced_template_are_replaced_never_below_the_decided_count(
    stack: Stack, run_autoscaler: Any, mqtt: Mqtt, docker: aiodocker.Docker, project: str,
) -> None:  # fmt: skip
    await stack("up", "-d", env=HELD)
    await run_autoscaler()
    await reaches(mqtt, project, "web", 3)

    # The template is replaced by one of a new configuration (a new release) while its clones
    # run on: done by hand as Compose recreates a container (a new one of the new config and
    # config hash under the same name), so that the clones outlive it, as they do when the
    # template is recreated by anything else than `up` (which removes them: above).
    old = await docker.containers.get(stack.name(1))
    config = {
        **{k: old["Config"][k] for k in ("Image", "Cmd", "Labels")},
        "Env": ["RELEASE=2"],
        "HostConfig": old["HostConfig"],
    }
    config["Labels"] = {**config["Labels"], "com.docker.compose.config-hash": "new-release"}
    await old.delete(force=True)
    new = await docker.containers.create(config, name=stack.name(1))
    await new.start()

    # Watched from outside while it rolls: never fewer than the 3 it had.
    fewest = len(await containers(docker, project))

    def rolled(m: Mqtt) -> bool:
        return sum(e["created"] for e in events(m, project, "web", "roll")) >= 2

    async with asyncio.timeout(30):
        while not rolled(mqtt):
            fewest = min(fewest, len(await containers(docker, project)))
            await asyncio.sleep(0.02)  # polling the engine's own count
    assert fewest >= 3
    await reaches(mqtt, project, "web", 3)
    for c in await containers(docker, project):
        if is_clone(c):
            inspect = (await docker.containers.get(c["Id"]))._container
            assert inspect["Config"]["Labels"]["autoscaler.clone-of"] == new.id
            assert "RELEASE=2" in inspect["Config"]["Env"]
            assert inspect["Config"]["Labels"]["com.docker.compose.config-hash"] == "new-release"
