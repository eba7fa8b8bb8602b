"""The ground floor: the label keys, and which service a container belongs to by its labels.
Everything else builds on these words.

This module reads labels; it writes nothing and loads no policy (control/spec.py turns a
template's labels into a validated spec, control/replicas.py says which replicas count).

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
from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

PREFIX = "autoscaler."
ENABLE = "autoscaler.enable"
SERVICE = "autoscaler.service"
CLONE_OF = "autoscaler.clone-of"
MIN = "autoscaler.min"
MAX = "autoscaler.max"
POLICY = "autoscaler.policy"
PAUSED = "autoscaler.paused"
ALLOW_PRIVILEGED = "autoscaler.allow-privileged"
"""`true` lets a service whose template is privileged (or adds capabilities, binds the engine's
socket) be cloned, every clone as privileged; without it that template is a label error."""
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


class ServiceKey(NamedTuple):
    """A service, as the engine names it. A named tuple, not a dataclass: every round hashes,
    compares and sorts each service's key several times (the fleet's controllers, the samples,
    the controls), and a tuple does that in C, a frozen dataclass in Python (at 500 services, the
    fleet's membership test and sort alone: 450 µs a round, against 100)."""

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
"""Set on a Swarm service's replicas by the Swarm backend (as the engine sets it on its tasks)."""


def opted_in(labels: Mapping[str, str]) -> bool:
    """True when the container carries `autoscaler.enable`, whatever its value: a wrong value is
    reported by `spec.parse`, not silently ignored. A Swarm task's container is Swarm's: its
    service is scaled as a Swarm service (backends/swarm), never cloned. A one-off of `docker
    compose run` (a migration, a shell) is the user's task: never a template, never counted,
    sampled, cloned, repaired, woken or removed."""
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


def timestamp(value: str | None) -> float:
    """Docker's RFC 3339 times carry nanoseconds, which fromisoformat does not take."""
    if not value or value.startswith("0001-"):
        return 0.0
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed).timestamp()
