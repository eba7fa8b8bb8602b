"""What the queue sources' tests share: scripts/queues.sh's servers, a clock the test moves, the
reader as the app runs it, and a round of it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from autoscaler.sources.base import Member
from autoscaler.sources.servers import Driver, Secrets, Servers
from tests.integration.conftest import ROOT

Opt = TypeVar("Opt", bound=Hashable)
Client = TypeVar("Client")
Seen = TypeVar("Seen")


@dataclass(frozen=True)
class QueueServer:
    """One of scripts/queues.sh's servers, as its AUTOSCALER_TEST_<NAME>_* variables say."""

    env: Mapping[str, str]
    name: str

    def __getitem__(self, key: str) -> str:
        """The variable AUTOSCALER_TEST_<NAME>_<key>."""
        return self.env[f"AUTOSCALER_TEST_{self.name.upper()}_{key}"]

    @property
    def password(self) -> str:
        """The password of its user (`USER`), as its file holds it."""
        return Path(self["PASSWORD_FILE"]).read_text().rstrip("\r\n")


def queue_server(name: str) -> QueueServer:
    """scripts/queues.sh's server `name`: as the environment names it (make test started it),
    else started now (the script is idempotent) and named by the script."""
    env: Mapping[str, str] = os.environ
    if f"AUTOSCALER_TEST_{name.upper()}_PASSWORD_FILE" not in env:
        script = str(ROOT / "scripts" / "queues.sh")
        subprocess.run(["bash", script, "start", name], check=True)
        out = subprocess.run(["bash", script, "env", name], check=True, capture_output=True,
                             text=True).stdout  # fmt: skip
        env = dict(line.split("=", 1) for line in out.split())
    return QueueServer(env, name)


@dataclass
class Clock:
    """The reader's clock: the test moves it past a reconnect backoff."""

    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def running(
    driver: Driver[Opt, Client], clock: Clock, secrets: Secrets,
    arrived: Callable[[Opt], None] = lambda _: None,
) -> AsyncIterator[Servers[Opt, Client]]:  # fmt: skip
    """The reader as the app runs it: its long-lived part running, and cancelled on leaving, as
    the app's shutdown does (which closes every client it holds); `arrived` is told the sources
    a poll between rounds found changed."""
    reader = Servers(driver, interval=1.0, now=clock, secrets=secrets, arrived=arrived)
    run = asyncio.create_task(reader.run())
    try:
        yield reader
    finally:
        run.cancel()
        await asyncio.wait([run])
        assert run.cancelled(), f"run() did not re-raise its cancellation: {run.exception()!r}"


async def read(reader: Servers[Opt, Any], *wanted: Opt, clock: Clock | None = None) -> list[Member]:
    """One round: every source read; the clock first moved past any backoff when given."""
    if clock is not None:
        clock.now += 60
    await reader.want(list(wanted))
    return [m for options in wanted for m in reader.members(options)]


async def until(
    look: Callable[[], Awaitable[Seen]],
    done: Callable[[Seen], bool],
    what: str,
    *,
    seconds: float = 2.0,
    pause: float = 0.01,
) -> None:
    """Look again, every `pause`, until done: a server sees a client's close a moment after the
    client made it. `what` fails the test after `seconds`."""
    for _ in range(int(seconds / pause)):
        if done(await look()):
            return
        await asyncio.sleep(pause)
    pytest.fail(what)
