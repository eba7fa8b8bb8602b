"""What the core knows of a service's replicas: each one's plain facts (`Replica`, filled in by
its backend), its reading (`Sample`, made by a sampler), which count and which is the template,
and what an action did (`ScaleResult`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from autoscaler.errors import AutoscalerError, TemplateError
from autoscaler.labels import ServiceKey
from policies.records import record


@dataclass(frozen=True, slots=True)
class Restart:
    """A replica's restart policy, and how often the engine restarted it under it."""

    policy: str = "no"
    """`no`, `always`, `unless-stopped` or `on-failure`."""
    retries: int = 0
    """For `on-failure`: how many restarts it allows (0: without a limit)."""
    count: int = 0
    """Restarts so far."""


@dataclass(frozen=True, slots=True)
class Replica:
    """One replica of a service as its backend last saw it, in plain facts: what the core
    decides on. The backend fills it in (a container's inspect, a Swarm task); nothing of the
    engine's own data travels with it."""

    id: str
    name: str
    key: ServiceKey
    labels: Mapping[str, str]
    status: str
    """created, running, paused, restarting, exited, dead; or `starting`, a Swarm task on its
    way to running."""
    health: str | None
    """Its health check's verdict where it has one: starting, healthy, unhealthy."""
    pid: int
    """Its main process on the host, 0 if none runs (or it is not on this host)."""
    started_at: float
    number: int | None
    clone_of: str | None
    """The template it was cloned from: a clone the autoscaler made, which it removes, repairs
    and replaces. A replica that is no clone is the user's own (never removed; a template; its
    stop is its owner's word), or its scheduler's."""
    cpu_limit: float | None
    """Cores it may use, None without a limit."""
    memory_limit: int | None
    scheduled: bool = False
    """Placed and mended by the backend's own scheduler (a Swarm task): only counted."""
    image: str = ""
    """The image it runs, by id."""
    created_at: float = 0.0
    finished_at: float = 0.0
    """When it last exited (wall clock), 0 if it never did."""
    exit_code: int | None = None
    oom_killed: bool = False
    restart: Restart = Restart()
    stop_timeout: float | None = None
    """Seconds a stop waits for it before killing it, where it has its own."""
    fingerprint: str = ""
    """Its configuration, summed up: two replicas with the same fingerprint run the same
    configuration (the backend says what counts: image, command, environment, Compose's hash)."""
    unclonable: str | None = None
    """Why clones of it could not work, or None."""
    privileges: tuple[str, ...] = ()
    """What it may do beyond an ordinary container (privileged, added capabilities, the
    engine's socket bound), in words: a template's pass to every clone."""
    node: str | None = None
    """The node it runs on, where the backend places replicas on several (a Swarm task)."""
    unseen: str | None = None
    """Why nothing can be known of it now, where the engine's state does not say: a Swarm task
    whose node's agent is silent. Such a replica is not a sample, and the count never falls."""
    crashed: bool = False
    """It exited (or died) without anyone asking it to stop: a crash or an OOM kill, not its
    owner's `docker compose stop`. The inventory knows it from the engine's events."""
    stopping_since: float = 0.0
    """When someone asked it to stop (the engine's `kill` with a stop signal, wall clock), while
    it still runs: `docker compose down`, `stop`, `restart`, or Compose replacing it; 0 if no
    one did. It is on its way out: no template to clone, nor a replica to count on."""
    removing: bool = False
    """A clone an autoscaler instance began to remove (marked before its stop): its stop is no
    owner's word to wait out, and a removal cut short (its instance frozen, killed, fenced) is
    finished by whichever instance leads next."""

    @property
    def grace(self) -> float:
        """Seconds its stop waits before the kill: its own stop timeout (0 kills at once, as
        `stop_grace_period: 0s` asks), else the engine's default of 10."""
        return self.stop_timeout if self.stop_timeout is not None else 10.0

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def up(self) -> bool:
        """Its process is the engine's to end: running, restarting or paused (what a stop
        stops, and a start need not start)."""
        return self.status in ("running", "restarting", "paused")

    @property
    def stopping(self) -> bool:
        return self.stopping_since > 0

    @property
    def serving(self) -> bool:
        """Running, and nobody asked it to stop."""
        return self.running and not self.stopping

    @property
    def is_clone(self) -> bool:
        return self.clone_of is not None

    @property
    def users(self) -> bool:
        """The user's own: never removed by the autoscaler."""
        return not self.is_clone and not self.scheduled

    @property
    def exit(self) -> str:
        """How it ended, in words: `exit code 3`, `exit code 137 (out of memory)`."""
        code = "?" if self.exit_code is None else self.exit_code
        return f"exit code {code} (out of memory)" if self.oom_killed else f"exit code {code}"


def counted(replicas: Sequence[Replica]) -> list[Replica]:
    """The replicas a service has now: running, or restarting under its restart policy, or a
    Swarm task on its way (the count Swarm was asked for, as the HPA counts a scale's replicas)."""
    return [r for r in replicas if r.status in ("running", "restarting", "starting")]


def own(replicas: Sequence[Replica]) -> int | None:
    """How many of the service's replicas are the user's own (never removed); None where a
    scheduler places every one (a Swarm service)."""
    if replicas and all(r.scheduled for r in replicas):
        return None
    return sum(1 for r in replicas if r.users)


def victims(live: Sequence[Replica], count: int) -> list[Replica]:
    """The `count` clones a scale-down removes: those whose removal was begun already, then
    unhealthy ones, then those without a health verdict, then healthy ones; newest first within
    each. Never a container the user made."""
    clones = [r for r in live if r.is_clone]
    order = sorted(
        clones,
        key=lambda r: (
            not r.removing,  # one whose removal was begun already first
            r.health == "healthy",
            r.health != "unhealthy",
            -(r.number or 0),
        ),
    )
    return order[:count]


def woken(replicas: Sequence[Replica], stopped: frozenset[str] | None) -> list[Replica]:
    """The containers a wake starts: the user's own that the sleep stopped (`stopped`, as the
    backend recorded them) and that are stopped still; one its owner had stopped before the
    sleep stays stopped. Where the record names none of those there now (none was read, or its
    owner replaced them while asleep), every stopped container of the user's: a wake starts
    something."""
    down = [r for r in replicas if not r.is_clone and not r.up]
    return [r for r in down if stopped is not None and r.id in stopped] or down


def template_of(key: ServiceKey, replicas: Sequence[Replica]) -> Replica:
    """The container clones are made from: one the user created (not a clone), serving first
    (one on its way out is being replaced or stopped by its owner)."""
    originals = [r for r in replicas if not r.is_clone]
    if not originals:
        raise TemplateError(
            str(key),
            "no template container: every container of this service was created by the "
            "autoscaler (a clone that outlived its template, which `docker compose up` keeps as "
            f"the service's own); recreate it to give it one: docker compose up -d "
            f"--force-recreate {key.service}",
        )
    return min(originals, key=lambda r: (not r.serving, not r.running, r.number or 0))


@record
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


@dataclass(slots=True)
class ScaleResult:
    key: ServiceKey
    before: int
    created: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    """Clones another hand had removed, or was removing, when this action came to remove them
    (`docker compose up` removes what is beyond its scale): no longer counted in `after`, which
    stays the real count, but no change of this action's."""
    stopped: list[str] = field(default_factory=list)
    """The user's own containers a sleep stopped (never removed)."""
    started: list[str] = field(default_factory=list)
    """The user's own containers a wake started again."""
    errors: list[AutoscalerError] = field(default_factory=list)
    seconds: float = 0.0
    target: int | None = None
    """Set where the count is asked of a scheduler (Swarm) rather than made container by
    container: the count the action leaves."""

    @property
    def after(self) -> int:
        if self.target is not None:
            return self.target
        return (self.before + len(self.created) + len(self.started)
                - len(self.removed) - len(self.gone) - len(self.stopped))  # fmt: skip

    @property
    def changed(self) -> bool:
        """Whether the action itself changed the service: a container it created, removed,
        stopped or started, or a count it set. One that only found its clones gone did not, and
        is no scale action: neither told as one nor counted in the rates and cooldowns."""
        return self.target is not None or bool(
            self.created or self.removed or self.stopped or self.started
        )
