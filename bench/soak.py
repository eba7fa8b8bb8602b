"""Soak: the service idle over many services and a steady churn of engine events, for
BENCH_SOAK_SECONDS (default 240). Its RSS and CPU must stay flat: nothing it keeps may grow with
time, history or events. What it keeps is bounded by count (50 decisions, 60 noise estimates per
service) or by time (proposals of the scale-down window, here 60 s): once those have filled, at
90 s, every later checkpoint is shown as a ratio to that one. The process also runs the
churn (creating and removing a container every 0.2 s), so its CPU is an upper bound on the
service's own.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
import uuid

from autoscaler.app import App
from autoscaler.settings import ApiSettings, MqttSettings, Settings
from bench.common import busybox, containers, engine, labels_for, remove_run

SERVICES = int(os.environ.get("BENCH_SOAK_SERVICES", "20"))
SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "240"))
FILLED = 90.0


def _rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run() -> None:
    run_id = uuid.uuid4().hex[:8]
    project = f"soak{run_id}"
    labels = {
        "autoscaler.enable": "true",
        "autoscaler.max": "3",
        "autoscaler.cpu.target": "50",
        "autoscaler.scale-down.stabilization": "60s",
        "bench.run": run_id,
    }
    configs = [
        busybox(["sleep", "86400"], Labels=labels_for(project, f"svc{i}", labels))
        for i in range(SERVICES)
    ]
    port = os.environ.get("AUTOSCALER_MQTT__PORT")
    settings = Settings(
        docker_host=os.environ.get("DOCKER_HOST"),
        interval=1.0,
        projects=frozenset({project}),
        mqtt=MqttSettings(enabled=port is not None, port=int(port or 1883)),
        api=ApiSettings(enabled=False),
    )
    async with engine() as docker, containers(docker, configs):
        app = App(settings)
        stop = asyncio.Event()
        serving = asyncio.create_task(app.serve(stop))
        churner = busybox(["sleep", "86400"], Labels=labels_for(project, "churn", labels))
        checkpoints: list[tuple[float, float, float, int]] = []
        try:
            start, cpu0 = time.monotonic(), time.process_time()
            events = 0
            next_mark = start + 10
            while time.monotonic() - start < SECONDS:
                # One opted-in container created, started, stopped and removed: four events.
                c = await docker.containers.create(churner, name=f"{project}-churn-{events}")
                await c.start()
                await c.delete(force=True)
                events += 4
                await asyncio.sleep(0.2)
                if time.monotonic() >= next_mark:
                    elapsed = time.monotonic() - start
                    checkpoints.append(
                        (elapsed, _rss_mb(), (time.process_time() - cpu0) / elapsed * 60, events)
                    )
                    next_mark += max(SECONDS / 8, 10)
        finally:
            stop.set()
            await serving
            await remove_run(docker, run_id)
    print(f"\nSoak: {SERVICES} idle services, 1 s interval, opted-in container churn")
    head = f"{'t s':>6} {'events':>7} {'RSS MB':>8} {'x 90 s':>8} {'CPU s/min':>10} {'x 90 s':>8}"
    print(head)
    print("-" * len(head))
    base = next((c for c in checkpoints if c[0] >= FILLED), checkpoints[-1])
    _, rss0, cpu_rate0, _ = base
    for t, rss, cpu_rate, events in checkpoints:
        filling = t < FILLED
        print(
            f"{t:>6.0f} {events:>7} {rss:>8.1f} {'filling' if filling else f'{rss / rss0:.2f}':>8} "
            f"{cpu_rate:>10.2f} {'' if filling else f'{cpu_rate / cpu_rate0:.2f}':>8}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {peak:.0f} MB (includes the bench's own engine client)")


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
