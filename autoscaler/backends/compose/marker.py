"""The record, on the engine, that the autoscaler put a service to sleep: a marker container.

A stopped container does not say who stopped it: `docker compose stop` and the autoscaler's own
stop leave the same state, and the engine's events name no actor. So before it stops a service's
own containers the autoscaler creates a marker: a container that is never started, named after
the service, labelled with the service and the containers it stops. While the marker exists the
service is asleep and the autoscaler wakes it on demand, even after a restart of its own; a
service stopped without one is its owner's stop, and is left alone. A wake starts the containers
the marker names, and only those: one its owner had stopped before the sleep stays stopped.
Whoever starts the service again (a wake, or its owner's `docker compose up -d`) ends the sleep:
the marker is removed.

The marker is created from the template's own image (no image to pull or load), on no network,
with no restart policy: it costs a name and a few kilobytes, and needs only the containers API.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiodocker

from autoscaler.backends.docker.client import engine_errors
from autoscaler.control.replicas import Replica
from autoscaler.errors import EngineError
from autoscaler.labels import ASLEEP, ServiceKey

# On the marker: ASLEEP names the service it puts to sleep (`project/service`).
STOPPED = "autoscaler.asleep.containers"
"""On the marker: the ids of the service's own containers the sleep stopped (a JSON list)."""
SINCE = "autoscaler.asleep.since"


def marker_name(key: ServiceKey, kind: str = "asleep") -> str:
    """`autoscaler-asleep-shop-web-1a2b3c4d`: readable, and unique per service even where
    names differ only in characters a container name cannot hold. (`kind`: what the record
    holds; `control` for an operator's control, controls.py.)"""
    readable = re.sub(r"[^a-zA-Z0-9_.-]+", "-", f"{key.project}-{key.service}").strip("-.")[:80]
    digest = hashlib.sha256(str(key).encode()).hexdigest()[:8]
    return f"autoscaler-{kind}-{readable}-{digest}"


async def mark(docker: aiodocker.Docker, key: ServiceKey, template: Replica,
               stopping: Sequence[Replica]) -> None:  # fmt: skip
    """Record that the service goes to sleep, before anything of it stops; a marker there
    already (a sleep that did not finish) stands."""
    config: dict[str, Any] = {
        "Image": template.image,
        "Cmd": ["asleep"],
        "Labels": {
            ASLEEP: str(key),
            STOPPED: json.dumps(sorted(r.id for r in stopping)),
            SINCE: f"{time.time():.3f}",
        },
        "HostConfig": {"NetworkMode": "none", "RestartPolicy": {"Name": "no"}},
    }
    try:
        with engine_errors("marking the service asleep: POST /containers/create", str(key)):
            await docker.containers.create(config, name=marker_name(key))
    except EngineError as exc:
        if exc.status != 409:
            raise


async def asleep(docker: aiodocker.Docker, key: ServiceKey) -> bool:
    """Whether the autoscaler put the service to sleep (its marker exists)."""
    try:
        with engine_errors("reading the service's sleep marker", str(key)):
            await docker.containers.get(marker_name(key))
    except EngineError as exc:
        if exc.status == 404:
            return False
        raise
    return True


async def stopped(docker: aiodocker.Docker, key: ServiceKey) -> frozenset[str] | None:
    """The ids of the containers the service's sleep stopped, as its marker records them; None
    without a marker, or one whose record cannot be read."""
    try:
        with engine_errors("reading the service's sleep marker", str(key)):
            found = await docker.containers.get(marker_name(key))
    except EngineError as exc:
        if exc.status == 404:
            return None
        raise
    return recorded((found["Config"] or {}).get("Labels") or {})


def recorded(labels: Mapping[str, str]) -> frozenset[str] | None:
    """The ids a marker's labels name as stopped by the sleep; None where they name none."""
    try:
        ids = json.loads(labels[STOPPED])
    except (KeyError, ValueError):
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return None
    return frozenset(ids)


async def unmark(docker: aiodocker.Docker, key: ServiceKey) -> bool:
    """End the record of a sleep; True if there was one."""
    try:
        with engine_errors("removing the service's sleep marker", str(key)):
            await docker.containers.container(marker_name(key)).delete(force=True)
    except EngineError as exc:
        if exc.status == 404:
            return False
        raise
    return True
