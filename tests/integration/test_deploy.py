"""The deploy image, built offline by scripts/image.sh, run as a container beside a stack the way
deploy/compose.autoscaler.yaml runs it: it scales the service, and samples it by the fast
cgroup path from inside its container."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from typing import Any

import aiodocker

from tests.integration.conftest import ROOT, Mqtt
from tests.integration.test_scaling import WEB, names


def test_the_deploy_overlay_is_valid_compose(docker_host: str) -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "deploy" / "compose.autoscaler.yaml"), "config"],
        capture_output=True, text=True, env={**os.environ, "DOCKER_HOST": docker_host},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "pid: host" in result.stdout


async def _exec(docker_host: str, container: str, *command: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "docker", "exec", container, *command,
        env={**os.environ, "DOCKER_HOST": docker_host},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_the_containerised_autoscaler_scales_the_stack_sampling_it_by_cgroup_files(
    deploy_image: str, docker_host: str, docker: aiodocker.Docker, make_container: Any,
    make_load: Any, mqtt: Mqtt, project: str,
) -> None:  # fmt: skip
    load = make_load("web")
    await make_container("web", WEB, load=load)
    socket = docker_host.removeprefix("unix://")
    # As deploy/compose.autoscaler.yaml runs it: the engine socket, the host's pid namespace and
    # cgroup tree; no network here (the engine has none), so MQTT is off and /status is read
    # from inside the container.
    config = {
        "Image": deploy_image,
        "Cmd": ["run"],
        "Env": [
            "DOCKER_HOST=unix:///var/run/docker.sock",
            "AUTOSCALER_INTERVAL=1",
            f"AUTOSCALER_PROJECTS={json.dumps([project])}",
            "AUTOSCALER_MQTT__ENABLED=false",
            f"AUTOSCALER_LEASE__NAME=autoscaler-lease-{project}",
        ],
        "Labels": {"test.project": project},
        # Its own user, as the image says, and as the overlay runs it: no capability, no new
        # privileges, a read-only root; the socket's group to reach the socket by.
        "HostConfig": {
            "NetworkMode": "none",
            "PidMode": "host",
            "Binds": [f"{socket}:/var/run/docker.sock", "/sys/fs/cgroup:/sys/fs/cgroup:ro"],
            "GroupAdd": [str(os.stat(socket).st_gid)],
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges:true"],
            "ReadonlyRootfs": True,
            "Tmpfs": {"/tmp": ""},
        },
    }
    autoscaler = await docker.containers.create(config, name=f"{project}-autoscaler")
    await autoscaler.start()

    load.set(200)  # ceil(200 / 125) = 2
    async with asyncio.timeout(60):
        while len(await names(docker, project)) < 2:  # noqa: ASYNC110 - watched from outside
            await asyncio.sleep(0.2)
    fetch = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(" \
            "'http://127.0.0.1:9464/status').read().decode())"  # fmt: skip

    async def status_after_the_action() -> dict[str, Any]:
        # The clone exists a moment before the action that made it is done with.
        async with asyncio.timeout(30):
            while True:
                status = json.loads(await _exec(docker_host, autoscaler.id, "python3", "-c", fetch))
                if status["services"][f"{project}/web"]["state"]["replicas"] == 2:
                    return status  # type: ignore[no-any-return]
                await asyncio.sleep(0.2)

    status = await status_after_the_action()
    state = status["services"][f"{project}/web"]["state"]
    assert state["sampler"] == "cgroup", state
    decisions = status["services"][f"{project}/web"]["decisions"]
    assert any(d["to"] == 2 for d in decisions)
    assert (await autoscaler.show())["Config"]["User"] == "10001:10001"
    logs = "".join(await autoscaler.log(stdout=True, stderr=True))
    assert "scaled 1 -> 2" in logs, logs
    await autoscaler.stop(t=10)
    assert (await autoscaler.show())["State"]["ExitCode"] == 0
