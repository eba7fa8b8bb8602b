"""What to mend in a service before deciding its size: clones that will not serve again.

    created, never started  an orphan of a scale-up cut short (a crash, a failed start): remove
    exited or dead          and the engine will not restart it (restart policy none, or
                            on-failure after a clean exit): remove, and create a replacement
    running but unhealthy   its health check says so: remove, and create a replacement

Only clones are touched; the containers a user made are theirs, and their restart policy's.
Replacements keep the service at the count last decided for it. A service whose clones keep
breaking is a crash loop: its k-th repair in a row waits 2^(k-1) seconds (capped at a minute)
after the previous one, and the streak ends after five quiet minutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autoscaler.inventory import Replica
from autoscaler.labels import ServiceKey

_BACKOFF_START, _BACKOFF_CAP, _QUIET = 1.0, 60.0, 300.0


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
    exit_code = int((replica.inspect.get("State") or {}).get("ExitCode") or 0)
    if replica.status == "created":
        return f"{replica.name} was created but never started"
    if replica.status == "dead":
        return f"{replica.name} is dead"
    if replica.status == "exited" and (
        policy == "no" or (policy == "on-failure" and not exit_code)
    ):
        oom = " (out of memory)" if (replica.inspect.get("State") or {}).get("OOMKilled") else ""
        return f"{replica.name} exited with code {exit_code}{oom}"
    if replica.running and replica.health == "unhealthy":
        return f"{replica.name} is unhealthy"
    return None


class Repairs:
    """Crash-loop bookkeeping per service; `plan` says what to mend now."""

    def __init__(self) -> None:
        self._streak: dict[ServiceKey, tuple[int, float]] = {}  # key -> (repairs in a row, last)

    def plan(self, key: ServiceKey, replicas: Sequence[Replica], now: float) -> Repair | None:
        found = [(r, why) for r in replicas if (why := broken(r)) is not None]
        if not found:
            return None
        count, last = self._streak.get(key, (0, 0.0))
        if count and now - last > _QUIET:
            count = 0
        wait = min(_BACKOFF_START * 2 ** (count - 1), _BACKOFF_CAP) if count else 0.0
        if now - last < wait:
            return None
        self._streak[key] = (count + 1, now)
        # Orphans never counted as replicas; the others did, and are replaced.
        replace = sum(1 for r, _ in found if r.status != "created")
        return Repair(tuple(r for r, _ in found), replace, tuple(why for _, why in found))

    def forget(self, live: set[ServiceKey]) -> None:
        for key in set(self._streak) - live:
            del self._streak[key]
