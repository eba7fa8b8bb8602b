"""What the engine benchmarks share: the engine, containers made for a run and removed after,
and a way to read a process's CPU time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiodocker

ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("AUTOSCALER_TEST_IMAGE", "autoscaler-test/busybox:latest")


@contextlib.asynccontextmanager
async def engine() -> AsyncIterator[aiodocker.Docker]:
    docker = aiodocker.Docker(url=os.environ.get("DOCKER_HOST"))
    try:
        yield docker
    finally:
        await docker.close()


@contextlib.asynccontextmanager
async def containers(
    docker: aiodocker.Docker,
    configs: list[dict[str, Any]],
    *,
    concurrency: int = 16,
) -> AsyncIterator[list[aiodocker.containers.DockerContainer]]:
    """Create and start containers from `configs`; all are removed on the way out."""
    run = uuid.uuid4().hex[:8]
    slots = asyncio.Semaphore(concurrency)

    async def make(i: int, config: dict[str, Any]) -> aiodocker.containers.DockerContainer:
        labels = {**config.get("Labels", {}), "bench.run": run}
        async with slots:
            c = await docker.containers.create(
                {**config, "Labels": labels}, name=f"bench-{run}-{i}"
            )
            await c.start()
            return c

    try:
        made = await asyncio.gather(*(make(i, c) for i, c in enumerate(configs)))
        yield list(made)
    finally:
        await remove_run(docker, run)


async def remove_run(docker: aiodocker.Docker, run: str) -> None:
    """Remove every container labelled with `bench.run=run`, clones included."""
    listed = await docker.containers.list(
        all=True, filters=json.dumps({"label": [f"bench.run={run}"]})
    )
    slots = asyncio.Semaphore(16)

    async def remove(c: aiodocker.containers.DockerContainer) -> None:
        async with slots:
            with contextlib.suppress(aiodocker.DockerError):
                await c.delete(force=True)

    await asyncio.gather(*(remove(c) for c in listed))


def busybox(command: list[str], *, cpus: float | None = None, **extra: Any) -> dict[str, Any]:
    host: dict[str, Any] = {"NetworkMode": "none"}
    if cpus:
        host["NanoCpus"] = int(cpus * 1e9)
    host.update(extra.pop("HostConfig", {}))
    return {"Image": IMAGE, "Cmd": command, "HostConfig": host, "StopTimeout": 1, **extra}


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc (what `top` shows), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def dockerd_pid() -> int | None:
    """The engine's pid, from the private engine's pid file or by name."""
    state = Path(
        os.environ.get(
            "AUTOSCALER_STATE_DIR", f"{os.environ.get('TMPDIR', '/tmp')}/compose-autoscaler"
        )
    )
    pidfile = state / "engine" / "dockerd.inner.pid"
    if pidfile.exists():
        return int(pidfile.read_text())
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if (proc / "comm").read_text().strip() == "dockerd":
                    return int(proc.name)
    return None


def labels_for(project: str, service: str, extra: Mapping[str, str]) -> dict[str, str]:
    return {
        "com.docker.compose.project": project,
        "com.docker.compose.service": service,
        "com.docker.compose.container-number": "1",
        **extra,
    }


async def remove_project(docker: aiodocker.Docker, project: str) -> None:
    """Remove every container of a Compose project, clones included."""
    listed = await docker.containers.list(
        all=True, filters=json.dumps({"label": [f"com.docker.compose.project={project}"]})
    )
    for c in listed:
        with contextlib.suppress(aiodocker.DockerError):
            await c.delete(force=True)


def actions(app: Any) -> int:
    """The scale actions a running autoscaler took, as its /metrics counts them."""
    return int(sum(s.value for m in app.metrics.actions.collect()
                   for s in m.samples if s.name.endswith("_total")))  # fmt: skip


def running(app: Any, project: str) -> int:
    """The running containers of `project` in a running autoscaler's view of the engine."""
    return sum(
        1
        for key, replicas in app.compose.inventory.services().items()
        if key.project == project
        for r in replicas
        if r.running
    )
