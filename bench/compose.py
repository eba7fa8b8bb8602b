"""Capacity beside docker-compose (1.29): a service the autoscaler holds at 3 replicas, and
someone runs `docker-compose up -d` again. Compose removes the 2 clones its file does not list;
how long is the service below 3 (from the first clone gone to all 3 running again)? And with
the counts `autoscaler replicas --compose-args` prints, is there any dip at all?
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

from autoscaler.app import App
from autoscaler.settings import ApiSettings, LeaseSettings, MqttSettings, Settings
from bench.common import IMAGE, ROOT, engine, remove_project, running

FILE = """\
version: "2.4"
services:
  web:
    image: {image}
    command: ["sh", "/burn.sh"]
    network_mode: none
    cpus: 0.25
    stop_grace_period: 2s
    volumes: ["{burn}:/burn.sh:ro", "{load}:/load"]
    labels:
      autoscaler.enable: "true"
      autoscaler.max: "4"
      autoscaler.cpu.target: "50"
"""
ROUNDS = 3


async def _compose(project: str, path: Path, *args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "docker-compose", "-p", project, "-f", str(path), *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await process.wait() == 0


async def _dip(app: App, project: str, path: Path, *args: str) -> float:
    """Seconds the service ran fewer than 3 replicas while `docker-compose ARGS` ran and after."""
    compose = asyncio.create_task(_compose(project, path, *args))
    below: float | None = None
    started = time.monotonic()
    while time.monotonic() - started < 30:
        count = running(app, project)
        if count < 3 and below is None:
            below = time.monotonic()
        if count >= 3 and below is not None and compose.done():
            break
        if below is None and compose.done() and time.monotonic() - started > 5:
            break  # nothing went away
        # Watching from outside: a 10 ms poll bounds the error of each time to 10 ms.
        await asyncio.sleep(0.01)
    await compose
    return 0.0 if below is None else time.monotonic() - below


async def _scenario(interval: float) -> tuple[list[float], list[float]]:
    project = f"compose{uuid.uuid4().hex[:8]}"
    load = Path(tempfile.mkdtemp(prefix="bench-load-"))
    (load / "replicas").mkdir()
    (load / "demand").write_text("300\n")  # ceil(300 / 125) = 3 replicas
    path = load / "compose.yaml"
    path.write_text(FILE.format(image=IMAGE, burn=ROOT / "scripts" / "burn.sh", load=load))
    settings = Settings(
        docker_host=os.environ.get("DOCKER_HOST"),
        interval=interval,
        projects=frozenset({project}),
        mqtt=MqttSettings(enabled=False),
        api=ApiSettings(enabled=False),
        lease=LeaseSettings(enabled=False),
    )
    plain: list[float] = []
    scaled: list[float] = []
    async with engine() as docker:
        app, stop = App(settings), asyncio.Event()
        try:
            await _compose(project, path, "up", "-d")
            serving = asyncio.create_task(app.serve(stop))
            try:
                for _ in range(ROUNDS):
                    async with asyncio.timeout(60):
                        while running(app, project) < 3:  # noqa: ASYNC110 - from outside
                            await asyncio.sleep(0.05)
                    plain.append(await _dip(app, project, path, "up", "-d"))
                    scaled.append(await _dip(app, project, path, "up", "-d", "--scale", "web=3"))
            finally:
                stop.set()
                await serving
        finally:
            await remove_project(docker, project)
    return plain, scaled


async def run() -> list[tuple[float, list[float], list[float]]]:
    return [(interval, *await _scenario(interval)) for interval in (2.0, 1.0)]


def main() -> None:
    results = asyncio.run(run())
    print(
        f"\nCompose: a service held at 3 replicas, `docker-compose up -d` run again, {ROUNDS} "
        "times (goal: back within one interval + 2 s)"
    )
    head = (
        f"{'interval s':>10} {'plain up: dip s (each)':>28} {'worst':>6} "
        f"{'up --scale web=3: dip s':>24}"
    )
    print(head)
    print("-" * len(head))
    for interval, plain, scaled in results:
        print(
            f"{interval:>10g} {' '.join(f'{d:.2f}' for d in plain):>28} {max(plain):>6.2f} "
            f"{' '.join(f'{d:.2f}' for d in scaled):>24}"
        )


if __name__ == "__main__":
    main()
