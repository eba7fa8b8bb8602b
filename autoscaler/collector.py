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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiodocker

from autoscaler.engine import LIBRARY_ERRORS
from autoscaler.inventory import Replica

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
class _Reading:
    cpu_ns: int
    memory_bytes: int | None
    at_ns: int


@dataclass(frozen=True, slots=True)
class CgroupFiles:
    """Where one container's counters live."""

    cpu: str
    memory: str | None
    memory_stat: str | None
    v2: bool

    def read(self) -> tuple[int, int | None]:
        """(CPU time in ns, memory in use without inactive page cache in bytes)."""
        if self.v2:
            with open(self.cpu, "rb") as f:
                usage_usec = f.readline()
            cpu_ns = int(usage_usec.split()[1]) * 1000
        else:
            with open(self.cpu, "rb") as f:
                cpu_ns = int(f.read())
        if self.memory is None or self.memory_stat is None:
            return cpu_ns, None
        with open(self.memory, "rb") as f:
            raw = f.read()
        used = int(raw) if raw.strip() != b"max" else 0
        inactive_key = b"inactive_file" if self.v2 else b"total_inactive_file"
        with open(self.memory_stat, "rb") as f:
            for line in f:
                name, _, value = line.partition(b" ")
                if name == inactive_key:
                    used -= int(value)
                    break
        return cpu_ns, max(used, 0)


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

    def locate(self, pid: int) -> CgroupFiles | None:
        if pid <= 0:
            return None
        try:
            with open(f"{self._proc}/{pid}/cgroup") as f:
                lines = f.read().splitlines()
        except OSError:
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
            files = CgroupFiles(
                cpu=f"{cpu_dir}/cpuacct.usage",
                memory=f"{mem_dir}/memory.usage_in_bytes" if mem_dir else None,
                memory_stat=f"{mem_dir}/memory.stat" if mem_dir else None,
                v2=False,
            )
        elif v2_path is not None and self._v2 is not None:
            directory = self._join(self._v2, v2_path)
            files = CgroupFiles(
                cpu=f"{directory}/cpu.stat",
                memory=f"{directory}/memory.current",
                memory_stat=f"{directory}/memory.stat",
                v2=True,
            )
        else:
            return None
        try:
            files.read()
        except (OSError, ValueError, IndexError):
            return None
        return files

    @staticmethod
    def _join(mount: tuple[str, str], path: str) -> str:
        mount_point, root = mount
        relative = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
        return os.path.normpath(os.path.join(mount_point, relative))


class Collector:
    def __init__(self, docker: aiodocker.Docker, *, use_cgroups: bool = True) -> None:
        self._docker = docker
        self._locator = CgroupLocator() if use_cgroups else None
        self._files: dict[str, tuple[int, CgroupFiles | None]] = {}  # id -> (pid, files)
        self._last: dict[str, _Reading] = {}
        self._api_slots = asyncio.Semaphore(_API_CONCURRENCY)

    async def sample(self, replicas: Iterable[Replica]) -> dict[str, Sample]:
        """One sample per running replica; CPU is None on the first reading of a container."""
        running = [r for r in replicas if r.running]
        live = {r.id for r in running}
        for gone in set(self._last) - live:
            del self._last[gone]
        for gone in set(self._files) - live:
            del self._files[gone]

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
                self._files.pop(replica.id, None)
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
            cached = (replica.pid, self._locator.locate(replica.pid))
            self._files[replica.id] = cached
        return cached[1]

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
        now = time.monotonic_ns()
        previous = self._last.get(replica.id)
        self._last[replica.id] = _Reading(cpu_ns, memory, now)
        cpu: float | None = None
        if previous is not None and now > previous.at_ns and cpu_ns >= previous.cpu_ns:
            cores = replica.cpu_limit or 1.0
            cpu = 100.0 * (cpu_ns - previous.cpu_ns) / (now - previous.at_ns) / cores
        memory_percent = (
            100.0 * memory / replica.memory_limit
            if memory is not None and replica.memory_limit
            else None
        )
        return Sample(replica.id, cpu, memory, memory_percent, source)
