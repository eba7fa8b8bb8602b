"""A rising load on the real engine: a service of replicas of 0.1 CPU at a 50 % target (min 2,
max 20) whose demand ramps from what 2 replicas carry to what 10 carry over 60 s, then holds for
60 s. Every quarter second: how many run against how many the demand needs at the target.
`under s`: seconds with fewer running than needed; `r·s`: replica-seconds over the 120 s.

`predictive` against `hpa` (the Kubernetes rules) and the default, identical labels otherwise, in
the same run, at a 2 s interval. Goal (the simulator's, on ramps): under-provisioned at most 30 %
of hpa's seconds, at most 15 % more replica-seconds, at most 1.2x its actions.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiodocker

from autoscaler.app import App
from autoscaler.settings import ApiSettings, LeaseSettings, MqttSettings, Settings
from bench.common import ROOT, actions, busybox, engine, labels_for, remove_run, running
from bench.reaction import _evaluations, _until

LIMIT, TARGET = 0.1, 50
SHARE = LIMIT * 1000 * TARGET / 100  # millicores one replica carries at the target: 50
LOW, HIGH, RISE, HOLD = 2, 10, 60.0, 60.0
INTERVAL = 2.0
POLL = 0.25
POLICIES = ("predictive", "hpa", "target-tracking")


@dataclass
class Ramp:
    policy: str
    under_s: float = 0.0
    replica_s: float = 0.0
    actions: int = 0
    most: int = 0
    startup: float | None = None


def demand(elapsed: float) -> float:
    """Millicores `elapsed` seconds after the ramp began."""
    share = min(max(elapsed / RISE, 0.0), 1.0)
    return (LOW + (HIGH - LOW) * share) * SHARE


async def _scenario(docker: aiodocker.Docker, policy: str) -> Ramp:
    run = uuid.uuid4().hex[:8]
    project = f"bench{run}"
    load = Path(tempfile.mkdtemp(prefix="bench-load-"))
    (load / "replicas").mkdir()
    (load / "demand").write_text(f"{int(demand(0))}\n")
    own = {"bench.run": run, "autoscaler.enable": "true", "autoscaler.min": str(LOW),
           "autoscaler.max": "20", "autoscaler.policy": policy,
           "autoscaler.cpu.target": str(TARGET)}  # fmt: skip
    config = busybox(
        ["sh", "/burn.sh"], cpus=LIMIT, Labels=labels_for(project, "web", own),
        HostConfig={"Binds": [f"{ROOT / 'scripts' / 'burn.sh'}:/burn.sh:ro", f"{load}:/load"]},
    )  # fmt: skip
    settings = Settings(
        docker_host=os.environ.get("DOCKER_HOST"), interval=INTERVAL,
        projects=frozenset({project}), mqtt=MqttSettings(enabled=False),
        api=ApiSettings(enabled=False), lease=LeaseSettings(enabled=False),
    )  # fmt: skip
    app, stop = App(settings), asyncio.Event()
    result = Ramp(policy)
    try:
        template = await docker.containers.create(config, name=f"{project}-web-1")
        await template.start()
        serving = asyncio.create_task(app.serve(stop))
        try:
            await _until(lambda: running(app, project) == LOW, 60)
            # Idle first, as a service is before its load rises (past a rate-limit period).
            await _until(lambda: _evaluations(app) >= 16 / INTERVAL, 60)
            began = time.monotonic()
            while (elapsed := time.monotonic() - began) < RISE + HOLD:
                (load / "demand").write_text(f"{int(demand(elapsed))}\n")
                count = running(app, project)
                needed = math.ceil(demand(elapsed) / SHARE - 1e-9)
                result.under_s += POLL if count < needed else 0.0
                result.replica_s += POLL * count
                result.most = max(result.most, count)
                await asyncio.sleep(POLL)
            result.actions = actions(app)
            states = [c.state for c in app.compose.fleet.values() if c.state is not None]
            result.startup = states[0].startup if states else None
        finally:
            stop.set()
            await serving
    finally:
        await remove_run(docker, run)
    return result


async def run() -> list[Ramp]:
    async with engine() as docker:
        return [await _scenario(docker, policy) for policy in POLICIES]


def needed() -> Ramp:
    """The count the demand needs at every poll, run at once with no start-up: never under,
    never over; the replica-seconds below which no policy can go without being under."""
    ideal = Ramp("(needed)")
    steps = int((RISE + HOLD) / POLL)
    counts = [math.ceil(demand(i * POLL) / SHARE - 1e-9) for i in range(steps)]
    ideal.replica_s, ideal.most = POLL * sum(counts), max(counts)
    ideal.actions = sum(1 for a, b in itertools.pairwise(counts) if b != a)
    return ideal


def main() -> None:
    results = [*asyncio.run(run()), needed()]
    hpa = next(r for r in results if r.policy == "hpa")
    print(
        f"\nA ramp on the real engine: replicas of {LIMIT} CPU at {TARGET} %, demand from {LOW} "
        f"to {HIGH} replicas' worth over {RISE:g} s, then {HOLD:g} s level; {INTERVAL:g} s "
        "interval (goal for predictive: under s at most 0.30x hpa's, r·s at most 1.15x, actions "
        "at most 1.2x). (needed): the needed count at every poll, with no start-up: the least "
        "replica-seconds of a policy never under-provisioned"
    )
    head = (f"{'policy':<16} {'under s':>8} {'vs hpa':>7} {'r·s':>7} {'vs hpa':>7} "
            f"{'actions':>8} {'vs hpa':>7} {'most':>5} {'start-up s':>11}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for r in results:
        startup = "—" if r.startup is None else f"{r.startup:.2f}"
        print(
            f"{r.policy:<16} {r.under_s:>8.1f} {r.under_s / max(hpa.under_s, POLL):>6.2f}x "
            f"{r.replica_s:>7.0f} {r.replica_s / hpa.replica_s:>6.2f}x {r.actions:>8} "
            f"{r.actions / max(hpa.actions, 1):>6.2f}x {r.most:>5} {startup:>11}"
        )


if __name__ == "__main__":
    main()
