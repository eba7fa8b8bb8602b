"""A real web stack for the tests, the benchmarks and the demo: deploy/web's compose file run by
the platform's Compose (v2.26 unless a test asks for another, platforms.py), with a real proxy (Caddy or HAProxy, built from Debian's binaries) in front
of the webapp (scripts/webapp.c), and open-loop HTTP load (scripts/load.py) sent from inside the
engine's network namespace, where the proxy's address is."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiodocker

from tests.integration.platforms import Platform, platform_named

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "deploy" / "web"


@dataclass(frozen=True)
class Proxy:
    image: str
    files: tuple[str, ...]
    """deploy/web's files that put this proxy in front."""


PROXIES = {
    "caddy": Proxy("autoscaler-test/caddy:latest", ("compose.yaml",)),
    "haproxy": Proxy("autoscaler-test/haproxy:latest", ("compose.yaml", "compose.haproxy.yaml")),
}
PHASES = (("low", 8.0, 4.0), ("high", 40.0, 13.0), ("low again", 8.0, 10.0))
"""(name, requests a second, seconds): the load a web test sends."""


def build_images(docker_host: str) -> None:
    """The webapp and the proxies' images, offline (scripts/web-images.sh)."""
    env = {**os.environ, "DOCKER_HOST": docker_host}
    subprocess.run(["bash", str(ROOT / "scripts" / "web-images.sh")], check=True, env=env)


@dataclass
class Stack:
    """One web stack, a Compose project of its own."""

    project: str
    proxy: str
    platform: Platform
    folder: Path
    env: dict[str, str] = field(default_factory=dict)
    extra: tuple[Path, ...] = ()
    """More files after the proxy's: deploy/web/compose.scrape.yaml, the deploy overlay."""
    before_down: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Run before the stack goes down: an autoscaler still running would mend the service
    while `down` removes it, and leave a clone behind."""

    @property
    def files(self) -> list[Path]:
        return [self.folder / name for name in PROXIES[self.proxy].files] + list(self.extra)

    async def compose(self, *args: str) -> str:
        return await self.platform.run_compose(self.project, self.files, *args, env=self.env)

    async def address(self, docker: aiodocker.Docker) -> str:
        """The proxy's address on its network, reachable inside the engine's namespace."""
        container = await docker.containers.get(self.platform.container(self.project, "proxy"))
        networks = container["NetworkSettings"]["Networks"]
        return str(next(iter(networks.values()))["IPAddress"])


def write_stack(folder: Path) -> None:
    """deploy/web as it ships, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in WEB.iterdir():
        (folder / path.name).write_text(path.read_text())


@contextlib.asynccontextmanager
async def web_stack(
    project: str, proxy: str, platform: Platform, folder: Path, *,
    env: Mapping[str, str] | None = None, extra: tuple[Path, ...] = (), rewrite: bool = True,
) -> AsyncIterator[Stack]:  # fmt: skip
    """The stack up with two replicas of `web`; down (clones, networks and all) afterwards.
    `rewrite=False` keeps the files already in `folder` (written and changed by the caller)."""
    if rewrite:
        write_stack(folder)
    settings = {
        "WEB_IMAGE": "autoscaler-test/web:latest",
        "PROXY_IMAGE": PROXIES[proxy].image,
        "PROXY_PORT": "0",
        "SCALE_DOWN_WINDOW": "5s",
        **(env or {}),
    }
    # deploy/web's own files are used from the stack's folder, beside the proxy's config.
    files = tuple(folder / p.name if p.parent == WEB else p for p in extra)
    stack = Stack(project, proxy, platform, folder, settings, files)
    try:
        await stack.compose("up", "-d", "--scale", "web=2")
        yield stack
    finally:
        for step in stack.before_down:
            await step()
        with contextlib.suppress(AssertionError):
            await stack.compose("down", "-v", "--remove-orphans", "-t", "1")


async def send_load(
    url: str,
    phases: tuple[tuple[str, float, float], ...] = PHASES,
    *,
    every: float = 0.0,
    netns: str | None = None,
) -> list[dict[str, Any]]:
    """scripts/load.py inside the engine's network namespace (`netns`, the current platform's
    unless given); each request's outcome."""
    args = [arg for _, rate, seconds in phases for arg in ("--phase", f"{rate:g}:{seconds:g}")]
    netns = netns or platform_named("current").netns()
    process = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={netns}", str(ROOT / ".venv" / "bin" / "python"),
        str(ROOT / "scripts" / "load.py"), "--url", url, *args, "--every", str(every),
        stdout=asyncio.subprocess.PIPE, stderr=None if every else asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0
    return [json.loads(line) for line in out.decode().splitlines()]


def phase_starts(phases: tuple[tuple[str, float, float], ...] = PHASES) -> dict[str, float]:
    starts, at = {}, 0.0
    for name, _, seconds in phases:
        starts[name] = at
        at += seconds
    starts["end"] = at
    return starts


@dataclass
class Replicas:
    """Which containers of a service ran, and for how long, as the engine lists them."""

    seen: dict[str, list[float]] = field(default_factory=dict)
    """short id (the webapp's hostname) -> [first, last] monotonic time it was seen running."""

    def ran_for(self, seconds: float) -> set[str]:
        return {cid for cid, (first, last) in self.seen.items() if last - first >= seconds}


@contextlib.asynccontextmanager
async def watching(docker: aiodocker.Docker, project: str) -> AsyncIterator[Replicas]:
    """Follow the running `web` containers of `project` twice a second while the block runs."""
    found = Replicas()
    label = json.dumps({"label": [f"com.docker.compose.project={project}",
                                  "com.docker.compose.service=web"]})  # fmt: skip

    async def follow() -> None:
        loop = asyncio.get_running_loop()
        while True:
            for c in await docker.containers.list(filters=label):
                now = loop.time()
                found.seen.setdefault(c.id[:12], [now, now])[1] = now
            await asyncio.sleep(0.5)  # an observation period, not a wait for a state

    task = asyncio.create_task(follow())
    try:
        yield found
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def explained(docker: aiodocker.Docker, container: str, service: str) -> dict[str, Any]:
    """`autoscaler explain SERVICE --json` in the containerised autoscaler: its /status of the
    service, asked for with the token the overlay gives it (AUTOSCALER_API__TOKEN_FILE)."""
    found = await docker.containers.get(container)
    run = await found.exec(["autoscaler", "explain", service, "--json"])
    out = b""
    async with run.start(detach=False) as stream:
        while (message := await stream.read_out()) is not None:
            out += message.data
    return json.loads(out)  # type: ignore[no-any-return]
