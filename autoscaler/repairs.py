"""What to mend in a service before deciding its size, in this order:

1. Broken clones, that will not serve again:

    created, never started  an orphan of a scale-up cut short (a crash, a failed start): remove
    exited or dead          and the engine will not restart it (restart policy none, on-failure
                            after a clean exit, or on-failure whose retry limit is used up):
                            remove, and create a replacement
    running but unhealthy   its health check says so: remove, and create a replacement

   A service whose clones keep breaking is a crash loop: its k-th repair in a row waits 2^(k-1)
   seconds (capped at a minute) after the previous one, and the streak ends after five quiet
   minutes.
2. Replicas that vanished by another hand (`docker compose up` removing what its file does not
   list, `docker rm`): the decided count is restored at once, as a ReplicaSet would, without a
   policy round. Changing the count for real is what min, max, paused and the policy are for.
3. Stale clones, made from a template that has since been replaced by one of another
   configuration (`docker compose up` after an edit, a new image): replaced by clones of the new
   template in batches, each batch created before the old one is removed, so the service never
   runs fewer than its decided count.

Only clones are touched; the containers a user made are theirs, and their restart policy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from autoscaler.backoff import Backoff
from autoscaler.labels import CONFIG_HASH, Replica, counted


@dataclass(frozen=True, slots=True)
class Repair:
    remove: tuple[Replica, ...]
    replace: int
    """How many new clones to create for the broken ones that counted as replicas."""
    reasons: tuple[str, ...]
    kind: str = "repair"
    """`repair`, `restore` or `roll`: the event it is told as."""
    surge: bool = False
    """Create the new clones before removing the old ones (they still serve)."""

    @property
    def doing(self) -> str:
        return {"repair": "repairing", "restore": "restoring", "roll": "rolling"}[self.kind]


def restore(replicas: Sequence[Replica], decided: int) -> Repair | None:
    """The clones to create when replicas vanished below the decided count."""
    live = len(counted(replicas))
    if live >= decided:
        return None
    why = f"{decided - live} of {decided} replicas went away outside the autoscaler"
    return Repair((), decided - live, (why,), kind="restore")


def stale(replicas: Sequence[Replica], template: Replica) -> list[Replica]:
    """Running clones whose configuration is not their template's any more: made from a
    template that was since replaced by one of another config hash, image, command or env."""
    config = template.inspect.get("Config") or {}
    own = (template.labels.get(CONFIG_HASH), template.inspect.get("Image"), config.get("Cmd"),
           sorted(config.get("Env") or ()))  # fmt: skip
    out = []
    for r in counted(replicas):
        if not r.is_clone or r.clone_of == template.id:
            continue
        theirs = r.inspect.get("Config") or {}
        if (r.labels.get(CONFIG_HASH), r.inspect.get("Image"), theirs.get("Cmd"),
                sorted(theirs.get("Env") or ())) != own:  # fmt: skip
            out.append(r)
    return out


def roll(replicas: Sequence[Replica], template: Replica, decided: int) -> Repair | None:
    """The next batch of stale clones to replace: half the decided count at a time."""
    old = sorted(stale(replicas, template), key=lambda r: r.number or 0)
    if not old:
        return None
    batch = tuple(old[: max(1, -(-decided // 2))])
    why = (f"{len(old)} clones run the configuration of a replaced template; replacing "
           f"{', '.join(r.name for r in batch)} with clones of {template.name}")  # fmt: skip
    return Repair(batch, len(batch), (why,), kind="roll", surge=True)


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
