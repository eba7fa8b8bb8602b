"""What to mend in a service before deciding its size: clones that will not serve again.

    created, never started  an orphan of a scale-up cut short (a crash, a failed start): remove
    exited or dead          and the engine will not restart it (restart policy none, on-failure
                            after a clean exit, or on-failure whose retry limit is used up):
                            remove, and create a replacement
    running but unhealthy   its health check says so: remove, and create a replacement

Only clones are touched; the containers a user made are theirs, and their restart policy's.
Replacements keep the service at the count last decided for it. A service whose clones keep
breaking is a crash loop: its k-th repair in a row waits 2^(k-1) seconds (capped at a minute)
after the previous one, and the streak ends after five quiet minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from autoscaler.backoff import Backoff
from autoscaler.labels import Replica


@dataclass(frozen=True, slots=True)
class Repair:
    remove: tuple[Replica, ...]
    replace: int
    """How many new clones to create for the broken ones that counted as replicas."""
    reasons: tuple[str, ...]


def broken(replica: Replica) -> str | None:
    """Why a clone will not serve again, or None if it is fine (or not a clone)."""
    if not replica.is_clone:
        return None
    restart = (replica.inspect.get("HostConfig") or {}).get("RestartPolicy") or {}
    policy = restart.get("Name") or "no"
    state = replica.inspect.get("State") or {}
    exit_code = int(state.get("ExitCode") or 0)
    if replica.status == "created":
        return f"{replica.name} was created but never started"
    if replica.status == "dead":
        return f"{replica.name} is dead"
    if replica.running and replica.health == "unhealthy":
        return f"{replica.name} is unhealthy"
    if replica.status != "exited":
        return None
    exited = f"{replica.name} exited with code {exit_code}"
    if state.get("OOMKilled"):
        exited += " (out of memory)"
    if policy == "no" or (policy == "on-failure" and not exit_code):
        return exited
    retries = int(restart.get("MaximumRetryCount") or 0)
    restarts = int(replica.inspect.get("RestartCount") or 0)
    if policy == "on-failure" and retries and restarts >= retries:
        return f"{exited}; its restart policy gave up after {restarts} restarts"
    return None


@dataclass(slots=True)
class CrashLoop:
    """One service's repairs in a row; `plan` says what to mend now, if the backoff allows."""

    backoff: Backoff = field(default_factory=lambda: Backoff(start=1.0, cap=60.0, quiet=300.0))

    def plan(self, replicas: Sequence[Replica], now: float) -> Repair | None:
        found = [(r, why) for r in replicas if (why := broken(r)) is not None]
        if not found or not self.backoff.ready(now):
            return None
        self.backoff.failed(now)
        # Orphans never counted as replicas; the others did, and are replaced.
        replace = sum(1 for r, _ in found if r.status != "created")
        return Repair(tuple(r for r, _ in found), replace, tuple(why for _, why in found))
