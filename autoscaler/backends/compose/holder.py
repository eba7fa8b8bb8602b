"""Who holds a lease, in terms another instance can check (the lease's labels), and the proofs
that a holder is dead, so that its lease is taken over at once and not waited out.

    boot id, pid namespace, pid, its start time    same boot and namespace: does that process
                                                   still run that start?
    the container it runs in, that container's     any watcher asks the engine: does that
    start time                                     container still run that start?
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

BOOT, PIDNS, PID, START = (f"autoscaler.lease.{k}" for k in ("boot", "pidns", "pid", "start"))
CONTAINER, CONTAINER_START = "autoscaler.lease.container", "autoscaler.lease.container-start"

_CONTAINER_ID = re.compile(r"/containers/([0-9a-f]{64})/")


def identity(proc: str = "/proc") -> dict[str, str]:
    """Who this process is, in terms another instance can check: the lease's labels."""
    me = {PID: str(os.getpid())}
    with contextlib.suppress(OSError):
        me[BOOT] = Path(f"{proc}/sys/kernel/random/boot_id").read_text().strip()
    with contextlib.suppress(OSError):
        me[PIDNS] = os.readlink(f"{proc}/self/ns/pid")
    if start := _started(proc, os.getpid()):
        me[START] = start
    with contextlib.suppress(OSError):
        if container := _own_container(proc):
            me[CONTAINER] = container
    return me


def _started(proc: str, pid: int) -> str | None:
    """Process `pid`'s start time (clock ticks after boot), or None if there is no such process.
    A pid can be reused; a pid and its start time cannot."""
    try:
        stat = Path(f"{proc}/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _own_container(proc: str) -> str | None:
    """The id of the container this process runs in: the engine bind-mounts the container's
    hostname, hosts and resolv.conf from its own folder, named after the id."""
    with open(f"{proc}/self/mountinfo") as f:
        for line in f:
            if match := _CONTAINER_ID.search(line):
                return match.group(1)
    return None


def gone_here(
    holder: Mapping[str, str], me: Mapping[str, str], proc: str
) -> str | Literal[False] | None:
    """On this boot and in this pid namespace, whether the holder's process is gone (why, in
    words) or still runs (None); False where the holder is not here to be checked so."""
    if not all(holder.get(k) == me.get(k) is not None for k in (BOOT, PIDNS)):
        if (container := holder.get(CONTAINER)) and container == me.get(CONTAINER):
            # It ran in the container we run in, on another boot or in another pid namespace:
            # a run of this container before it restarted.
            return "is gone: its container restarted"
        return False
    pid, start = holder.get(PID, ""), holder.get(START)
    if not pid.isdigit() or not start or _started(proc, int(pid)) == start:
        return None
    return f"is gone: process {pid} no longer runs on this host"


def container_gone(holder: Mapping[str, str], state: Mapping[str, Any]) -> str | None:
    """Whether the holder's container, as the engine says it is (`State`), is no longer the one
    that took the lease."""
    if not state.get("Running"):
        return "is gone: its container is not running"
    if state.get("StartedAt") != holder.get(CONTAINER_START):
        return "is gone: its container has restarted since"
    return None
