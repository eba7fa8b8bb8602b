"""The chaos run's stack: one Compose project of three services as users run them, two
autoscaler processes beside it, the demand they read, and the web service's open-loop load.

    worker    on a queue depth published over MQTT (1..8, 10 a replica)
    sleeper   at zero, woken by its own depth (0..3)
    web       behind Caddy, on its CPU (2..12): deploy/web as it ships, under open-loop load
              that steps between a steady and a higher rate, sent from inside the engine's
              network namespace; every request's outcome is kept, for the failed ones a fault
              caused
    jobs      examples/worker-redis's worker on the stack's Redis (1..6, 5 waiting a replica),
              jobs pushed at a stepping rate and each accounted for at the end (jobs.py)

The autoscaler processes (`python -m autoscaler run`, lease ttl 6 s, 1 s interval) keep their
state directory and MQTT outbox on a tmpfs of the run's own, small, so that the state directory
can be filled as one of the faults.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiodocker
import aiomqtt

from bench.chaos.jobs import SERVICES, Jobs
from tests.integration.compose_stack import TEST_IMAGE
from tests.integration.platforms import ROOT, Platform, platform_named
from tests.integration.web import PROXIES, write_stack
from tests.integration.web import build_images as web_images
from tests.integration.worker import build_images as worker_images

TTL, INTERVAL = 6.0, 1.0
MAXIMUM = {"worker": 8, "sleeper": 3, "web": 12, "jobs": 6}
STATE_SIZE = "1m"
"""The tmpfs the instances' state directories and outboxes are on: filled by one fault."""
LOAD = ((6.0, 30.0), (20.0, 30.0))
"""(requests a second, seconds): the web's load, repeated for the whole run: steady, rising."""

COMPOSE = """\
x-replica: &replica
  image: {image}
  command: ["sleep", "86400"]
  restart: unless-stopped
  stop_grace_period: 1s
services:
  worker:
    <<: *replica
    labels:
      autoscaler.enable: "true"
      autoscaler.min: "1"
      autoscaler.max: "8"
      autoscaler.metric.source: mqtt
      autoscaler.metric.topic: {demand}/worker
      autoscaler.metric.target: "10"
      autoscaler.scale-up.max-replicas: "8"
      autoscaler.scale-down.stabilization: 5s
  sleeper:
    <<: *replica
    labels:
      autoscaler.enable: "true"
      autoscaler.min: "0"
      autoscaler.max: "3"
      autoscaler.metric.source: mqtt
      autoscaler.metric.topic: {demand}/sleeper
      autoscaler.metric.target: "1"
      autoscaler.scale-down.to-zero-after: 5s
  # deploy/web's, brought back by the engine after its restart, as a user's stack would be.
  web:
    restart: unless-stopped
  proxy:
    restart: unless-stopped
"""
COMPOSE += SERVICES


@dataclass
class Load:
    """The web's requests as they are answered: (when sent, monotonic; whether it failed)."""

    sent: list[float] = field(default_factory=list)
    failed: list[float] = field(default_factory=list)
    why: list[str] = field(default_factory=list)
    """Each failed request's status or error, in the order of `failed`."""

    def failures(self, since: float, until: float) -> tuple[int, int]:
        """(failed, sent) of the requests sent in [since, until)."""

        def between(times: list[float]) -> int:
            return bisect.bisect_left(times, until) - bisect.bisect_left(times, since)

        return between(self.failed), between(self.sent)

    def reasons(self, since: float, until: float) -> str:
        """The failures of the requests sent in [since, until), most frequent first."""
        first, last = (bisect.bisect_left(self.failed, t) for t in (since, until))
        counted = collections.Counter(self.why[first:last]).most_common(3)
        return "; ".join(f"{n} {why}" for why, n in counted)


@dataclass
class Run:
    platform: Platform
    broker: tuple[str, int]
    project: str
    prefix: str
    folder: Path
    demand: dict[str, int] = field(default_factory=lambda: {"worker": 10, "sleeper": 0, "jobs": 0})
    instances: list[asyncio.subprocess.Process] = field(default_factory=list)
    leading: dict[str, bool] = field(default_factory=dict)
    load: Load = field(default_factory=Load)
    jobs: Jobs = field(default_factory=Jobs)

    @property
    def files(self) -> list[Path]:
        return [self.folder / "compose.yaml", self.folder / "chaos.yaml"]

    @property
    def state(self) -> Path:
        return self.folder / "state"

    def expected(self, service: str = "worker") -> int:
        low = 0 if service == "sleeper" else 1
        return min(max(math.ceil(self.demand[service] / (10 if service == "worker" else 1)), low),
                   MAXIMUM[service])  # fmt: skip

    def accepted(self, service: str = "worker") -> set[int]:
        """The counts the service's demand is met at: the one it asks for, and for the worker a
        count the HPA's tolerance holds at (10 % either way): reached after a rate-limited step,
        7 workers for 75 jobs at 10 a replica hold (75 / 70 is within 1.1), as the HPA's do."""
        counts = {self.expected(service)}
        if service == "worker" and (demand := self.demand[service]) > 0:
            counts |= {c for c in range(1, MAXIMUM[service] + 1)
                       if 0.9 <= demand / (10 * c) <= 1.1}  # fmt: skip
        return counts

    async def compose(self, *args: str) -> str:
        env = {"WEB_IMAGE": "autoscaler-test/web:latest", "PROXY_IMAGE": PROXIES["caddy"].image,
               "PROXY_PORT": "0", "SCALE_DOWN_WINDOW": "5s"}  # fmt: skip
        return await self.platform.run_compose(self.project, self.files, *args, env=env,
                                               check=False)  # fmt: skip

    async def spawn(self) -> asyncio.subprocess.Process:
        n = len(self.instances)
        (self.state / str(n)).mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ, "DOCKER_HOST": self.platform.docker_host,
            "AUTOSCALER_INTERVAL": str(INTERVAL), "AUTOSCALER_PROJECTS": json.dumps([self.project]),
            "AUTOSCALER_MQTT__HOST": self.broker[0], "AUTOSCALER_MQTT__PORT": str(self.broker[1]),
            "AUTOSCALER_MQTT__TOPIC_PREFIX": self.prefix, "AUTOSCALER_API__PORT": "0",
            "AUTOSCALER_LEASE__NAME": f"chaos-lease-{self.project}",
            "AUTOSCALER_LEASE__TTL": str(TTL), "AUTOSCALER_MQTT__HEARTBEAT": "1",
            "AUTOSCALER_STATE_DIR": str(self.state / str(n)),
            "AUTOSCALER_MQTT__OUTBOX_PATH": str(self.state / str(n) / "outbox.jsonl"),
            # One clone at a time: a scale-up lasts long enough for a fault to land inside it.
            "AUTOSCALER_CLONE_CONCURRENCY": "1",
        }  # fmt: skip
        with (self.folder / f"autoscaler-{n}.log").open("wb") as log:
            # The process has the file; this one's handle closes.
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "autoscaler", "run", env=env, stdout=log, stderr=log
            )
        self.instances.append(process)
        return process

    def leader(self) -> asyncio.subprocess.Process | None:
        pids = {name.split("-")[-2] for name, leads in self.leading.items() if leads}
        found = [p for p in self.instances if p.returncode is None and str(p.pid) in pids]
        return found[0] if len(found) == 1 else None

    async def publish(self) -> None:
        """The demand, republished every half second (an exporter's period), and again as soon
        as the broker is back from an outage (one of the faults)."""
        while True:
            with contextlib.suppress(aiomqtt.MqttError):
                async with aiomqtt.Client(*self.broker) as client:
                    while True:
                        for service, depth in self.demand.items():
                            topic = f"{self.prefix}-demand/{service}"
                            await client.publish(topic, str(depth), qos=1, retain=True)
                        await asyncio.sleep(0.5)
            await asyncio.sleep(0.5)

    async def statuses(self) -> None:
        """Which instance leads, from each one's retained status (`<prefix>/status/<id>`)."""
        while True:
            with contextlib.suppress(aiomqtt.MqttError):
                async with aiomqtt.Client(*self.broker) as client:
                    await client.subscribe(f"{self.prefix}/status/+", qos=1)
                    async for message in client.messages:
                        raw = bytes(message.payload or b"")
                        with contextlib.suppress(ValueError):
                            status = json.loads(raw) if raw else {}
                            name = str(message.topic).rsplit("/", 1)[1]
                            self.leading[name] = bool(status.get("leading"))
            await asyncio.sleep(0.5)

    async def send_load(self) -> None:
        """The web's open-loop load (scripts/load.py, one outcome a line as it is answered)
        from inside the engine's namespace, again whenever it stops (an engine restart makes
        a new namespace and a new proxy address)."""
        phases = [arg for rate, seconds in LOAD for arg in ("--phase", f"{rate:g}:{seconds:g}")]
        while True:
            netns: str | None = None
            url = await self._proxy_url()
            with contextlib.suppress(subprocess.CalledProcessError):
                netns = await asyncio.to_thread(self.platform.netns)
            if url is None or netns is None:
                await asyncio.sleep(0.5)  # the proxy is not running yet (or again)
                continue
            process = await asyncio.create_subprocess_exec(
                "nsenter", f"--net={netns}", sys.executable,
                str(ROOT / "scripts" / "load.py"), "--url", url, "--stream", "--repeat",
                *phases, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                # The watcher of the proxy's place lives as long as this process's output: its
                # own cancellation ends here, one of this task's goes on through.
                async with asyncio.TaskGroup() as tg:
                    moved = tg.create_task(self._moved(process, netns, url))
                    assert process.stdout is not None
                    while line := await process.stdout.readline():
                        outcome = json.loads(line)
                        sent = time.monotonic() - float(outcome["latency"])
                        self.load.sent.append(sent)
                        if outcome["status"] != 200:
                            self.load.failed.append(sent)
                            self.load.why.append(str(outcome["error"] or outcome["status"])[:60])
                    moved.cancel()  # the load ended: nothing left to move
            finally:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    await process.wait()
            await asyncio.sleep(0.5)

    async def _moved(self, process: asyncio.subprocess.Process, netns: str, url: str) -> None:
        """Ends the load's process once the proxy answers elsewhere: a restarted engine has a
        new namespace, its proxy a new address (the requests to the old fail until then)."""
        while True:
            await asyncio.sleep(2.0)  # how often the proxy's place is looked at
            try:
                now = await self._proxy_url()
                if now is None:
                    continue  # not running (yet): the requests fail, as users' would
                if now != url or await asyncio.to_thread(self.platform.netns) != netns:
                    process.send_signal(signal.SIGTERM)
                    return
            except (OSError, subprocess.CalledProcessError):
                continue  # the engine is away: looked at again

    def redis(self) -> str:
        return self.platform.container(self.project, "redis")

    async def _proxy_url(self) -> str | None:
        docker = aiodocker.Docker(url=self.platform.docker_host)
        try:
            container = await docker.containers.get(self.platform.container(self.project, "proxy"))
            if not container["State"]["Running"]:
                return None
            networks = container["NetworkSettings"]["Networks"]
            return f"http://{next(iter(networks.values()))['IPAddress']}/"
        except (aiodocker.DockerError, OSError, StopIteration):
            return None
        finally:
            await docker.close()


async def _run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(*command)
    if await process.wait():
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode})")


@contextlib.asynccontextmanager
async def stack(broker: tuple[str, int]) -> AsyncIterator[Run]:
    platform = platform_named("current")
    web_images(platform.docker_host)
    worker_images(platform.docker_host)
    name = uuid.uuid4().hex[:8]
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    run = Run(platform, broker, f"chaos{name}", f"chaos-{name}", folder)
    write_stack(folder)
    (folder / "chaos.yaml").write_text(COMPOSE.format(image=TEST_IMAGE,
                                                      demand=f"{run.prefix}-demand"))  # fmt: skip
    run.state.mkdir()
    await _run("mount", "-t", "tmpfs", "-o", f"size={STATE_SIZE}", "tmpfs", str(run.state))
    try:
        yield run
    finally:
        # Each step whatever the one before did: a failed `down` still leaves no mount, nor
        # a lease for the next run to find.
        try:
            await stop(run.instances)
            await run.compose("down", "-t", "0", "--remove-orphans")
        finally:
            try:
                await _run("umount", str(run.state))
            finally:
                await _remove_kept(platform.docker_host, run.project)


async def stop(processes: list[asyncio.subprocess.Process]) -> None:
    """Each process still running continued (a fault may have stopped it) and terminated, then
    all of them waited for."""
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                process.send_signal(signal.SIGCONT)
                process.terminate()
    for process in processes:
        await process.wait()


async def _remove_kept(docker_host: str, project: str) -> None:
    """What the run's instances keep on the engine beside the project: the lease (an instance
    killed with -9 leaves it) and the sleep's marker of a service down asleep."""
    docker = aiodocker.Docker(url=docker_host)
    try:
        kept = await docker.containers.list(all=True, filters=json.dumps(
            {"name": [f"chaos-lease-{project}", f"autoscaler-asleep-{project}-"]}
        ))  # fmt: skip
        for container in kept:
            with contextlib.suppress(aiodocker.DockerError):
                await container.delete(force=True)
    finally:
        await docker.close()
