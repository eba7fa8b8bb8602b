"""Scale: what the autoscaler costs as the work grows, run as users run it.

N Compose services (BENCH_SCALE_SERVICES, "100,300,500" by default) of 2 busybox replicas each,
all labelled with a CPU target, one service in ten under load (a busy loop under a CPU limit:
BENCH_SCALE_LOAD cores in all, 1 by default, on the first core only, so the other stays free
for what is measured). The autoscaler is its own process (`python -m autoscaler run`, settings
by AUTOSCALER_* as a user gives them: a 2 s interval, the bench's project, the test broker when
the environment names one, the lease on as by default), so its CPU and RSS are its own, read
from /proc, never the bench's.

Every service holds its count: the idle ones sit at their minimum of 2, the loaded ones at
their maximum of 2 (they ask for more), so no action changes the work while it is measured.

After BENCH_SCALE_WARMUP seconds (40) from the first round with every service, a window of
BENCH_SCALE_SECONDS (60) measures the process, whose bounded stores have filled by its end (50
decisions a service; the history ring is allocated whole at once): its CPU time over the window
as a share of one core (utime + stime), its RSS (VmRSS, sampled each interval: the mean and the
most), and its rounds (`autoscaler_round_seconds` from /metrics, read at both ends of the
window: p50 and p99 by linear interpolation inside the bucket, as Prometheus'
histogram_quantile does, and the exact mean from the sum). Then the page's stream (GET /events,
as the page reads it) is opened for BENCH_SCALE_STREAM_ROUNDS rounds (10): the bytes of its
first message and of each round's, and the process's CPU with the page open.

What grew faster than the services, found with this bench: a look between rounds (a service
due to be measured again) sampled its own replicas and ended every other container's window,
so the next round measured none of them: each such service held on "no usable samples" every
other round or so, and its state, changing each time, was sent again on the page's stream and
on MQTT (at 20 services, 9.3 kB a round on the stream; 0.75 kB once the look kept the others'
windows).

Where a round went at 500 services (profiled): each service's step, about two thirds, of which
its policy's decision a third (the behaviour scans its whole stabilization windows every round),
its state built, kept and compared a fifth, its /metrics series and its repairs' checks most of
the rest; the sampling, a fifth to a third: four or five cgroup files a container (v1's
memory.stat, which sums the whole hierarchy, the dearest). Cut: each service's /metrics series
is found once, not by its labels at every evaluation; the state's wire form is built field by
field (dataclasses.asdict deep-copied it at each MQTT publish and each page's message) and two
states are compared as one tuple; a template's labels are not compared again while its inspect
is the same; the throttling counters of a container without a CPU limit are not read (its
`throttled` is None either way). At 500 services, a round's CPU went from 5.81 to 4.94 % of a
core between this file's table before those cuts and after them.

Then (profiled again at 500 services, with py-spy and the garbage collector's callbacks): the
network's net/dev (~10-15 µs a container, it walks the namespace's devices) and v1's memory.stat
of containers without a memory limit were read every round though only shown: now once in about
10 s, in turn (collector.py). At CPython's default threshold the garbage collector promoted each
round's samples and states, alive until the next round, and walked all ~250k objects the
histories hold every few rounds (one walk up to 1.6 s on the loaded host): start-up objects are
now frozen and the young generation collected every 10,000 allocations (cli.py). A run of equal
proposals is one window entry (policies/behavior.py). At 500 services: 4.94 -> 4.58 % of a core,
round p50 161 -> 146 ms (bench/results/scale.txt and its history). Not met: 2 % of a core, and a
p99 of 250 ms (30 rounds a size, so the p99 is the slowest round: one round of the 30 over a
second). What is left is Python a service a round: its policy and behaviour, its state built
and compared, its /metrics series; and a frozen dataclass built for each sample, proposal,
decision, evaluation and state (~2 us each on this host).

Then: a round's own parts timed at 500 services (wall and CPU each) showed a round's wall time
up to twenty times its CPU time on a loaded host: the process waits for a core, and a collection
of the garbage collector's middle generation within a round took hundreds of ms. `autoscaler run`
now keeps the collector off during a round and collects once it is over (cli.py); each service's
count gauges are set when they change. Same host, same hour, 500 services: 6.48 -> 5.73 % of a
core, round p50 333 -> 184 ms, mean 692 -> 339 ms. The host had become slower at the same work
since the table before (1,000 containers made in 324 s, not 258 s; the tree before measured 4.58 %
then, 6.48 % now). The slowest round is still over two seconds: not the collector any more; a
round whose parts each wait for a core. A round's CPU at 500 services is about 100 ms (in-process,
the controllers' steps alone ~120 us a service: the decision ~40, the state ~25, the evaluation's
bookkeeping ~30): the 2 % goal asks for less than half of it.

Then: a step given the very same settled replica objects as the last step that decided does not
check them again (control/checked.py: the template's labels, a `down` under way, the owner's
stop, the repairs; for settled replicas none of them depends on the time), and a service's
evaluations are counted in plain numbers that /metrics reads at each scrape, not in
prometheus_client's gauges and counter, set each round under their locks. In-process (500
services on the in-memory backend, the fastest of 100 rounds, three runs each, alternating; an
ad-hoc harness, not one of this bench's tables): the controllers' steps 39.4 -> 31.6 ms a round.
Here at 500 services, back to back on one host (stored under the table): the
tree before 6.14 % of a core, round p50 243 ms, p99 2410 ms; this one 4.69 %, 194 ms, 675 ms
(and 3.94 %, 146 ms, 725 ms in the table's run, on a faster moment of the host).

What is left, profiled at 500 services (py-spy): the controllers' steps about two thirds of the
process's CPU, the sampling about a fifth, the event loop, MQTT and the rest the remainder. With
every step free the process would still take about 1.5 % of a core: the 2 % goal leaves the
controllers about a quarter of what they take now, which no further cut of each step's objects
reaches. It asks for not deciding at all where a service's inputs cannot change its outcome: a
policy that says the band of its inputs within which its proposal holds (target tracking: the
ready replicas' mean CPU between the counts the ceiling and the tolerances give, none throttled,
none unready, no metric), and a behaviour that extends its proposal's run without deciding (or
its scale-down window forgets a proposal that held all along), so that a quiet service costs its
sampling and one comparison.

Then: that quiet round (control/quiet.py; policies/pipeline.py `again`, behavior.py `again`,
base.py `Steady`): a service whose last decision was a hold, given the same settled replicas,
keeps it while the round's mean CPU stays inside the band where target tracking asks for the
same count and no earlier proposal enters or leaves a behaviour window; its state is built only
when read or published, and only its readings are compared with the state told last. It decides
what a full round decides (a property test replays random rounds through both). In-process (the
ad-hoc harness, 500 services, a tenth saturated): the controllers' steps 31 -> 16 ms a round,
7.5 ms with none saturated. Timed by part inside the process on a kept 500-service stack (thread
time, ad hoc, not this bench's tables): a quiet step 32 us, a full one 181 us (the saturated
tenth: a throttled replica has no band), the sampling about 20 ms a round (some 1,700 preads of
2 to 9 us each, v1's memory.stat the dearest, and about 7 us of Python a container), a
collection of the collector's middle generation 60 ms once in about 11 rounds. Also: the round
no longer waits for the engine's listing of the operators' controls unless what it read last is
stale (another lease term, or three intervals old), and each service's heartbeat is its own
share shorter, so that 500 services started together no longer send 500 retained states in one
round a minute. At 500 services (bench/results/scale.txt, the table before under it): 3.94 ->
2.83 % of a core, round p50 146 -> 83 ms, p99 725 -> 193 ms (the goal's 250 ms met: the minute's
heartbeat round was the slowest), RSS 133 -> 120 MB; at 100 services 1.40 -> 0.77 %.

Then: a service held at its replicas' CPU limit is quiet too. With every replica held back there
(throttled in most periods), target tracking proposes saturation's floor (the calculation never
asks for more: each replica used at least its reading), and the floor is the same while what
they used, summed as it sums it, stays within one count's slice (policies/saturation.py `band`,
base.py `Steady.held`). The page's bytes growing 16x for 5x were the loaded tenth's states:
replicas held at a small limit on a contended core read 80 to 118 % round after round (a 2 s
window cuts across 20 CFS periods of a small quota), and each move past the 5-point band was a
new state on MQTT and on the page's stream: at 500 services about 40 a round beside the
heartbeats' 8 (a subscriber to the test broker, ad hoc). The state says `saturated` now, and
the CPU of replicas held back in both states is no news. And the values a round makes by the
thousand (each container's counters and sample, a quiet service's reading, a round's facts, the
bounds) are records (policies/records.py): a frozen dataclass's __init__ costs 1.6 us at eight
fields against 0.3 for a plain one, and the type checker holds them frozen all the same;
ServiceKey is a named tuple (hashed, compared and sorted in C). Timed by part inside the process
on a kept 500-service stack (thread time, ad hoc, not this bench's tables), a round before and
after the states' change: the whole process 43 -> 39 ms of CPU a round, the steps about 14 ms,
the sampling about 15 ms (1,000 cgroup reads of ~4 us and the turn's dearer ones, ~5 us of
Python a container), outside the round 9.6 -> 5.6 ms (MQTT states 48 -> 24 a round, the first
wave of heartbeats among them). At 500 services (bench/results/scale.txt, two runs of this tree
and the tables before under it): 2.83 -> 1.67 % of a core (1.75 in the run before), RSS 119 MB,
round p50 83 -> 50 ms, p99 193 -> 185 ms (370 ms in the run before: one round of 30 over the
goal's 250 ms); the page's bytes a round at 500 services 24 kB -> 198 B.

What is left: the sampling is the largest part, then the steps, each about a third of the
process's CPU; MQTT's paho client costs ~125 us of CPU a QoS 1 publish, so the heartbeats of 500
services (one a minute each) cost about 3 ms a round. The slowest round of 30 varies from run
to run by a factor of two on this host.

This host is noisy: with nothing of the bench's running, its second core is about half busy
(/proc/stat over 10 s; the first is the load's), and runs of one tree on a kept 500-service stack
read 4.3 to 6.4 % of a core (ad-hoc runs of the autoscaler against such a stack, not stored).
Compare runs next to each other; a single run's difference under a fifth is noise here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp

from bench.common import busybox, containers, engine, process_cpu_seconds

SIZES = [int(n) for n in os.environ.get("BENCH_SCALE_SERVICES", "100,300,500").split(",")]
REPLICAS = 2
INTERVAL = 2.0
WARMUP = float(os.environ.get("BENCH_SCALE_WARMUP", "40"))
SECONDS = float(os.environ.get("BENCH_SCALE_SECONDS", "60"))
STREAM_ROUNDS = int(os.environ.get("BENCH_SCALE_STREAM_ROUNDS", "10"))
LOAD = float(os.environ.get("BENCH_SCALE_LOAD", "1.0"))
LOADED = 10
"""One service in LOADED is under load."""
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Measure:
    services: int
    cpu: float
    """Percent of one core over the idle window."""
    cpu_page: float
    """The same with one page's stream open."""
    rss_start: float
    """MB, as the process first answers /healthz (before it has listed anything)."""
    rss_mean: float
    rss_max: float
    p50: float
    p99: float
    mean: float
    """Seconds; a round's wall time."""
    rounds: int
    first: int
    """Bytes of the stream's first message (every service's state)."""
    per_round: float
    """Bytes the stream sent a round, on average, past the first."""
    made: float
    """Seconds the bench took to create and start the containers."""


def _configs(project: str, services: int) -> list[dict[str, Any]]:
    loaded = max(1, services // LOADED)
    share = LOAD / (loaded * REPLICAS)
    out = []
    for i in range(services):
        hot = i % LOADED == 0
        for number in range(1, REPLICAS + 1):
            labels = {
                "autoscaler.enable": "true", "autoscaler.cpu.target": "50",
                "autoscaler.min": str(REPLICAS), "autoscaler.max": str(REPLICAS if hot else 4),
                "com.docker.compose.project": project,
                "com.docker.compose.service": f"svc-{i:03d}",
                "com.docker.compose.container-number": str(number),
                "com.docker.compose.oneoff": "False",
            }  # fmt: skip
            if hot:
                out.append(busybox(["sh", "-c", "while :; do :; done"], cpus=share,
                                   HostConfig={"CpusetCpus": "0"}, Labels=labels))  # fmt: skip
            else:
                out.append(busybox(["sleep", "86400"], Labels=labels))
    return out


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _histogram(text: str, name: str) -> tuple[list[tuple[float, float]], float, float]:
    """(le, cumulative count) of each bucket, the count and the sum of histogram `name`."""
    buckets, count, total = [], 0.0, 0.0
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(line.split()[-1])))
        elif line.startswith(f"{name}_count "):
            count = float(line.split()[-1])
        elif line.startswith(f"{name}_sum "):
            total = float(line.split()[-1])
    return buckets, count, total


def quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """The q-quantile of cumulative `buckets` (le, count), linear inside the bucket it falls in,
    as Prometheus' histogram_quantile; the highest finite bound when it falls in +Inf."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for le, cumulative in buckets:
        if cumulative >= rank:
            if le == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, cumulative
    return lower


async def _metrics(http: aiohttp.ClientSession, base: str) -> str:
    async with http.get(f"{base}/metrics") as r:
        return await r.text()


async def _ready(http: aiohttp.ClientSession, base: str, process: Any, services: int) -> float:
    """Wait for the process to answer, then for a round with every service; its RSS at the
    first answer."""
    rss_start = None
    deadline = time.monotonic() + 120 + services * 0.5
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"the autoscaler exited with {process.returncode}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{base}/healthz") as r:
                if r.status == 200 and rss_start is None:
                    rss_start = _rss_mb(process.pid)
            if rss_start is not None:
                text = await _metrics(http, base)
                seen = sum(1 for line in text.splitlines()
                           if line.startswith("autoscaler_replicas{"))  # fmt: skip
                if seen >= services:
                    return rss_start
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the autoscaler did not show {services} services in time")


async def _stream(http: aiohttp.ClientSession, base: str, rounds: int) -> tuple[int, list[int]]:
    """The bytes of the stream's first message and of each of the next `rounds` messages, as
    they arrive (keep-alive comments count towards the message they precede)."""
    sizes: list[int] = []
    async with http.get(f"{base}/events", timeout=aiohttp.ClientTimeout(total=None)) as r:
        pending, size = b"", 0
        async for chunk in r.content.iter_any():
            pending += chunk
            size += len(chunk)
            while b"\n\n" in pending:
                message, pending = pending.split(b"\n\n", 1)
                if message.startswith(b":"):
                    continue
                sizes.append(size - len(pending))
                size = len(pending)
                if len(sizes) > rounds:
                    return sizes[0], sizes[1:]
    raise RuntimeError("the event stream ended")


async def measure(docker: aiodocker.Docker, services: int) -> Measure:
    project = f"scale{uuid.uuid4().hex[:8]}"
    port = _free_port()
    env = {
        **os.environ,
        "AUTOSCALER_INTERVAL": str(INTERVAL),
        "AUTOSCALER_PROJECTS": json.dumps([project]),
        "AUTOSCALER_API__PORT": str(port),
        "AUTOSCALER_API__HOST": "127.0.0.1",
    }
    if "AUTOSCALER_MQTT__PORT" not in os.environ:
        env["AUTOSCALER_MQTT__ENABLED"] = "false"
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    async with containers(docker, _configs(project, services), concurrency=32):
        made = time.monotonic() - started
        with tempfile.TemporaryFile() as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "autoscaler", "run",
                env=env, cwd=ROOT, stdout=log, stderr=log,
            )  # fmt: skip
            try:
                async with aiohttp.ClientSession() as http:
                    rss_start = await _ready(http, base, process, services)
                    await asyncio.sleep(WARMUP)
                    before, cpu_before, t_before = (
                        await _metrics(http, base), process_cpu_seconds(process.pid),
                        time.monotonic(),
                    )  # fmt: skip
                    rss = []
                    while time.monotonic() - t_before < SECONDS:
                        rss.append(_rss_mb(process.pid))
                        await asyncio.sleep(INTERVAL)
                    cpu = process_cpu_seconds(process.pid) - cpu_before
                    elapsed = time.monotonic() - t_before
                    after = await _metrics(http, base)
                    paged_cpu, paged_at = process_cpu_seconds(process.pid), time.monotonic()
                    first, sizes = await _stream(http, base, STREAM_ROUNDS)
                    paged_cpu = process_cpu_seconds(process.pid) - paged_cpu
                    paged = time.monotonic() - paged_at
            except BaseException:
                log.seek(0)
                sys.stderr.write(log.read()[-4000:].decode(errors="replace"))
                raise
            finally:
                await _stop(process)
        with contextlib.suppress(aiodocker.DockerError):
            await (await docker.containers.get(f"autoscaler-lease-{project}")).delete(force=True)
    b0, n0, s0 = _histogram(before, "autoscaler_round_seconds")
    b1, n1, s1 = _histogram(after, "autoscaler_round_seconds")
    window = [(le, c1 - c0) for (le, c1), (_, c0) in zip(b1, b0, strict=True)]
    rounds = int(n1 - n0)
    return Measure(
        services=services, cpu=100 * cpu / elapsed, cpu_page=100 * paged_cpu / paged,
        rss_start=rss_start, rss_mean=sum(rss) / len(rss), rss_max=max(rss),
        p50=quantile(0.5, window), p99=quantile(0.99, window),
        mean=(s1 - s0) / rounds if rounds else float("nan"), rounds=rounds,
        first=first, per_round=sum(sizes) / len(sizes), made=made,
    )  # fmt: skip


async def _stop(process: Any) -> None:
    """SIGTERM, as `docker stop` sends it; killed if it has not shut down within 40 s."""
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 40)
    except TimeoutError:
        process.kill()
        await process.wait()


async def run() -> list[Measure]:
    out = []
    async with engine() as docker:
        for services in SIZES:
            out.append(await measure(docker, services))
    return out


def main() -> None:
    started = time.monotonic()
    measures = asyncio.run(run())
    print(
        f"\nScale: N services of {REPLICAS} busybox replicas, all labelled (CPU target), one in "
        f"{LOADED} burning {LOAD:g} core in all; {INTERVAL:g} s interval; the autoscaler in its "
        f"own process, lease on; {SECONDS:g} s window after {WARMUP:g} s of warm-up (goal at 500 "
        "services: <= 2 % of a core, <= 150 MB RSS, round p99 <= 250 ms)"
    )
    head = (f"{'services':>8} {'containers':>10} {'CPU %':>6} {'w/ page':>7} {'RSS MB':>7} "
            f"{'max':>6} {'start':>6} {'p50 ms':>7} {'p99 ms':>7} {'mean ms':>7} {'rounds':>6} "
            f"{'page B/round':>12} {'first B':>8}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for m in measures:
        print(f"{m.services:>8} {m.services * REPLICAS:>10} {m.cpu:>6.2f} {m.cpu_page:>7.2f} "
              f"{m.rss_mean:>7.1f} {m.rss_max:>6.1f} {m.rss_start:>6.1f} {m.p50 * 1000:>7.1f} "
              f"{m.p99 * 1000:>7.1f} {m.mean * 1000:>7.1f} {m.rounds:>6} {m.per_round:>12.0f} "
              f"{m.first:>8}")  # fmt: skip
    if len(measures) > 1:
        a, b = measures[0], measures[-1]
        grown = [f"CPU {b.cpu / a.cpu:.2f}x", f"round mean {b.mean / a.mean:.2f}x",
                 f"page bytes a round {b.per_round / a.per_round:.2f}x"]  # fmt: skip
        kept = [(m.rss_mean - m.rss_start) / m.services * 1024 for m in (a, b)]
        print(f"\nfrom {a.services} to {b.services} services ({b.services / a.services:.1f}x): "
              f"{', '.join(grown)}; RSS above its start {kept[0]:.0f} and {kept[1]:.0f} kB a "
              "service")  # fmt: skip
    print(
        "  CPU %: of one core over the window (utime + stime); w/ page: the same while one "
        "page's stream is open; RSS: VmRSS, mean and most over the window, and at the first "
        "/healthz; p50, p99: interpolated in autoscaler_round_seconds' buckets (mean exact)"
    )
    made = ", ".join(f"{m.services * REPLICAS} in {m.made:.0f} s" for m in measures)
    print(f"  containers created and started by the bench: {made}; "
          f"{time.monotonic() - started:.0f} s in all")  # fmt: skip


if __name__ == "__main__":
    main()
