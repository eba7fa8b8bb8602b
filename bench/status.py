"""`autoscaler status` against a busy fleet (issue 36): 100 idle opted-in services (busybox
`sleep`, one container each) in one Compose project on the engine DOCKER_HOST names, followed by
an autoscaler in this process at a 2 s interval with its API on loopback, timed once every
service has its full history of decisions (the /status a long-running autoscaler serves).

The command is run 20 times as an operator runs it, a process of its own (its wall time, from
start to exit: the interpreter, the settings, the request, the table), and its HTTP request
alone 20 times from here (GET /status?decisions=0 and its JSON read, as the command does it;
beside it the whole /status, which the command read before it asked for no decisions). Beside
them, the interpreter importing the command's modules (the settings' pydantic mostly), and
starting and doing nothing: the floors no command can go below. Median and p99
(the nearest rank: of 20 runs, the slowest). Goal: the command answers within 200 ms.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import sys
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable

from autoscaler.app import App
from autoscaler.control.controller import HISTORY
from autoscaler.ops import client
from autoscaler.settings import ApiSettings, LeaseSettings, MqttSettings, Settings
from bench.common import busybox, containers, engine, labels_for

SERVICES = 100
RUNS = 20
GOAL = 0.200
INTERVAL = 2.0
LABELS = {"autoscaler.enable": "true", "autoscaler.min": "1", "autoscaler.max": "4",
          "autoscaler.cpu.target": "50"}  # fmt: skip


def nearest_rank(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def full(app: App) -> bool:
    """Every service has run HISTORY rounds (a quiet one, which keeps its hold without a
    decision of its own, counts: the decision history of a quiet service may never fill)."""
    return sum(c.tally.evaluations >= HISTORY for c in app.compose.fleet.values()) >= SERVICES


async def timed(run: Callable[[], Awaitable[object]]) -> list[float]:
    spans = []
    for _ in range(RUNS):
        start = time.perf_counter()
        await run()
        spans.append(time.perf_counter() - start)
    return spans


def _read(url: str) -> bytes:
    """Off the event loop: the autoscaler answering it runs on that loop."""
    with urllib.request.urlopen(url) as answer:
        body: bytes = answer.read()
    return body


async def process(*argv: str, env: dict[str, str]) -> None:
    started = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await started.communicate()
    if started.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {started.returncode}: {err.decode()}")


async def run() -> list[tuple[str, list[float]]]:
    project = f"benchs{uuid.uuid4().hex[:8]}"
    configs = [
        busybox(["sleep", "86400"], cpus=0.1,
                Labels=labels_for(project, f"s{i:03d}", LABELS))
        for i in range(SERVICES)
    ]  # fmt: skip
    settings = Settings(
        docker_host=os.environ.get("DOCKER_HOST"),
        interval=INTERVAL,
        projects=frozenset({project}),
        mqtt=MqttSettings(enabled=False),
        api=ApiSettings(port=0),
        lease=LeaseSettings(enabled=False),
    )
    async with engine() as docker, containers(docker, configs):
        app, stop = App(settings), asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            serving = tg.create_task(app.serve(stop))
            try:
                async with asyncio.timeout(60 + HISTORY * INTERVAL * 2):
                    await app.api.bound.wait()
                    # Every service with its full history of decisions: the document a long-running
                    # autoscaler serves (read as it grows: nothing tells when it is full).
                    while not full(app):  # noqa: ASYNC110
                        await asyncio.sleep(0.5)
                api = ApiSettings(port=app.api.port)
                env = {**os.environ, "AUTOSCALER_API__PORT": str(app.api.port)}
                url = client.url(api, "/status")
                size = len(await asyncio.to_thread(_read, url))
                print(f"{SERVICES} services, /status {size / 1e3:.0f} kB\n")
                print("timing the runs", file=sys.stderr)
                floor = await timed(lambda: process(sys.executable, "-c", "pass", env=env))
                command = await timed(
                    lambda: process(sys.executable, "-m", "autoscaler", "status", env=env)
                )
                request = await timed(lambda: asyncio.to_thread(client.fetch, api, None, 0))
                whole = await timed(lambda: asyncio.to_thread(client.fetch, api))
                imports = await timed(
                    lambda: process(sys.executable, "-c", "import autoscaler.cli", env=env)
                )
            finally:
                stop.set()
                await serving
    return [
        ("autoscaler status (a process)", command),
        ("its request: /status?decisions=0", request),
        ("GET /status whole (before)", whole),
        ("python: import autoscaler.cli", imports),
        ("python -c pass (the floor)", floor),
    ]


def main() -> None:
    rows = asyncio.run(run())
    print(f"{'what':<34} {'median':>8} {'p99':>8}  runs")
    print("-" * 58)
    for name, spans in rows:
        median, p99 = statistics.median(spans), nearest_rank(spans, 0.99)
        print(f"{name:<34} {median * 1e3:>6.0f}ms {p99 * 1e3:>6.0f}ms  {len(spans)}")
    command = rows[0][1]
    worst = nearest_rank(command, 0.99)
    print(f"\ngoal: `autoscaler status` within {GOAL * 1e3:.0f} ms with {SERVICES} services: "
          f"{'met' if worst < GOAL else 'NOT met'} (p99 {worst * 1e3:.0f} ms)")  # fmt: skip
