"""A container's counters read straight from its cgroup files, cgroup v1 or v2: CPU time, CFS
throttling, and memory without inactive page cache; and the bytes its network namespace received
and sent, from /proc/<pid>/net/dev. The files are found through /proc/<pid>/cgroup and this
process's mount table, opened once and re-read with pread.

    v1  cpuacct/cpuacct.usage (ns)  cpu/cpu.stat (nr_periods, nr_throttled)  memory/memory.*
    v2  cpu.stat (usage_usec, nr_periods, nr_throttled)                       memory.*
    both  /proc/<pid>/net/dev: every interface of the container's namespace but loopback
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from policies.records import record


@record
class Counters:
    """One reading of a container's counters."""

    cpu_ns: int
    memory: int | None
    """Bytes in use without inactive page cache; None where not readable."""
    periods: int | None
    """CFS periods in which the container ran, and in how many of them it was held back at its
    CPU limit; None where there is no limit to be held at (or the file is not readable)."""
    throttled: int | None
    received: int | None = None
    """Bytes the container's network namespace received and sent, loopback aside; None where
    its namespace is not readable here."""
    sent: int | None = None


@dataclass(frozen=True, slots=True)
class CgroupPaths:
    """Where one container's counters live."""

    cpu: str
    memory: str | None
    memory_stat: str | None
    v2: bool
    throttling: str | None = None
    """v1's cpu controller cpu.stat; on v2 the throttling counters are in `cpu` itself."""
    network: str | None = None
    """/proc/<pid>/net/dev of the container's main process, when that pid is known to be it."""


class CgroupFiles:
    """One container's counter files, held open and re-read with pread: a kernel-generated file
    read at offset 0 is fresh each time, and skipping open/close makes a read ~1 µs instead of
    ~10. Closed when the container goes; a read of a removed cgroup fails and is dropped."""

    __slots__ = (
        "_cpu", "_inactive_key", "_memory", "_memory_stat", "_network", "_throttling", "v2",
    )  # fmt: skip

    def __init__(self, paths: CgroupPaths) -> None:
        self.v2 = paths.v2
        self._inactive_key = b"inactive_file" if paths.v2 else b"total_inactive_file"
        self._cpu = os.open(paths.cpu, os.O_RDONLY | os.O_CLOEXEC)
        self._memory = self._memory_stat = self._throttling = self._network = -1
        try:
            if paths.memory and paths.memory_stat:
                self._memory = os.open(paths.memory, os.O_RDONLY | os.O_CLOEXEC)
                self._memory_stat = os.open(paths.memory_stat, os.O_RDONLY | os.O_CLOEXEC)
            if paths.throttling:
                self._throttling = os.open(paths.throttling, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.close()
            raise
        if paths.network:
            # Held open, it keeps reading the namespace the process was in when opened; where
            # it is not readable, CPU and memory are still measured.
            try:
                self._network = os.open(paths.network, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self._network = -1

    def read(
        self, *, throttling: bool = True, memory: bool = True, network: bool = True
    ) -> Counters:
        """`throttling`, `memory`, `network`: whether to read them (None if not). Each file is a
        system call, and the dear ones are v1's memory.stat, which sums the whole hierarchy, and
        net/dev, which walks the namespace's devices: ~10 µs each, a container, a round."""
        raw = os.pread(self._cpu, 4096, 0)
        # v2's cpu.stat starts with "usage_usec N"; v1's cpuacct.usage is nanoseconds.
        cpu_ns = int(raw.split(None, 2)[1]) * 1000 if self.v2 else int(raw)
        if not throttling:
            stat = b""
        elif self.v2:
            stat = raw
        elif self._throttling >= 0:
            stat = os.pread(self._throttling, 4096, 0)
        else:
            stat = b""
        periods = throttled = None
        if stat:
            periods, throttled = _field(stat, b"nr_periods"), _field(stat, b"nr_throttled")
        received = sent = None
        if network and self._network >= 0:
            received, sent = net_dev(os.pread(self._network, 65536, 0))
        used = None
        if memory and self._memory >= 0:
            raw = os.pread(self._memory, 64, 0)
            current = 0 if raw.startswith(b"max") else int(raw)
            inactive = _field(os.pread(self._memory_stat, 16384, 0), self._inactive_key)
            used = max(current - (inactive or 0), 0)
        return Counters(cpu_ns, used, periods, throttled, received, sent)

    def close(self) -> None:
        for fd in (self._cpu, self._memory, self._memory_stat, self._throttling, self._network):
            if fd >= 0:
                os.close(fd)
        self._cpu = self._memory = self._memory_stat = self._throttling = self._network = -1


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
            # A later mount shadows an earlier one: in a container, the host's cgroup tree
            # bind-mounted over the container's own view of its cgroup is the one to read.
            if fstype == "cgroup2":
                self._v2 = (mount_point, root)
            elif fstype == "cgroup":
                for option in tail[2].split(","):
                    self._v1[option] = (mount_point, root)

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
        lines: list[str] = []
        if pid > 0:
            try:
                with open(f"{self._proc}/{pid}/cgroup") as f:
                    lines = f.read().splitlines()
            except OSError:
                pass
        network: str | None = f"{self._proc}/{pid}/net/dev"
        if not any(container_id in line for line in lines):
            # Another pid namespace (a Swarm service has no `pid: host`): the engine's own
            # cgroup layouts, tried by the container's id; the pid is some other process's.
            lines, network = self._by_id(container_id), None
        if not lines:
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
            throttling = (
                self._join(self._v1["cpu"], v1["cpu"]) + "/cpu.stat"
                if "cpu" in v1 and "cpu" in self._v1
                else None
            )
            return CgroupPaths(
                cpu=f"{cpu_dir}/cpuacct.usage",
                memory=f"{mem_dir}/memory.usage_in_bytes" if mem_dir else None,
                memory_stat=f"{mem_dir}/memory.stat" if mem_dir else None,
                v2=False,
                throttling=throttling,
                network=network,
            )
        if v2_path is not None and self._v2 is not None:
            directory = self._join(self._v2, v2_path)
            return CgroupPaths(
                cpu=f"{directory}/cpu.stat",
                memory=f"{directory}/memory.current",
                memory_stat=f"{directory}/memory.stat",
                v2=True,
                network=network,
            )
        return None

    def _by_id(self, container_id: str) -> list[str]:
        """/proc/<pid>/cgroup-shaped lines for the container's cgroup under the cgroupfs
        (`/docker/<id>`) or systemd (`/system.slice/docker-<id>.scope`) driver, if one exists."""
        for path in (f"/docker/{container_id}", f"/system.slice/docker-{container_id}.scope"):
            if "cpuacct" in self._v1 and os.path.isdir(self._join(self._v1["cpuacct"], path)):
                return [f"0:{c}:{path}" for c in ("cpu", "cpuacct", "memory") if c in self._v1]
            if self._v2 is not None and os.path.isdir(self._join(self._v2, path)):
                return [f"0::{path}"]
        return []

    @staticmethod
    def _join(mount: tuple[str, str], path: str) -> str:
        mount_point, root = mount
        relative = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
        return os.path.normpath(os.path.join(mount_point, relative))


def net_dev(text: bytes) -> tuple[int, int]:
    """Bytes received and sent by every interface of a /proc/<pid>/net/dev but loopback (the
    traffic a container exchanges with its own processes is not load from outside)."""
    received = sent = 0
    for line in text.splitlines()[2:]:
        name, colon, counters = line.partition(b":")
        if not colon or name.strip() == b"lo":
            continue
        fields = counters.split()
        # Receive: bytes packets errs drop fifo frame compressed multicast; Transmit: bytes ...
        received += int(fields[0])
        sent += int(fields[8])
    return received, sent


def _field(stat: bytes, key: bytes) -> int | None:
    """The number after `key` on its line of a `key value` stat file; None if it has none."""
    if stat.startswith(key + b" "):
        start = len(key) + 1
    else:
        at = stat.find(b"\n" + key + b" ")
        if at < 0:
            return None
        start = at + len(key) + 2
    end = stat.find(b"\n", start)
    return int(stat[start : end if end >= 0 else None])
