"""The ground floor: the label keys, which service a container belongs to, which of its containers
count as replicas and which one is the template. Everything else builds on these words.

This module reads labels and inspect data; it writes nothing and loads no policy (`spec.py`
turns a template's labels into a validated spec).

    autoscaler.enable=true        opt in (required)
    autoscaler.service=NAME       the service outside Compose (Compose labels name it otherwise)
    autoscaler.min=1              replicas never go below this
    autoscaler.max=N              replicas never go above this (required)
    autoscaler.policy=NAME        target-tracking by default; its options are labels too
    autoscaler.paused=false       hold the service at its current count
    autoscaler.clone-of=ID        set by the autoscaler on the containers it creates
    autoscaler.asleep             set by the autoscaler where it put a service to zero: on the
                                  engine's sleep marker, or on the Swarm service
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from autoscaler.errors import TemplateError

PREFIX = "autoscaler."
ENABLE = "autoscaler.enable"
SERVICE = "autoscaler.service"
CLONE_OF = "autoscaler.clone-of"
MIN = "autoscaler.min"
MAX = "autoscaler.max"
POLICY = "autoscaler.policy"
PAUSED = "autoscaler.paused"
ASLEEP = "autoscaler.asleep"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_NUMBER = "com.docker.compose.container-number"
CONFIG_HASH = "com.docker.compose.config-hash"
"""Compose's hash of a service's configuration: a container whose hash differs is out of date."""
COMPOSE_ONEOFF = "com.docker.compose.oneoff"
"""`True` on the container of `docker compose run` (both Compose generations): a one-off task
that carries the service's labels, and so its `autoscaler.enable`, but is no replica of it."""
STANDALONE_PROJECT = "standalone"


@dataclass(frozen=True, slots=True, order=True)
class ServiceKey:
    project: str
    """The Compose project, or the Swarm stack."""
    service: str
    scope: str = "local"
    """As the engine's own events say: `local` (a Compose service on this engine) or `swarm`
    (a Swarm service), so that a project and a stack of the same name never share a key."""

    @property
    def namespace(self) -> str:
        """`shop` for a Compose project, `swarm/shop` for a Swarm stack: where its topics live."""
        return self.project if self.scope == "local" else f"{self.scope}/{self.project}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.service}"


SWARM_TASK = "com.docker.swarm.task.id"
SWARM_SERVICE = "com.docker.swarm.service.name"
"""Set on a Swarm service's replicas by swarm.py (as the engine sets it on its tasks)."""


def opted_in(labels: Mapping[str, str]) -> bool:
    """True when the container carries `autoscaler.enable`, whatever its value: a wrong value is
    reported by `spec.parse`, not silently ignored. A Swarm task's container is Swarm's: its
    service is scaled as a Swarm service (swarm.py), never cloned. A one-off of `docker compose
    run` (a migration, a shell) is the user's task: never a template, never counted, sampled,
    cloned, repaired, woken or removed."""
    return ENABLE in labels and SWARM_TASK not in labels and not one_off(labels)


def one_off(labels: Mapping[str, str]) -> bool:
    """Whether Compose made this container for `run` (`com.docker.compose.oneoff=True`)."""
    return labels.get(COMPOSE_ONEOFF, "").lower() == "true"


def service_key(labels: Mapping[str, str], container_name: str) -> ServiceKey:
    if SERVICE in labels:
        return ServiceKey(labels.get(COMPOSE_PROJECT, STANDALONE_PROJECT), labels[SERVICE])
    if COMPOSE_PROJECT in labels and COMPOSE_SERVICE in labels:
        return ServiceKey(labels[COMPOSE_PROJECT], labels[COMPOSE_SERVICE])
    # Without a service name the container is a service of its own, so the error has a home.
    return ServiceKey(STANDALONE_PROJECT, container_name)


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
    cpu_limit: float | None
    """Cores it may use, None without a limit."""
    memory_limit: int | None
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

    @property
    def running(self) -> bool:
        return self.status == "running"

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
    def exit(self) -> str:
        """How it ended, in words: `exit code 3`, `exit code 137 (out of memory)`."""
        code = "?" if self.exit_code is None else self.exit_code
        return f"exit code {code} (out of memory)" if self.oom_killed else f"exit code {code}"


def counted(replicas: Sequence[Replica]) -> list[Replica]:
    """The replicas a service has now: running, or restarting under its restart policy, or a
    Swarm task on its way (the count Swarm was asked for, as the HPA counts a scale's replicas)."""
    return [r for r in replicas if r.status in ("running", "restarting", "starting")]


def template_of(key: ServiceKey, replicas: Sequence[Replica]) -> Replica:
    """The container clones are made from: one the user created (not a clone), serving first
    (one on its way out is being replaced or stopped by its owner)."""
    originals = [r for r in replicas if not r.is_clone]
    if not originals:
        raise TemplateError(
            str(key),
            "no template container: every container of this service was created by the "
            "autoscaler; recreate the service (docker compose up) to give it one",
        )
    return min(originals, key=lambda r: (not r.serving, not r.running, r.number or 0))


def timestamp(value: str | None) -> float:
    """Docker's RFC 3339 times carry nanoseconds, which fromisoformat does not take."""
    if not value or value.startswith("0001-"):
        return 0.0
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed).timestamp()
