"""An in-memory backend: a service's replicas as plain facts in a dict, with the verbs of the
Compose backend (control.ports.Backend: scale_to, repair, sleep, wake, asleep, awake) and its
view (the context's `view`, `refresh`, `restart`). For the core's unit tests, with no engine on
the machine; tests/conformance holds it to the same rules as the real backends, so that it
cannot drift from them. In the package, so that mypy keeps it honest.

    add(key, ...)        a container of the user's, as `docker compose up` makes it
    crash(id), stop(id)  what a container's process or its owner does to it
    remove(id)           another hand's removal (`docker compose up` beyond its scale)
    fail(verb)           the next call of a verb fails as an engine would refuse it
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from autoscaler.control.replicas import (
    Replica,
    ScaleResult,
    counted,
    template_of,
    victims,
    woken,
)
from autoscaler.errors import EngineError, TemplateError
from autoscaler.labels import (
    CLONE_OF,
    COMPOSE_NUMBER,
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    ServiceKey,
)


class Fake:
    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._replicas: dict[str, Replica] = {}
        self._asleep: dict[ServiceKey, frozenset[str]] = {}  # -> the ids its sleep stopped
        self._failing: dict[str, str] = {}  # verb -> the message it fails with, once
        self._ids = itertools.count(1)
        self.calls: list[str] = []
        """Every verb called, in order: `scale_to shop/web 3`, `sleep shop/web`."""

    # -- what the world does to it -----------------------------------------------------------

    def add(
        self,
        key: ServiceKey,
        *,
        number: int = 1,
        labels: Mapping[str, str] | None = None,
        cpu_limit: float | None = 0.5,
        status: str = "running",
        fingerprint: str = "v1",
    ) -> Replica:
        """A container of the user's (`docker compose up`), running unless `status` says;
        `fingerprint`: its configuration (a new release is another)."""
        made = Replica(
            id=f"c{next(self._ids):04d}", name=f"{key.project}-{key.service}-{number}", key=key,
            labels={**(labels or {}), COMPOSE_PROJECT: key.project, COMPOSE_SERVICE: key.service,
                    COMPOSE_NUMBER: str(number)}, status=status, health=None,
            pid=1000 + number, started_at=self._wall(), number=number, clone_of=None,
            cpu_limit=cpu_limit, memory_limit=None, created_at=self._wall(),
            fingerprint=fingerprint, stop_timeout=10,
        )  # fmt: skip
        self._replicas[made.id] = made
        return made

    def crash(self, replica_id: str, exit_code: int = 1) -> None:
        """Its process ends on its own: exited, crashed."""
        self._set(replica_id, status="exited", exit_code=exit_code, crashed=True,
                  finished_at=self._wall())  # fmt: skip

    def stop(self, replica_id: str) -> None:
        """Its owner stops it (`docker compose stop`): exited, asked."""
        self._set(replica_id, status="exited", exit_code=0, crashed=False,
                  finished_at=self._wall(), stopping_since=0.0)  # fmt: skip

    def start(self, replica_id: str) -> None:
        self._set(replica_id, status="running", started_at=self._wall(), stopping_since=0.0)

    def remove(self, replica_id: str) -> None:
        """Another hand removes it."""
        self._replicas.pop(replica_id, None)

    def fail(self, verb: str, message: str = "refused") -> None:
        """The next `verb` fails as the engine would refuse it."""
        self._failing[verb] = message

    # -- the view, as the context reads it ------------------------------------------------------

    def services(self) -> dict[ServiceKey, list[Replica]]:
        grouped: dict[ServiceKey, list[Replica]] = {}
        for r in sorted(self._replicas.values(), key=lambda r: (r.number or 0, r.name)):
            grouped.setdefault(r.key, []).append(r)
        return grouped

    def view(self, key: ServiceKey) -> list[Replica]:
        return self.services().get(key, [])

    async def refresh(self, replica_id: str) -> Replica | None:
        return self._replicas.get(replica_id)

    async def restart(self, replicas: Sequence[Replica]) -> None:
        """The sample windows start afresh: nothing to do without samples of its own."""

    # -- the verbs (control.ports.Backend) -------------------------------------------------------

    async def scale_to(
        self, key: ServiceKey, replicas: Sequence[Replica], target: int
    ) -> ScaleResult:
        self._call(f"scale_to {key} {target}")
        live = counted(replicas)
        if target > len(live):
            return self._change(key, replicas, remove=(), create=target - len(live))
        return self._change(key, replicas, remove=victims(live, len(live) - target), create=0)

    async def repair(
        self,
        key: ServiceKey,
        replicas: Sequence[Replica],
        old: Sequence[Replica],
        replace: int,
        *,
        surge: bool = False,
    ) -> ScaleResult:
        self._call(f"repair {key} -{len(old)} +{replace}")
        return self._change(key, replicas, remove=old, create=replace)

    async def sleep(self, key: ServiceKey, replicas: Sequence[Replica]) -> ScaleResult:
        self._call(f"sleep {key}")
        result = ScaleResult(key, len(counted(replicas)))
        own = [r.id for r in replicas if not r.is_clone and r.up]
        self._asleep[key] = frozenset(own)
        for r in replicas:
            if r.is_clone:
                self._replicas.pop(r.id, None)
                result.removed.append(r.id)
            elif r.id in own:
                self.stop(r.id)
                result.stopped.append(r.id)
        return result

    async def wake(self, key: ServiceKey, replicas: Sequence[Replica]) -> ScaleResult:
        self._call(f"wake {key}")
        result = ScaleResult(key, len(counted(replicas)))
        for r in woken(replicas, self._asleep.get(key)):  # what the sleep stopped, as Compose's
            self.start(r.id)
            result.started.append(r.id)
        if result.started:
            self._asleep.pop(key, None)
        return result

    async def asleep(self, key: ServiceKey) -> bool:
        return key in self._asleep

    async def awake(self, key: ServiceKey) -> bool:
        return self._asleep.pop(key, None) is not None

    # -- inside ------------------------------------------------------------------------------

    def _call(self, call: str) -> None:
        self.calls.append(call)
        verb = call.split()[0]
        if verb in self._failing:
            raise EngineError(self._failing.pop(verb), service=call.split()[1], status=500)

    def _change(
        self, key: ServiceKey, replicas: Sequence[Replica], *, remove: Sequence[Replica],
        create: int,
    ) -> ScaleResult:  # fmt: skip
        result = ScaleResult(key, len(counted(replicas)))
        for r in remove:
            if not r.is_clone:
                raise TemplateError(str(key), f"refusing to remove {r.name}: not a clone")
            if self._replicas.pop(r.id, None) is not None:
                result.removed.append(r.id)
            else:  # removed by another hand since the view the action was given
                result.gone.append(r.id)
        if create:
            template = template_of(key, replicas)
            taken = {r.number for r in self.view(key)}
            numbers = (n for n in itertools.count(1) if n not in taken)
            for number in itertools.islice(numbers, create):
                clone = replace(
                    template, id=f"c{next(self._ids):04d}",
                    name=f"{key.project}-{key.service}-{number}", number=number,
                    clone_of=template.id, status="running", started_at=self._wall(),
                    created_at=self._wall(), pid=2000 + number, crashed=False,
                    stopping_since=0.0, finished_at=0.0, exit_code=None,
                    labels={**template.labels, COMPOSE_NUMBER: str(number), CLONE_OF: template.id},
                )  # fmt: skip
                self._replicas[clone.id] = clone
                result.created.append(clone.id)
        return result

    def _set(self, replica_id: str, **changes: object) -> None:
        found = self._replicas[replica_id]
        self._replicas[replica_id] = replace(found, **changes)  # type: ignore[arg-type]
