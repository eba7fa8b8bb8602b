"""A replica's reading, as every sampler makes it: the collector's cgroup files or stats API on
one engine, or a node's agent over MQTT for a Swarm task. The controller reads nothing else of a
replica's load."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    container_id: str
    cpu: float | None
    """Percent of the CPU limit (of one core without one) over the window; None while the
    window is new or too short."""
    memory_bytes: int | None
    memory: float | None
    """Percent of the memory limit; None without a limit."""
    source: str
    throttled: float | None = None
    """Share of the window's CFS periods in which the kernel held the container back at its CPU
    limit (0 to 1); None without a limit, or where the counters are not known."""
    received: float | None = None
    """Bytes a second the replica's network namespace received and sent over the window,
    loopback aside; None where not known (the first window, or a namespace not readable)."""
    sent: float | None = None
