"""Reaction: a service running 2 replicas gets a shared CPU demand that needs 10. Time from the
load step to the first scale decision and to 10 running replicas, for the default policy against
a loop that adds one replica per interval (the `step` policy), each in the same run on the same
engine. The service's labels lift the HPA rate limit (4 or 100 % per 15 s) so that one decision
may add 8; the target of 20 % keeps a demand of 10 replicas visible from 2 (each at 100 %).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiodocker

from autoscaler.app import App
from autoscaler.settings import ApiSettings, MqttSettings, Settings
from bench.common import ROOT, busybox, engine, labels_for, remove_run

INTERVAL = float(os.environ.get("BENCH_INTERVAL", "2"))
LIMIT = 0.25  # cores a replica may use
TARGET = 20  # percent
NEEDED = 10
DEMAND = int(NEEDED * LIMIT * 1000 * TARGET / 100)  # millicores: 500


@dataclass
class Reaction:
    policy: str
    first_decision_s: float
    all_running_s: float
    decisions: int


async def _scenario(docker: aiodocker.Docker, policy: str, extra: dict[str, str]) -> Reaction:
    run = uuid.uuid4().hex[:8]
    project = f"bench{run}"
    load = Path(tempfile.mkdtemp(prefix="bench-load-"))
    (load / "replicas").mkdir()
    (load / "demand").write_text("0\n")
    labels = labels_for(
        project,
        "web",
        {
            "bench.run": run,
            "autoscaler.enable": "true",
            "autoscaler.min": "2",
            "autoscaler.max": str(NEEDED),
            "autoscaler.policy": policy,
            "autoscaler.cpu.target": str(TARGET),
            **extra,
        },
    )
    config = busybox(
        ["sh", "/burn.sh"],
        cpus=LIMIT,
        Labels=labels,
        HostConfig={"Binds": [f"{ROOT / 'scripts' / 'burn.sh'}:/burn.sh:ro", f"{load}:/load"]},
    )
    settings = Settings(
        docker_host=os.environ.get("DOCKER_HOST"),
        interval=INTERVAL,
        projects=frozenset({project}),
        mqtt=MqttSettings(enabled=False),
        api=ApiSettings(enabled=False),
    )
    app = App(settings)
    stop = asyncio.Event()
    try:
        template = await docker.containers.create(config, name=f"{project}-web-1")
        await template.start()
        serving = asyncio.create_task(app.serve(stop))
        try:
            await _until(lambda: _running(app, project) == 2, 60)
            # Idle until the policy has seen enough rounds to know the noise (after warm-up).
            await _until(lambda: _measured_rounds(app, project) >= 6, 120)
            (load / "demand").write_text(f"{DEMAND}\n")
            stepped = time.monotonic()
            await _until(lambda: _decided_after(app, project, stepped), 60)
            first = time.monotonic() - stepped
            await _until(lambda: _running(app, project) >= NEEDED, 120)
            running = time.monotonic() - stepped
            wall_step = time.time() - (time.monotonic() - stepped)
            decisions = sum(
                1
                for key, history in app.evaluator.history.items()
                if key.project == project
                for e in history
                if e.at >= wall_step and e.decision.desired > e.decision.current
            )
        finally:
            stop.set()
            await serving
    finally:
        await remove_run(docker, run)
    return Reaction(policy, first, running, decisions)


def _running(app: App, project: str) -> int:
    return sum(
        1
        for key, replicas in app.inventory.services().items()
        if key.project == project
        for r in replicas
        if r.running
    )


def _measured_rounds(app: App, project: str) -> int:
    return sum(
        1
        for key, history in app.evaluator.history.items()
        if key.project == project
        for e in history
        if e.decision.metrics
    )


def _decided_after(app: App, project: str, since: float) -> bool:
    wall_since = time.time() - (time.monotonic() - since)
    return any(
        e.at >= wall_since and e.decision.desired > e.decision.current
        for key, history in app.evaluator.history.items()
        if key.project == project
        for e in history
    )


async def _until(condition: Callable[[], bool], within: float) -> None:
    # The bench watches the service from outside, where it has no event to wait on; polling
    # every 50 ms bounds the error of each measured time to 50 ms.
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def run() -> None:
    async with engine() as docker:
        ours = await _scenario(
            docker, "target-tracking", {"autoscaler.scale-up.max-replicas": "10"}
        )
        baseline = await _scenario(docker, "step", {})
    print(
        f"\nReaction: 2 -> {NEEDED} replicas after a load step "
        f"(interval {INTERVAL:g}s; bound: one interval + 2 s = {INTERVAL + 2:g}s)"
    )
    head = (
        f"{'policy':<34} {'first decision s':>17} {'10 running s':>13} {'x baseline':>11} "
        f"{'scale-ups':>10}"
    )
    print(head)
    print("-" * len(head))
    for r, name in (
        (ours, "target-tracking (default)"),
        (baseline, "one replica per interval (step)"),
    ):
        print(
            f"{name:<34} {r.first_decision_s:>17.2f} {r.all_running_s:>13.2f} "
            f"{r.all_running_s / baseline.all_running_s:>11.2f} {r.decisions:>10}"
        )


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
