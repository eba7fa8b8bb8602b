"""The fleet: the controllers of one backend's services, one per service, made when the service
appears and gone with it (the Compose services of the engine, or the Swarm services of the
cluster).

    step(services)   step each service's controller; a service that is gone for good takes its
                     controller with it: its series leave /metrics, its retained state is
                     cleared from the broker
    mend(services)   between rounds, for services the engine's events named: each controller
                     restores, rolls or repairs at once (never decides a size)
    release()        this instance no longer leads: every controller not in the middle of an
                     action is dropped, so that what another instance did meanwhile (a
                     scale-down, say) is read afresh, never undone from a stale decided count
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence

from autoscaler.control.context import Context
from autoscaler.control.controller import Controller
from autoscaler.control.replicas import Replica, Sample
from autoscaler.labels import ServiceKey


class Fleet:
    def __init__(self, context: Context) -> None:
        self._ctx = context
        self._by_key: dict[ServiceKey, Controller] = {}

    def __iter__(self) -> Iterator[ServiceKey]:
        return iter(self._by_key)

    def items(self) -> list[tuple[ServiceKey, Controller]]:
        return list(self._by_key.items())

    def values(self) -> list[Controller]:
        return list(self._by_key.values())

    def get(self, key: ServiceKey) -> Controller | None:
        return self._by_key.get(key)

    def step(
        self,
        tg: asyncio.TaskGroup,
        services: Mapping[ServiceKey, Sequence[Replica]],
        samples: Mapping[str, Sample],
    ) -> None:
        for key in [k for k, c in self._by_key.items() if k not in services and not c.busy]:
            self._by_key.pop(key).close()
        for key, replicas in sorted(services.items()):
            controller = self._by_key.get(key)
            if controller is None:
                controller = self._by_key[key] = Controller(key, self._ctx)
            controller.step(tg, replicas, samples)

    def look(
        self,
        tg: asyncio.TaskGroup,
        services: Mapping[ServiceKey, Sequence[Replica]],
        samples: Mapping[str, Sample],
    ) -> None:
        """Step these services' controllers between rounds (the others are not looked at)."""
        for key, replicas in sorted(services.items()):
            if (controller := self._by_key.get(key)) is not None:
                controller.step(tg, replicas, samples)

    def mend(self, tg: asyncio.TaskGroup, services: Mapping[ServiceKey, Sequence[Replica]]) -> None:
        for key, replicas in sorted(services.items()):
            if (controller := self._by_key.get(key)) is not None:
                controller.mend(tg, replicas)

    def release(self) -> None:
        for key in [k for k, c in self._by_key.items() if not c.busy]:
            self._by_key.pop(key).release()
