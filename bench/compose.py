"""Beside Compose, every command a user types, on each platform (tests/integration/platforms.py):
Docker 26.1 with Compose v2.26, and Docker 20.10 with docker-compose 1.29. A service on two
networks held at 3 replicas (its min), the autoscaler at a 2 s interval; each command 3 times.

* Capacity: how long the service ran fewer than 3 replicas, watched from outside every 20 ms,
  from the command's start until 3 run again (a new release: until 3 run on it, and the fewest
  that ran once Compose was done); beside the baseline, the same autoscaler and labels mending
  only at its rounds, as it did before it read the engine's events for this.
* A one-off (`run -d web sleep 600`): the replicas counted while it runs, and the containers
  running its command besides itself. `down`: what is left, and what was created after it began.
* A plain `docker run` service (min 2), on an engine with and without the default bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiodocker

from autoscaler.app import App
from autoscaler.control.context import Clock
from autoscaler.settings import ApiSettings, LeaseSettings, MqttSettings, Settings
from bench.common import IMAGE
from tests.integration.compose_stack import HELD, Stack, below, containers
from tests.integration.platforms import Platform, platform_named

INTERVAL = 2.0
TIMES = 3
PLATFORMS = {"current": "Docker 26.1 + Compose v2.26", "legacy": "Docker 20.10 + Compose 1.29"}


class RoundsOnly(App):
    """The baseline: the same autoscaler, mending what went away only at its rounds: its
    Compose backend still reads the engine's events (its view), but mends nothing between
    rounds."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        super().__init__(settings, clock)
        self.compose.mend = _mend_nothing  # type: ignore[method-assign]


def _mend_nothing(tg: asyncio.TaskGroup) -> None:
    """Nothing is mended between rounds."""


def settings(platform: Platform, project: str) -> Settings:
    return Settings(
        docker_host=platform.docker_host, interval=INTERVAL, projects=frozenset({project}),
        mqtt=MqttSettings(enabled=False), api=ApiSettings(enabled=False),
        lease=LeaseSettings(enabled=False),
    )  # fmt: skip


@contextlib.asynccontextmanager
async def held(platform: Platform, kind: type[App] = App) -> Any:
    """A stack of its own at 3 replicas under a running autoscaler of `kind`; removed after."""
    project = f"bcompose{uuid.uuid4().hex[:6]}"
    folder = Path(tempfile.mkdtemp(prefix="bench-compose-"))
    (folder / "load" / "replicas").mkdir(parents=True)
    (folder / "load" / "demand").write_text("0\n")
    stack = Stack.write(platform, project, folder, folder / "load")
    async with aiodocker.Docker(url=platform.docker_host) as docker:
        app, stop = kind(settings(platform, project)), asyncio.Event()
        try:
            await stack("up", "-d", env=HELD)
            serving = asyncio.ensure_future(app.serve(stop))
            try:
                yield stack, docker
            finally:
                stop.set()
                await serving
        finally:
            await stack.remove(docker)


async def three(docker: aiodocker.Docker, project: str) -> None:
    async with asyncio.timeout(60):
        while len(await containers(docker, project)) != 3:  # noqa: ASYNC110 - from outside
            await asyncio.sleep(0.05)


@dataclass
class Capacity:
    command: str
    events: list[float] = field(default_factory=list)
    rounds: list[float] = field(default_factory=list)
    note: list[str] = field(default_factory=list)


async def released(stack: Stack, docker: aiodocker.Docker, release: str) -> tuple[float, int]:
    """`up -d` of a new release: seconds until 3 run on it, and the fewest that ran once
    Compose was done."""
    started = time.monotonic()
    up = asyncio.ensure_future(stack("up", "-d", env=HELD | {"RELEASE": release}))
    fewest = 99
    async with asyncio.timeout(60):
        while True:
            running = await containers(docker, stack.project)
            if up.done():
                await up
                fewest = min(fewest, len(running))
                on_it = [c for c in running if c["Labels"].get("release") == release]
                if len(on_it) == len(running) == 3:
                    return time.monotonic() - started, fewest
            await asyncio.sleep(0.02)  # an observation period


async def capacity(platform: Platform, kind: type[App]) -> dict[str, list[float | str]]:
    """Each command TIMES times on one held stack: seconds below 3 (a release: until all on it,
    then the fewest running once Compose was done, as `s/fewest`)."""
    out: dict[str, list[float | str]] = {}
    async with held(platform, kind) as (stack, docker):
        project = stack.project
        commands: dict[str, Callable[[], Awaitable[str]]] = {
            "up -d": lambda: stack("up", "-d", env=HELD),
            "up -d --scale web=3": lambda: stack("up", "-d", "--scale", "web=3", env=HELD),
            "restart web": lambda: stack("restart", "web", env=HELD),
        }
        for name, command in commands.items():
            for _ in range(TIMES):
                await three(docker, project)
                out.setdefault(name, []).append(await below(docker, project, 3, command()))
        for n in range(TIMES):
            await three(docker, project)
            seconds, fewest = await released(stack, docker, str(n + 2))
            out.setdefault("up -d, a new release", []).append(f"{seconds:.2f}/{fewest}")
    return out


async def one_off_and_down(platform: Platform) -> tuple[int, int, str]:
    """(replicas counted while a one-off runs, containers running its command besides it,
    `down`: left containers/networks, created after it began)."""
    async with held(platform) as (stack, docker):
        project = stack.project
        await three(docker, project)
        await stack("run", "-d", "--name", f"{project}-oneoff", "web", "sleep", "600", env=HELD)
        await asyncio.sleep(3 * INTERVAL)  # three rounds with it running
        running = await containers(docker, project)
        one_off = [c for c in running if c["Labels"].get("com.docker.compose.oneoff") == "True"]
        others = [c for c in running if c not in one_off and c["Command"].endswith("sleep 600")]
        counted = len(running) - len(one_off)
        for c in one_off:
            await (await docker.containers.get(c["Id"])).delete(force=True)
        await three(docker, project)
        created: list[str] = []
        subscriber = docker.events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
        label = f"com.docker.compose.project={project}"
        filters = json.dumps({"type": ["container"], "event": ["create"], "label": [label]})
        feed = asyncio.ensure_future(docker.events.run(filters=filters))

        async def watch() -> None:
            while (event := await subscriber.get()) is not None:
                created.append(event["Actor"]["Attributes"]["name"])

        watcher = asyncio.ensure_future(watch())
        await stack("down", env=HELD)
        await asyncio.sleep(3 * INTERVAL)  # three rounds after it
        feed.cancel()
        watcher.cancel()
        await asyncio.gather(feed, watcher, return_exceptions=True)
        left = len(await containers(docker, project, every=True))
        networks = len(await docker.networks.list(filters={"label": [label]}))
    return counted, len(others), f"{left}/{networks}, {len(created)} created"


async def plain(platform: Platform) -> str:
    """Seconds from the autoscaler's start until a `docker run` service (min 2) runs 2, and
    where the clone is."""
    name = f"bplain{uuid.uuid4().hex[:6]}"
    labels = {"autoscaler.enable": "true", "autoscaler.service": name, "autoscaler.min": "2",
              "autoscaler.max": "3", "autoscaler.cpu.target": "50"}  # fmt: skip
    label = json.dumps({"label": [f"autoscaler.service={name}"]})
    async with aiodocker.Docker(url=platform.docker_host) as docker:
        config = {"Image": IMAGE, "Cmd": ["sleep", "600"], "Labels": labels,
                  "HostConfig": {"NanoCpus": 100_000_000}}  # fmt: skip
        if platform.name != "current":
            config["HostConfig"]["NetworkMode"] = "default"  # as Docker 20.10's CLI sends it
        first = await docker.containers.create(config, name=name)
        await first.start()
        app, stop = App(settings(platform, "standalone")), asyncio.Event()
        started = time.monotonic()
        serving = asyncio.ensure_future(app.serve(stop))
        try:
            async with asyncio.timeout(30):
                while len(await docker.containers.list(filters=label)) < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            seconds = time.monotonic() - started
            listed = await docker.containers.list(filters=label)
            clone = next(c for c in listed if "autoscaler.clone-of" in c["Labels"])
            networks = (await docker.containers.get(clone.id))["NetworkSettings"]["Networks"]
            where = ", ".join(n for n, e in networks.items() if e.get("NetworkID")) or "none"
        except TimeoutError:
            seconds, where = float("inf"), "never scaled"
        finally:
            stop.set()
            await serving
            for c in await docker.containers.list(all=True, filters=label):
                await c.delete(force=True)
    return f"{seconds:.2f} s, clone on {where}"


def _each(values: list[float | str]) -> str:
    return " ".join(v if isinstance(v, str) else f"{v:.2f}" for v in values)


def _worst(values: list[float | str]) -> str:
    numbers = [float(str(v).split("/")[0]) for v in values]
    return f"{max(numbers):.2f}"


async def run() -> str:
    lines = []
    head = (f"{'platform':<28} {'command':<22} {'events: each':>22} {'worst':>6} "
            f"{'rounds only: each':>22} {'worst':>6}")  # fmt: skip
    lines += [head, "-" * len(head)]
    others = []
    for name, words in PLATFORMS.items():
        platform = platform_named(name)
        events, rounds = await capacity(platform, App), await capacity(platform, RoundsOnly)
        for command in events:
            lines.append(f"{words:<28} {command:<22} {_each(events[command]):>22} "
                         f"{_worst(events[command]):>6} {_each(rounds[command]):>22} "
                         f"{_worst(rounds[command]):>6}")  # fmt: skip
        counted, elsewhere, down = await one_off_and_down(platform)
        others.append(f"{words:<28} {counted:>16} {elsewhere:>22} {down:>26}")
    lines.append("")
    head = f"{'platform':<28} {'counted, one-off up':>16} {'its command elsewhere':>22} " \
           f"{'down: left (ctrs/nets)':>26}"  # fmt: skip
    lines += [head, "-" * len(head), *others, ""]
    head = f"{'engine':<44} {'a docker run service to min 2':>34}"
    lines += [head, "-" * len(head)]
    for name, words in (("current", "Docker 26.1, default bridge"),
                        ("legacy", "Docker 20.10, default bridge (API 1.41)"),
                        ("bare", "Docker 20.10, no default bridge (API 1.41)")):  # fmt: skip
        lines.append(f"{words:<44} {await plain(platform_named(name)):>34}")
    return "\n".join(lines)


def main() -> None:
    table = asyncio.run(run())
    print("\nBeside Compose: a service on two networks held at 3 replicas, 2 s interval, each "
          f"command {TIMES} times; seconds below 3 (a new release: until all 3 run it / the "
          "fewest running once Compose was done); goal: up -d <= 1.5 s, a release <= 5 s and "
          "never below 1 once Compose is done, a one-off never counted\n")  # fmt: skip
    print(table)


if __name__ == "__main__":
    main()
