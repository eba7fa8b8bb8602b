"""examples/worker-redis as a user runs it, for the tests: its stack with the deploy overlay on
the platform's Compose, its queue read and written by `redis-cli` inside the redis container,
and what the containerised autoscaler says through `autoscaler explain`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiodocker

from tests.integration.platforms import Platform

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "worker-redis"
T = TypeVar("T")


def build_images(docker_host: str) -> None:
    """The broker's and the worker's images, offline (scripts/worker-images.sh)."""
    env = {**os.environ, "DOCKER_HOST": docker_host}
    subprocess.run(["bash", str(ROOT / "scripts" / "worker-images.sh")], check=True, env=env)


async def run_in(docker: aiodocker.Docker, container: str, *command: str) -> tuple[int, str]:
    """`docker exec CONTAINER COMMAND...`: its exit code and output."""
    found = await docker.containers.get(container)
    run = await found.exec(list(command))
    out = b""
    async with run.start(detach=False) as stream:
        while (message := await stream.read_out()) is not None:
            out += message.data
    return int((await run.inspect())["ExitCode"]), out.decode()


@dataclass(frozen=True)
class Queue:
    """The stack's Redis, as `docker compose exec redis redis-cli` reaches it."""

    docker: aiodocker.Docker
    container: str

    async def __call__(self, *command: str) -> list[str]:
        """A command's answer, one value a line (redis-cli's raw output; an empty list is one
        empty line)."""
        code, out = await run_in(self.docker, self.container, "redis-cli", "--raw", *command)
        assert code == 0 and not out.startswith(("ERR", "WRONGTYPE")), out
        return [] if out == "\n" else out.splitlines()

    async def length(self, key: str) -> int:
        return int((await self("LLEN", key))[0])


async def explained(
    docker: aiodocker.Docker, container: str, service: str
) -> dict[str, Any] | None:
    """`autoscaler explain SERVICE --json` in the containerised autoscaler, None while it does
    not answer for the service yet (starting, or not leading yet)."""
    code, out = await run_in(docker, container, "autoscaler", "explain", service, "--json")
    return json.loads(out) if code == 0 else None


async def until(check: Callable[[], Awaitable[T | None]], within: float, every: float = 0.2) -> T:
    """The first true answer of `check`, asked every `every` seconds: a condition of another
    process (the queue's counters, the engine's containers), which tells no one when it holds."""
    async with asyncio.timeout(within):
        while not (answer := await check()):  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(every)
        return answer


async def containers(docker: aiodocker.Docker, project: str, service: str) -> int:
    """How many containers of the service exist, stopping ones included."""
    label = json.dumps({"label": [f"com.docker.compose.project={project}",
                                  f"com.docker.compose.service={service}"]})  # fmt: skip
    return len(await docker.containers.list(all=True, filters=label))


@dataclass(frozen=True)
class Stack:
    project: str
    platform: Platform
    files: tuple[Path, ...]
    env: Mapping[str, str]

    async def compose(self, *args: str, check: bool = True) -> str:
        return await self.platform.run_compose(
            self.project, self.files, *args, env=self.env, check=check
        )


@contextlib.asynccontextmanager
async def worker_stack(
    project: str, platform: Platform, env: Mapping[str, str], extra: Sequence[Path] = ()
) -> AsyncIterator[Stack]:
    """The example's stack up (with `extra` files after its own); down, clones and all,
    afterwards: the autoscaler first, so that it mends nothing that `down` removes."""
    stack = Stack(project, platform, (EXAMPLE / "compose.yaml", *extra), env)
    try:
        await stack.compose("up", "-d")
        yield stack
    finally:
        await stack.compose("stop", "-t", "5", "autoscaler", check=False)
        await stack.compose("down", "-v", "--remove-orphans", "-t", "1", check=False)
