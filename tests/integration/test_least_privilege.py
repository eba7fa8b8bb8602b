"""Least privilege against the real engine: the autoscaler behind deploy/socket-proxy (HAProxy
with the shipped grants) scales as it does with the socket itself, the proxy really denies what
it does not grant, and an instance that cannot take its lease says why, once, where an operator
looks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp
import pytest

from tests.integration.browser import Browser
from tests.integration.conftest import Mqtt, events, reaches, states
from tests.integration.socket_proxy import socket_proxy
from tests.integration.test_scaling import WEB, names


async def test_the_socket_proxy_denies_every_call_the_autoscaler_does_not_make(
    engine_api: str, make_container: Any
) -> None:
    container = await make_container("web")
    async with aiodocker.Docker(url=engine_api) as through:
        assert (await through.version())["ApiVersion"]
        assert any(c.id == container.id for c in await through.containers.list())
        denied = [
            lambda: through.containers.container(container.id).exec(["sh"]),
            lambda: through.images.list(),
            lambda: through.images.import_image(b""),
            lambda: through.volumes.list(),
            lambda: through._query_json(f"containers/{container.id}/archive?path=/"),
            lambda: through._query_json("swarm/join", method="POST", data={}),
            lambda: through._query_json("services"),  # granted only with SWARM=1
        ]
        for call in denied:
            with pytest.raises(aiodocker.DockerError) as refused:
                await call()
            assert refused.value.status == 403
            assert "denied by the socket proxy" in refused.value.message


async def test_behind_the_socket_proxy_it_takes_the_lease_and_scales_a_step_up_and_down(
    engine_api: str, make_container: Any, make_load: Any, run_autoscaler: Any, mqtt: Mqtt,
    docker: aiodocker.Docker, project: str,
) -> None:  # fmt: skip
    load = make_load("web")
    template = await make_container("web", WEB, load=load)
    app = await run_autoscaler(docker_host=engine_api)

    load.set(300)  # ceil(300 / 125) = 3
    await reaches(mqtt, project, "web", 3)
    assert len(await names(docker, project)) == 3
    load.set(0)
    await reaches(mqtt, project, "web", 1)
    assert app.status().get("standing_by") is None
    # The lease was made from an image the engine had (the images API is not granted).
    lease = await docker.containers.get(f"autoscaler-lease-{project}")
    assert lease["Image"] == (await template.show())["Image"]


async def test_an_instance_that_cannot_take_its_lease_says_why_and_what_to_grant(
    web_images: None, docker_host: str, make_container: Any, run_autoscaler: Any, mqtt: Mqtt,
    browser: Browser, tmp_path: Path,
) -> None:  # fmt: skip
    await make_container("web", WEB)
    # The proxy as a node's agent is given it, reading only: the lease cannot be created.
    with socket_proxy(docker_host, tmp_path / "proxy", write=False) as refusing:
        app = await run_autoscaler(docker_host=refusing)
        told = await mqtt.wait_for(
            lambda m: [e for e in m.on("events") if e["Actor"]["ID"] == "engine lease"]
        )
        message = told[0]["message"]
        assert "cannot take the lease: POST /containers/create: 403" in message, message
        assert "denied by the socket proxy" in message and "grant" in message, message
        status = await mqtt.wait_for(
            lambda m: [s for s in m.statuses().get(app.instance, []) if "standing_by" in s]
        )
        assert status[-1]["standing_by"] in message and status[-1]["leading"] is False
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{app.api.port}/readyz") as response:
                assert response.status == 503
                assert (await response.text()).startswith("standing by: cannot take the lease")
            async with http.get(f"http://127.0.0.1:{app.api.port}/status") as response:
                assert json.loads(await response.text())["standing_by"] in message
        async with browser.page() as page:
            await page.open(f"http://127.0.0.1:{app.api.port}/")
            pill = "document.getElementById('lease')"
            await page.wait_for(f"{pill}.textContent.startsWith('standing by: cannot take')")
            assert await page.evaluate(f"{pill}.classList.contains('bad')")
        await run_autoscaler.stop()


GROWS = {"autoscaler.enable": "true", "autoscaler.min": "2", "autoscaler.max": "3",
         "autoscaler.cpu.target": "50"}  # fmt: skip
"""A service that needs a clone at once: its min is above its one container."""


async def test_a_template_with_privileges_is_cloned_only_where_its_labels_allow_them(
    docker: aiodocker.Docker, make_container: Any, run_autoscaler: Any, mqtt: Mqtt, project: str
) -> None:
    # The labels on the wrong container, or a template that grew a capability in a release:
    # every clone would have it. A label error, until the service says it is meant.
    await make_container("web", GROWS, host={"CapAdd": ["NET_ADMIN"]})
    await make_container("root", GROWS, host={"Binds": ["/:/host:ro"]})
    await make_container("admin", GROWS | {"autoscaler.allow-privileged": "true"},
                         host={"CapAdd": ["NET_ADMIN"]})  # fmt: skip
    await run_autoscaler()
    await reaches(mqtt, project, "admin", 2)
    for service, words in (("web", "adds capabilities NET_ADMIN"), ("root", "binds / of the host")):
        errors = await mqtt.wait_for(lambda m, s=service: events(m, project, s, "error"))
        assert errors[0]["Actor"]["Attributes"]["label"] == "autoscaler.allow-privileged"
        assert words in errors[0]["message"], errors[0]["message"]
        assert states(mqtt, project, service)[-1]["phase"] == "error"
    clones = await docker.containers.list(
        all=True, filters=json.dumps({"label": [f"com.docker.compose.project={project}",
                                                "autoscaler.clone-of"]})
    )  # fmt: skip
    services = [c["Labels"]["com.docker.compose.service"] for c in clones]
    assert services == ["admin"], services
    made = await docker.containers.get(clones[0]["Id"])
    assert made._container["HostConfig"]["CapAdd"] == ["NET_ADMIN"]
