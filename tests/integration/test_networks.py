"""A clone is on the network its template is on, whatever the network mode: the default bridge
of a plain `docker run` (which has no DNS, so no aliases), Compose's `network_mode: bridge`, and
an engine started without a default bridge, where a `docker run` container still reports an
endpoint on `bridge` that the engine never joined. Below API 1.44 the clone is connected to each
network one by one; from 1.44 it is created on all of them (test_web.py: two networks)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from tests.integration.conftest import ON_BOTH, TEST_IMAGE, Mqtt, events, reaches
from tests.integration.platforms import Platform, platform_named


async def docker_run(platform: Platform, *args: str) -> str:
    """`docker run -d ARGS...` as a user types it, on the platform's engine: the container id."""
    process = await asyncio.create_subprocess_exec(
        "docker", "run", "-d", *args, env={**os.environ, "DOCKER_HOST": platform.docker_host},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    return out.decode().split()[-1]


@pytest.fixture
async def plain(
    request: pytest.FixtureRequest, project: str
) -> AsyncIterator[tuple[Platform, str]]:
    """The platform named by the test's parameter, and a service name of the test's own; its
    containers, clones included, and the test's lease on that engine go afterwards."""
    platform = platform_named(request.param)
    name = f"plain-{uuid.uuid4().hex[:8]}"
    try:
        yield platform, name
    finally:
        async with aiodocker.Docker(url=platform.docker_host) as docker:
            listed = await docker.containers.list(
                all=True, filters=json.dumps({"label": [f"autoscaler.service={name}"]})
            )
            for container in listed:
                await container.delete(force=True)
            with contextlib.suppress(aiodocker.DockerError):
                lease = await docker.containers.get(f"autoscaler-lease-{project}")
                await lease.delete(force=True)


# One at a time: each manages every service outside Compose on its engine (the project
# `standalone`), which would be every other such test's too.
@pytest.mark.alone
@pytest.mark.parametrize(
    ("plain", "api"),
    [
        pytest.param("current", None, id="docker-26-default-bridge"),
        pytest.param("current", "1.43", id="docker-26-default-bridge-below-1.44"),
        pytest.param("legacy", None, id="docker-20-default-bridge"),
        pytest.param("bare", None, id="docker-20-no-default-bridge"),
    ],
    indirect=["plain"],
)
async def test_a_plain_docker_run_service_scales(
    plain: tuple[Platform, str], api: str | None, run_autoscaler: Any, mqtt: Mqtt,
) -> None:  # fmt: skip
    platform, name = plain
    labels = {"autoscaler.enable": "true", "autoscaler.service": name, "autoscaler.min": "2",
              "autoscaler.max": "3", "autoscaler.cpu.target": "50"}  # fmt: skip
    args = [arg for k, v in labels.items() for arg in ("--label", f"{k}={v}")]
    await docker_run(platform, *args, "--cpus", "0.1", TEST_IMAGE, "sleep", "86400")
    await run_autoscaler(docker_host=platform.docker_host, projects=frozenset({"standalone"}),
                         docker_api_version=api)  # fmt: skip
    await reaches(mqtt, "standalone", name, 2)
    assert not events(mqtt, "standalone", name, "error")

    async with aiodocker.Docker(url=platform.docker_host) as docker:
        listed = await docker.containers.list(
            filters=json.dumps({"label": [f"autoscaler.service={name}", "autoscaler.clone-of"]})
        )
        clone = (await docker.containers.get(listed[0].id))._container
    networks = clone["NetworkSettings"]["Networks"]
    if platform.name == "bare":
        # Nothing to join: it runs as its template runs, on no network.
        assert not any(e.get("NetworkID") for e in networks.values()), networks
    else:
        assert set(networks) == {"bridge"} and networks["bridge"]["IPAddress"], networks


@ON_BOTH
async def test_a_compose_service_on_the_default_bridge_scales(
    platform: Platform, project: str, tmp_path: Path, run_autoscaler: Any, mqtt: Mqtt,
    docker: aiodocker.Docker, make_container: Any,
) -> None:  # fmt: skip
    path = tmp_path / "compose.yaml"
    path.write_text(f"""\
services:
  web:
    image: {TEST_IMAGE}
    command: ["sleep", "86400"]
    network_mode: bridge
    cpus: 0.1
    stop_grace_period: 1s
    labels:
      autoscaler.enable: "true"
      autoscaler.min: "2"
      autoscaler.max: "3"
      autoscaler.cpu.target: "50"
""")
    await platform.run_compose(project, [path], "up", "-d")
    await run_autoscaler()
    await reaches(mqtt, project, "web", 2)
    clone = await docker.containers.get(platform.container(project, "web", 2))
    networks = clone["NetworkSettings"]["Networks"]
    assert set(networks) == {"bridge"} and networks["bridge"]["IPAddress"], networks
    assert not events(mqtt, project, "web", "error")
