"""Swarm services, on a real three-node Swarm (scripts/swarm.sh): the same labels on the service,
one controller per cluster against a manager, samples from an agent on every node."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from autoscaler.app import App
from autoscaler.backends.swarm.lease import SwarmLease
from autoscaler.backends.swarm.services import SwarmScaler
from autoscaler.labels import ServiceKey
from autoscaler.settings import LeaseSettings, SwarmSettings
from tests.integration.browser import Browser
from tests.integration.conftest import (
    ROOT,
    TEST_IMAGE,
    Load,
    Mqtt,
    events,
    states,
)
from tests.integration.exporter import exporting
from tests.integration.relay import relay
from tests.integration.socket_proxy import socket_proxy

CPU = 0.1  # of a core, each task's limit
BURN = ROOT / "scripts" / "burn.sh"
LABELS = {
    "autoscaler.enable": "true",
    "autoscaler.max": "6",
    "autoscaler.cpu.target": "50",
    "autoscaler.scale-down.stabilization": "0",
}


def demand_for(replicas: int) -> int:
    """Millicores that `replicas` tasks carry at the 50 % target."""
    return int(replicas * CPU * 1000 * 50 / 100)


class Cluster:
    """The test's view of the swarm: one client per node, and the services the test made."""

    def __init__(self, nodes: list[str], project: str) -> None:
        self.nodes = nodes
        self.project = project
        self.clients = [aiodocker.Docker(url=node) for node in nodes]
        self.services: list[str] = []

    @property
    def manager(self) -> aiodocker.Docker:
        return self.clients[0]

    async def create(
        self,
        labels: Mapping[str, str],
        *,
        replicas: int,
        load: Load,
        per_node: int | None = None,
        service: str = "web",
    ) -> str:
        self.services.append(f"{self.project}_{service}")
        spec = {
            "Name": f"{self.project}_{service}",
            "Labels": {"com.docker.stack.namespace": self.project, **labels},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": TEST_IMAGE,
                    "Command": ["sh", "/burn.sh"],
                    "Mounts": [
                        {"Type": "bind", "Source": str(BURN), "Target": "/burn.sh"},
                        {"Type": "bind", "Source": str(load.path), "Target": "/load"},
                    ],
                    "StopGracePeriod": 2_000_000_000,
                },
                "Resources": {"Limits": {"NanoCPUs": int(CPU * 1e9)}},
                "Placement": {"MaxReplicas": per_node} if per_node else {},
            },
            "Mode": {"Replicated": {"Replicas": replicas}},
        }
        created = await self.manager._query_json("services/create", method="POST", data=spec)
        return str(created["ID"])

    async def running(self) -> dict[str, int]:
        """Running tasks of the test's service, by node id."""
        tasks = await self.manager._query_json(
            "tasks",
            params={"filters": json.dumps({"service": [f"{self.project}_web"]})},
        )
        by_node: dict[str, int] = {}
        for task in tasks:
            if task["Status"]["State"] == "running" and task["DesiredState"] == "running":
                by_node[task["NodeID"]] = by_node.get(task["NodeID"], 0) + 1
        return by_node

    async def replicas(self) -> int:
        service = await self.manager._query_json(f"services/{self.project}_web")
        return int(service["Spec"]["Mode"]["Replicated"]["Replicas"])

    async def node_id(self, index: int) -> str:
        info = await self.clients[index].system.info()
        return str(info["Swarm"]["NodeID"])

    async def close(self) -> None:
        for name in self.services:
            with contextlib.suppress(aiodocker.DockerError):
                await self.manager._query_json(f"services/{name}", method="DELETE")
        for client in self.clients:
            await client.close()


@pytest.fixture
async def cluster(swarm: list[str], project: str) -> AsyncIterator[Cluster]:
    view = Cluster(swarm, project)
    try:
        yield view
    finally:
        await view.close()


@pytest.fixture
async def agents(
    swarm: list[str], broker: tuple[str, int], mqtt: Mqtt
) -> AsyncIterator[Callable[[int], Any]]:
    """`autoscaler agent` on a node (by index), as a process of its own; stopped at the end."""
    started: dict[int, asyncio.subprocess.Process] = {}

    async def start(index: int, docker_host: str | None = None) -> asyncio.subprocess.Process:
        """`docker_host`: the node's engine another way (through a socket proxy)."""
        env = {
            **os.environ,
            "DOCKER_HOST": docker_host or swarm[index],
            "AUTOSCALER_INTERVAL": "1",
            "AUTOSCALER_MQTT__HOST": broker[0],
            "AUTOSCALER_MQTT__PORT": str(broker[1]),
            "AUTOSCALER_MQTT__TOPIC_PREFIX": mqtt.prefix,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "autoscaler", "agent", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        started[index] = process
        return process

    try:
        yield start
    finally:
        for process in started.values():
            if process.returncode is None:
                process.terminate()
                await process.wait()


def controller_settings(swarm: list[str], project: str, node: int = 0) -> dict[str, Any]:
    """A controller against manager `node`, with the cluster lease of the test's own."""
    return {
        "docker_host": swarm[node],
        "lease": LeaseSettings(enabled=False),
        # Not enabled: on by itself, as the engine is a manager.
        "swarm": SwarmSettings(lease_name=f"lease-{project}", lease_ttl=3),
    }


async def until(condition: Callable[[], Any], within: float) -> Any:
    """Poll the engine (which has no event for a task count) until `condition` holds."""
    async with asyncio.timeout(within):
        while not (result := await condition()):  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.2)
        return result


async def test_a_step_of_load_reaches_the_needed_task_count_across_nodes(
    cluster: Cluster,
    agents: Any,
    run_autoscaler: Any,
    swarm: list[str],
    project: str,
    mqtt: Mqtt,
    make_load: Callable[[str], Load],
) -> None:
    load = make_load("web")
    # Max well above the need: a controller that jumped to max would be seen.
    await cluster.create(LABELS | {"autoscaler.max": "10"}, replicas=2, load=load)
    for node in range(3):
        await agents(node)
    await run_autoscaler(**controller_settings(swarm, project))
    await mqtt.wait_for(lambda m: states(m, f"swarm/{project}", "web"))

    load.set(demand_for(5))

    async def five_running() -> dict[str, int] | None:
        by_node = await cluster.running()
        return by_node if sum(by_node.values()) >= 5 else None

    spread = await until(five_running, 60)
    assert len(spread) >= 2, f"Swarm placed the tasks on one node only: {spread}"
    # What the controller asked for is what Swarm was told: the need, or one more while the
    # new tasks warm up (the reaction bench's bound), never more, with max at 10.
    ups = events(mqtt, f"swarm/{project}", "web", "scale_up")
    assert ups and ups[-1]["to"] in (5, 6)
    assert await cluster.replicas() in (5, 6)


async def test_through_socket_proxies_the_controller_and_the_agents_scale_a_swarm_service(
    cluster: Cluster, agents: Any, run_autoscaler: Any, swarm: list[str], docker_host: str,
    web_images: None, project: str, mqtt: Mqtt, make_load: Callable[[str], Load],
    tmp_path: Path,
) -> None:  # fmt: skip
    # deploy/socket-proxy in front of every node: with the Swarm grants for the controller on
    # the manager, reading only (WRITE=0) for each node's agent, as deploy/stack.yaml has them.
    load = make_load("web")
    await cluster.create(LABELS | {"autoscaler.max": "10"}, replicas=2, load=load)
    with contextlib.ExitStack() as proxies:
        nodes = [
            proxies.enter_context(
                socket_proxy(docker_host, tmp_path / f"n{n}", engine=node, write=False)
            )
            for n, node in enumerate(swarm)
        ]
        manager = proxies.enter_context(
            socket_proxy(docker_host, tmp_path / "manager", engine=swarm[0], swarm=True)
        )
        for index, node in enumerate(nodes):
            await agents(index, node)
        await run_autoscaler(**controller_settings(swarm, project) | {"docker_host": manager})
        await mqtt.wait_for(lambda m: states(m, f"swarm/{project}", "web"))
        load.set(demand_for(5))
        ups = await mqtt.wait_for(
            lambda m: [e for e in events(m, f"swarm/{project}", "web", "scale_up")
                       if e["to"] >= 5], 60,
        )  # fmt: skip
        assert ups[0]["to"] in (5, 6)
        assert await cluster.replicas() in (5, 6)
        await run_autoscaler.stop()


async def test_a_silent_agent_holds_the_count_until_it_speaks_again(
    browser: Browser,
    cluster: Cluster,
    agents: Any,
    run_autoscaler: Any,
    swarm: list[str],
    project: str,
    mqtt: Mqtt,
    make_load: Callable[[str], Load],
) -> None:
    # One task a node, no demand: with every agent speaking this would be a scale-down to 1.
    load = make_load("web")
    await cluster.create(LABELS, replicas=3, load=load, per_node=1)
    await until(lambda: _count(cluster, 3), 60)
    await agents(0)
    await agents(1)
    app: App = await run_autoscaler(**controller_settings(swarm, project))
    silent = await cluster.node_id(2)

    async def names_the_silent_node() -> bool:
        status = app.status()
        return silent in status.get("swarm", {}).get("silent", {})

    await until(names_the_silent_node, 30)
    async with browser.page(1280, 800) as page:
        await page.open(f"http://127.0.0.1:{app.api.port}/")
        pill = "document.getElementById('swarm')"
        await page.wait_for(f"{pill}.textContent.includes('agent silent on')")

        since = (
            states(mqtt, f"swarm/{project}", "web")[-1]["time"]
            if states(mqtt, f"swarm/{project}", "web")
            else 0.0
        )
        held = await mqtt.wait_for(
            lambda m: (
                (later := [s for s in states(m, f"swarm/{project}", "web") if s["time"] > since])[
                    4:
                ]
                and later
            ),
            30,
        )
        assert all(s["replicas"] == 3 for s in held)
        decision = app.status()["services"][f"swarm/{project}/web"]["decisions"][-1]
        why = [s["why_not"] for s in decision["samples"] if not s["counted"]]
        assert why == [f"agent of node {app.status()['swarm']['silent'][silent]} silent"]
        assert not events(mqtt, f"swarm/{project}", "web", "scale_down")
        assert await cluster.replicas() == 3

        await agents(2)
        await mqtt.wait_for(lambda m: events(m, f"swarm/{project}", "web", "scale_down"), 30)
        assert await cluster.replicas() < 3
        assert silent not in app.status()["swarm"]["silent"]
        await page.wait_for(f"!{pill}.textContent.includes('silent')")
        assert page.errors == []


async def test_an_instance_on_a_worker_serves_compose_only(
    run_autoscaler: Any, swarm: list[str]
) -> None:
    on_worker: App = await run_autoscaler(docker_host=swarm[2], lease=LeaseSettings(enabled=False))
    assert on_worker.cluster is None
    assert "swarm" not in on_worker.status()


async def _count(cluster: Cluster, running: int) -> bool:
    return sum((await cluster.running()).values()) == running


async def test_two_controllers_on_two_managers_never_both_act(
    cluster: Cluster,
    agents: Any,
    run_autoscaler: Any,
    swarm: list[str],
    project: str,
    mqtt: Mqtt,
    make_load: Callable[[str], Load],
) -> None:
    load = make_load("web")
    await cluster.create(LABELS | {"autoscaler.min": "2"}, replicas=1, load=load)
    for node in range(3):
        await agents(node)
    first: App = await run_autoscaler(**controller_settings(swarm, project, 0))
    second: App = await run_autoscaler(**controller_settings(swarm, project, 1))
    assert first.cluster is not None and second.cluster is not None

    # Both start at once and race for the lease: one acts (1 -> 2, the minimum), never both.
    await mqtt.wait_for(lambda m: events(m, f"swarm/{project}", "web", "scale_up"), 30)
    load.set(demand_for(4))
    # The need, or one more while the new tasks warm up (as in the step test).
    ups = await mqtt.wait_for(lambda m: [e for e in events(m, f"swarm/{project}", "web", "scale_up")
                                         if e["to"] >= 4], 60)  # fmt: skip
    actors = {e["Actor"]["Attributes"]["instance"] for e in mqtt.on(f"swarm/{project}/web/events")}
    assert len(actors) == 1, f"both controllers acted: {actors}"
    assert actors <= {first.cluster.lease.holder, second.cluster.lease.holder}  # the cluster's
    leading = [a for a in (first, second) if a.cluster and a.cluster.lease.leading]
    assert len(leading) <= 1
    assert ups[-1]["to"] in (4, 5)
    assert await cluster.replicas() in (4, 5)


async def test_of_instances_racing_for_the_cluster_lease_exactly_one_wins(
    cluster: Cluster, project: str
) -> None:
    first, second = cluster.clients[0], cluster.clients[1]  # two managers
    name = f"lease-{project}"
    ttl = 0.5

    async def race(*leases: SwarmLease) -> list[SwarmLease]:
        """One step of each at once: those whose write the cluster took (each holds the term it
        wrote), the lease naming the one that did. Not those `leading`: a lead lasts ttl/3
        from before the step's read, and a loaded host answers the step's two calls later
        than that, so the winner may have led and stopped before the race is looked at."""
        await asyncio.gather(*(lease._step() for lease in leases))
        won = [lease for lease in leases if lease.term is not None]
        assert not [lease for lease in leases if lease not in won and lease.leading]
        if len(won) == 1:
            labels = (await first._query_json(f"configs/{name}"))["Spec"]["Labels"]
            named = (labels[SwarmLease.HOLDER], int(labels[SwarmLease.TERM]))
            assert named == (won[0].holder, won[0].term), labels
        return won

    try:
        # Both create it at once: the name is unique cluster-wide, so one create fails.
        a, b = SwarmLease(first, name, ttl), SwarmLease(second, name, ttl)
        created = await race(a, b)
        assert len(created) == 1, created
        # Its holder goes silent: both see the counter stand still for a ttl and write at the
        # same version; one write fails.
        c, d = SwarmLease(first, name, ttl), SwarmLease(second, name, ttl)
        assert not await race(c, d)  # each only notes the lease as it stands
        await asyncio.sleep(ttl)  # the silence a takeover waits for, from before those reads
        taken = await race(c, d)
        assert len(taken) == 1, taken
        assert (taken[0].term or 0) > (created[0].term or 0)  # a takeover is a new term
    finally:
        with contextlib.suppress(aiodocker.DockerError):
            await first._query_json(f"configs/{name}", method="DELETE")


async def test_when_the_actor_stops_another_manager_takes_over(
    cluster: Cluster, project: str
) -> None:
    name = f"lease-{project}"
    # A ttl far longer than the wait below: the other takes over because the holder released
    # the lease on its way out, never because it lapsed.
    ttl = 60
    leases = [SwarmLease(cluster.clients[0], name, ttl), SwarmLease(cluster.clients[1], name, ttl)]
    tasks = [asyncio.create_task(lease.run()) for lease in leases]
    try:

        async def one_leads() -> SwarmLease | None:
            leading = [lease for lease in leases if lease.leading]
            assert len(leading) <= 1, "both instances lead"
            return leading[0] if leading else None

        leader = await until(one_leads, 10)
        tasks[leases.index(leader)].cancel()  # its shutdown releases the lease
        await asyncio.wait(tasks, timeout=5, return_when=asyncio.FIRST_COMPLETED)

        async def the_other_leads() -> bool:
            return next(lease for lease in leases if lease is not leader).leading

        await until(the_other_leads, ttl / 6 + 5)  # the other's next look, and some
        assert not leader.leading
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


WEB_STACK = """\
version: "3.8"
services:
  web:
    image: {image}
    command: ["sleep", "86400"]
    deploy:
      replicas: 1
      resources: {{limits: {{cpus: "0.1"}}}}
      labels:
        autoscaler.enable: "true"
        autoscaler.min: "2"
        autoscaler.max: "4"
        autoscaler.cpu.target: "50"
"""


async def _stack(node: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "docker", "stack", *args, env=os.environ | {"DOCKER_HOST": node},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    return out.decode()


@pytest.mark.parametrize("own_users", [False, True], ids=["agents-sharing-a-user", "a-user-a-node"])
async def test_the_stack_example_deploys_and_scales_a_labelled_service(
    cluster: Cluster, stack_images: dict[str, str], project: str, tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch, own_users: bool,
) -> None:  # fmt: skip
    for name, image in stack_images.items():
        monkeypatch.setenv(name, image)  # the stack file's variables
    monkeypatch.setenv("AUTOSCALER_INTERVAL", "1")
    monkeypatch.setenv("AUTOSCALER_PROJECTS", json.dumps([project]))  # no other test's services
    # The broker asks for passwords and keeps to its ACL: the agents' samples reach the
    # controller as the agent user's (or, `own_users`, each as its node's own user, through
    # deploy/agents.sh's stack file), the API asks for its token (explain below sends it).
    secrets = tmp_path / "secrets"
    nodes = sorted(n["ID"] for n in await cluster.clients[0].nodes.list())
    made = await asyncio.create_subprocess_exec(
        "sh", str(ROOT / "deploy" / "secrets.sh"), str(secrets),
        env=os.environ | ({"NODES": " ".join(nodes)} if own_users else {}),
    )  # fmt: skip
    assert await made.wait() == 0
    monkeypatch.setenv("AUTOSCALER_SECRETS", str(secrets))
    files = ["-c", str(ROOT / "deploy" / "stack.yaml")]
    if own_users:
        agents = tmp_path / "agents.yaml"
        with agents.open("wb") as out:
            made = await asyncio.create_subprocess_exec(
                "sh", str(ROOT / "deploy" / "agents.sh"), *nodes, stdout=out
            )
            assert await made.wait() == 0
        files += ["-c", str(agents)]
    stack, web = f"{project}as", tmp_path / "web.yaml"
    web.write_text(WEB_STACK.format(image=TEST_IMAGE))
    manager = cluster.nodes[0]
    try:
        await _stack(manager, "deploy", "--resolve-image", "never", *files, stack)
        await _stack(manager, "deploy", "--resolve-image", "never", "-c", str(web), project)

        # The controller scales the labelled service to its minimum, through Swarm.
        await until(lambda: _count(cluster, 2), 120)
        assert await cluster.replicas() == 2

        # Every node's agent, in a container, samples the tasks by their cgroup files.
        async def sampled_by_agents() -> dict[str, Any] | None:
            state = await _explain(cluster, stack, project)
            sampler = (state or {}).get("sampler") or ""
            return state if sampler.startswith("cgroup@") else None

        state = await until(sampled_by_agents, 60)
        assert state["replicas"] == 2
        if own_users:
            # The samples came from the agents a node, each its node's user: the global one
            # runs nowhere.
            client = cluster.clients[0]
            shared = await client.services.inspect(f"{stack}_agent")
            assert shared["Spec"]["Mode"] == {"Replicated": {"Replicas": 0}}
            for node in nodes:
                own = await client.services.inspect(f"{stack}_agent-{node}")
                env = own["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
                assert f"AUTOSCALER_MQTT__USERNAME={node}" in env
    finally:
        for name in (project, stack):
            with contextlib.suppress(AssertionError):
                await _stack(manager, "rm", name)
        # `stack rm` returns before the tasks have stopped: wait for them to be gone.
        await until(lambda: _stack_gone(cluster, stack), 60)


async def _stack_gone(cluster: Cluster, stack: str) -> bool:
    label = json.dumps({"label": [f"com.docker.stack.namespace={stack}"]})
    for client in cluster.clients:
        if await client.containers.list(all=True, filters=label):
            return False
    return True


async def _explain(cluster: Cluster, stack: str, project: str) -> dict[str, Any] | None:
    """The state of the test's service, as `autoscaler explain` in the acting controller's
    container reads it from that controller's /status."""
    for node, client in zip(cluster.nodes[:2], cluster.clients[:2], strict=True):
        found = await client.containers.list(
            filters=json.dumps({"label": [f"com.docker.swarm.service.name={stack}_autoscaler"]})
        )
        for container in found:
            process = await asyncio.create_subprocess_exec(
                "docker", "exec", container.id, "autoscaler", "explain", f"swarm/{project}/web", "--json",
                env=os.environ | {"DOCKER_HOST": node},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            out, _ = await process.communicate()
            status = json.loads(out) if process.returncode == 0 else {}
            if status.get("leading") and status.get("swarm", {}).get("leading"):
                state: dict[str, Any] = status["services"][f"swarm/{project}/web"]["state"]
                return state
    return None


async def test_an_update_by_someone_else_in_between_is_kept_and_the_count_set_on_top_of_it(
    cluster: Cluster, project: str, make_load: Callable[[str], Load]
) -> None:
    service = await cluster.create(LABELS, replicas=1, load=make_load("web"))
    docker = aiodocker.Docker(url=cluster.nodes[0])
    someone_else = cluster.clients[1]
    read = docker._query_json
    interfered = False

    async def reads_then_someone_updates(path: str, *args: Any, **kwargs: Any) -> Any:
        # Right after the scaler reads the service, another manager's client changes it.
        nonlocal interfered
        result = await read(path, *args, **kwargs)
        # The scaler reads the service by its name, then by its id.
        if path in (f"services/{service}", f"services/{project}_web") and not interfered:
            interfered = True
            current = await someone_else._query_json(f"services/{service}")
            spec = current["Spec"]
            spec["Labels"]["team"] = "payments"
            await someone_else._query_json(
                f"services/{service}/update", method="POST",
                params={"version": current["Version"]["Index"]}, data=spec,
            )  # fmt: skip
        return result

    docker._query_json = reads_then_someone_updates  # type: ignore[method-assign]
    try:
        result = await SwarmScaler(docker).scale_to(
            ServiceKey(project, "web", scope="swarm"), [], 3
        )
    finally:
        await docker.close()
    assert interfered
    assert result.after == 3
    spec = (await cluster.manager._query_json(f"services/{service}"))["Spec"]
    assert spec["Labels"]["team"] == "payments"  # theirs, kept
    assert spec["Mode"]["Replicated"]["Replicas"] == 3  # ours, on top of it


async def test_a_service_its_owner_scaled_to_zero_is_left_alone(
    cluster: Cluster,
    run_autoscaler: Any,
    swarm: list[str],
    project: str,
    mqtt: Mqtt,
    make_load: Callable[[str], Load],
) -> None:
    # Below its min, but stopped on purpose: neither scaled back up nor an error. Another
    # service below its min shows the rounds that passed it by.
    await cluster.create(LABELS | {"autoscaler.min": "2"}, replicas=0, load=make_load("web"))
    other = LABELS | {"autoscaler.min": "2"}
    await cluster.create(other, replicas=1, load=make_load("api"), service="api")
    app: App = await run_autoscaler(**controller_settings(swarm, project))
    await mqtt.wait_for(lambda m: events(m, f"swarm/{project}", "api", "scale_up"), 30)
    assert f"swarm/{project}/web" not in app.status()["services"]
    assert not mqtt.on(f"swarm/{project}/web/events")
    assert await cluster.replicas() == 0


async def test_one_process_on_a_manager_scales_its_compose_services_and_the_swarms_apart(
    cluster: Cluster,
    run_autoscaler: Any,
    swarm: list[str],
    project: str,
    mqtt: Mqtt,
    make_load: Callable[[str], Load],
) -> None:
    # A Compose project and a Swarm stack of the same name, each with a service `web`.
    both = LABELS | {"autoscaler.min": "2"}
    await cluster.create(both, replicas=1, load=make_load("web"))
    compose = {
        "com.docker.compose.project": project,
        "com.docker.compose.service": "web",
        "com.docker.compose.container-number": "1",
        "com.docker.compose.oneoff": "False",
    }
    config = {"Image": TEST_IMAGE, "Cmd": ["sleep", "86400"], "Labels": compose | both,
              "HostConfig": {"NetworkMode": "none"}}  # fmt: skip
    worker = await cluster.manager.containers.create(config, name=f"{project}-web-1")
    try:
        await worker.start()
        app: App = await run_autoscaler(**controller_settings(swarm, project))
        await mqtt.wait_for(
            lambda m: (
                events(m, f"swarm/{project}", "web", "scale_up")
                and events(m, project, "web", "scale_up")
            ),
            30,
        )
        swarm_up = events(mqtt, f"swarm/{project}", "web", "scale_up")
        compose_up = events(mqtt, project, "web", "scale_up")
        assert (swarm_up[0]["scope"], compose_up[0]["scope"]) == ("swarm", "local")
        assert (swarm_up[0]["from"], compose_up[0]["from"]) == (1, 1)
        assert {f"swarm/{project}/web", f"{project}/web"} <= set(app.status()["services"])
        assert await cluster.replicas() == 2  # Swarm was told
        label = json.dumps({"label": [f"com.docker.compose.project={project}"]})
        assert len(await cluster.manager.containers.list(filters=label)) == 2  # a clone made
    finally:
        label = json.dumps({"label": [f"com.docker.compose.project={project}"]})
        for container in await cluster.manager.containers.list(all=True, filters=label):
            await container.delete(force=True)


async def test_a_task_swarm_cannot_place_is_pending_and_everything_else_still_scales(
    cluster: Cluster,
    run_autoscaler: Any,
    swarm: list[str],
    project: str,
    mqtt: Mqtt,
    make_load: Callable[[str], Load],
) -> None:
    # More CPU reserved than any node has: its task stays pending, with no node (no NodeID).
    pending = await cluster.create(LABELS, replicas=1, load=make_load("web"))
    service = await cluster.manager._query_json(f"services/{pending}")
    spec = service["Spec"]
    spec["TaskTemplate"]["Resources"]["Reservations"] = {"NanoCPUs": 1000 * 10**9}
    await cluster.manager._query_json(
        f"services/{pending}/update", method="POST",
        params={"version": service["Version"]["Index"]}, data=spec,
    )  # fmt: skip
    await cluster.create(LABELS | {"autoscaler.min": "2"}, replicas=1, load=make_load("api"),
                         service="api")  # fmt: skip

    async def unplaced() -> bool:
        tasks = await cluster.manager._query_json(
            "tasks", params={"filters": json.dumps({"service": [pending]})}
        )
        return any(t["Status"]["State"] == "pending" and not t.get("NodeID") for t in tasks)

    await until(unplaced, 30)
    app: App = await run_autoscaler(**controller_settings(swarm, project))
    await mqtt.wait_for(lambda m: events(m, f"swarm/{project}", "api", "scale_up"), 30)
    # The pending task is counted (Swarm was asked for it) but is no sample: the service holds.
    web = await mqtt.wait_for(lambda m: states(m, f"swarm/{project}", "web")[2:])
    assert {s["replicas"] for s in web} == {1}
    assert {s["phase"] for s in web} == {"holding"}
    assert app.status()["swarm"]["error"] is None
    assert not mqtt.on("events")  # no part of the process failed


async def test_a_cluster_lease_renewal_answered_late_never_stretches_the_lead(
    swarm: list[str], project: str
) -> None:
    folder = Path(tempfile.mkdtemp(prefix="relay-"))
    try:
        async with relay(swarm[0], folder / "manager.sock") as path:
            client = aiodocker.Docker(url=path.url)
            lease = SwarmLease(client, f"lease-{project}", ttl=3.0)
            task = asyncio.create_task(lease.run())
            try:
                await until(lambda: _true(lease.leading), 10)
                # Every renewal is answered 2 s late: longer than the lead one buys (ttl/3).
                held = path.hold(r"POST /v[\d.]+/configs/[0-9a-z]+/update", 2.0)
                await until(lambda: _true(held.seen >= 2), 15)
                led = []
                for _ in range(40):
                    led.append(lease.leading)
                    await asyncio.sleep(0.05)
                assert not any(led), "a renewal answered 2 s late counted as fresh"
            finally:
                path.release()
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await client.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _true(value: bool) -> bool:
    return value


async def test_a_swarm_service_sleeps_at_zero_with_its_label_and_wakes_on_demand(
    cluster: Cluster, run_autoscaler: Any, swarm: list[str], project: str, mqtt: Mqtt,
    broker: tuple[str, int], make_load: Callable[[str], Load],
) -> None:  # fmt: skip
    async with exporting(broker, f"{mqtt.prefix}-queues/{project}/jobs") as queue:
        labels = {"autoscaler.enable": "true", "autoscaler.min": "0", "autoscaler.max": "4",
                  "autoscaler.metric.source": "mqtt", "autoscaler.metric.topic": queue.topic,
                  "autoscaler.metric.target": "10", "autoscaler.scale-down.to-zero-after": "2s",
                  "autoscaler.scale-down.stabilization": "0"}  # fmt: skip
        await cluster.create(labels, replicas=1, load=make_load("web"))
        await queue.set(0)
        await run_autoscaler(**controller_settings(swarm, project))
        slept = await mqtt.wait_for(lambda m: events(m, f"swarm/{project}", "web", "sleep"), 30)
        assert slept[0]["to"] == 0
        service = await cluster.manager._query_json(f"services/{project}_web")
        assert service["Spec"]["Labels"]["autoscaler.asleep"] == "true"
        assert await cluster.replicas() == 0
        await mqtt.wait_for(lambda m: [s for s in states(m, f"swarm/{project}", "web")
                                       if s["phase"] == "idle" and s["replicas"] == 0])  # fmt: skip

        await queue.set(15)  # the label says the sleep was ours: woken, then scaled as usual
        woke = await mqtt.wait_for(lambda m: events(m, f"swarm/{project}", "web", "wake"), 30)
        assert woke[0]["to"] == 1
        await until(lambda: _count(cluster, 2), 60)
        service = await cluster.manager._query_json(f"services/{project}_web")
        assert "autoscaler.asleep" not in service["Spec"]["Labels"]
