"""MQTT on a real broker: how many retained state messages a service sends per hour, steady and
under load steps, against publishing after every evaluation (what the service did before state
went out only on change); and how soon events held during a broker outage are delivered once the
broker is back.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import aiomqtt

from autoscaler.app import App
from autoscaler.settings import ApiSettings, LeaseSettings, MqttSettings, Settings
from bench.common import ROOT, busybox, containers, engine, labels_for

SERVICES = 5
INTERVAL = 2.0
PHASE = float(os.environ.get("BENCH_MQTT_SECONDS", "120"))
OUTAGE = 20.0


async def _count(host: str, port: int, prefix: str, counts: dict[str, int]) -> None:
    """Count messages by their last topic level until cancelled, across broker restarts."""
    while True:
        try:
            async with aiomqtt.Client(host, port) as client:
                await client.subscribe(f"{prefix}/#", qos=1)
                async for message in client.messages:
                    leaf = str(message.topic).rsplit("/", 1)[-1]
                    counts[leaf] = counts.get(leaf, 0) + 1
        except aiomqtt.MqttError:
            await asyncio.sleep(0.1)


async def _broker(verb: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "bash", str(ROOT / "scripts" / "broker.sh"), verb
    )
    assert await process.wait() == 0


def _evaluations(app: App) -> int:
    return sum(c.tally.evaluations for c in app.compose.fleet.values())


async def run() -> None:
    host = os.environ.get("AUTOSCALER_MQTT__HOST", "127.0.0.1")
    port = int(os.environ["AUTOSCALER_MQTT__PORT"])
    run_id = uuid.uuid4().hex[:8]
    project, prefix = f"mqtt{run_id}", f"bench-{run_id}"
    # Each service's demand of its own (burn.sh shares a folder's demand among its replicas).
    loads = [Path(tempfile.mkdtemp(prefix="bench-load-")) for _ in range(SERVICES)]
    for load in loads:
        (load / "replicas").mkdir()
        (load / "demand").write_text("100\n")
    labels = {"autoscaler.enable": "true", "autoscaler.max": "4", "autoscaler.cpu.target": "50",
              "autoscaler.scale-down.stabilization": "20s", "bench.run": run_id}  # fmt: skip
    burn = f"{ROOT / 'scripts' / 'burn.sh'}:/burn.sh:ro"
    configs = [
        busybox(
            ["sh", "/burn.sh"],
            cpus=0.25,
            Labels=labels_for(project, f"svc{i}", labels),
            HostConfig={"Binds": [burn, f"{load}:/load"]},
        )
        for i, load in enumerate(loads)
    ]
    settings = Settings(
        docker_host=os.environ.get("DOCKER_HOST"),
        interval=INTERVAL,
        projects=frozenset({project}),
        mqtt=MqttSettings(host=host, port=port, topic_prefix=prefix),
        api=ApiSettings(enabled=False),
        lease=LeaseSettings(enabled=False),
    )
    rows: list[tuple[str, float, float, float]] = []
    async with engine() as docker, containers(docker, configs), asyncio.TaskGroup() as tg:
        counts: dict[str, int] = {}
        counter = tg.create_task(_count(host, port, prefix, counts))
        app, stop = App(settings), asyncio.Event()
        serving = tg.create_task(app.serve(stop))
        await asyncio.sleep(3 * INTERVAL)  # the services' first states, before measuring
        # 100 millicores need 1 replica of 0.25 CPU at 50 %; 400 need 4.
        for phase, demands in (("steady", [100]), ("load steps", [400, 100, 400, 100])):
            before, evaluated = dict(counts), _evaluations(app)
            for demand in demands:
                for load in loads:
                    (load / "demand").write_text(f"{demand}\n")
                await asyncio.sleep(PHASE / len(demands))
            hours = PHASE / 3600 * SERVICES
            sent = (counts.get("state", 0) - before.get("state", 0)) / hours
            events = (counts.get("events", 0) - before.get("events", 0)) / hours
            rows.append((phase, sent, (_evaluations(app) - evaluated) / hours, events))

        # An outage while the services scale, then the broker back on its port.
        await _broker("stop")
        for load in loads:
            (load / "demand").write_text("100\n")
        await asyncio.sleep(2 * INTERVAL)
        for load in loads:
            (load / "demand").write_text("400\n")
        await asyncio.sleep(OUTAGE)
        held = app.notifier.pending
        await _broker("start")  # returns once the broker accepts connections
        back = time.monotonic()
        while app.notifier.pending:  # noqa: ASYNC110 - watching from outside
            await asyncio.sleep(0.01)
        delivered = time.monotonic() - back
        stop.set()
        await serving
        counter.cancel()
    print(f"\nMQTT: {SERVICES} services, {INTERVAL:g} s interval, heartbeat 60 s, "
          f"{PHASE:.0f} s a phase")  # fmt: skip
    head = (
        f"{'phase':<12} {'state msgs/service-h':>21} {'every evaluation':>17} {'x fewer':>8} "
        f"{'events/service-h':>17}"
    )
    print(head)
    print("-" * len(head))
    for phase, sent, every, events in rows:
        fewer = f"{every / sent:.0f}" if sent else "—"
        print(f"{phase:<12} {sent:>21.0f} {every:>17.0f} {fewer:>8} {events:>17.0f}")
    print(f"Outage of {OUTAGE:.0f} s: {held} messages held; all delivered {delivered:.2f} s after "
          f"the broker accepted connections again (goal: 3 s)")  # fmt: skip


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
