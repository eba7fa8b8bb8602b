"""What to mend in a service before deciding its size, in this order:

1. Broken clones, that will not serve again:

    created, never started  an orphan of a scale-up cut short (a crash, a failed start): remove
    exited or dead          and the engine will not restart it (restart policy none, on-failure
                            after a clean exit, or on-failure whose retry limit is used up):
                            remove, and create a replacement
    running but unhealthy   its health check says so: remove, and create a replacement

   A clone an autoscaler instance stopped to remove it (marked so before the stop) and did not
   get to remove (it was frozen, killed or fenced in between) is removed at once.
   A clone someone else stopped is resting, not broken, for STOPPED_GRACE seconds after it stopped
   or after the service's own containers last started: whoever stopped it removes it next
   (`docker compose up` stops what is beyond its scale, then removes it) or starts it again
   (`docker compose start` starts the clones one by one after the template), and a removal of
   ours would race theirs. A resting or paused clone is still there, not gone. Replacements
   only fill the decided count: a clone whose place was already restored goes without one.

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
from dataclasses import dataclass, field, replace

from autoscaler.control.replicas import Replica, counted
from autoscaler.errors import Backoff

STOPPED_GRACE = 10.0
"""Seconds a clone stopped by request is not taken for broken (see above)."""


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


def resting(replica: Replica, wall: float, woke: float) -> bool:
    """A clone stopped by request that its owner may still remove or start again: stopped, or
    the service's own containers started (`woke`), less than STOPPED_GRACE seconds ago."""
    return (
        replica.is_clone
        and replica.status == "exited"
        and not replica.crashed
        and not replica.removing
        and wall - max(replica.finished_at, woke) < STOPPED_GRACE
    )


def heeded(replicas: Sequence[Replica], wall: float) -> Sequence[Replica]:
    """The replicas, each stop counted only while it is heeded: a container still running
    STOPPED_GRACE seconds past its stop timeout after a stop was asked ignored the signal
    (`docker kill -s TERM` to a process that traps it, with no kill to follow), and serves.
    The very same sequence where no stop is unheeded (most rounds: nothing is stopping)."""
    for r in replicas:
        if r.stopping_since > 0:
            break
    else:
        return replicas
    out = []
    for r in replicas:
        if r.stopping and wall - r.stopping_since > r.grace + STOPPED_GRACE:
            r = replace(r, stopping_since=0.0)
        out.append(r)
    return out


def changing(replicas: Sequence[Replica], wall: float) -> list[Replica]:
    """What another hand is changing now: replicas asked to stop that still run, resting
    clones, and containers of the user's created less than STOPPED_GRACE seconds ago and not
    yet started (Compose creates, then starts). While there are any, the service's size is
    theirs to finish changing (`docker compose up`, `down`, `restart` act on several containers
    at once, and the engine tells of each in turn)."""
    since = woke(replicas)
    return [r for r in replicas
            if r.stopping or resting(r, wall, since) or _just_created(r, wall)]  # fmt: skip


def _just_created(replica: Replica, wall: float) -> bool:
    return (not replica.is_clone and replica.status == "created"
            and wall - replica.created_at < STOPPED_GRACE)  # fmt: skip


def held(replicas: Sequence[Replica], wall: float) -> str | None:
    """Why the service is its owner's to change now, or None: none of the user's own containers
    serves (stopped, paused, or each asked to stop: `docker compose stop`, `down`, `restart`,
    `pause`, Compose replacing them), or another hand is changing some of its containers."""
    own = [r for r in replicas if not r.is_clone]
    if any(r.serving for r in own):
        if busy := changing(replicas, wall):
            return (f"another hand is creating, stopping or removing {len(busy)} of its "
                    "containers: not scaling until it is done")  # fmt: skip
        return None
    if any(r.status == "paused" for r in own):
        return "its containers are paused (docker compose pause): not scaling"
    if any(r.stopping for r in own):
        return "its own containers are being stopped or replaced: not scaling"
    return "no container of the service's own is running: not scaling"


def being_removed(replicas: Sequence[Replica], wall: float) -> bool:
    """Whether only clones are left, each on its way out: `docker compose down` removed the
    template first, which is no missing template."""
    if not replicas or not all(r.is_clone for r in replicas):
        return False  # the template is there: what each round of a running service finds
    return len(changing(replicas, wall)) == len(replicas)


def woke(replicas: Sequence[Replica]) -> float:
    """When the latest of the service's own containers started (wall clock)."""
    return max((r.started_at for r in replicas if not r.is_clone), default=0.0)


def present(replicas: Sequence[Replica], wall: float) -> list[Replica]:
    """The replicas the service has, for what is to be restored: those counted, and those held
    by their owner, paused (`docker compose pause`) or resting."""
    since, live = woke(replicas), {r.id for r in counted(replicas)}
    return [r for r in replicas
            if r.id in live or r.status == "paused" or resting(r, wall, since)]  # fmt: skip


def restore(replicas: Sequence[Replica], decided: int, wall: float) -> Repair | None:
    """The clones to create when replicas vanished below the decided count."""
    live = len(present(replicas, wall))
    if live >= decided:
        return None
    why = f"{decided - live} of {decided} replicas went away outside the autoscaler"
    return Repair((), decided - live, (why,), kind="restore")


def stale(replicas: Sequence[Replica], template: Replica) -> list[Replica]:
    """Running clones whose configuration is not their template's any more: made from a
    template that was since replaced by one of another configuration (its fingerprint)."""
    return [r for r in counted(replicas)
            if r.is_clone and r.clone_of != template.id
            and r.fingerprint != template.fingerprint]  # fmt: skip


def roll(replicas: Sequence[Replica], template: Replica, decided: int) -> Repair | None:
    """The next batch of stale clones to replace: half the decided count at a time."""
    old = sorted(stale(replicas, template), key=lambda r: r.number or 0)
    if not old:
        return None
    batch = tuple(old[: max(1, -(-decided // 2))])
    why = (f"{len(old)} clones run the configuration of a replaced template; replacing "
           f"{', '.join(r.name for r in batch)} with clones of {template.name}")  # fmt: skip
    return Repair(batch, len(batch), (why,), kind="roll", surge=True)


def broken(replica: Replica, wall: float, since: float = 0.0) -> str | None:
    """Why a clone will not serve again, or None if it is fine (or not a clone). `wall`: the
    time now, by the wall clock the engine's times are on; `since`: when the service's own
    containers last started (`woke`)."""
    if not replica.is_clone:
        return None
    policy = replica.restart.policy
    exit_code = replica.exit_code or 0
    if replica.removing and not replica.up:
        # Stopped by an autoscaler instance that did not get to remove it (frozen, killed or
        # fenced in between): no owner's stop, and nothing to wait out.
        return f"{replica.name} was being removed by the autoscaler"
    if replica.status == "created":
        return f"{replica.name} was created but never started"
    if replica.status == "dead":
        return f"{replica.name} is dead"
    if replica.running and replica.health == "unhealthy":
        return f"{replica.name} is unhealthy"
    if replica.status != "exited" or resting(replica, wall, since):
        return None
    exited = f"{replica.name} exited with code {exit_code}"
    if replica.oom_killed:
        exited += " (out of memory)"
    if policy == "no" or (policy == "on-failure" and not exit_code):
        return exited
    retries, restarts = replica.restart.retries, replica.restart.count
    if policy == "on-failure" and retries and restarts >= retries:
        return f"{exited}; its restart policy gave up after {restarts} restarts"
    return None


@dataclass(slots=True)
class CrashLoop:
    """One service's repairs in a row; `plan` says what to mend now, if the backoff allows."""

    backoff: Backoff = field(default_factory=lambda: Backoff(start=1.0, cap=60.0, quiet=300.0))

    def plan(
        self, replicas: Sequence[Replica], now: float, wall: float, decided: int
    ) -> Repair | None:
        """What to mend now: `now` on the monotonic clock the backoff keeps, `wall` on the
        engine's; replacements up to the `decided` count."""
        since = woke(replicas)
        found = [(r, why) for r in replicas if (why := broken(r, wall, since)) is not None]
        if not found or not self.backoff.ready(now):
            return None
        self.backoff.failed(now)
        remove = tuple(r for r, _ in found)
        staying = [r for r in present(replicas, wall) if r not in remove]
        return Repair(remove, max(0, decided - len(staying)), tuple(why for _, why in found))
