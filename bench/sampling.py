"""Sampling cost: one round over N running containers (half CPU burners with a CPU limit, half
idle), the collector's cgroup fast path against the stats API as the docker SDK calls it
(`stream=false`, which waits for a second reading), sequential and concurrent. Then accuracy:
CPU % from the fast path against the stats API on the same containers and interval.

Sizes come from BENCH_SIZES (default "30,100,300"). Sequential API rounds are timed on at most
BENCH_SEQUENTIAL containers (default 10) and scaled to N: at ~1-2 s a call, 300 would take minutes.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiodocker

from autoscaler.backends.compose.inventory import Inventory
from autoscaler.backends.docker.collector import Collector
from bench.common import busybox, containers, dockerd_pid, engine, process_cpu_seconds

ROUNDS = 5


@dataclass
class Measure:
    method: str
    n: int
    wall_s: float
    cpu_s: float
    engine_cpu_s: float | None
    estimated: bool = False

    @property
    def cpu_per_sample_us(self) -> float:
        return self.cpu_s / self.n * 1e6


async def _timed(
    method: str, n: int, round_: Callable[[], Awaitable[Any]], rounds: int = ROUNDS
) -> Measure:
    engine_pid = dockerd_pid()
    engine_before = process_cpu_seconds(engine_pid) if engine_pid else None
    wall = cpu = 0.0
    for _ in range(rounds):
        w0, c0 = time.perf_counter(), time.process_time()
        await round_()
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
    engine_cpu = (
        (process_cpu_seconds(engine_pid) - engine_before) / rounds
        if engine_pid and engine_before is not None
        else None
    )
    return Measure(method, n, wall / rounds, cpu / rounds, engine_cpu)


def _rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MB."""
    fields = dict(
        line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _workload(n: int) -> list[dict[str, Any]]:
    labels = {"autoscaler.enable": "true", "autoscaler.service": "bench"}
    burner = busybox(
        ["sh", "-c", "while :; do :; done"],
        cpus=0.01,
        # Burners share one core, so the other stays free for what is measured.
        HostConfig={"CpusetCpus": "0"},
        Labels=labels,
    )
    idle = busybox(["sleep", "86400"], Labels=labels)
    return [burner if i % 2 == 0 else idle for i in range(n)]


async def measure_size(docker: aiodocker.Docker, n: int, sequential_cap: int) -> list[Measure]:
    async with containers(docker, _workload(n)) as made:
        inventory = Inventory(docker)
        await inventory.resync()
        replicas = [r for rs in inventory.services().values() for r in rs if r.running]
        assert len(replicas) >= n, f"only {len(replicas)} of {n} containers running"
        replicas = replicas[:n]

        fast = Collector(docker)
        await fast.sample(replicas)  # locate the cgroup files once, as the service does
        await asyncio.sleep(1)
        measures = [await _timed("cgroup fast path", n, lambda: fast.sample(replicas))]
        rss = _rss_mb()

        fallback = Collector(docker, use_cgroups=False)
        measures.append(
            await _timed("stats API one-shot, concurrent (fallback)", n,
                         lambda: fallback.sample(replicas), rounds=2)
        )  # fmt: skip

        async def sdk_concurrent() -> None:
            await asyncio.gather(*(c.stats(stream=False) for c in made[:n]))

        measures.append(await _timed("stats API stream=false, concurrent", n, sdk_concurrent, 1))

        subset = made[: min(n, sequential_cap)]

        async def sdk_sequential() -> None:
            for c in subset:
                await c.stats(stream=False)

        sequential = await _timed(
            "stats API stream=false, sequential", len(subset), sdk_sequential, 1
        )
        scale = n / len(subset)
        sequential.wall_s *= scale
        sequential.cpu_s *= scale
        if sequential.engine_cpu_s is not None:
            sequential.engine_cpu_s *= scale
        sequential.n = n
        sequential.estimated = scale != 1
        measures.append(sequential)
    print(
        f"  N={n}: bench process RSS {rss[0]:.0f} MB (peak {rss[1]:.0f} MB) after fast-path rounds"
    )
    return measures


def table(measures: list[Measure]) -> str:
    head = (
        f"{'N':>4} {'method':<42} {'wall ms':>9} {'x fast':>8} {'CPU µs/sample':>14} "
        f"{'x fast':>8} {'engine CPU ms':>14}"
    )
    lines = [head, "-" * len(head)]
    for n in sorted({m.n for m in measures}):
        rows = [m for m in measures if m.n == n]
        fast = rows[0]
        for m in rows:
            engine_ms = "—" if m.engine_cpu_s is None else f"{m.engine_cpu_s * 1000:.1f}"
            name = m.method + (" (est.)" if m.estimated else "")
            cpu_ratio = m.cpu_per_sample_us / fast.cpu_per_sample_us
            lines.append(
                f"{n:>4} {name:<42} {m.wall_s * 1000:>9.2f} {m.wall_s / fast.wall_s:>8.0f} "
                f"{m.cpu_per_sample_us:>14.1f} {cpu_ratio:>8.1f} {engine_ms:>14}"
            )
    return "\n".join(lines)


async def accuracy(docker: aiodocker.Docker) -> list[tuple[str, float, float]]:
    """(container, fast-path CPU %, stats-API CPU %) over the same five-second interval."""
    configs = [
        busybox(
            ["sh", "-c", "while :; do :; done"],
            cpus=cpus,
            Labels={"autoscaler.enable": "true", "autoscaler.service": "acc"},
        )
        for cpus in (0.05, 0.1, 0.2, 0.5)
    ] + [
        busybox(
            ["sleep", "86400"], Labels={"autoscaler.enable": "true", "autoscaler.service": "acc"}
        )
    ]
    async with containers(docker, configs) as made:
        inventory = Inventory(docker)
        await inventory.resync()
        by_id = {r.id: r for rs in inventory.services().values() for r in rs}
        replicas = [by_id[c.id] for c in made]
        collector = Collector(docker)
        await asyncio.sleep(1)

        async def api_reading(c: aiodocker.containers.DockerContainer) -> tuple[int, float]:
            stats: dict[str, Any] = await docker._query_json(
                f"containers/{c.id}/stats", params={"stream": "false", "one-shot": "true"}
            )
            read = stats["read"]
            return int(stats["cpu_stats"]["cpu_usage"]["total_usage"]), _rfc3339(read)

        await collector.sample(replicas)
        before = await asyncio.gather(*(api_reading(c) for c in made))
        # The service's default interval: CFS hands out CPU per 100 ms period, so a short
        # window over a small limit is quantised (one period of 0.05 core is 2.5 % of 2 s).
        await asyncio.sleep(5)
        ours = await collector.sample(replicas)
        after = await asyncio.gather(*(api_reading(c) for c in made))
        rows = []
        for r, (u0, t0), (u1, t1) in zip(replicas, before, after, strict=True):
            api = 100 * (u1 - u0) / ((t1 - t0) * 1e9) / (r.cpu_limit or 1.0)
            fast = ours[r.id].cpu
            assert fast is not None
            rows.append((f"{r.cpu_limit or 'no'} cpu limit", fast, api))
        return rows


def _rfc3339(value: str) -> float:
    from autoscaler.labels import timestamp as _timestamp

    return _timestamp(value)


async def run() -> None:
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "30,100,300").split(",")]
    cap = int(os.environ.get("BENCH_SEQUENTIAL", "10"))
    async with engine() as docker:
        print("Sampling cost per round (mean of rounds), ratios against the cgroup fast path")
        measures: list[Measure] = []
        for n in sizes:
            measures += await measure_size(docker, n, cap)
        print(table(measures))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak RSS of the bench process: {peak:.0f} MB")
        print("\nAccuracy: CPU % of limit, fast path vs stats API, same containers, same 5 s")
        print(f"{'container':<20} {'fast %':>8} {'API %':>8} {'diff':>6}")
        for name, fast, api in await accuracy(docker):
            print(f"{name:<20} {fast:>8.1f} {api:>8.1f} {fast - api:>+6.1f}")


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
