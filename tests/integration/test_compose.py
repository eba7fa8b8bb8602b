"""Beside a real docker-compose (1.29): `up` never costs capacity for long, `--scale` with the
counts the autoscaler prints costs none, and clones follow a template that was replaced."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from autoscaler.cli import main
from tests.integration.conftest import ROOT, TEST_IMAGE, Load, Mqtt, events, reaches

COMPOSE_FILE = """\
version: "2.4"
services:
  web:
    image: {image}
    command: ["sh", "/burn.sh"]
    network_mode: none
    cpus: 0.25
    stop_grace_period: 2s
    environment:
      RELEASE: "{release}"
    volumes:
      - {burn}:/burn.sh:ro
      - {load}:/load
    labels:
      autoscaler.enable: "true"
      autoscaler.min: "1"
      autoscaler.max: "4"
      autoscaler.cpu.target: "50"
      autoscaler.scale-down.stabilization: "30s"
"""

Compose = Callable[..., Awaitable[str]]


@pytest.fixture
def compose(
    tmp_path: Path, project: str, docker_host: str, make_container: Any
) -> Callable[[Load], Compose]:
    """`docker-compose -p PROJECT -f FILE ARGS...` for a file written from COMPOSE_FILE; every
    container of the project is removed afterwards (make_container's cleanup)."""

    def bind(load: Load) -> Compose:
        async def run(*args: str, release: str = "1") -> str:
            path = tmp_path / "compose.yaml"
            path.write_text(COMPOSE_FILE.format(image=TEST_IMAGE, release=release,
                                                burn=ROOT / "scripts" / "burn.sh", load=load.path))  # fmt: skip
            process = await asyncio.create_subprocess_exec(
                "docker-compose", "-p", project, "-f", str(path), *args,
                env={**os.environ, "DOCKER_HOST": docker_host},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            out, _ = await process.communicate()
            assert process.returncode == 0, out.decode()
            return out.decode()

        return run

    return bind


async def running(docker: aiodocker.Docker, project: str) -> list[dict[str, Any]]:
    listed = await docker.containers.list(
        filters=json.dumps({"label": [f"com.docker.compose.project={project}"]})
    )
    return [c._container for c in listed]


async def test_a_plain_compose_up_removes_the_clones_and_they_are_restored_at_once(
    compose: Callable[[Load], Compose], make_load: Any, run_autoscaler: Any, mqtt: Mqtt,
    project: str,
) -> None:  # fmt: skip
    load = make_load("web")
    up = compose(load)
    await up("up", "-d")
    await run_autoscaler()
    load.set(300)  # ceil(300 / 125) = 3
    await reaches(mqtt, project, "web", 3)

    # Anyone runs `up` again after editing another service: Compose removes what its file does
    # not list, and the autoscaler puts the decided count back without a policy round.
    out = await up("up", "-d")
    assert "Stopping and removing" in out or "Removing" in out, out
    restores = await mqtt.wait_for(lambda m: events(m, project, "web", "restore"), within=30)
    assert restores[0]["created"] == 2
    assert "2 of 3 replicas went away outside the autoscaler" in restores[0]["reason"]
    ups = events(mqtt, project, "web", "scale_up")
    assert all(e["timeNano"] < restores[0]["timeNano"] for e in ups), "restored, not rescaled"
    await reaches(mqtt, project, "web", 3)


async def test_compose_up_with_the_counts_the_autoscaler_prints_keeps_every_replica(
    compose: Callable[[Load], Compose], make_load: Any, run_autoscaler: Any, mqtt: Mqtt,
    docker: aiodocker.Docker, project: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    load = make_load("web")
    up = compose(load)
    await up("up", "-d")
    app = await run_autoscaler()
    load.set(300)
    await reaches(mqtt, project, "web", 3)

    monkeypatch.setenv("AUTOSCALER_API__PORT", str(app.api.port))
    assert await asyncio.to_thread(main, ["replicas", "--project", project, "--compose-args"]) == 0
    scale = capsys.readouterr().out.split()
    assert scale == ["--scale", "web=3"]
    before = {c["Id"] for c in await running(docker, project)}
    out = await up("up", "-d", *scale)
    assert "Removing" not in out, out
    assert {c["Id"] for c in await running(docker, project)} == before
    # And Compose's own view lists every replica.
    assert len([line for line in (await up("ps")).splitlines() if "_web_" in line]) == 3
    assert not events(mqtt, project, "web", "restore")


async def test_the_counts_of_a_service_its_owner_stopped_keep_its_containers(
    compose: Callable[[Load], Compose], make_load: Any, run_autoscaler: Any, mqtt: Mqtt,
    docker: aiodocker.Docker, project: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    up = compose(make_load("web"))
    await up("up", "-d", "--scale", "web=2")
    await up("stop")
    app = await run_autoscaler()
    seen = await reaches(mqtt, project, "web", 0)
    assert seen[-1]["phase"] == "stopped"

    monkeypatch.setenv("AUTOSCALER_API__PORT", str(app.api.port))
    assert await asyncio.to_thread(main, ["replicas", "--project", project, "--compose-args"]) == 0
    scale = capsys.readouterr().out.split()
    # Not web=0: `up --scale web=0` would remove the user's own two containers.
    assert scale == ["--scale", "web=2"]
    mine = {c["Id"] for c in await docker.containers.list(all=True, filters=json.dumps(
        {"label": [f"com.docker.compose.project={project}"]}))}  # fmt: skip
    out = await up("up", "-d", *scale)
    assert "Removing" not in out, out
    assert {c["Id"] for c in await running(docker, project)} == mine


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


async def test_clones_of_a_replaced_template_are_replaced_never_below_the_decided_count(
    compose: Callable[[Load], Compose], make_load: Any, run_autoscaler: Any, mqtt: Mqtt,
    docker: aiodocker.Docker, project: str,
) -> None:  # fmt: skip
    load = make_load("web")
    up = compose(load)
    await up("up", "-d")
    await run_autoscaler()
    load.set(300)
    await reaches(mqtt, project, "web", 3)

    # The template is replaced by one of a new configuration (a new release) while its clones
    # run on: done by hand as Compose recreates a container (remove it, create one of the new
    # config and config hash under the same name), so that the clones outlive it.
    old = await docker.containers.get(f"{project}_web_1")
    config = {
        **{k: old["Config"][k] for k in ("Image", "Cmd", "Labels")},
        "Env": ["RELEASE=2"],
        "HostConfig": old["HostConfig"],
    }
    config["Labels"] = {**config["Labels"], "com.docker.compose.config-hash": "new-release"}
    await old.delete(force=True)
    new = await docker.containers.create(config, name=f"{project}_web_1")
    await new.start()

    # Watched from outside while it rolls: never fewer than the 3 it had.
    fewest = len(await running(docker, project))

    def rolled(m: Mqtt) -> bool:
        return sum(e["created"] for e in events(m, project, "web", "roll")) >= 2

    async with asyncio.timeout(30):
        while not rolled(mqtt):
            fewest = min(fewest, len(await running(docker, project)))
            await asyncio.sleep(0.02)  # polling the engine's own count
    assert fewest >= 3
    await reaches(mqtt, project, "web", 3)
    for c in await running(docker, project):
        if c["Labels"].get("autoscaler.clone-of"):
            inspect = (await docker.containers.get(c["Id"]))._container
            assert inspect["Config"]["Labels"]["autoscaler.clone-of"] == new.id
            assert "RELEASE=2" in inspect["Config"]["Env"]
            assert inspect["Config"]["Labels"]["com.docker.compose.config-hash"] == "new-release"
