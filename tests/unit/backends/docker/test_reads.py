"""What the collector reads of a container's cgroup each round (backends/docker/collector.py):
its CPU and network always; its throttling only where it has a CPU limit to be held at, and its
memory where it has a memory limit or the collector is asked for every container's. Each file
left out is a system call a container a round saved."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import cast

import aiodocker
import pytest

from autoscaler.backends.docker.cgroups import CgroupLocator, Counters
from autoscaler.backends.docker.collector import Collector
from autoscaler.control.replicas import Replica
from autoscaler.labels import ServiceKey
from tests.unit.backends.docker.test_cgroups import CID, lay_out

SECOND = 1_000_000_000
LIMITED = {"cpu": 0.5, "memory": 200_000_000}


def v1(root: Path) -> CgroupLocator:
    return lay_out(
        root,
        "32 31 0:29 / ROOT/sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "35 31 0:32 / ROOT/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        f"4:memory:/docker/{CID}\n2:cpu,cpuacct:/docker/{CID}\n",
        {
            f"sys/fs/cgroup/cpu,cpuacct/docker/{CID}/cpuacct.usage": "123456789\n",
            f"sys/fs/cgroup/cpu,cpuacct/docker/{CID}/cpu.stat": "nr_periods 7\nnr_throttled 3\n",
            f"sys/fs/cgroup/memory/docker/{CID}/memory.usage_in_bytes": "8192000\n",
            f"sys/fs/cgroup/memory/docker/{CID}/memory.stat": "total_inactive_file 192000\n",
        },
    )


def replica(cpu: float | None, memory: int | None) -> Replica:
    return Replica(
        id=CID, name="web-1", key=ServiceKey("p", "web"), labels={}, status="running",
        health=None, pid=42, started_at=0.0, number=1, clone_of=None, cpu_limit=cpu,
        memory_limit=memory,
    )  # fmt: skip


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The file descriptors the cgroup files are read from, one a read."""
    read: list[int] = []
    pread = os.pread

    def counted(fd: int, size: int, offset: int) -> bytes:
        read.append(fd)
        return pread(fd, size, offset)

    monkeypatch.setattr(os, "pread", counted)
    return read


def test_every_counter_is_read_unless_left_out(tmp_path: Path, reads: list[int]) -> None:
    files = v1(tmp_path).locate(42, CID)
    assert files is not None
    reads.clear()
    assert files.read() == Counters(123456789, 8000000, periods=7, throttled=3)
    assert len(reads) == 4  # cpuacct.usage, cpu.stat, memory.usage_in_bytes, memory.stat
    reads.clear()
    assert files.read(throttling=False, memory=False) == Counters(123456789, None, None, None)
    assert len(reads) == 1
    files.close()


@pytest.mark.parametrize(
    ("limits", "unlimited_memory", "counters", "files"),
    [
        (LIMITED, False, Counters(123456789, 8000000, periods=7, throttled=3), 4),
        ({"cpu": None, "memory": None}, False, Counters(123456789, None, None, None), 1),
        ({"cpu": 0.5, "memory": None}, False, Counters(123456789, None, 7, 3), 2),
        ({"cpu": None, "memory": 200_000_000}, False, Counters(123456789, 8000000, None, None), 3),
        # Shown only: read at a round, in turn (test_collector), not by a look between rounds.
        ({"cpu": None, "memory": None}, True, Counters(123456789, None, None, None), 1),
    ],
    ids=["both limits", "no limit", "a CPU limit", "a memory limit", "every container's memory"],
)
async def test_a_round_reads_what_the_containers_limits_give_a_meaning_to(
    tmp_path: Path,
    reads: list[int],
    limits: dict[str, float | None],
    unlimited_memory: bool,
    counters: Counters,
    files: int,
) -> None:
    collector = Collector(
        cast(aiodocker.Docker, None), clock=itertools.count(0, SECOND).__next__,
        unlimited_memory=unlimited_memory, locator=v1(tmp_path),
    )  # fmt: skip
    memory = limits["memory"]
    container = replica(limits["cpu"], int(memory) if memory is not None else None)
    await collector.sample([container])  # the files found and opened (read once to check)
    reads.clear()
    (reading,) = (await collector.peek([container])).values()
    assert reading.counters == counters
    assert len(reads) == files
    collector.close()
