"""Reaction across nodes: the load of reaction.py (2 replicas of 0.1 CPU, target 50 %, default
labels, max 20, the demand stepping to what 10 carry) on a Swarm service of a three-node swarm
(scripts/swarm.sh), sampled by an agent on every node over MQTT, the controller on a manager.
Beside it, the same step on one engine in the same run (reaction.py's scenario), and `hpa` with
identical labels on the swarm. Needs AUTOSCALER_TEST_SWARM_NODES (`make bench` starts the swarm).

The count is the service's running tasks, polled from the manager every 100 ms (no event says a
task runs): each time has that much error.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aiodocker

from autoscaler.app import App
from autoscaler.settings import ApiSettings, LeaseSettings, MqttSettings, Settings, SwarmSettings
from bench.common import IMAGE, ROOT, engine
from bench.reaction import (
    LIMIT,
    MAXIMUM,
    NEEDED,
    START,
    TARGET,
    Case,
    Reaction,
    _scenario,
    table,
    watch,
)

POLL = 0.1


async def _agents(nodes: list[str], interval: float, prefix: str) -> list[Any]:
    env = {**os.environ, "AUTOSCALER_INTERVAL": str(interval),
           "AUTOSCALER_MQTT__TOPIC_PREFIX": prefix}  # fmt: skip
    return [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "autoscaler",
            "agent",
            env=env | {"DOCKER_HOST": node},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for node in nodes
    ]


async def _running(manager: aiodocker.Docker, name: str) -> int:
    tasks = await manager._query_json(
        "tasks", params={"filters": json.dumps({"service": [name], "desired-state": ["running"]})}
    )
    return sum(1 for t in tasks if t["Status"]["State"] == "running")


async def _scenario_on_swarm(nodes: list[str], case: Case) -> Reaction:
    run = uuid.uuid4().hex[:8]
    stack = f"bench{run}"
    load = Path(tempfile.mkdtemp(prefix="bench-load-"))
    (load / "replicas").mkdir()
    (load / "demand").write_text("0\n")
    labels = {
        "com.docker.stack.namespace": stack,
        "autoscaler.enable": "true",
        "autoscaler.min": str(START),
        "autoscaler.max": str(MAXIMUM),
        "autoscaler.policy": case.policy,
        "autoscaler.cpu.target": str(TARGET),
    }
    name = f"{stack}_web"
    spec = {
        "Name": name,
        "Labels": labels,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": IMAGE,
                "Command": ["sh", "/burn.sh"],
                "Mounts": [
                    {
                        "Type": "bind",
                        "Source": str(ROOT / "scripts" / "burn.sh"),
                        "Target": "/burn.sh",
                    },
                    {"Type": "bind", "Source": str(load), "Target": "/load"},
                ],
                "StopGracePeriod": 2_000_000_000,
            },
            "Resources": {"Limits": {"NanoCPUs": int(LIMIT * 1e9)}},
        },
        "Mode": {"Replicated": {"Replicas": START}},
    }
    prefix = f"bench-{run}"
    settings = Settings(
        docker_host=nodes[0],
        interval=case.interval,
        projects=frozenset({stack}),
        mqtt=MqttSettings(
            host=os.environ.get("AUTOSCALER_MQTT__HOST", "127.0.0.1"),
            port=int(os.environ.get("AUTOSCALER_MQTT__PORT", "1883")),
            topic_prefix=prefix,
        ),
        api=ApiSettings(enabled=False),
        lease=LeaseSettings(enabled=False),
        swarm=SwarmSettings(enabled=True, lease_name=f"bench-lease-{run}", lease_ttl=3),
    )
    result = Reaction(f"{case.policy} (swarm)", case.interval)
    manager = aiodocker.Docker(url=nodes[0])
    agents = await _agents(nodes, case.interval, prefix)
    app, stop = App(settings), asyncio.Event()
    try:
        await manager._query_json("services/create", method="POST", data=spec)
        serving = asyncio.create_task(app.serve(stop))
        try:
            await _until(lambda: _running(manager, name), START, 60)
            # Idle past a rate-limit period (15 s), as in reaction.py.
            await asyncio.sleep(16)
            (load / "demand").write_text(f"{int(NEEDED * LIMIT * 1000 * TARGET / 100)}\n")

            async def running() -> int:
                return await _running(manager, name)

            await watch(result, running, NEEDED, app, poll=POLL)
        finally:
            stop.set()
            await serving
    finally:
        for agent in agents:
            agent.terminate()
            await agent.wait()
        await manager._query_json(f"services/{name}", method="DELETE")
        await manager.close()
    return result


async def _until(count: Any, wanted: int, within: float) -> None:
    async with asyncio.timeout(within):
        while await count() < wanted:  # noqa: ASYNC110 - no event says a task runs
            await asyncio.sleep(POLL)


async def run(nodes: list[str]) -> list[Reaction]:
    results = []
    async with engine() as docker:
        single = await _scenario(docker, Case("target-tracking", 2.0))
        single.policy = "target-tracking (1 engine)"
        results.append(single)
    for policy in ("target-tracking", "hpa"):
        results.append(await _scenario_on_swarm(nodes, Case(policy, 2.0)))
    results.append(await _scenario_on_swarm(nodes, Case("target-tracking", 1.0)))
    return results


def main() -> None:
    nodes = os.environ.get("AUTOSCALER_TEST_SWARM_NODES")
    if not nodes:
        raise SystemExit("bench/swarm.py needs AUTOSCALER_TEST_SWARM_NODES (scripts/swarm.sh env)")
    results = asyncio.run(run([f"unix://{n}" for n in nodes.split(",")]))
    print(
        f"\nReaction across 3 nodes: {START} tasks of {LIMIT:g} CPU, target {TARGET} %, demand "
        f"steps to what {NEEDED} carry; default labels, max {MAXIMUM}; an agent a node over MQTT; "
        f"beside the same step on one engine"
    )
    print(table(results, NEEDED))


if __name__ == "__main__":
    main()
