"""The chaos run's queue of jobs: examples/worker-redis's worker (Redis' reliable-queue pattern,
one job at a time, finishing the one it holds on SIGTERM) as the service `jobs`, with jobs pushed
into the stack's own Redis at a rate that steps between a steady and a higher one, and the
list's length published over MQTT each time, as an exporter would: the demand `jobs` is scaled
on. At the end every job pushed is accounted for: done, waiting, held in `processing`, done
twice, or lost (nowhere at all). Each push carries ids never used before, so that one left
unanswered (it may have landed) and then made again is not two jobs under one id.

The autoscaler runs outside the stack's network, so it reads the depth from MQTT, not Redis.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import aiodocker

from tests.integration.worker import run_in

SERVICES = """\
  redis:
    image: autoscaler-test/redis:latest
    # Kept on the container's own disk: an engine restart (one of the faults) keeps the queue.
    command: [redis-server, --dir, /tmp, --appendonly, "yes", --protected-mode, "no"]
    restart: unless-stopped
  jobs:
    image: autoscaler-test/worker:latest
    depends_on: [redis]
    restart: unless-stopped
    environment:
      REDIS_HOST: redis
      QUEUE: jobs
      WORK: sleep
      JOB_SECONDS: "0.5"
    stop_grace_period: 10s
    labels:
      autoscaler.enable: "true"
      autoscaler.min: "1"
      autoscaler.max: "6"
      autoscaler.metric.source: mqtt
      autoscaler.metric.topic: {demand}/jobs
      autoscaler.metric.target: "5"
      autoscaler.scale-up.max-replicas: "6"
      autoscaler.scale-down.stabilization: 5s
"""
RATES = ((3, 30.0), (8, 30.0))
"""(jobs a second, seconds), repeated: steady, then rising past what one worker does (2/s)."""

Send = Callable[[list[str]], Awaitable[int]]
"""Pushes jobs by their ids and returns the list's length after it; raises where the push went
unanswered (it may have landed all the same)."""
_UNANSWERED = (aiodocker.DockerError, OSError, ValueError)


@dataclass
class Jobs:
    pushed: list[str] = field(default_factory=list)
    """The jobs whose push was answered."""
    unanswered: int = 0
    """Jobs whose push went unanswered: landed or not, none of their ids is used again."""
    depth: int = 0
    producing: bool = True
    account: dict[str, int] = field(default_factory=dict)
    stranded: set[str] = field(default_factory=set)
    """Jobs held by a worker at two checks a fault apart: far longer than a job and its finish
    take, so the worker that took it stopped without finishing it (a reaper's to requeue)."""
    twice: int = 0
    """Jobs done twice so far: a worker that finished one, was not told so (the server went
    away inside its transaction) and finished it again."""
    _held: set[str] = field(default_factory=set)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    async def check(self, host: str, redis: str) -> tuple[int, int]:
        """How many jobs were newly found stranded (held now, and at the check before), and
        how many newly done twice."""
        async with aiodocker.Docker(url=host) as docker:
            held = set(await _list(docker, redis, "processing"))
            finished = await _list(docker, redis, "finished")
        new = (held & self._held) - self.stranded
        self.stranded |= new
        self._held = held
        twice, self.twice = (
            len(finished) - len(set(finished)) - self.twice,
            len(finished) - len(set(finished)),
        )
        return len(new), twice

    async def produce(self, host: str, redis: str, demand: dict[str, int]) -> None:
        """Jobs pushed each second at the step's rate; the list's length, as RPUSH answers it,
        is the demand. A push the engine did not answer (it is away) is not counted as made, and
        the next one carries ids of its own."""
        async with aiodocker.Docker(url=host) as docker:
            await self._produce(docker, redis, demand)

    async def _produce(self, docker: aiodocker.Docker, redis: str, demand: dict[str, int]) -> None:
        async def rpush(ids: list[str]) -> int:
            code, out = await run_in(docker, redis, "redis-cli", "RPUSH", "jobs", *ids)
            if code or not out.strip().isdigit():
                raise ValueError(f"RPUSH: {out}")
            return int(out)

        start = time.monotonic()
        cycle = sum(seconds for _, seconds in RATES)
        while self.producing:
            into = (time.monotonic() - start) % cycle
            await self.push(rpush, next(r for r, s in _ends(RATES) if into < s), demand)
            await asyncio.sleep(1.0)  # the producer's rate, not a wait for a state

    async def push(self, send: Send, count: int, demand: dict[str, int]) -> None:
        """`count` jobs pushed under ids never used before: a push left unanswered may have
        landed, and its ids pushed again would be finished twice, as two jobs."""
        ids = [f"j{next(self._ids)}" for _ in range(count)]
        try:
            depth = await send(ids)
        except _UNANSWERED:
            self.unanswered += count
            return
        self.pushed.extend(ids)
        self.depth = demand["jobs"] = depth

    async def settle(self, host: str, redis: str, within: float) -> dict[str, int]:
        """No more jobs; once the queue drained (or `within` passed), every pushed job counted."""
        self.producing = False
        async with aiodocker.Docker(url=host) as docker:
            return await self._settle(docker, redis, within)

    async def _settle(self, docker: aiodocker.Docker, redis: str, within: float) -> dict[str, int]:
        deadline = time.monotonic() + within
        lists: dict[str, list[str]] = {}
        while True:
            lists = {name: await _list(docker, redis, name)
                     for name in ("jobs", "processing", "finished")}  # fmt: skip
            working = set(lists["processing"]) - self.stranded
            if (not lists["jobs"] and not working) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)  # the workers finishing what is left
        finished = lists["finished"]
        where = set(finished) | set(lists["jobs"]) | set(lists["processing"])
        self.account = {
            "pushed": len(self.pushed),
            "unanswered": self.unanswered,
            "done": len(set(finished)),
            "waiting": len(lists["jobs"]),
            "held": len(lists["processing"]),
            "stranded": len(self.stranded),
            "done twice": len(finished) - len(set(finished)),
            "lost": sum(1 for job in self.pushed if job not in where),
        }
        return self.account


def _ends(rates: tuple[tuple[int, float], ...]) -> list[tuple[int, float]]:
    """Each step's rate with the second it ends at, from the cycle's start."""
    out, at = [], 0.0
    for rate, seconds in rates:
        at += seconds
        out.append((rate, at))
    return out


async def _list(docker: aiodocker.Docker, redis: str, name: str) -> list[str]:
    code, out = await run_in(docker, redis, "redis-cli", "--raw", "LRANGE", name, "0", "-1")
    if code:
        raise RuntimeError(f"LRANGE {name}: {out}")
    return out.split()
