"""A Compose project for the tests and the benchmark: COMPOSE_FILE's `web` on two networks, run
by the platform's Compose (platforms.py), and what the engine says of it: its containers, a wait
on its events, and how long it ran below a count."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiodocker

from tests.integration.platforms import ROOT, Platform

TEST_IMAGE = os.environ.get("AUTOSCALER_TEST_IMAGE", "autoscaler-test/busybox:latest")

COMPOSE_FILE = """\
services:
  web:
    image: {image}
    command: ["sh", "-c", "echo serving as $$(hostname); exec sh /burn.sh"]
    networks: [back, front]
    cpus: 0.25
    stop_grace_period: 2s
    environment:
      RELEASE: "${{RELEASE:-1}}"
    volumes:
      - {burn}:/burn.sh:ro
      - {load}:/load
    labels:
      autoscaler.enable: "true"
      autoscaler.min: "${{MIN:-1}}"
      autoscaler.max: "6"
      autoscaler.cpu.target: "50"
      autoscaler.scale-down.stabilization: "${{DOWN_WINDOW:-30s}}"
      release: "${{RELEASE:-1}}"
  job:
    image: {image}
    command: ["true"]
    networks: [back]
    depends_on: [web]
    profiles: [jobs]
networks:
  back: {{}}
  front: {{}}
"""
HELD = {"MIN": "3"}
"""A service the autoscaler holds at 3 from its first round (its min): no load to wait for."""
EVENTS_ONLY = 60.0
"""An interval no test waits out: what happens before the next round came from the events."""


@dataclass
class Stack:
    """COMPOSE_FILE as a project of the test's own, on the test's platform."""

    platform: Platform
    project: str
    file: Path

    async def __call__(
        self, *args: str, env: Mapping[str, str] | None = None, check: bool = True
    ) -> str:
        """`docker compose -p PROJECT -f FILE ARGS...` (or docker-compose 1.29): its output."""
        return await self.platform.run_compose(
            self.project, [self.file], *args, env=env, check=check
        )

    def name(self, number: int, service: str = "web") -> str:
        return self.platform.container(self.project, service, number)

    @classmethod
    def write(cls, platform: Platform, project: str, folder: Path, load: Path) -> Stack:
        """COMPOSE_FILE in `folder`, its replicas burning the demand in `load` (burn.sh)."""
        path = folder / "compose.yaml"
        path.write_text(COMPOSE_FILE.format(image=TEST_IMAGE, burn=ROOT / "scripts" / "burn.sh",
                                            load=load))  # fmt: skip
        return cls(platform, project, path)

    async def remove(self, docker: aiodocker.Docker) -> None:
        """Down, and whatever is left of the project on the engine (its networks too: a run of
        tests must never exhaust the engine's address pools)."""
        await self("down", "-t", "0", "--remove-orphans", check=False)
        label = f"com.docker.compose.project={self.project}"
        for c in await docker.containers.list(all=True, filters=json.dumps({"label": [label]})):
            await c.delete(force=True)
        for network in await docker.networks.list(filters={"label": [label]}):
            await docker.networks.delete(network["Id"])


async def containers(
    docker: aiodocker.Docker, project: str, *, every: bool = False, service: str = "web"
) -> list[dict[str, Any]]:
    """The service's containers, as the engine lists them: running ones (`every`: all)."""
    labels = [f"com.docker.compose.project={project}", f"com.docker.compose.service={service}"]
    listed = await docker.containers.list(all=every, filters=json.dumps({"label": labels}))
    return [c._container for c in listed]


def is_clone(container: Mapping[str, Any]) -> bool:
    return "autoscaler.clone-of" in container["Labels"]


async def engine_until(
    docker: aiodocker.Docker, project: str, condition: Callable[[], Awaitable[Any]],
    within: float = 30.0,
) -> Any:  # fmt: skip
    """`condition()` once now and again at each engine event of the project's containers, until
    it is true: a wait on what the engine does, not on the clock."""
    subscriber = docker.events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
    label = f"com.docker.compose.project={project}"
    filters = json.dumps({"type": ["container"], "label": [label]})
    async with asyncio.timeout(within), asyncio.TaskGroup() as tg:
        feed = tg.create_task(docker.events.run(since=f"{time.time() - 1:.3f}", filters=filters))
        try:
            while not (result := await condition()):
                if await subscriber.get() is None:
                    raise AssertionError("the engine's event stream ended")
        finally:
            feed.cancel()
    return result


async def below(
    docker: aiodocker.Docker, project: str, count: int, command: Awaitable[str]
) -> float:
    """Seconds the service ran fewer than `count` replicas from the start of `command` until it
    runs `count` again (after the command returned), watched from outside every 20 ms."""
    task = asyncio.ensure_future(command)
    short: float | None = None
    spent = 0.0
    async with asyncio.timeout(60):
        while True:
            now, running = time.monotonic(), len(await containers(docker, project))
            if running < count and short is None:
                short = now
            if running >= count and short is not None:
                spent, short = spent + now - short, None
            if task.done() and short is None:
                await task
                return spent
            await asyncio.sleep(0.02)  # an observation period: the engine has no count event
