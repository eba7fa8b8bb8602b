"""Operators' controls of Compose services (control/controls.py), kept on the engine: a record
container per service, created and never started, its labels holding the service's latest
command. Every instance on the engine reads the same records, so a pause or a hold outlives a
restart, a kill -9 and a change of leader, and an instance that stands by can take a command
through its API for the leader to obey.

A record is read with one listing a round (a label filter: all services at once), which the round
waits for only where what it read last is stale (`stale`: another lease term, or too old); a command
replaces the service's record (removed, then created: the newest command wins where two meet).
It is made from the service's own image, on no network, with no restart policy, as the sleep's
marker is (marker.py): it needs only the containers API. Compose does not see it (it has none of
Compose's labels), so `docker compose down` and `up` leave it: a pause set before a redeploy still
holds after it.
"""

from __future__ import annotations

import logging
from typing import Any

import aiodocker

from autoscaler.backends.compose.marker import marker_name
from autoscaler.backends.docker.client import engine_errors, label_filter
from autoscaler.control.controls import SERVICE, Control
from autoscaler.errors import EngineError
from autoscaler.labels import ServiceKey

logger = logging.getLogger(__name__)


class ControlRecords:
    def __init__(self, docker: aiodocker.Docker) -> None:
        self._docker = docker
        self._by_service: dict[str, Control] = {}  # `project/service` -> its latest command
        self._read: tuple[int | None, float] | None = None  # the last listing's term, and when
        self._written: dict[str, Control] = {}  # commands this instance wrote while it lists

    def stale(self, term: int | None, now: float, longest: float) -> bool:
        """Whether the records must be read again before a round decides on them: never read
        under the lease `term` this instance acts under (it took the lease over: another
        instance may have been told a command meanwhile), or not within `longest` seconds
        (`now` on the clock `read` was given)."""
        return self._read is None or self._read[0] != term or now - self._read[1] > longest

    def get(self, key: ServiceKey) -> Control | None:
        return self._by_service.get(str(key))

    async def read(self, term: int | None, now: float) -> None:
        """Every service's record, as the engine has them now; `term`, the lease's this
        instance acts under, and `now` (a monotonic clock) say when (`stale`)."""
        self._written = {}
        with engine_errors("reading operators' controls: GET /containers/json", None):
            listed = await self._docker.containers.list(all=True, filters=label_filter(SERVICE))
        found: dict[str, Control] = {}
        for container in listed:
            labels = container["Labels"] or {}
            control = Control.from_record(labels)
            if control is None:
                logger.warning("%s: its control record %s cannot be read; not obeyed",
                               labels.get(SERVICE), container.id[:12])  # fmt: skip
                continue
            found[labels[SERVICE]] = control
        # A command written while the engine listed may be missing from its answer: it holds.
        self._by_service = found | self._written
        self._read = (term, now)

    async def write(self, key: ServiceKey, control: Control, image: str) -> None:
        """The service's record replaced by `control`; obeyed from this instance's next look."""
        name = marker_name(key, "control")
        config: dict[str, Any] = {
            "Image": image,
            "Cmd": ["control"],
            "Labels": control.record(str(key)),
            "HostConfig": {"NetworkMode": "none", "RestartPolicy": {"Name": "no"}},
        }
        for attempt in range(3):
            try:
                with engine_errors("recording the control: POST /containers/create", str(key)):
                    await self._docker.containers.create(config, name=name)
                break
            except EngineError as exc:
                if exc.status != 409 or attempt == 2:
                    raise
            # The service's earlier record: replaced (gone already where another writer was
            # quicker; then the create is tried again).
            try:
                with engine_errors("replacing the control's record", str(key)):
                    await self._docker.containers.container(name).delete(force=True)
            except EngineError as exc:
                if exc.status != 404:
                    raise
        self._by_service[str(key)] = self._written[str(key)] = control
