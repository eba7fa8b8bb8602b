"""Finding a container's counter files, on cgroup v1 and v2 trees laid out as the kernel does.

The locator only reads files, so a folder shaped like /proc and /sys/fs/cgroup is a faithful
stand-in here; the real v1 tree is read by every integration test on this machine."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from autoscaler.backends.docker.cgroups import CgroupLocator, Counters, net_dev

CID = "c0ffee" * 10


def lay_out(root: Path, mountinfo: str, cgroup: str, files: dict[str, str]) -> CgroupLocator:
    (root / "proc" / "self").mkdir(parents=True)
    (root / "proc" / "self" / "mountinfo").write_text(mountinfo.replace("ROOT", str(root)))
    (root / "proc" / "42").mkdir()
    (root / "proc" / "42" / "cgroup").write_text(cgroup)
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return CgroupLocator(proc=str(root / "proc"))


def test_v2_with_the_systemd_driver(tmp_path: Path) -> None:
    unit = f"system.slice/docker-{CID}.scope"
    locator = lay_out(
        tmp_path,
        "30 23 0:26 / ROOT/sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        f"0::/{unit}\n",
        {
            f"sys/fs/cgroup/{unit}/cpu.stat": "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n"
            "nr_periods 40\nnr_throttled 10\nthrottled_usec 900\n",
            f"sys/fs/cgroup/{unit}/memory.current": "10485760\n",
            f"sys/fs/cgroup/{unit}/memory.stat": "anon 4194304\nfile 6291456\ninactive_file 2097152\n",
        },
    )
    files = locator.locate(42, CID)
    assert files is not None
    assert files.v2
    assert files.read() == Counters(2_500_000, 10485760 - 2097152, periods=40, throttled=10)
    files.close()


def test_v1_with_the_cgroupfs_driver_and_controllers_mounted_together(tmp_path: Path) -> None:
    locator = lay_out(
        tmp_path,
        "32 31 0:29 / ROOT/sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "35 31 0:32 / ROOT/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        f"4:memory:/docker/{CID}\n2:cpu,cpuacct:/docker/{CID}\n",
        {
            f"sys/fs/cgroup/cpu,cpuacct/docker/{CID}/cpuacct.usage": "123456789\n",
            f"sys/fs/cgroup/cpu,cpuacct/docker/{CID}/cpu.stat": "nr_periods 7\nnr_throttled 3\n"
            "throttled_time 1234\n",
            f"sys/fs/cgroup/memory/docker/{CID}/memory.usage_in_bytes": "8192000\n",
            f"sys/fs/cgroup/memory/docker/{CID}/memory.stat": "cache 4096\ntotal_inactive_file 192000\n",
        },
    )
    files = locator.locate(42, CID)
    assert files is not None
    assert not files.v2
    assert files.read() == Counters(123456789, 8000000, periods=7, throttled=3)
    files.close()


def test_a_cgroup_namespace_root_is_joined_relative_to_the_mount(tmp_path: Path) -> None:
    # Inside a container (cgroupns private) the mount's root is the container's own cgroup.
    locator = lay_out(
        tmp_path,
        f"30 23 0:26 /docker/{CID} ROOT/sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
        f"0::/docker/{CID}/child\n",
        {
            "sys/fs/cgroup/child/cpu.stat": "usage_usec 7\n",
            "sys/fs/cgroup/child/memory.current": "max\n",
            "sys/fs/cgroup/child/memory.stat": "anon 0\n",
        },
    )
    files = locator.locate(42, CID)
    assert files is not None
    assert files.read() == Counters(7000, 0, periods=None, throttled=None)
    files.close()


def test_no_readable_cgroup_means_the_stats_api(tmp_path: Path) -> None:
    locator = lay_out(tmp_path, "", "0::/nowhere\n", {})
    assert locator.locate(42, CID) is None
    assert locator.locate(0, CID) is None


def test_from_another_pid_namespace_the_container_is_found_by_its_id(tmp_path: Path) -> None:
    # A Swarm service has no `pid: host`: the engine's pid names no process of ours, but the
    # host's cgroup tree, mounted in, has the container under the driver's usual path.
    locator = lay_out(
        tmp_path,
        "32 31 0:29 / ROOT/sys/fs/cgroup/cpu,cpuacct ro - cgroup cgroup rw,cpu,cpuacct\n"
        "35 31 0:32 / ROOT/sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n",
        "2:cpu,cpuacct:/\n",
        {
            f"sys/fs/cgroup/cpu,cpuacct/docker/{CID}/cpuacct.usage": "5000\n",
            f"sys/fs/cgroup/cpu,cpuacct/docker/{CID}/cpu.stat": "nr_periods 0\nnr_throttled 0\n",
            f"sys/fs/cgroup/memory/docker/{CID}/memory.usage_in_bytes": "4096\n",
            f"sys/fs/cgroup/memory/docker/{CID}/memory.stat": "total_inactive_file 0\n",
        },
    )
    files = locator.locate(42, CID)
    assert files is not None
    assert files.read().cpu_ns == 5000
    files.close()
    assert locator.locate(0, CID) is not None


def test_by_id_under_the_systemd_driver_on_v2(tmp_path: Path) -> None:
    unit = f"system.slice/docker-{CID}.scope"
    locator = lay_out(
        tmp_path,
        "30 23 0:26 / ROOT/sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
        "0::/\n",
        {
            f"sys/fs/cgroup/{unit}/cpu.stat": "usage_usec 3\n",
            f"sys/fs/cgroup/{unit}/memory.current": "0\n",
            f"sys/fs/cgroup/{unit}/memory.stat": "inactive_file 0\n",
        },
    )
    files = locator.locate(99999, CID)
    assert files is not None
    assert files.read().cpu_ns == 3000
    files.close()


NET_DEV = (
    b"Inter-|   Receive                                                |  Transmit\n"
    b" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    b"drop fifo colls carrier compressed\n"
    b"    lo: 4597682  274075    0    0    0     0          0         0  4597682  274075    0 "
    b"   0    0     0       0          0\n"
    b"  eth0: 2295780  72193    0    0    0     0          0         0  4687047   44673    0 "
    b"   0    0     0       0          0\n"
    b"  eth1:    1000      10    0    0    0     0          0         0      200       2    0 "
    b"   0    0     0       0          0\n"
)


def test_the_network_is_every_interface_of_the_namespace_but_loopback() -> None:
    assert net_dev(NET_DEV) == (2295780 + 1000, 4687047 + 200)


@given(st.lists(st.tuples(st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True),
                          st.integers(0, 2**63), st.integers(0, 2**63)), max_size=6))  # fmt: skip
def test_net_dev_sums_what_each_interface_says(interfaces: list[tuple[str, int, int]]) -> None:
    lines = [b"header one", b"header two"] + [
        # The kernel's "%6s:%8llu": a large count touches the colon.
        f"{name:>6}:{rx:>8} 1 0 0 0 0 0 0 {tx} 1 0 0 0 0 0 0".encode()
        for name, rx, tx in interfaces
    ]
    outside = [(rx, tx) for name, rx, tx in interfaces if name != "lo"]
    assert net_dev(b"\n".join(lines)) == (sum(r for r, _ in outside), sum(t for _, t in outside))


def test_a_container_s_network_is_read_from_its_own_process(tmp_path: Path) -> None:
    unit = "system.slice/docker-" + CID + ".scope"
    locator = lay_out(
        tmp_path,
        "30 23 0:26 / ROOT/sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        f"0::/{unit}\n",
        {
            f"sys/fs/cgroup/{unit}/cpu.stat": "usage_usec 2500\n",
            f"sys/fs/cgroup/{unit}/memory.current": "100\n",
            f"sys/fs/cgroup/{unit}/memory.stat": "inactive_file 0\n",
            "proc/42/net/dev": NET_DEV.decode(),
        },
    )
    files = locator.locate(42, CID)
    assert files is not None
    counters = files.read()
    assert (counters.received, counters.sent) == (2296780, 4687247)
