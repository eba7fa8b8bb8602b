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
from types import MappingProxyType
from typing import Any

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
class Replica:
    """One opted-in container, as its last inspect showed it."""

    id: str
    name: str
    key: ServiceKey
    labels: Mapping[str, str]
    status: str
    """Docker's State.Status: created, running, paused, restarting, exited, dead; or `starting`,
    a Swarm task on its way to running."""
    health: str | None
    """State.Health.Status when the image or service has a health check: starting, healthy..."""
    pid: int
    started_at: float
    number: int | None
    clone_of: str | None
    cpu_limit: float | None
    """Cores the container may use (NanoCpus, CFS quota/period or cpuset), None without a limit."""
    memory_limit: int | None
    inspect: Mapping[str, Any]
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
    def finished_at(self) -> float:
        """When it last exited (wall clock), 0 if it never did."""
        return timestamp((self.inspect.get("State") or {}).get("FinishedAt"))

    @property
    def is_clone(self) -> bool:
        return self.clone_of is not None

    @property
    def exit(self) -> str:
        """How it ended, in words: `exit code 3`, `exit code 137 (out of memory)`."""
        state = self.inspect.get("State") or {}
        words = f"exit code {state.get('ExitCode', '?')}"
        return f"{words} (out of memory)" if state.get("OOMKilled") else words

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any]) -> Replica:
        config, host, state = data["Config"], data["HostConfig"], data["State"]
        labels = MappingProxyType(dict(config.get("Labels") or {}))
        name = data["Name"].lstrip("/")
        number = labels.get(COMPOSE_NUMBER, "")
        return cls(
            id=data["Id"],
            name=name,
            key=service_key(labels, name),
            labels=labels,
            status=state.get("Status", "unknown"),
            health=(state.get("Health") or {}).get("Status"),
            pid=int(state.get("Pid") or 0),
            started_at=timestamp(state.get("StartedAt")),
            number=int(number) if number.isdigit() else None,
            clone_of=labels.get(CLONE_OF),
            cpu_limit=cpu_limit(host),
            memory_limit=int(host.get("Memory") or 0) or None,
            inspect=data,
        )


STOP_EXITS = frozenset({0, 128 + 2, 128 + 9, 128 + 15})
"""Exit codes of a container that was asked to stop: it finished, or ended by SIGINT, SIGKILL or
SIGTERM (`docker stop` sends TERM, then KILL after the grace period)."""


def crashed_by_its_state(inspect: Mapping[str, Any]) -> bool:
    """For a container that ended before anyone watched its events: whether its state reads
    as a crash (killed for memory, an engine error, an exit code no stop gives)."""
    state = inspect.get("State") or {}
    if state.get("Status") not in ("exited", "dead"):
        return False
    if state.get("OOMKilled") or state.get("Error") or state.get("Status") == "dead":
        return True
    return state.get("ExitCode") not in STOP_EXITS


def counted(replicas: Sequence[Replica]) -> list[Replica]:
    """The replicas a service has now: running, or restarting under its restart policy, or a
    Swarm task on its way (the count Swarm was asked for, as the HPA counts a scale's replicas)."""
    return [r for r in replicas if r.status in ("running", "restarting", "starting")]


def unclonable(template: Replica) -> str | None:
    """Why clones of this container could not work, or None: one that shares a network stack
    (another container's, or the host's with ports to listen on) has clones that would bind the
    very ports it binds, and crash-loop."""
    host = template.inspect.get("HostConfig") or {}
    mode = str(host.get("NetworkMode") or "")
    if mode.startswith("container:"):
        other = mode.removeprefix("container:")[:12]
        return (f"it shares the network stack of container {other} (network_mode: service: or "
                "container:), and so would every clone, binding the same ports")  # fmt: skip
    exposed = (template.inspect.get("Config") or {}).get("ExposedPorts")
    if mode == "host" and (host.get("PortBindings") or exposed):
        return ("it uses the host's network (network_mode: host) and has ports: every clone "
                "would bind the same ones")  # fmt: skip
    return None


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


def cpu_limit(host: Mapping[str, Any]) -> float | None:
    if host.get("NanoCpus"):
        return float(host["NanoCpus"]) / 1e9
    quota, period = host.get("CpuQuota") or 0, host.get("CpuPeriod") or 100_000
    if quota > 0:
        return float(quota) / float(period)
    cpuset = host.get("CpusetCpus") or ""
    if cpuset:
        return float(_count_cpus(cpuset))
    return None


def _count_cpus(cpuset: str) -> int:
    count = 0
    for part in cpuset.split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


def timestamp(value: str | None) -> float:
    """Docker's RFC 3339 times carry nanoseconds, which fromisoformat does not take."""
    if not value or value.startswith("0001-"):
        return 0.0
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed).timestamp()
