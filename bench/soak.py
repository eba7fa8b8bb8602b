"""Soak: the service idle over many services and a steady churn of engine events, for
BENCH_SOAK_SECONDS (default 240). Its RSS and CPU must stay flat: nothing it keeps may grow with
time, history or events. What it keeps is bounded by count (50 decisions per service) or by time
(proposals of the scale-down window, here 60 s): those have filled by 90 s, and later
checkpoints are compared with the first checkpoint at or after 90 s (the base).

How drift is computed: RSS is read from /proc/self/status at each checkpoint and shown as a ratio
to the base's; the RSS slope is the least-squares line through every checkpoint from 90 s on, in
MB a minute. CPU is the process's CPU time spent between two checkpoints, per minute of that
stretch (not a running average since the start), and shown as a ratio to the stretch that ends
at the base. The process also runs the churn (creating and removing a
container every 0.2 s), so its CPU is an upper bound on the service's own.
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
            start, cpu_before, mark_before = time.monotonic(), time.process_time(), 0.0
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
                    elapsed, cpu_now = time.monotonic() - start, time.process_time()
                    per_minute = (cpu_now - cpu_before) / (elapsed - mark_before) * 60
                    checkpoints.append((elapsed, _rss_mb(), per_minute, events))
                    cpu_before, mark_before = cpu_now, elapsed
                    next_mark += max(SECONDS / 8, 10)
        finally:
            stop.set()
            await serving
            await remove_run(docker, run_id)
    print(f"\nSoak: {SERVICES} idle services, 1 s interval, opted-in container churn")
    base = next((c for c in checkpoints if c[0] >= FILLED), checkpoints[-1])
    base_t, rss0, cpu_rate0, _ = base
    ratio = f"x {base_t:.0f} s"
    head = f"{'t s':>6} {'events':>7} {'RSS MB':>8} {ratio:>8} {'CPU s/min':>10} {ratio:>8}"
    print(head)
    print("-" * len(head))
    for t, rss, cpu_rate, events in checkpoints:
        filling = t < FILLED
        print(
            f"{t:>6.0f} {events:>7} {rss:>8.1f} {'filling' if filling else f'{rss / rss0:.2f}':>8} "
            f"{cpu_rate:>10.2f} {'' if filling else f'{cpu_rate / cpu_rate0:.2f}':>8}"
        )
    filled = [(t, rss) for t, rss, _, _ in checkpoints if t >= FILLED]
    print(f"  RSS slope from {FILLED:.0f} s on: {_slope(filled) * 60:+.3f} MB/min (least squares)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS {peak:.0f} MB (includes the bench's own engine client)")


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x; 0 for fewer than two points."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
