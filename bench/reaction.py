"""Reaction on the real engine: a service runs 2 replicas of 0.1 CPU with a 50 % target and the
default labels otherwise (max 20). Its demand jumps to what 10 replicas carry (500 millicores):
each of the 2 is then held at its limit. How long until all 10 run, how far past the need does
the count go, and does anything scale down in the minute after the step?

The default policy against `hpa` (the Kubernetes rules: same calculation, same limits, blind to
saturation), each with identical labels, in the same run, at a 2 s and a 1 s interval. The goal:
10 running within 5 s (2 s interval) and 3 s (1 s interval), never more than 11, no scale-down.
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiodocker
import aiomqtt

from autoscaler.app import App
from autoscaler.settings import ApiSettings, LeaseSettings, MqttSettings, Settings
from bench.common import ROOT, actions, busybox, engine, labels_for, remove_run, running

LIMIT = 0.1  # cores a replica may use
TARGET = 50  # percent
START, NEEDED, MAXIMUM = 2, 10, 20
DEMAND = int(NEEDED * LIMIT * 1000 * TARGET / 100)  # millicores: 500
WATCH = 60.0  # seconds after the step in which nothing may scale down
QUEUE_SHARE = 10  # jobs of the queue one replica carries
REPEATS = 3
"""Runs of the default policy a step: a row is their median (one slow start of a container is
not the policy's), as the gate's quick run (bench/check.py) takes it."""


@dataclass
class Reaction:
    policy: str
    interval: float
    all_running_s: float | None = None
    most: int = 0
    scaled_down_s: float | None = None
    actions: int = 0
    counts: list[int] = field(default_factory=list)
    """The running count at each change, from the step on."""


@dataclass(frozen=True)
class Case:
    """A service of replicas of LIMIT CPU at TARGET %, `start` of them, whose demand steps to
    what `needed` carry; `queue` also publishes that demand as a queue's depth (10 a replica)."""

    policy: str
    interval: float
    start: int = START
    needed: int = NEEDED
    queue: bool = False
    labels: tuple[tuple[str, str], ...] = ()


async def _scenario(
    docker: aiodocker.Docker, case: Case, *, watch_s: float = WATCH, after: float | None = None
) -> Reaction:
    run = uuid.uuid4().hex[:8]
    project = f"bench{run}"
    load = Path(tempfile.mkdtemp(prefix="bench-load-"))
    (load / "replicas").mkdir()
    (load / "demand").write_text("0\n")
    host = os.environ.get("AUTOSCALER_MQTT__HOST", "127.0.0.1")
    port = int(os.environ.get("AUTOSCALER_MQTT__PORT", "1883"))
    topic = f"bench-{run}/queue"
    own = {
        "bench.run": run,
        "autoscaler.enable": "true",
        "autoscaler.min": str(case.start),
        "autoscaler.max": str(MAXIMUM),
        "autoscaler.policy": case.policy,
        "autoscaler.cpu.target": str(TARGET),
        **dict(case.labels),
    }
    if case.queue:
        own |= {"autoscaler.metric.source": "mqtt", "autoscaler.metric.topic": topic,
                "autoscaler.metric.target": str(QUEUE_SHARE)}  # fmt: skip
    config = busybox(
        ["sh", "/burn.sh"],
        cpus=LIMIT,
        Labels=labels_for(project, "web", own),
        HostConfig={"Binds": [f"{ROOT / 'scripts' / 'burn.sh'}:/burn.sh:ro", f"{load}:/load"]},
    )
    settings = Settings(
        docker_host=os.environ.get("DOCKER_HOST"),
        interval=case.interval,
        projects=frozenset({project}),
        mqtt=MqttSettings(enabled=case.queue, host=host, port=port, topic_prefix=f"bench-{run}"),
        api=ApiSettings(enabled=False),
        lease=LeaseSettings(enabled=False),
    )
    app = App(settings)
    stop = asyncio.Event()
    result = Reaction(case.policy + (" + queue" if case.queue else ""), case.interval)
    demand = int(case.needed * LIMIT * 1000 * TARGET / 100)
    try:
        template = await docker.containers.create(config, name=f"{project}-web-1")
        await template.start()
        if case.queue:
            await _publish(host, port, topic, "0")
        serving = asyncio.create_task(app.serve(stop))
        try:
            await _until(lambda: running(app, project) == case.start, 60)
            # Idle, as a service is before its load arrives: longer than a rate-limit period
            # (15 s), so the scale-up to min is no longer counted against the rate.
            await _until(lambda: _evaluations(app) >= 16 / case.interval, 60)
            (load / "demand").write_text(f"{demand}\n")
            if case.queue:
                await _publish(host, port, topic, str(case.needed * QUEUE_SHARE))

            async def count() -> int:
                return running(app, project)

            # Watching from outside the service, with no event to wait on: a 20 ms poll bounds
            # the error of each time measured to 20 ms.
            await watch(result, count, case.needed, app, poll=0.02, seconds=watch_s, after=after)
        finally:
            stop.set()
            await serving
    finally:
        await remove_run(docker, run)
    return result


async def _publish(host: str, port: int, topic: str, value: str) -> None:
    async with aiomqtt.Client(host, port) as client:
        await client.publish(topic, value, qos=1, retain=True)


async def watch(
    result: Reaction,
    running: Callable[[], Awaitable[int]],
    needed: int,
    app: App,
    poll: float,
    seconds: float = WATCH,
    after: float | None = None,
) -> None:
    """Record, for `seconds` from now (or `after` seconds past reaching `needed`), the running
    count as it changes: when it reaches `needed`, its most, whether it falls; then the scale
    actions `app` took."""
    stepped = time.monotonic()
    while (elapsed := time.monotonic() - stepped) < seconds:
        if after is not None and result.all_running_s is not None:
            if elapsed > result.all_running_s + after:
                break
        count = await running()
        if not result.counts or count != result.counts[-1]:
            result.counts.append(count)
        if count >= needed and result.all_running_s is None:
            result.all_running_s = elapsed
        if count < max(result.counts) and result.scaled_down_s is None:
            result.scaled_down_s = elapsed
        await asyncio.sleep(poll)
    result.most = max(result.counts)
    result.actions = actions(app)


def _reached(result: Reaction) -> float:
    return math.inf if result.all_running_s is None else result.all_running_s


def median(runs: list[Reaction]) -> Reaction:
    """The run that reached the count in the median time (never: last)."""
    return sorted(runs, key=_reached)[len(runs) // 2]


def spread(runs: list[Reaction]) -> str:
    """The times of the runs a row is the median of, for the line under its table."""
    times = ", ".join("never" if r.all_running_s is None else f"{r.all_running_s:.1f}" for r in
                      sorted(runs, key=_reached))  # fmt: skip
    return f"{runs[0].policy} at {runs[0].interval:g} s, every run: {times}"


def _evaluations(app: App) -> int:
    """Rounds evaluated, a quiet one's too (it keeps its hold without a decision of its own)."""
    return sum(c.tally.evaluations for c in app.compose.fleet.values())


async def _until(condition: Callable[[], bool], within: float) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - watching from outside, see above
            await asyncio.sleep(0.05)


def table(results: list[Reaction], needed: int) -> str:
    head = (
        f"{'policy':<28} {'interval s':>10} {f'{needed} running s':>13} {'most':>5} "
        f"{'actions':>8} {'scale-down in 60 s':>19}  counts seen after the step"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        reached = "never" if r.all_running_s is None else f"{r.all_running_s:.1f}"
        down = "no" if r.scaled_down_s is None else f"at {r.scaled_down_s:.0f} s"
        lines.append(
            f"{r.policy:<28} {r.interval:>10g} {reached:>13} {r.most:>5} {r.actions:>8} "
            f"{down:>19}  " + " -> ".join(map(str, r.counts))
        )
    return "\n".join(lines)


# The queue step: 1 replica, to what 9 carry; a decision may add 10 (the rate labels the queue's
# user would set to let one action follow a queue; the same for both rows).
QUEUE_RATE = (("autoscaler.scale-up.max-replicas", "10"),)


async def quick(repeats: int = 3, watch_s: float = 40.0) -> tuple[list[Reaction], list[Reaction]]:
    """The step alone, for the regression gate (bench/check.py): at each interval the default
    policy `repeats` times, its median run kept, and `hpa` once, each watched until 5 s after
    it reached the count (`watch_s` at most). The rows kept, and every run."""
    kept, every = [], []
    async with engine() as docker:
        for interval in (2.0, 1.0):
            ours = [await _scenario(docker, Case("target-tracking", interval), watch_s=watch_s,
                                    after=5.0) for _ in range(repeats)]  # fmt: skip
            every += ours
            kept.append(median(ours))
            kept.append(await _scenario(docker, Case("hpa", interval), watch_s=watch_s, after=5.0))
            every.append(kept[-1])
    return kept, every


async def run() -> tuple[list[Reaction], list[Reaction], list[list[Reaction]]]:
    steps, queues, repeated = [], [], []
    async with engine() as docker:
        for interval in (2.0, 1.0):
            ours = [await _scenario(docker, Case("target-tracking", interval))
                    for _ in range(REPEATS)]  # fmt: skip
            repeated.append(ours)
            steps.append(median(ours))
            steps.append(await _scenario(docker, Case("hpa", interval)))
        for queue in (True, False):
            case = Case("target-tracking", 2.0, start=1, needed=9, queue=queue, labels=QUEUE_RATE)
            queues.append(await _scenario(docker, case))
    return steps, queues, repeated


def main() -> None:
    steps, queues, repeated = asyncio.run(run())
    print(
        f"\nReaction: {START} replicas of {LIMIT:g} CPU, target {TARGET} %, demand steps to what "
        f"{NEEDED} carry; default labels, max {MAXIMUM}; goal: {NEEDED} running within 5 s "
        f"(2 s interval) / 3 s (1 s), at most {NEEDED + 1}, no scale-down within {WATCH:.0f} s"
    )
    print(table(steps, NEEDED))
    print(f"(target-tracking: the median of {REPEATS} runs; hpa: one run)")
    for runs in repeated:
        print(spread(runs))
    print(
        f"\nQueue step, the same service from 1 replica: the demand of 9 published as a queue's "
        f"depth ({9 * QUEUE_SHARE}, {QUEUE_SHARE} a replica) beside CPU alone; a decision may "
        "add 10; goal: 9 running in one action within one interval + 2 s (4 s)"
    )
    print(table(queues, 9))


if __name__ == "__main__":
    main()
