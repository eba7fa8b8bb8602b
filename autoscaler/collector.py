"""Per-container CPU and memory samples.

The fast path reads the container's cgroup files (v1 or v2, found through /proc/<pid>/cgroup and
this process's mount table): tens of microseconds a container. The stats API, which blocks about
a second per call and costs the engine CPU, is the fallback for containers whose cgroup files are
not readable (a remote engine, or no access to the host's /proc). Either way CPU percent comes from
our own successive readings, so both paths measure the same interval.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiodocker

from autoscaler.engine import LIBRARY_ERRORS
from autoscaler.labels import Replica

logger = logging.getLogger(__name__)

_API_CONCURRENCY = 32


@dataclass(frozen=True, slots=True)
class Sample:
    container_id: str
    cpu: float | None
    """Percent of the CPU limit (of one core without one); None on a container's first reading."""
    memory_bytes: int | None
    memory: float | None
    """Percent of the memory limit; None without a limit."""
    source: str


@dataclass(frozen=True, slots=True)
class Reading:
    """A container's CPU counter, and when we read it (our monotonic clock)."""

    cpu_ns: int
    at_ns: int


@dataclass(frozen=True, slots=True)
class CgroupPaths:
    """Where one container's counters live."""

    cpu: str
    memory: str | None
    memory_stat: str | None
    v2: bool


class CgroupFiles:
    """One container's counter files, held open and re-read with pread: a kernel-generated file
    read at offset 0 is fresh each time, and skipping open/close makes a read ~1 µs instead of
    ~10. Closed when the container goes; a read of a removed cgroup fails and is dropped."""

    __slots__ = ("_cpu", "_inactive_key", "_memory", "_memory_stat", "v2")

    def __init__(self, paths: CgroupPaths) -> None:
        self.v2 = paths.v2
        self._inactive_key = b"\ninactive_file " if paths.v2 else b"\ntotal_inactive_file "
        self._cpu = os.open(paths.cpu, os.O_RDONLY | os.O_CLOEXEC)
        self._memory = self._memory_stat = -1
        try:
            if paths.memory and paths.memory_stat:
                self._memory = os.open(paths.memory, os.O_RDONLY | os.O_CLOEXEC)
                self._memory_stat = os.open(paths.memory_stat, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.close()
            raise

    def read(self) -> tuple[int, int | None]:
        """(CPU time in ns, memory in use without inactive page cache in bytes)."""
        raw = os.pread(self._cpu, 4096, 0)
        # v2's cpu.stat starts with "usage_usec N"; v1's cpuacct.usage is nanoseconds.
        cpu_ns = int(raw.split(None, 2)[1]) * 1000 if self.v2 else int(raw)
        if self._memory < 0:
            return cpu_ns, None
        raw = os.pread(self._memory, 64, 0)
        used = 0 if raw.startswith(b"max") else int(raw)
        stat = os.pread(self._memory_stat, 16384, 0)
        at = stat.find(self._inactive_key)
        if at >= 0:
            start = at + len(self._inactive_key)
            used -= int(stat[start : stat.index(b"\n", start)])
        return cpu_ns, max(used, 0)

    def close(self) -> None:
        for fd in (self._cpu, self._memory, self._memory_stat):
            if fd >= 0:
                os.close(fd)
        self._cpu = self._memory = self._memory_stat = -1


class CgroupLocator:
    """Finds a process's cgroup files from /proc/<pid>/cgroup and our own mount table."""

    def __init__(self, proc: str = "/proc") -> None:
        self._proc = proc
        self._v1: dict[str, tuple[str, str]] = {}  # controller -> (mount point, mount root)
        self._v2: tuple[str, str] | None = None
        self._load_mounts()

    def _load_mounts(self) -> None:
        try:
            with open(f"{self._proc}/self/mountinfo") as f:
                lines = f.readlines()
        except OSError:
            return
        for line in lines:
            before, _, after = line.partition(" - ")
            fields, tail = before.split(), after.split()
            if len(fields) < 5 or len(tail) < 3:
                continue
            root, mount_point, fstype = fields[3], fields[4], tail[0]
            if fstype == "cgroup2":
                self._v2 = (mount_point, root)
            elif fstype == "cgroup":
                for option in tail[2].split(","):
                    self._v1.setdefault(option, (mount_point, root))

    def locate(self, pid: int, container_id: str) -> CgroupFiles | None:
        """The open counter files of container `container_id`, whose main process the engine
        says is `pid`, or None when they are not readable here. The pid is the engine's: on a
        remote engine, or from another pid namespace, it names some other local process (or
        none), so the cgroup it is in must be the container's own, by the id in its path."""
        paths = self._paths(pid, container_id)
        if paths is None:
            return None
        try:
            files = CgroupFiles(paths)
        except OSError:
            return None
        try:
            files.read()
        except (OSError, ValueError, IndexError):
            files.close()
            return None
        return files

    def _paths(self, pid: int, container_id: str) -> CgroupPaths | None:
        if pid <= 0:
            return None
        try:
            with open(f"{self._proc}/{pid}/cgroup") as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        if not any(container_id in line for line in lines):
            return None
        v1: dict[str, str] = {}
        v2_path: str | None = None
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if controllers == "":
                v2_path = path
            for controller in controllers.split(","):
                v1[controller] = path
        if "cpuacct" in v1 and "cpuacct" in self._v1:
            cpu_dir = self._join(self._v1["cpuacct"], v1["cpuacct"])
            mem_dir = (
                self._join(self._v1["memory"], v1["memory"])
                if "memory" in v1 and "memory" in self._v1
                else None
            )
            return CgroupPaths(
                cpu=f"{cpu_dir}/cpuacct.usage",
                memory=f"{mem_dir}/memory.usage_in_bytes" if mem_dir else None,
                memory_stat=f"{mem_dir}/memory.stat" if mem_dir else None,
                v2=False,
            )
        if v2_path is not None and self._v2 is not None:
            directory = self._join(self._v2, v2_path)
            return CgroupPaths(
                cpu=f"{directory}/cpu.stat",
                memory=f"{directory}/memory.current",
                memory_stat=f"{directory}/memory.stat",
                v2=True,
            )
        return None

    @staticmethod
    def _join(mount: tuple[str, str], path: str) -> str:
        mount_point, root = mount
        relative = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
        return os.path.normpath(os.path.join(mount_point, relative))


class Collector:
    def __init__(
        self,
        docker: aiodocker.Docker,
        *,
        use_cgroups: bool = True,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._docker = docker
        self._clock = clock
        self._locator = CgroupLocator() if use_cgroups else None
        self._files: dict[str, tuple[int, CgroupFiles | None]] = {}  # id -> (pid, files)
        self._last: dict[str, Reading] = {}
        self._api_slots = asyncio.Semaphore(_API_CONCURRENCY)

    async def sample(self, replicas: Iterable[Replica]) -> dict[str, Sample]:
        """One sample per running replica; CPU is None on the first reading of a container."""
        running = [r for r in replicas if r.running]
        live = {r.id for r in running}
        for gone in set(self._last) - live:
            del self._last[gone]
        for gone in set(self._files) - live:
            self._drop(gone)

        samples: dict[str, Sample] = {}
        slow: list[Replica] = []
        for replica in running:
            files = self._cgroup_files(replica)
            if files is None:
                slow.append(replica)
                continue
            try:
                cpu_ns, memory = files.read()
            except (OSError, ValueError, IndexError):
                # The container stopped between the listing and this read.
                self._drop(replica.id)
                continue
            samples[replica.id] = self._to_sample(replica, cpu_ns, memory, "cgroup")
        if slow:
            results = await asyncio.gather(*(self._from_api(r) for r in slow))
            samples.update((s.container_id, s) for s in results if s is not None)
        return samples

    def _cgroup_files(self, replica: Replica) -> CgroupFiles | None:
        if self._locator is None:
            return None
        cached = self._files.get(replica.id)
        if cached is None or cached[0] != replica.pid:
            # New, or restarted with a new process: find its cgroup (again).
            self._drop(replica.id)
            cached = (replica.pid, self._locator.locate(replica.pid, replica.id))
            self._files[replica.id] = cached
        return cached[1]

    def _drop(self, container_id: str) -> None:
        _, files = self._files.pop(container_id, (0, None))
        if files is not None:
            files.close()

    def close(self) -> None:
        """Close every counter file held open."""
        for container_id in list(self._files):
            self._drop(container_id)

    async def _from_api(self, replica: Replica) -> Sample | None:
        async with self._api_slots:
            try:
                # one-shot (API 1.41+) answers at once instead of waiting for a second reading;
                # aiodocker's stats() does not pass it.
                stats: dict[str, Any] = await self._docker._query_json(
                    f"containers/{replica.id}/stats",
                    params={"stream": "false", "one-shot": "true"},
                )
            except LIBRARY_ERRORS as exc:
                logger.debug("stats of %s failed: %s", replica.name, exc)
                return None
        try:
            cpu_ns = int(stats["cpu_stats"]["cpu_usage"]["total_usage"])
        except (KeyError, TypeError, ValueError):
            return None
        memory_stats = stats.get("memory_stats") or {}
        memory: int | None = None
        if "usage" in memory_stats:
            extra = memory_stats.get("stats") or {}
            inactive = extra.get("total_inactive_file", extra.get("inactive_file", 0))
            memory = max(int(memory_stats["usage"]) - int(inactive), 0)
        return self._to_sample(replica, cpu_ns, memory, "api")

    def _to_sample(self, replica: Replica, cpu_ns: int, memory: int | None, source: str) -> Sample:
        reading = Reading(cpu_ns, self._clock())
        previous, self._last[replica.id] = self._last.get(replica.id), reading
        return sample_of(replica, previous, reading, memory, source)


def sample_of(
    replica: Replica, previous: Reading | None, reading: Reading, memory: int | None, source: str
) -> Sample:
    """CPU as percent of the replica's limit (of one core without one) between two readings of
    its counter; None on the first reading, or when the counter went back (a restart)."""
    cpu: float | None = None
    if (
        previous is not None
        and reading.at_ns > previous.at_ns
        and reading.cpu_ns >= previous.cpu_ns
    ):
        cores = replica.cpu_limit or 1.0
        used = (reading.cpu_ns - previous.cpu_ns) / (reading.at_ns - previous.at_ns)
        cpu = 100.0 * used / cores
    memory_percent = (
        100.0 * memory / replica.memory_limit
        if memory is not None and replica.memory_limit
        else None
    )
    return Sample(replica.id, cpu, memory, memory_percent, source)
