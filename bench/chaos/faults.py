"""The chaos run's faults, each injected while a scale is under way (the demand just stepped,
the first new replica starting). Each returns what its recovery counts from: when, and whose.

    kill -9 of the leader          a new standby started in its place
    SIGSTOP of the leader          for ttl + 10 s, then SIGCONT (its writes are fenced)
    compose up -d                  in the middle of a scale-up (the user's own command)
    the state directory full       the instances' tmpfs filled for STATE_FULL s, then freed
    the broker stopped             for BROKER_DOWN s, then started (full run only: the broker
                                   is the machine's shared one)
    the broker stopped on a wake   as the sleeper's first replica starts, for BROKER_WAKE s:
                                   the wake goes on, and its event comes once the broker is back
    the engine restarted           mid scale-up (full run only: the engine is shared)
    the leader starved             its cgroup at 5 % of a core for STARVED s (full run only)
    the template removed           `compose rm -s -f worker` and `compose up -d worker`
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.chaos.stack import TTL, Run
from bench.chaos.watch import Watch
from tests.integration.platforms import ROOT

BROKER_DOWN = 60.0
BROKER_WAKE = 15.0
STATE_FULL = 15.0
STARVED = 60.0
STARVED_SHARE = 0.05
"""Of one core, the starved leader's."""


@dataclass(frozen=True)
class Injected:
    at: float
    """Monotonic; recovery counts from here."""
    service: str = "worker"
    """Whose decided count recovery waits for."""
    stops_all: bool = False
    """The fault stops every container itself (the engine's restart): a job a worker could not
    finish then is the fault's, not the autoscaler's."""


Fault = Callable[[Run, Watch], Awaitable[Injected]]


async def _step_up(run: Run, watch: Watch) -> None:
    """A scale-up under way: the demand steps from the low end of the worker's range (stepped
    down to it first, and settled, where it was high) to the high end, and the fault comes as
    its first new replica starts."""
    if run.expected() > 2:
        run.demand["worker"] = 15
        await watch.until(lambda: watch.count("worker") in run.accepted(), 30)
    before = watch.count("worker")
    run.demand["worker"] = 75
    await watch.until(lambda: watch.count("worker") != before, 10)


async def _script(script: str, *args: str) -> str:
    """scripts/`script` run to its end in a thread: the events go on being watched meanwhile."""
    return await asyncio.to_thread(_run_script, script, *args)


def _run_script(script: str, *args: str) -> str:
    return subprocess.run(["bash", str(ROOT / "scripts" / script), *args], check=True,
                          capture_output=True, text=True).stdout  # fmt: skip


async def kill_leader(run: Run, watch: Watch) -> Injected:
    await _step_up(run, watch)
    at = time.monotonic()
    if (leader := run.leader()) is not None:
        leader.send_signal(signal.SIGKILL)
        await leader.wait()
    await run.spawn()  # a standby again, as a restart policy would bring it back
    return Injected(at)


async def stop_leader(run: Run, watch: Watch) -> Injected:
    await _step_up(run, watch)
    at = time.monotonic()
    if (leader := run.leader()) is None:
        return Injected(at)
    leader.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(TTL + 10)  # the fault's length
    finally:
        leader.send_signal(signal.SIGCONT)
    return Injected(at)


async def compose_up(run: Run, watch: Watch) -> Injected:
    await _step_up(run, watch)
    at, watch.users_own = time.monotonic(), True
    try:
        await run.compose("up", "-d")
    finally:
        watch.users_own = False
    return Injected(at)


async def template_removed(run: Run, watch: Watch) -> Injected:
    await _step_up(run, watch)
    at, watch.users_own = time.monotonic(), True
    try:
        await run.compose("rm", "-s", "-f", "worker")  # every container of it, as a user would
        await run.compose("up", "-d", "worker")
        # A clone started between their listing and their stop outlives the template, and the
        # up keeps it as the service's container: the error says to recreate it, and so they do.
        if not await watch.until(lambda: _template_runs(watch, "worker"), 10):
            await run.compose("up", "-d", "--force-recreate", "worker")
    finally:
        watch.users_own = False
    return Injected(at)


def _template_runs(watch: Watch, service: str) -> bool:
    return any(not clone for _, clone in watch.running[service].values())


def _fill(path: Path) -> None:
    """Writes `path` until its filesystem has no room left."""
    chunk = b"\0" * 65536
    with path.open("wb") as out:
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise


async def state_full(run: Run, watch: Watch) -> Injected:
    """The filesystem of the instances' state directories and MQTT outboxes full while they
    scale; what they could not write is only not kept, and they go on."""
    await _step_up(run, watch)
    at = time.monotonic()
    filler = run.state / "filler"
    await asyncio.to_thread(_fill, filler)
    try:
        await asyncio.sleep(STATE_FULL)  # the fault's length
    finally:
        filler.unlink()
    return Injected(at)


async def _broker_away(seconds: float) -> None:
    """The machine's shared broker stopped for `seconds`, then started."""
    await _script("broker.sh", "stop")
    try:
        await asyncio.sleep(seconds)  # the outage's length
    finally:
        await _script("broker.sh", "start")


async def broker_stopped(run: Run, watch: Watch) -> Injected:
    await _step_up(run, watch)
    at = time.monotonic()
    await _broker_away(BROKER_DOWN)
    return Injected(at)


async def broker_stopped_waking(run: Run, watch: Watch) -> Injected:
    """The sleeper woken by its demand, and the broker stopped as its first replica starts:
    the wake goes on to its count, and is told once the broker is back (none lost)."""
    run.demand["sleeper"] = 0
    await watch.until(lambda: watch.count("sleeper") == 0, 30)  # asleep, as it is when idle
    woken = watch.told[("wake", "sleeper")]
    run.demand["sleeper"] = 2
    await watch.until(lambda: watch.count("sleeper") > 0, 20)
    at = time.monotonic()
    await _broker_away(BROKER_WAKE)
    if not await watch.until(lambda: watch.told[("wake", "sleeper")] > woken, 30):
        watch.violated("events", "the sleeper's wake during the outage was never told")
    return Injected(at, "sleeper")


async def engine_restarted(run: Run, watch: Watch) -> Injected:
    """Recovery counts from when the engine answers again."""
    await _step_up(run, watch)
    await _script("engine.sh", "stop")
    watch.unknown()  # what runs is the engine's to say again once it answers
    await _script("engine.sh", "start")
    return Injected(time.monotonic(), stops_all=True)


@contextlib.contextmanager
def _starved(pid: int, share: float) -> Iterator[None]:
    """`pid` in a cgroup of its own with `share` of one core (cgroup v2's cpu.max, or v1's
    CFS quota), back where it was afterwards."""
    period = 100_000
    quota = int(period * share)
    name = f"autoscaler-chaos-{uuid.uuid4().hex[:8]}"
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    root = Path("/sys/fs/cgroup") if v2 else Path("/sys/fs/cgroup/cpu")
    # Where it is now (`0::/path` on v2; `N:cpu,cpuacct:/path` or `N:cpu:/path` on v1).
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (not controllers) if v2 else "cpu" in controllers.split(","):
            home = root / path.lstrip("/")
            break
    else:
        raise RuntimeError(f"process {pid} is in no cpu cgroup")
    group = root / name
    group.mkdir()
    try:
        if v2:
            (group / "cpu.max").write_text(f"{quota} {period}")
        else:
            (group / "cpu.cfs_period_us").write_text(str(period))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        (group / "cgroup.procs").write_text(str(pid))
        try:
            yield
        finally:
            with contextlib.suppress(ProcessLookupError, OSError):
                (home / "cgroup.procs").write_text(str(pid))
    finally:
        group.rmdir()


async def leader_starved(run: Run, watch: Watch) -> Injected:
    """The leader's CPU cut to STARVED_SHARE of a core for STARVED s while it scales: it goes
    on slowly, or loses its lease to the standby, and acts on nothing it no longer holds."""
    await _step_up(run, watch)
    at = time.monotonic()
    if (leader := run.leader()) is None:
        return Injected(at)
    with _starved(leader.pid, STARVED_SHARE):
        await asyncio.sleep(STARVED)  # the fault's length
    return Injected(at)


SHORT: dict[str, Fault] = {
    "kill -9 of the leader": kill_leader,
    "SIGSTOP of the leader, ttl + 10 s": stop_leader,
    "compose up -d mid scale-up": compose_up,
    f"the state directory full {STATE_FULL:.0f} s": state_full,
    "the template removed mid scale-up": template_removed,
}
FULL: dict[str, Fault] = {
    **{k: v for k, v in SHORT.items() if v is not template_removed},
    f"broker stopped {BROKER_DOWN:.0f} s": broker_stopped,
    f"broker stopped {BROKER_WAKE:.0f} s as one wakes": broker_stopped_waking,
    "engine restarted mid scale-up": engine_restarted,
    f"leader starved to 5 % for {STARVED:.0f} s": leader_starved,
    "the template removed mid scale-up": template_removed,
}
