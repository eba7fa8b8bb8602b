"""Queue sources on real servers (issue 34): how soon a backlog becomes running workers, and what
scaling on it saves against a fixed pool. The autoscaler runs in this process at a 2 s interval
on the engine DOCKER_HOST names; the queue servers are scripts/queues.sh's (started if need be).

1. A burst: 2,000 jobs enqueued at once (one `RPUSH`; over AMQP 2,000 confirmed publishes), 250
   a replica, max 10: 8 needed. Time from the burst enqueued to the first new container seen
   and to all 8 running. Goal: 8 running within 1.5 s with `metric.poll: 0.25s`. Baseline, same
   run: the same labels read once a round (no poll); beside them the same depth published on
   MQTT (acted on as it arrives). (CPU alone is no baseline here: a worker's CPU rises only once
   it works, and these replicas do nothing.)
2. A pushed MQTT value needing 9 (90, 10 a replica), published at five phases of the round:
   time to the first new container and to all 9 running. Goal: within 1.0 s.
3. Wake from zero: a service asleep (`min: 0`), one job pushed: time to its first replica
   running. Goal: within 1.0 s with `metric.poll: 0.25s`; baseline without.
4. Drain: real workers (examples/worker-redis/worker.sh, 0.2 s jobs) on a Redis inside the
   engine's network namespace, a burst sized for max to drain it in about 25 s; one burst a
   minute. The target is sized as a user sizes it: the jobs one worker finishes in the wait a job
   may spend queued (5 s), from the workers' measured rate; the scale-down window as named.
   Fixed pools of min and of max against the autoscaled one: time to drain, and replica-seconds
   over the minute. Goal: within 15 % of max's drain time at <= 50 % of its replica-seconds.

Times are watched from outside at 20 ms (the autoscaler's view of the engine, which its events
keep current): each is within 20 ms. Phases are spread evenly over the round, not drawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiodocker
import aiomqtt
import redis.asyncio as aredis
from pydantic import SecretStr

from autoscaler.app import App
from autoscaler.settings import ApiSettings, LeaseSettings, MqttSettings, Settings
from bench.common import ROOT, busybox, engine, labels_for, remove_run
from tests.integration.relay import relay

INTERVAL = 2.0
POLL = "0.25s"
BURST, SHARE, MAXIMUM = 2000, 250, 10
NEEDED = math.ceil(BURST / SHARE)  # 8
REPEATS = 3  # bursts a row, at phases 0, 1/3, 2/3 of the round
PUSHES = 5  # item 2: publishes at phases 0, 1/5, ... of the round
WATCH = 10.0  # seconds a burst is watched at most
RATE = {"autoscaler.scale-up.max-replicas": str(MAXIMUM + 10)}  # a burst in one action
WORKER = "autoscaler-test/worker:latest"
JOB_SECONDS = 0.2
PERIOD = 60.0  # item 4: one burst a minute
WAIT = 5.0  # item 4: seconds a job may wait in the queue, what the worker's target is sized by


@dataclass
class Burst:
    """One burst: seconds from it to the first new container, and to all needed running."""

    acted_s: float | None = None
    running_s: float | None = None


@dataclass
class Row:
    name: str
    goal: str = ""
    bursts: list[Burst] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """The autoscaler's error events about the row's services (a label refused, a server)."""

    def told(self, f: Fleet) -> None:
        found = {str(e.get("message", "")) for e in f.app.journal.after(0)
                 if e.get("Action") == "error"}  # fmt: skip
        self.errors += sorted(found - set(self.errors))


# --- servers -------------------------------------------------------------------------------


def _queue_env() -> dict[str, str]:
    """scripts/queues.sh's variables for Redis and RabbitMQ, starting them if need be."""
    if "AUTOSCALER_TEST_REDIS_URL" in os.environ and "AUTOSCALER_TEST_RABBITMQ_PORT" in os.environ:
        return dict(os.environ)
    script = str(ROOT / "scripts" / "queues.sh")
    subprocess.run(["bash", script, "start", "redis", "rabbitmq"], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    printed = subprocess.run(["bash", script, "env", "redis", "rabbitmq"], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
    return dict(os.environ) | dict(
        line.split("=", 1) for line in printed.splitlines() if "=" in line
    )


@dataclass(frozen=True)
class Servers:
    redis_url: str
    amqp_url: str
    """amqp://host:port/%2F, no user in it (the label's form)."""
    amqp_user: str
    amqp_password: str
    mqtt_host: str
    mqtt_port: int

    @classmethod
    def found(cls) -> Servers:
        env = _queue_env()
        host, port = env["AUTOSCALER_TEST_RABBITMQ_HOST"], env["AUTOSCALER_TEST_RABBITMQ_PORT"]
        return cls(
            redis_url=env["AUTOSCALER_TEST_REDIS_URL"],
            amqp_url=f"amqp://{host}:{port}/%2F",
            amqp_user=env["AUTOSCALER_TEST_RABBITMQ_USER"],
            amqp_password=Path(env["AUTOSCALER_TEST_RABBITMQ_PASSWORD_FILE"]).read_text().strip(),
            mqtt_host=env.get("AUTOSCALER_MQTT__HOST", "127.0.0.1"),
            mqtt_port=int(env.get("AUTOSCALER_MQTT__PORT", "1883")),
        )


# --- the autoscaler and its services ---------------------------------------------------------


@dataclass
class Fleet:
    """An autoscaler in this process, following one project of services."""

    app: App
    project: str
    run: str

    def replicas(self, service: str, *, running: bool) -> int:
        return sum(
            1
            for key, replicas in self.app.compose.inventory.services().items()
            if key.project == self.project and key.service == service
            for r in replicas
            if r.running or not running
        )

    def evaluated(self, service: str) -> int:
        return sum(len(c.history) for k, c in self.app.compose.fleet.items()
                   if k.service == service)  # fmt: skip


@contextlib.asynccontextmanager
async def fleet(
    docker: aiodocker.Docker,
    services: Mapping[str, dict[str, Any]],
    servers: Servers,
    *,
    mqtt: bool = False,
) -> AsyncIterator[Fleet]:
    """Each of `services` (a name and its container config, labels included) made and started
    as a Compose service of one project, and an autoscaler following it; all removed after."""
    run = uuid.uuid4().hex[:8]
    project = f"benchq{run}"
    settings = Settings(
        docker_host=os.environ.get("DOCKER_HOST"),
        interval=INTERVAL,
        projects=frozenset({project}),
        mqtt=MqttSettings(
            enabled=mqtt,
            host=servers.mqtt_host,
            port=servers.mqtt_port,
            topic_prefix=f"bench-{run}",
        ),
        api=ApiSettings(enabled=False),
        lease=LeaseSettings(enabled=False),
        secrets_dir=Path(tempfile.mkdtemp(prefix="bench-secrets-")),
        secrets={"rabbitmq-password": SecretStr(servers.amqp_password)},
    )
    app, stop = App(settings), asyncio.Event()
    try:
        for name, config in services.items():
            labels = labels_for(project, name, {**config["Labels"], "bench.run": run})
            made = await docker.containers.create({**config, "Labels": labels},
                                                  name=f"{project}-{name}-1")  # fmt: skip
            await made.start()
        async with asyncio.TaskGroup() as tg:
            serving = tg.create_task(app.serve(stop))
            try:
                yield Fleet(app, project, run)
            finally:
                stop.set()
                await serving
    finally:
        await remove_run(docker, run)
        await _remove_markers(docker, project)


async def _remove_markers(docker: aiodocker.Docker, project: str) -> None:
    """The sleep markers of item 3 (never started, named after the project)."""
    listed = await docker.containers.list(all=True, filters=json.dumps({"name": [project]}))
    for c in listed:
        with contextlib.suppress(aiodocker.DockerError):
            await c.delete(force=True)


async def until(condition: Callable[[], bool], within: float, poll: float = 0.02) -> bool:
    """Watching from outside, with no event to wait on: a 20 ms poll."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(poll)
    return True


async def at_phase(f: Fleet, service: str, phase: float) -> None:
    """Wait for the service's next round (its evaluation recorded), then `phase` of the
    interval: where in the round the burst lands."""
    seen = f.evaluated(service)
    await until(lambda: f.evaluated(service) > seen, 3 * INTERVAL)
    await asyncio.sleep(phase * INTERVAL)  # placing the burst, not measuring


async def measure(f: Fleet, service: str, before: int, needed: int,
                  enqueue: Callable[[], Awaitable[None]]) -> Burst:  # fmt: skip
    """Enqueue, then watch the service: its first container past `before`, and `needed`
    running."""
    await enqueue()
    sent = time.monotonic()
    burst = Burst()
    deadline = sent + WATCH
    while time.monotonic() < deadline:
        now = time.monotonic() - sent
        if burst.acted_s is None and f.replicas(service, running=False) > before:
            burst.acted_s = now
        if f.replicas(service, running=True) >= needed:
            burst.running_s = now
            if burst.acted_s is None:
                burst.acted_s = now
            break
        await asyncio.sleep(0.02)
    return burst


def idle(labels: Mapping[str, str]) -> dict[str, Any]:
    """A replica that does nothing: only its queue says it is wanted."""
    return busybox(["sleep", "3600"], Labels=dict(labels), StopTimeout=1)


def scaled(
    source: Mapping[str, str], *, minimum: int = 1, maximum: int = MAXIMUM
) -> dict[str, str]:
    return {"autoscaler.enable": "true", "autoscaler.min": str(minimum),
            "autoscaler.max": str(maximum), **RATE, **source}  # fmt: skip


# --- 1. the burst ----------------------------------------------------------------------------


async def _redis_burst(docker: aiodocker.Docker, servers: Servers, poll: bool) -> Row:
    keys = {f"w{i}": f"bench-{uuid.uuid4().hex[:8]}" for i in range(REPEATS)}
    polled = {"autoscaler.metric.poll": POLL} if poll else {}
    services = {
        name: idle(scaled({"autoscaler.metric.source": "redis",
                           "autoscaler.metric.url": servers.redis_url,
                           "autoscaler.metric.list": key,
                           "autoscaler.metric.target": str(SHARE), **polled}))
        for name, key in keys.items()
    }  # fmt: skip
    row = Row(f"redis, poll {POLL}" if poll else "redis, once a round", "1.5" if poll else "")
    client = aredis.from_url(servers.redis_url)
    try:
        async with fleet(docker, services, servers) as f:
            for i, (name, key) in enumerate(keys.items()):
                await until(lambda n=name: f.replicas(n, running=True) == 1, 30)  # type: ignore[misc]
                await at_phase(f, name, i / REPEATS)

                async def push(key: str = key) -> None:
                    await client.rpush(key, *range(BURST))

                row.bursts.append(await measure(f, name, 1, NEEDED, push))
            row.told(f)
    finally:
        await client.delete(*keys.values())
        await client.aclose()
    return row


async def _amqp_burst(docker: aiodocker.Docker, servers: Servers, poll: bool) -> Row:
    queues = {f"w{i}": f"bench-{uuid.uuid4().hex[:8]}" for i in range(REPEATS)}
    polled = {"autoscaler.metric.poll": POLL} if poll else {}
    services = {
        name: idle(scaled({"autoscaler.metric.source": "rabbitmq",
                           "autoscaler.metric.url": servers.amqp_url,
                           "autoscaler.metric.queue": queue,
                           "autoscaler.metric.user": servers.amqp_user,
                           "autoscaler.metric.credentials": "rabbitmq-password",
                           "autoscaler.metric.target": str(SHARE), **polled}))
        for name, queue in queues.items()
    }  # fmt: skip
    row = Row(f"rabbitmq, poll {POLL}" if poll else "rabbitmq, once a round",
              "1.5" if poll else "")  # fmt: skip
    host, port = servers.amqp_url.removeprefix("amqp://").split("/")[0].split(":")
    connection = await aio_pika.connect(host=host, port=int(port), login=servers.amqp_user,
                                        password=servers.amqp_password)  # fmt: skip
    try:
        channel = await connection.channel(publisher_confirms=True)
        for queue in queues.values():
            await channel.declare_queue(queue, auto_delete=False)
        async with fleet(docker, services, servers) as f:
            for i, (name, queue) in enumerate(queues.items()):
                await until(lambda n=name: f.replicas(n, running=True) == 1, 30)  # type: ignore[misc]
                await at_phase(f, name, i / REPEATS)

                async def publish(queue: str = queue) -> None:
                    # All at once, each confirmed: the burst is enqueued when the last is.
                    await asyncio.gather(*(
                        channel.default_exchange.publish(aio_pika.Message(b"job"), queue)
                        for _ in range(BURST)
                    ))  # fmt: skip

                row.bursts.append(await measure(f, name, 1, NEEDED, publish))
            row.told(f)
        for queue in queues.values():
            await channel.queue_delete(queue)
    finally:
        await connection.close()
    return row


async def _mqtt_step(docker: aiodocker.Docker, servers: Servers, *, count: int, depth: int,
                     target: int, needed: int, name: str, goal: str) -> Row:  # fmt: skip
    """`count` services on MQTT-published depths, each stepped to `depth` at its own phase. A
    publisher sends every depth each 0.5 s, as a queue's exporter does (never retained: a value
    of unknown age is not acted on); a step is published at once."""
    run = uuid.uuid4().hex[:8]
    topics = {f"w{i}": f"bench-{run}/depth/{i}" for i in range(count)}
    depths = dict.fromkeys(topics.values(), 0)
    services = {
        svc: idle(scaled({"autoscaler.metric.source": "mqtt", "autoscaler.metric.topic": topic,
                          "autoscaler.metric.target": str(target)}, maximum=max(needed, 10)))
        for svc, topic in topics.items()
    }  # fmt: skip
    row = Row(name, goal)

    async def publisher(client: aiomqtt.Client) -> None:
        while True:
            for topic, value in depths.items():
                await client.publish(topic, str(value), qos=1)
            await asyncio.sleep(0.5)  # the exporter's period

    async with aiomqtt.Client(servers.mqtt_host, servers.mqtt_port) as client, \
            asyncio.TaskGroup() as tg:  # fmt: skip
        periodic = tg.create_task(publisher(client))
        async with fleet(docker, services, servers, mqtt=True) as f:
            for i, (svc, topic) in enumerate(topics.items()):
                await until(lambda s=svc: f.replicas(s, running=True) == 1, 30)  # type: ignore[misc]
                await at_phase(f, svc, i / count)

                async def publish(topic: str = topic) -> None:
                    depths[topic] = depth
                    await client.publish(topic, str(depth), qos=1)

                row.bursts.append(await measure(f, svc, 1, needed, publish))
            row.told(f)
        periodic.cancel()
    return row


# --- 3. wake from zero -----------------------------------------------------------------------


async def _wake(docker: aiodocker.Docker, servers: Servers, poll: bool) -> Row:
    keys = {f"w{i}": f"bench-{uuid.uuid4().hex[:8]}" for i in range(REPEATS)}
    polled = {"autoscaler.metric.poll": POLL} if poll else {}
    services = {
        name: idle(scaled({"autoscaler.metric.source": "redis",
                           "autoscaler.metric.url": servers.redis_url,
                           "autoscaler.metric.list": key, "autoscaler.metric.target": "10",
                           "autoscaler.scale-down.to-zero-after": "2s", **polled}, minimum=0))
        for name, key in keys.items()
    }  # fmt: skip
    row = Row(f"redis, poll {POLL}" if poll else "redis, once a round", "1.0" if poll else "")
    client = aredis.from_url(servers.redis_url)
    try:
        async with fleet(docker, services, servers) as f:
            for i, (name, key) in enumerate(keys.items()):
                # Asleep: to zero after 2 s without a job (the marker made, the template
                # stopped), and a round later, as a user finds it.
                # Known (evaluated), then at zero: not the template before it was seen.
                asleep = await until(
                    lambda n=name: f.evaluated(n) > 0 and f.replicas(n, running=True) == 0, 30
                )
                if not asleep:
                    row.bursts.append(Burst())
                    continue
                await at_phase(f, name, i / REPEATS)

                async def push(key: str = key) -> None:
                    await client.rpush(key, "job")

                row.bursts.append(await measure(f, name, 10**6, 1, push))
            row.told(f)
    finally:
        await client.delete(*keys.values())
        await client.aclose()
    return row


# --- tables ----------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"


def _worst(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else max(v for v in values if v is not None)


def _median(values: Sequence[float | None]) -> float | None:
    ranked = sorted(math.inf if v is None else v for v in values)
    middle = ranked[len(ranked) // 2] if ranked else math.inf
    return None if math.isinf(middle) else middle


def table(rows: Sequence[Row], needed: int, label: str = "source") -> str:
    running = f"{needed} running s: median"
    head = (f"{label:<28} {'goal s':>6} {'first new s: median':>20} {running:>22} "
            f"{'worst':>6}  every burst (phase order)")  # fmt: skip
    lines = [head, "-" * len(head)]
    notes = [f"  {r.name}: error: {e}" for r in rows for e in r.errors]
    for r in rows:
        running = [b.running_s for b in r.bursts]
        lines.append(
            f"{r.name:<28} {r.goal or '-':>6} {_s(_median([b.acted_s for b in r.bursts])):>20} "
            f"{_s(_median(running)):>22} {_s(_worst(running)):>6}  "
            + ", ".join(_s(v) for v in running)
        )
    return "\n".join(lines + notes)


# --- 4. drain --------------------------------------------------------------------------------


@dataclass
class Drain:
    name: str
    drained_s: float | None = None
    projected: bool = False
    replica_s: float = 0.0
    most: int = 0
    counts: list[int] = field(default_factory=list)


@contextlib.asynccontextmanager
async def private_redis(docker: aiodocker.Docker) -> AsyncIterator[tuple[str, int, Path]]:
    """A redis-server inside the engine's network namespace, on the default bridge's gateway
    (where the workers reach it) and a unix socket (where this process does): its gateway,
    port and socket."""
    asked = await asyncio.create_subprocess_exec(
        "bash", str(ROOT / "scripts" / "engine.sh"), "netns", stdout=asyncio.subprocess.PIPE
    )
    netns = (await asyncio.wait_for(asked.communicate(), 30))[0].decode().strip()
    bridge = await (await docker.networks.get("bridge")).show()
    gateway = bridge["IPAM"]["Config"][0]["Gateway"]
    folder = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    socket = folder / "redis.sock"
    for _ in range(5):
        port = random.randrange(20000, 30000)
        process = await asyncio.create_subprocess_exec(
            "nsenter", f"--net={netns}", "redis-server", "--bind", gateway, "--port", str(port),
            "--unixsocket", str(socket), "--unixsocketperm", "700", "--save", "",
            "--appendonly", "no", "--protected-mode", "no", "--dir", str(folder),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            if await until(lambda p=process: socket.exists() or p.returncode is not None, 10, 0.05):
                if process.returncode is None:
                    yield gateway, port, socket
                    return
        finally:
            if process.returncode is None:
                process.terminate()
                await process.wait()
    raise RuntimeError("redis-server did not start in the engine's network namespace")


def worker(
    redis_host: str, redis_port: int, queue: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    env = [f"REDIS_HOST={redis_host}", f"REDIS_PORT={redis_port}", f"QUEUE={queue}",
           "WORK=sleep", f"JOB_SECONDS={JOB_SECONDS}"]  # fmt: skip
    return {"Image": WORKER, "Env": env, "Labels": dict(labels), "StopTimeout": 5,
            "HostConfig": {"NetworkMode": "bridge"}}  # fmt: skip


async def _fixed(docker: aiodocker.Docker, client: aredis.Redis, host: str, port: int,
                 count: int, jobs: int, within: float) -> Drain:  # fmt: skip
    """`count` workers, always: the burst enqueued once all run; drained, or projected from the
    rate over `within` seconds."""
    run = uuid.uuid4().hex[:8]
    queue = f"jobs-{run}"
    await client.flushall()
    drain = Drain(f"fixed at {count}", replica_s=count * PERIOD, most=count, counts=[count])
    try:
        for i in range(count):
            c = await docker.containers.create(worker(host, port, queue, {"bench.run": run}),
                                               name=f"bench-{run}-{i}")  # fmt: skip
            await c.start()
        # Every worker waiting on the queue (BLMOVE) before the burst.
        await until_async(lambda: _blocked(client, count), 30)
        await client.rpush(queue, *(f"j{i}" for i in range(jobs)))
        sent = time.monotonic()
        done = await _done_by(client, jobs, within)
        elapsed = time.monotonic() - sent
        if done >= jobs:
            drain.drained_s = elapsed
        elif done:
            drain.drained_s, drain.projected = jobs / (done / elapsed), True
    finally:
        await remove_run(docker, run)
    return drain


async def _blocked(client: aredis.Redis, count: int) -> bool:
    info = await client.info("clients")
    return int(info.get("blocked_clients", 0)) >= count


async def until_async(condition: Callable[[], Awaitable[bool]], within: float) -> bool:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _done_by(client: aredis.Redis, jobs: int, within: float) -> int:
    """The jobs finished (the workers' own count) once all are or `within` seconds passed."""
    deadline = time.monotonic() + within
    while (done := int(await client.get("done") or 0)) < jobs and time.monotonic() < deadline:  # noqa: ASYNC110 - the workers' count has no event
        await asyncio.sleep(0.05)
    return done


async def _autoscaled(docker: aiodocker.Docker, servers: Servers, client: aredis.Redis,
                      host: str, port: int, url: str, jobs: int, labels: Mapping[str, str],
                      name: str) -> Drain:  # fmt: skip
    run = uuid.uuid4().hex[:8]
    queue = f"jobs-{run}"
    await client.flushall()
    own = scaled({"autoscaler.metric.source": "redis", "autoscaler.metric.url": url,
                  "autoscaler.metric.list": queue, **labels})  # fmt: skip
    drain = Drain(name)
    async with fleet(docker, {"worker": worker(host, port, queue, own)}, servers) as f:
        await until(lambda: f.replicas("worker", running=True) == 1, 30)
        await until_async(lambda: _blocked(client, 1), 30)
        await at_phase(f, "worker", random.random())
        await client.rpush(queue, *(f"j{i}" for i in range(jobs)))
        sent = last = time.monotonic()
        count = f.replicas("worker", running=True)
        drain.counts.append(count)
        while (now := time.monotonic()) < sent + PERIOD:
            drain.replica_s += count * (now - last)
            last, count = now, f.replicas("worker", running=True)
            if count != drain.counts[-1]:
                drain.counts.append(count)
            if drain.drained_s is None and int(await client.get("done") or 0) >= jobs:
                drain.drained_s = now - sent
            await asyncio.sleep(0.05)
        drain.replica_s += count * (sent + PERIOD - last)
        drain.most = max(drain.counts)
    return drain


async def drains(docker: aiodocker.Docker, servers: Servers) -> tuple[list[Drain], int, str]:
    async with private_redis(docker) as (gateway, port, socket), \
            relay(f"unix://{socket}") as relayed:  # fmt: skip
        url = "redis://" + relayed.url.removeprefix("http://") + "/0"
        client = aredis.Redis(unix_socket_path=str(socket))
        try:
            # A burst max drains in about 25 s: from max's own rate over 5 s.
            probe = await _fixed(docker, client, gateway, port, MAXIMUM, 5000, 5.0)
            assert probe.drained_s is not None, "the workers took no job"
            jobs = int(round(5000 / probe.drained_s * 25, -1))
            # The backlog a replica should carry: the jobs one worker finishes in the wait a
            # job may spend queued (WAIT), from max's rate: how a user sizes the target.
            share = math.ceil(5000 / probe.drained_s / MAXIMUM * WAIT)
            labels = {"autoscaler.metric.target": str(share), "autoscaler.metric.poll": POLL}
            rows = [
                await _fixed(docker, client, gateway, port, 1, jobs, 10.0),
                await _fixed(docker, client, gateway, port, MAXIMUM, jobs, PERIOD),
            ]
            # The scale-down's window: how long the count follows the highest need it saw.
            for window in ("10s", "5s", "3s"):
                rows.append(await _autoscaled(
                    docker, servers, client, gateway, port, url, jobs,
                    labels | {"autoscaler.scale-down.stabilization": window},
                    f"autoscaled, window {window}",
                ))  # fmt: skip
        finally:
            await client.aclose()
    setting = ", ".join(f"{k.removeprefix('autoscaler.')}: {v}" for k, v in labels.items())
    setting += ", scale-down.stabilization: as named"
    return rows, jobs, setting


def drain_table(rows: Sequence[Drain]) -> str:
    head = (f"{'workers':<22} {'drained s':>10} {'x max':>6} {'replica-s / minute':>19} "
            f"{'x max':>6} {'most':>5}  counts seen")  # fmt: skip
    lines = [head, "-" * len(head)]
    best = next((r for r in rows if r.name == f"fixed at {MAXIMUM}"), None)
    for r in rows:
        drained = _s(r.drained_s) + ("*" if r.projected else "")
        x = (f"{r.drained_s / best.drained_s:.2f}" if best and best.drained_s and r.drained_s
             else "-")  # fmt: skip
        xr = f"{r.replica_s / best.replica_s:.2f}" if best else "-"
        lines.append(f"{r.name:<22} {drained:>10} {x:>6} {r.replica_s:>19.0f} {xr:>6} "
                     f"{r.most:>5}  " + " -> ".join(map(str, r.counts[:20])))  # fmt: skip
    return "\n".join(lines)


# --- the run ---------------------------------------------------------------------------------


async def run() -> None:
    servers = Servers.found()
    async with engine() as docker:
        bursts = [
            await _redis_burst(docker, servers, poll=True),
            await _redis_burst(docker, servers, poll=False),
            await _amqp_burst(docker, servers, poll=True),
            await _amqp_burst(docker, servers, poll=False),
            await _mqtt_step(docker, servers, count=REPEATS, depth=BURST, target=SHARE,
                             needed=NEEDED, name="mqtt, pushed", goal=""),
        ]  # fmt: skip
        print(f"\n1. A burst of {BURST} jobs at once, {SHARE} a replica, max {MAXIMUM}: "
              f"{NEEDED} needed, from 1; {INTERVAL:g} s interval; {REPEATS} bursts a row at "
              f"phases 0, 1/3, 2/3 of the round; goal: {NEEDED} running within 1.5 s with "
              f"metric.poll: {POLL}")  # fmt: skip
        print(table(bursts, NEEDED))
        pushed = await _mqtt_step(docker, servers, count=PUSHES, depth=90, target=10, needed=9,
                                  name="mqtt, pushed", goal="1.0")  # fmt: skip
        print(f"\n2. A pushed MQTT value needing 9 (90, 10 a replica), from 1; {INTERVAL:g} s "
              f"interval; {PUSHES} publishes at phases 0, 1/5, ... 4/5 of the round; goal: "
              "9 running within 1.0 s (stored before act-on-arrival: reaction.txt's queue "
              "step, 2.1 s)")  # fmt: skip
        print(table([pushed], 9))
        wakes = [await _wake(docker, servers, poll=True), await _wake(docker, servers, poll=False)]
        print(f"\n3. Wake from zero: min 0, asleep (to-zero-after 2s), one job pushed; "
              f"{INTERVAL:g} s interval; {REPEATS} wakes a row at phases 0, 1/3, 2/3; goal: "
              f"the first replica running within 1.0 s with metric.poll: {POLL}")  # fmt: skip
        print(table(wakes, 1))
        rows, jobs, setting = await drains(docker, servers)
        print(f"\n4. Drain: {jobs} jobs of {JOB_SECONDS:g} s (sleep) at once, real workers "
              f"(worker.sh) on a Redis in the engine's network; one burst a minute; autoscaled: "
              f"min 1, max {MAXIMUM}, {setting}; goal: drained within 1.15x max's time at "
              "<= 0.50x its replica-seconds")  # fmt: skip
        print(drain_table(rows))
        print("(* projected from its rate over its first 10 s: alone, a worker takes minutes)")


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
